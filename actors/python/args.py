"""args: the command line shared by the Python example actors, as
actors/node/args.js is for the Node.js ones: every actor takes --endpoint; one
that listens where it is told also takes --port, --host and --path; usage
errors exit 2 (argparse), a NetcoreError that ends the run exits 1.

Import it after netcore_net is on sys.path (the actors put client/python
there): the --endpoint help names netcore_net's default endpoint. Called from
the actor's main thread before and around the asyncio loop.
"""

import argparse
import sys

import netcore_net as net


def parser(prog, description, port=None, host=None):
    """An ArgumentParser with --port (default port), --host (default host) and
    --path when port is given, then --endpoint; the actor adds its own
    options and calls parse_args()."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    if port is not None:
        p.add_argument("--port", type=int, default=port)
        p.add_argument("--host", default=host)
        p.add_argument("--path", help="listen on this UNIX socket path instead")
    p.add_argument("--endpoint", help="netcore endpoint (default: $NETCORE_ENDPOINT, "
                   "else " + net.default_endpoint() + ")")
    return p


def run(prog, main):
    """Runs main(status) on netcore_net's loop (net.run) and exits with
    status[0] (0 unless main sets it), or prints "prog: <error>" to stderr
    and exits 1 when a NetcoreError ends the run."""
    status = [0]
    try:
        net.run(main, status)
    except net.NetcoreError as e:
        print("%s: %s" % (prog, e), file=sys.stderr)
        sys.exit(1)
    sys.exit(status[0])
