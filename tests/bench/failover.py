#!/usr/bin/python3
"""failover.py: the failover figure (PROTOCOL.md 13).

1,000 TCP connections to two C echo actors sharing one port (--group g);
every connection is greeted and echoes once; then one member gets kill -9
and, at once, every connection sends one byte. The time from the kill until
a connection has its byte back is measured for all of them. The two members
share the connections round robin (500 each), so the slower half are the
connections of the killed member (the others answer within a millisecond);
reported: p50 and max of that half, over --runs runs.

usage: tests/bench/failover.py [--build DIR] [--conns N] [--runs N]
"""
import argparse
import os
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def start(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    return p


def wait_line(p):
    line = p.stdout.readline()
    if "listening on" not in line:
        raise SystemExit("no listening line: %r" % line)
    return int(line.split('"port":')[1].rstrip("}\n"))


def one_run(build, nconns):
    d = tempfile.mkdtemp(prefix="nc-failover-")
    ep = "ipc://%s/nc.sock" % d
    nc = start([os.path.join(build, "netcore", "netcore"), "--bind", ep, "--log-level", "warn"])
    time.sleep(0.3)
    echo = os.path.join(build, "actors", "echo")
    a = start([echo, "--endpoint", ep, "--port", "0", "--host", "127.0.0.1", "--group", "g"])
    port = wait_line(a)
    b = start([echo, "--endpoint", ep, "--port", str(port), "--host", "127.0.0.1", "--group", "g"])
    wait_line(b)
    conns = []
    for _ in range(nconns):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns.append(s)
    for s in conns:  # greeting, then one echo each
        buf = b""
        while len(buf) < 7:
            buf += s.recv(7 - len(buf))
        assert buf == b"hello\r\n", buf
        s.sendall(b"w")
        assert s.recv(1) == b"w"
    sel = selectors.DefaultSelector()
    for s in conns:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    t0 = time.monotonic()
    b.send_signal(signal.SIGKILL)
    for s in conns:
        s.send(b"p")
    back = {}
    deadline = t0 + 30
    while len(back) < nconns and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            data = key.fileobj.recv(64)
            if data != b"p":
                raise SystemExit("connection got %r instead of its byte (a repeat or a "
                                 "second greeting)" % data)
            back[key.fileobj] = time.monotonic() - t0
            sel.unregister(key.fileobj)
    if len(back) < nconns:
        raise SystemExit("%d of %d connections never echoed again" % (nconns - len(back), nconns))
    for s in conns:
        s.close()
    b.wait()
    a.send_signal(signal.SIGKILL)
    a.wait()
    nc.send_signal(signal.SIGTERM)
    nc.wait()
    lat = sorted(back.values())
    return lat[len(lat) // 2:]  # the killed member's half


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "..", "build"))
    p.add_argument("--conns", type=int, default=1000)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    p50s, maxs = [], []
    for i in range(args.runs):
        half = one_run(args.build, args.conns)
        p50s.append(statistics.median(half) * 1000)
        maxs.append(half[-1] * 1000)
        print("run %d: affected %d connections, p50 %.1f ms, max %.1f ms"
              % (i + 1, len(half), p50s[-1], maxs[-1]), flush=True)
    print("failover, %d connections, kill -9 of one of two group members: p50 %.1f ms, "
          "max %.1f ms (medians over %d runs)"
          % (args.conns, statistics.median(p50s), statistics.median(maxs), args.runs))


if __name__ == "__main__":
    main()
