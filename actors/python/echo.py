#!/usr/bin/python3
"""echo: the seed's echo server (c.write('hello\\r\\n'); c.pipe(c)) as a Python handler.

usage: echo.py [--port N] [--host H] [--path P] [--endpoint E] [--group G] [--service S]
               [--via-handler]
--via-handler: echo from the 'data' listener instead of pipe(): write() every
chunk back, pause() when write() returns False, resume() on 'drain', so every
byte passes through this process (the path through a handler).
Prints one line once listening, e.g.
  echo server listening on {"address":"127.0.0.1","port":8124}
SIGINT/SIGTERM close the server and exit 0, and so does netcore announcing its
own shutdown (it drains, then closes everything); an error (listen failed,
netcore gone) is printed to stderr with its Node code and exits 1. --group G
shares the port with other echoes of group G, --service S lets a restarted echo
inherit the connections; with either, SIGINT/SIGTERM hand the connections
over (Bye{handoff}). An adopted connection is greeted only when nothing was
written to it yet (sock.bytes_written == 0: the old echo died before its
greeting reached netcore); otherwise its peer was greeted already.
SIGUSR1 prints "echo connections N adopted M": the 'connection' events so far
and how many were adopted (a session resumed after a takeover has none new).
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
    p = parser("echo", "netcore echo example", port=8124, host="localhost")
    p.add_argument("--group", help="share the port with echoes of this group")
    p.add_argument("--service", help="service name a restarted echo inherits under")
    p.add_argument("--via-handler", action="store_true",
                   help="echo with write/pause/resume here instead of pipe()")
    args = p.parse_args()
    if args.service:
        os.environ["NETCORE_SERVICE"] = args.service
    handoff = bool(args.group or args.service)
    handler = net.Netcore(args.endpoint, name="echo")
    conns = set()
    counts = [0, 0]  # 'connection' events, adopted ones

    def on_connection(c):
        counts[0] += 1
        counts[1] += bool(c.adopted)
        conns.add(c)
        c.on("close", lambda had_error: conns.discard(c))
        c.on("error", lambda err: print("echo: connection: %s" % err, file=sys.stderr))
        # An adopted peer was greeted already, unless nothing was ever written
        # to it: bytes_written starts at what the old owner wrote or had queued.
        if not c.adopted or c.bytes_written == 0:
            c.write("hello\r\n")
        if args.via_handler:
            def on_data(chunk):
                if not c.write(chunk):
                    c.pause()
            c.on("data", on_data)
            c.on("drain", c.resume)
        else:
            c.pipe(c)

    server = net.create_server(on_connection, netcore=handler)

    def on_listening():
        a = server.address()
        shown = {"address": a["address"]} if args.path else \
            {"address": a["address"], "port": a["port"]}
        print("echo server listening on " + json.dumps(shown, separators=(",", ":")),
              flush=True)

    def on_error(err):
        if err.code == "ERR_NETCORE_SHUTDOWN":
            return  # netcore drains and closes every connection itself: not a failure
        print("echo: %s" % err, file=sys.stderr)
        status[0] = 1
        stop()

    def stop():
        server.close()
        for c in list(conns):
            c.destroy()

    server.on("error", on_error)
    def leave():
        handler.close(handoff=True)  # the Bye goes after this turn's writes and credits
        import zmq
        zmq.Context.instance().term()  # waits (LINGER) until it has left
        os._exit(0)

    loop = net.get_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: print(
        "echo connections %d adopted %d" % (counts[0], counts[1]), flush=True))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, leave if handoff else stop)
    # Every 'listening': again after netcore restarted (the library listens again).
    server.on("listening", on_listening)
    if args.path:
        server.listen(args.path)
    elif args.group:
        server.listen({"port": args.port, "host": args.host, "group": args.group})
    else:
        server.listen(args.port, args.host)


if __name__ == "__main__":
    run("echo", main)
