#!/usr/bin/python3
"""goodbye: the seed's server.address() example as a Python handler.

usage: goodbye.py [--endpoint E]
Listens on an OS-assigned port on 127.0.0.1, prints
  opened server on {"address":"127.0.0.1","port":N}
and answers every connection with "goodbye\\n", then ends it.
SIGINT/SIGTERM close the server and exit 0; errors go to stderr, exit 1.
"""

import json
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "client", "python"))
import netcore_net as net  # noqa: E402
from args import parser, run  # noqa: E402


def main(status):
    args = parser("goodbye", "netcore goodbye example").parse_args()
    handler = net.Netcore(args.endpoint, name="goodbye")
    server = net.create_server(lambda socket: socket.end("goodbye\n"), netcore=handler)

    def on_listening():
        a = server.address()
        print("opened server on %s" % json.dumps({"address": a["address"], "port": a["port"]},
                                                 separators=(",", ":")), flush=True)

    def on_error(err):
        print("goodbye: %s" % err, file=sys.stderr)
        status[0] = 1
        server.close()

    server.on("error", on_error)
    for sig in (signal.SIGINT, signal.SIGTERM):
        net.get_loop().add_signal_handler(sig, server.close)
    server.listen(0, "127.0.0.1", on_listening)


if __name__ == "__main__":
    run("goodbye", main)
