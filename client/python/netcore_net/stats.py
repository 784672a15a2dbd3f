"""Prints netcore's numbers (the Stats command) as one JSON object.

usage: /usr/bin/python3 -m netcore_net.stats [--endpoint ENDPOINT]

The object is Netcore.stats()'s dict: {"instance_id", "uptime_ms",
"families": [{"name", "help", "type", "samples": [{"name", "labels",
"value"}]}]}, the same series as netcore's Prometheus /metrics.
"""

import argparse
import asyncio
import json
import sys

from .errors import NetcoreError
from .handler import Netcore


def main(argv=None):
    ap = argparse.ArgumentParser(prog="netcore_net.stats")
    ap.add_argument("--endpoint", default=None)
    args = ap.parse_args(argv)

    async def ask():
        nc = Netcore(args.endpoint, name="python-stats")
        try:
            return await nc.stats()
        finally:
            nc.close()

    try:
        st = asyncio.run(ask())
    except NetcoreError as e:
        print("netcore_net.stats: %s: %s" % (e.code, e), file=sys.stderr)
        return 1
    json.dump(st, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
