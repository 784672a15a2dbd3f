#!/usr/bin/python3
"""asyncio-redis: the benchmark's Redis-protocol server (actors/python/resp.py, the
very logic of actors/python/redis.py) on asyncio's own streams: the Python baseline
of the redis loads. Run with /usr/bin/python3.

usage: asyncio-redis.py [--port N] [--host H] [--path P]
Prints "redis server listening on <address() JSON>" once listening.
"""

import argparse
import asyncio
import json
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "actors", "python"))
from resp import Session  # noqa: E402


def main():
    p = argparse.ArgumentParser(prog="asyncio-redis")
    p.add_argument("--port", type=int, default=6379)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--path")
    args = p.parse_args()
    store = {}

    async def serve(reader, writer):
        # The replies of one read in one write; drain() is asyncio's backpressure.
        session = Session(store)
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                reply = session.feed(chunk)
                if reply:
                    writer.write(reply)
                    await writer.drain()
                if session.closed:
                    break
        except ConnectionError:
            pass  # a client's reset ends that connection only
        writer.close()

    async def run():
        if args.path:
            server = await asyncio.start_unix_server(serve, path=args.path)
            shown = {"address": args.path}
        else:
            server = await asyncio.start_server(serve, args.host, args.port)
            a = server.sockets[0].getsockname()
            shown = {"address": a[0], "port": a[1]}
        print("redis server listening on " + json.dumps(shown, separators=(",", ":")), flush=True)
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set_result, None)
        await stop

    asyncio.run(run())


if __name__ == "__main__":
    main()
