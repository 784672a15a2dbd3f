#!/usr/bin/python3
"""redis: the benchmark's Redis-protocol server (PING, ECHO, SET, GET; resp.py) as a
netcore handler actor on our Python library. The same logic on asyncio's own streams
is tests/bench/asyncio-redis.py.

usage: redis.py [--port N] [--host H] [--path P] [--endpoint E]
Prints "redis server listening on <address() JSON>" once listening; an error is
printed to stderr with its Node code and exits 1; SIGINT/SIGTERM exit 0.
"""

import json
import os
import signal
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "client", "python"))
sys.path.insert(0, here)
import netcore_net as net  # noqa: E402
from args import parser, run  # noqa: E402
from resp import Session  # noqa: E402


def serve(c, store):
    """The replies of one read in one write, pause() while write() says False,
    resume() on 'drain', end() after a protocol error."""
    session = Session(store)

    def on_data(chunk):
        reply = session.feed(chunk)
        if session.closed:
            c.pause()
            c.end(reply)
        elif reply and not c.write(reply):
            c.pause()

    c.on("data", on_data)
    c.on("drain", c.resume)
    c.on("error", lambda err: None)  # a client's reset ends that connection only


def main(status):
    args = parser("redis", "Redis-protocol benchmark actor", port=6379,
                  host="127.0.0.1").parse_args()
    store = {}
    server = net.create_server(lambda c: serve(c, store),
                               netcore=net.Netcore(args.endpoint, name="redis"))

    def on_listening():
        a = server.address()
        shown = {"address": a["address"]} if args.path else \
            {"address": a["address"], "port": a["port"]}
        print("redis server listening on " + json.dumps(shown, separators=(",", ":")),
              flush=True)

    def on_error(err):
        if err.code == "ERR_NETCORE_SHUTDOWN":
            return
        print("redis: %s" % err, file=sys.stderr)
        status[0] = 1
        os._exit(1)

    server.on("listening", on_listening)
    server.on("error", on_error)
    loop = net.get_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: os._exit(0))
    if args.path:
        server.listen(args.path)
    else:
        server.listen(args.port, args.host)


if __name__ == "__main__":
    run("redis", main)
