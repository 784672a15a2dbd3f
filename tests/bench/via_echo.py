#!/usr/bin/python3
"""via_echo.py: the benchmark's echo through the handler on the Python library, for
measuring (profile.sh --actor via-python): write() from 'data', pause() when it returns
False, resume() on 'drain'.

usage: via_echo.py [--port N] [--host H] [--path P] [--endpoint E]
"""

import argparse
import json
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "client", "python"))
import netcore_net as net  # noqa: E402


def main():
    p = argparse.ArgumentParser(prog="via_echo")
    p.add_argument("--port", type=int, default=8124)
    p.add_argument("--host", default="localhost")
    p.add_argument("--path")
    p.add_argument("--endpoint")
    args = p.parse_args()
    handler = net.Netcore(args.endpoint, name="via_echo")

    def on_connection(c):
        c.on("error", lambda err: None)
        c.write(b"hello\r\n")

        def on_data(d):
            if not c.write(d):
                c.pause()
        c.on("data", on_data)
        c.on("drain", c.resume)

    server = net.create_server(on_connection, netcore=handler)

    def on_listening():
        a = server.address()
        shown = {"address": a["address"]} if args.path else \
            {"address": a["address"], "port": a["port"]}
        print("echo server listening on " + json.dumps(shown, separators=(",", ":")),
              flush=True)

    server.on("listening", on_listening)
    loop = net.get_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: os._exit(0))
    if args.path:
        server.listen(args.path)
    else:
        server.listen(args.port, args.host)


if __name__ == "__main__":
    net.run(main)
