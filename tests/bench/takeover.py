#!/usr/bin/python3
"""takeover.py: the takeover figure (PROTOCOL.md 16).

1,000 busy TCP connections to the C echo actor (--service echo1): every
connection sends a numbered 32-byte message, waits for it to come back and
sends the next, without pause. Once all are busy, `netcore --takeover`
starts; the old netcore must exit 0 and every connection must go on with
every message back exactly once and in order. For each connection the pause
it saw is the longest time between two of its echoes from the start of the
takeover until every connection has had an echo from the new netcore;
reported: p50 and max of those pauses over the connections, and the same
figure measured over as long a stretch before the takeover (the noise of this
loop: a Python client serving 1,000 connections), per run and as medians over
--runs runs.

usage: tests/bench/takeover.py [--build DIR] [--conns N] [--runs N]
"""
import argparse
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time

MSG = 32


def start(cmd):
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)


def wait_line(p):
    line = p.stdout.readline()
    if "listening on" not in line:
        raise SystemExit("no listening line: %r" % line)
    return int(line.split('"port":')[1].rstrip("}\n"))


def wait_ready(ep):
    path = ep[len("ipc://"):]
    deadline = time.monotonic() + 10
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit("netcore did not bind %s" % ep)
        time.sleep(0.01)


def msg(n):
    return (b"%031d\n" % n)[-MSG:]


class Conn:
    def __init__(self, s):
        self.s = s
        self.n = 0  # messages echoed
        self.buf = b""
        self.times = []  # monotonic time of every echo

    def send_next(self):
        self.s.sendall(msg(self.n))


def pump(sel, conns, until):
    """Serves every connection until the predicate until() holds (or 30 s)."""
    deadline = time.monotonic() + 30
    while not until():
        if time.monotonic() > deadline:
            slow = sum(1 for c in conns if not c.times or time.monotonic() - c.times[-1] > 5)
            raise SystemExit("stalled: %d connections without an echo for 5 s" % slow)
        for key, _ in sel.select(timeout=0.1):
            c = key.data
            data = c.s.recv(4096)
            if not data:
                raise SystemExit("a connection was closed (the echo ended it)")
            c.buf += data
            while len(c.buf) >= MSG:
                got, c.buf = c.buf[:MSG], c.buf[MSG:]
                if got != msg(c.n):
                    raise SystemExit("connection got %r, expected %r (lost or repeated)"
                                     % (got, msg(c.n)))
                c.n += 1
                c.times.append(time.monotonic())
                c.send_next()


def pauses(conns, t0, t1):
    """Per connection: the longest gap between echoes (or t0/t1) in [t0, t1]."""
    out = []
    for c in conns:
        ts = [t0] + [t for t in c.times if t0 <= t <= t1] + [t1]
        out.append(max(b - a for a, b in zip(ts, ts[1:])))
    return sorted(out)


def one_run(build, nconns):
    d = tempfile.mkdtemp(prefix="nc-takeover-")
    ep = "ipc://%s/nc.sock" % d
    netcore = os.path.join(build, "netcore", "netcore")
    flags = ["--bind", ep, "--log-level", "warn", "--handoff-ms", "10000"]
    old = start([netcore] + flags)
    wait_ready(ep)
    echo = start([os.path.join(build, "actors", "echo"), "--endpoint", ep, "--port", "0",
                  "--host", "127.0.0.1", "--service", "echo1"])
    port = wait_line(echo)
    sel = selectors.DefaultSelector()
    conns = []
    for _ in range(nconns):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        while len(buf) < 7:
            buf += s.recv(7 - len(buf))
        assert buf == b"hello\r\n", buf
        s.setblocking(False)
        c = Conn(s)
        conns.append(c)
        sel.register(s, selectors.EVENT_READ, c)
        c.send_next()
    # Busy: every connection has echoed a few times.
    pump(sel, conns, lambda: min(c.n for c in conns) >= 5)
    # The noise: as long a stretch before the takeover as the takeover's.
    t_quiet = time.monotonic()
    pump(sel, conns, lambda: time.monotonic() - t_quiet >= 1.0)
    t0 = time.monotonic()
    new = start([netcore] + flags + ["--takeover"])
    t_old_gone = [None]

    def until():
        # Over once the old one is gone and every connection echoed since.
        if t_old_gone[0] is None:
            if old.poll() is None:
                return False
            t_old_gone[0] = time.monotonic()
        return all(c.times[-1] > t_old_gone[0] for c in conns)

    pump(sel, conns, until)
    t1 = time.monotonic()
    if old.returncode != 0:
        raise SystemExit("the old netcore exited with %d" % old.returncode)
    if echo.poll() is not None:
        raise SystemExit("the echo process is gone")
    span = t1 - t0
    quiet = pauses(conns, t0 - span if t0 - span > t_quiet else t_quiet, t0)
    during = pauses(conns, t0, t1)
    for c in conns:
        c.s.close()
    echo.kill()
    echo.wait()
    new.terminate()
    new.wait()
    old.stdout.close()
    new.stdout.close()
    echo.stdout.close()
    return during, quiet, (t_old_gone[0] - t0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "..", "build"))
    p.add_argument("--conns", type=int, default=1000)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    p50s, maxs, qp50s, qmaxs = [], [], [], []
    for i in range(args.runs):
        during, quiet, gone = one_run(args.build, args.conns)
        p50s.append(statistics.median(during) * 1000)
        maxs.append(during[-1] * 1000)
        qp50s.append(statistics.median(quiet) * 1000)
        qmaxs.append(quiet[-1] * 1000)
        print("run %d: pause p50 %.1f ms, max %.1f ms (old netcore gone after %.1f ms); "
              "before the takeover p50 %.1f ms, max %.1f ms"
              % (i + 1, p50s[-1], maxs[-1], gone * 1000, qp50s[-1], qmaxs[-1]), flush=True)
    print("takeover, %d busy connections, C echo: pause p50 %.1f ms, max %.1f ms; without a "
          "takeover p50 %.1f ms, max %.1f ms (medians over %d runs)"
          % (args.conns, statistics.median(p50s), statistics.median(maxs),
             statistics.median(qp50s), statistics.median(qmaxs), args.runs))


if __name__ == "__main__":
    main()
