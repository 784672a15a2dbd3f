#!/usr/bin/python3
"""redis_check: a Redis-protocol server answers redis-cli, and a raw client, as Redis does.

usage: redis_check.py [--netcore BIN] [--redis-server] [--label L] -- SERVER-COMMAND...

Starts the server (through a netcore of its own with --netcore: the server then gets
--endpoint ipc://<tmp>/nc.sock), on 127.0.0.1 port 0 (--port 0 --host 127.0.0.1; it
prints "... listening on {json}"), or with --redis-server the command is Debian's
redis-server, started on a UNIX socket in a temp dir as the reference these checks are
proved against. Then:
  - redis-cli PING, ECHO, SET/GET of a 1 MB binary value (and its exact RESP reply),
    GET of a missing key ((nil)), an unknown command (Redis's error text);
  - one stream of pipelined commands (inline and multibulk, a value with CR LF and
    NUL inside, blank lines, "*0") split at every byte: for each split point one
    connection sends the head, then after a pause the tail; and one connection
    writes the stream a byte at a time. Every connection must get exactly the
    replies Redis gives;
  - protocol errors (a bad bulk length, an inline command over 64 KiB) get Redis's
    error and the connection is closed after it, while another connection goes on.
Exit 0 when every check passed; each failure is printed as "FAIL label/check: why".
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

STREAM = [
    (b"PING\r\n", b"+PONG\r\n"),
    (b"*2\r\n$4\r\nECHO\r\n$12\r\nhello\r\nworld\r\n", b"$12\r\nhello\r\nworld\r\n"),
    (b"*3\r\n$3\r\nSET\r\n$7\r\nsplit:k\r\n$4\r\nv\x00\xff1\r\n", b"+OK\r\n"),
    (b"get split:k\r\n", b"$4\r\nv\x00\xff1\r\n"),
    (b"*2\r\n$3\r\nGET\r\n$13\r\nsplit:missing\r\n", b"$-1\r\n"),
    (b"ping  \thi\n", b"$2\r\nhi\r\n"),
    (b"*0\r\n", b""),
    (b"\r\n", b""),
    (b"*2\r\n$3\r\nFOO\r\n$3\r\nbar\r\n",
     b"-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n"),
    (b"SET a\r\n", b"-ERR wrong number of arguments for 'set' command\r\n"),
    (b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n"),
]
SEND = b"".join(s for s, _ in STREAM)
WANT = b"".join(r for _, r in STREAM)


class Failure(Exception):
    pass


class Server:
    """The server under test and, with --netcore, its netcore; stopped by pid."""

    def __init__(self, tmp):
        self.procs = []
        self.tmp = tmp
        self.unix = None
        self.port = None

    def start(self, args):
        cmd = list(args.server)
        if args.redis_server:
            self.unix = os.path.join(self.tmp, "redis.sock")
            cmd += ["--port", "0", "--unixsocket", self.unix, "--save", "", "--appendonly", "no",
                    "--dir", self.tmp]
            self._spawn("redis-server", cmd)
            self._wait(lambda: os.path.exists(self.unix), "redis-server made no socket")
            return
        if args.netcore:
            sock = os.path.join(self.tmp, "nc.sock")
            self._spawn("netcore", [args.netcore, "--bind", "ipc://" + sock, "--log-level", "warn"])
            self._wait(lambda: os.path.exists(sock), "netcore did not bind")
            cmd += ["--endpoint", "ipc://" + sock]
        cmd += ["--port", "0", "--host", "127.0.0.1"]
        p = self._spawn("server", cmd)
        line = p.stdout.readline().decode(errors="replace")
        if " listening on {" not in line:
            raise Failure("the server did not listen: %r, stderr: %s" % (line, self.stderr("server")))
        self.port = json.loads(line[line.index("{"):])["port"]

    def _spawn(self, name, argv):
        err = open(os.path.join(self.tmp, name + ".err"), "wb")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        self.procs.append((name, p))
        return p

    def _wait(self, ok, why):
        for _ in range(200):
            if ok():
                return
            for name, p in self.procs:
                if p.poll() is not None:
                    raise Failure("%s exited %s: %s" % (name, p.returncode, self.stderr(name)))
            time.sleep(0.05)
        raise Failure(why)

    def stderr(self, name):
        try:
            with open(os.path.join(self.tmp, name + ".err"), "rb") as f:
                return f.read()[-600:].decode(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return [name for name, p in self.procs if p.poll() is not None]

    def stop(self):
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for _, p in reversed(self.procs):
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def connect(self):
        if self.unix:
            s = socket.socket(socket.AF_UNIX)
            s.connect(self.unix)
        else:
            s = socket.create_connection(("127.0.0.1", self.port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(10)
        return s

    def cli(self, *words, stdin=None, raw=True):
        where = ["-s", self.unix] if self.unix else ["-h", "127.0.0.1", "-p", str(self.port)]
        argv = ["redis-cli"] + where + (["--raw"] if raw else ["--no-raw"]) + list(words)
        r = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        if r.returncode != 0:
            raise Failure("%s exited %d: %s" % (" ".join(words), r.returncode, r.stderr[-300:]))
        return r.stdout


def read_exactly(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(max(65536, n - len(out)))
        if not b:
            raise Failure("connection closed after %d of %d bytes: %r" % (len(out), n, out[-80:]))
        out += b
    return out


def expect_closed(s, what):
    """After the error: nothing more, then EOF (the server ends the connection)."""
    try:
        rest = s.recv(100)
    except ConnectionResetError:
        return
    if rest:
        raise Failure("%s: more bytes after the error: %r" % (what, rest))


def check_cli(srv):
    if srv.cli("PING") != b"PONG\n":
        raise Failure("PING")
    got = srv.cli("ECHO", "hello world")
    if got != b"hello world\n":
        raise Failure("ECHO answered %r" % got)
    value = os.urandom(1024 * 1024)
    got = srv.cli("-x", "SET", "check:big", stdin=value)
    if got != b"OK\n":
        raise Failure("SET of 1 MB answered %r" % got[:100])
    got = srv.cli("GET", "check:big")
    if got != value + b"\n":
        raise Failure("GET of the 1 MB value: %d bytes back, %s" % (
            len(got), "different bytes" if len(got) == len(value) + 1 else "wrong length"))
    s = srv.connect()
    s.sendall(b"*2\r\n$3\r\nGET\r\n$9\r\ncheck:big\r\n")
    head = b"$%d\r\n" % len(value)
    got = read_exactly(s, len(head) + len(value) + 2)
    s.close()
    if got != head + value + b"\r\n":
        raise Failure("the RESP reply to GET of the 1 MB value is not $1048576 + value + CRLF")
    got = srv.cli("GET", "check:no-such-key", raw=False)
    if got != b"(nil)\n":
        raise Failure("GET of a missing key answered %r" % got)
    got = srv.cli("FOO", "bar", "baz")
    # redis-cli --raw prints an error with an empty line after it
    want = b"ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' \n\n"
    if got != want:
        raise Failure("an unknown command answered %r, not %r" % (got, want))


def check_split(srv):
    """SEND split at every byte: the head now, the tail after a pause."""
    conns = []
    for i in range(1, len(SEND)):
        s = srv.connect()
        s.sendall(SEND[:i])
        conns.append((i, s))
    time.sleep(0.2)  # the heads are read (and answered as far as they go) on their own
    for i, s in conns:
        s.sendall(SEND[i:])
    for i, s in conns:
        got = read_exactly(s, len(WANT))
        s.close()
        if got != WANT:
            raise Failure("split at byte %d of %d: got %r" % (i, len(SEND), got))


def check_bytewise(srv):
    s = srv.connect()
    for i in range(len(SEND)):
        s.sendall(SEND[i:i + 1])
        time.sleep(0.002)
    got = read_exactly(s, len(WANT))
    s.close()
    if got != WANT:
        raise Failure("a byte at a time: got %r" % got)


def check_protocol_errors(srv):
    other = srv.connect()
    for send, want in [
        (b"PING\r\n*1\r\n$x\r\nPING\r\n", b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"),
        (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*1\r\nfoo\r\n", b"-ERR Protocol error: expected '$', got 'f'\r\n"),
        (b"*1\r\n$600000000\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"a" * 70000, b"-ERR Protocol error: too big inline request\r\n"),
    ]:
        s = srv.connect()
        s.sendall(send)
        got = read_exactly(s, len(want))
        if got != want:
            raise Failure("%r... answered %r, not %r" % (send[:20], got, want))
        expect_closed(s, repr(send[:20]))
        s.close()
        other.sendall(b"PING\r\n")
        if read_exactly(other, 7) != b"+PONG\r\n":
            raise Failure("another connection stopped answering after %r" % send[:20])
    other.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--netcore")
    ap.add_argument("--redis-server", action="store_true")
    ap.add_argument("--label", default="redis")
    ap.add_argument("server", nargs="+")
    args = ap.parse_args()
    if shutil.which("redis-cli") is None:
        print("FAIL %s: redis-cli is not installed (scripts/install-deps.sh installs redis-tools)"
              % args.label)
        return 1
    tmp = tempfile.mkdtemp(prefix="nc-redis-check.")
    failed = 0
    srv = None
    try:
        srv = Server(tmp)
        srv.start(args)
        for name, fn in [("cli", check_cli), ("split_every_byte", check_split),
                         ("byte_at_a_time", check_bytewise),
                         ("protocol_errors", check_protocol_errors)]:
            t0 = time.monotonic()
            try:
                fn(srv)
                print("ok   %s/%s (%.1f s)" % (args.label, name, time.monotonic() - t0), flush=True)
            except (Failure, OSError, subprocess.SubprocessError) as e:
                failed += 1
                print("FAIL %s/%s: %s: %s" % (args.label, name, type(e).__name__, e), flush=True)
        dead = srv.alive()
        if dead:
            failed += 1
            print("FAIL %s: %s died: %s" % (args.label, ", ".join(dead),
                                           " | ".join(srv.stderr(n) for n in dead)))
    except Failure as e:
        failed += 1
        print("FAIL %s/start: %s" % (args.label, e))
    finally:
        if srv is not None:
            srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
