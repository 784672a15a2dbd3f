#!/usr/bin/python3
"""The conformance suite: one set of scenarios for the echo actor of every language.

usage: conformance.py --netcore PATH [--label NAME] [--only SUBSTR] -- ACTOR_CMD...

Starts the real netcore on an ipc endpoint in a temporary directory, starts the
actor (the seed's echo server: ACTOR_CMD plus --port 0 --host 127.0.0.1, and
again with --path for UNIX), reads its "listening on" line, and runs every
scenario with real TCP and UNIX client sockets:
  greeting      "hello\\r\\n" arrives first
  bytes256_*    all 256 byte values echoed, in one write and one byte at a time
  random_1mib   1 MiB of random bytes echoed byte-exact
  half_close    the client sends, shuts down its write side, still receives
                every echoed byte, then EOF (the echo is not allowHalfOpen)
  concurrent    200 connections at once, each echoing its own data
  slow_reader   64 MiB sent while the client reads slowly: every byte arrives in
                order, and netcore's and the actor's RSS stay bounded
  pause_resume  the client stops reading: the sender must stall (backpressure
                all the way back) with bounded RSS; then it reads everything
  peer_paths_not_utf8 (UNIX only) 24 peers bound to paths that are not UTF-8
                connect at once: every one is greeted and echoed
Then: SIGTERM makes the actor exit 0; netcore's own SIGTERM (docker stop,
systemctl stop) ends an open connection with a clean EOF and the actor with
exit 0, and netcore exits 0; netcore_restart: netcore is killed -9
and started again on the same endpoint while the actor runs: the old client
connection ends, and within 1 s of netcore being back the actor listens again
on its port and serves a new client; an actor whose netcore is killed with
reconnection off (NETCORE_RECONNECT=0) reports an error on stderr and exits 1;
curve_allowed / curve_unknown_key: against a netcore with CURVE on
tcp://127.0.0.1:* (keys from `netcore keygen`), the actor with an allowed key
(NETCORE_SERVER_KEY, NETCORE_SECRET_FILE) serves, and one with an unknown key
gets no Welcome: it reports EACCES and exits 1, and netcore logs the refusal. A scenario that fails for one language
and passes for another is a bug in that language's library.

Prints one PASS/FAIL line per scenario and ends with "N passed, N failed";
the exit status is 1 if anything failed. Standard library only; run it with
/usr/bin/python3.
"""

import argparse
import json
import os
import random
import re
import select
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# The one netcore launcher of the Python tests (client/python/tests).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "client",
                                "python", "tests"))
import netcore_launch  # noqa: E402

MIB = 1 << 20
GREETING = b"hello\r\n"
IO_TIMEOUT = 30.0          # seconds without progress before a client gives up
START_TIMEOUT = 30.0       # for netcore and the actor to come up
EXIT_TIMEOUT = 20.0        # for a process to exit when it should


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


# ------------------------------------------------------------------ processes

def rss_kib(pid):
    """VmRSS of pid in KiB (None if it is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Proc:
    """A child process with stdout piped and stderr in a file."""

    def __init__(self, name, argv, tmp, env=None):
        self.name = name
        self.argv = argv
        self.err_path = os.path.join(tmp, "%s.stderr" % name)
        self.err_file = open(self.err_path, "wb")
        try:
            self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=self.err_file, env=env)
        except OSError as e:
            self.err_file.close()
            raise Failure("cannot start %s (%s): %s" % (name, " ".join(argv), e))
        self._out = b""
        self.stopped = False  # set when we end it on purpose

    @property
    def pid(self):
        return self.p.pid

    def readline(self, timeout):
        """One line of stdout, or Failure after timeout / at EOF."""
        deadline = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while b"\n" not in self._out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("%s printed no line within %.0f s" % (self.name, timeout))
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.p.wait(5)
                    raise Failure("%s exited (status %s) before printing a line; stderr: %s"
                                  % (self.name, self.p.returncode, self.stderr_tail()))
                self._out += chunk
        line, self._out = self._out.split(b"\n", 1)
        return line.decode(errors="replace")

    def stderr_tail(self, n=600):
        try:
            with open(self.err_path, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        return data[-n:].decode(errors="replace").strip()

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def wait(self, timeout):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.alive():
            self.p.kill()
            self.p.wait(10)
        self.p.stdout.close()
        self.err_file.close()


class Rig:
    """netcore plus the actor (TCP and UNIX instances) in one temp dir."""

    def __init__(self, netcore, actor, tmp):
        self.netcore_bin = netcore
        self.actor = actor
        self.tmp = tmp
        self.endpoint = "ipc://%s/nc.sock" % tmp
        self.netcore = None
        self.procs = []

    @staticmethod
    def child_env(**extra):
        """Under AddressSanitizer, freed memory waits in a 256 MiB quarantine and
        would read as growth: keep it small so RSS still means buffering. Applies
        to netcore and to sanitized actors alike."""
        env = dict(os.environ, **extra)
        env["ASAN_OPTIONS"] = ":".join(filter(None, [
            "quarantine_size_mb=8", "allocator_release_to_os_interval_ms=100",
            env.get("ASAN_OPTIONS", "")]))
        return env

    def start_netcore(self, name="netcore", sock_name="nc.sock", extra=(), level="warn"):
        """Starts netcore on ipc://TMP/sock_name (plus extra flags) and waits
        until it answers `netcore --ping` there (netcore_launch)."""
        proc = netcore_launch.Netcore(self.netcore_bin, extra, name=name, dir=self.tmp,
                                      sock_name=sock_name, log_level=level,
                                      stderr_path=os.path.join(self.tmp, "%s.stderr" % name),
                                      env=self.child_env())
        self.procs.append(proc)
        if name == "netcore":
            self.netcore = proc
        try:
            return proc.start(START_TIMEOUT)
        except netcore_launch.StartError as e:
            raise Failure(str(e))

    def start_actor(self, name, extra, endpoint=None, env_extra=None):
        endpoint = endpoint or self.endpoint
        argv = list(self.actor) + list(extra) + ["--endpoint", endpoint]
        env = self.child_env(NETCORE_ENDPOINT=endpoint, **(env_extra or {}))
        proc = Proc(name, argv, self.tmp, env)
        self.procs.append(proc)
        return proc, self.listening_line(proc, name)

    def listening_line(self, proc, name, timeout=START_TIMEOUT):
        line = proc.readline(timeout)
        prefix = "echo server listening on "
        check(line.startswith(prefix), "%s printed %r, not %r..." % (name, line, prefix))
        try:
            addr = json.loads(line[len(prefix):])
        except ValueError:
            raise Failure("%s: the address in %r is not JSON" % (name, line))
        return addr

    def check_alive(self):
        """Both netcore and the actors must survive every scenario."""
        for p in self.procs:
            if not p.stopped and not p.alive():
                raise Failure("%s died (status %s): %s" % (p.name, p.p.returncode,
                                                         p.stderr_tail()))

    def stop(self):
        for p in self.procs:
            p.kill()


# -------------------------------------------------------------------- clients

def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = s.recv(min(n - len(buf), 1 << 16))
        except socket.timeout:
            raise Failure("timed out after %d of %d bytes" % (len(buf), n))
        if not chunk:
            raise Failure("EOF after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def expect_eof(s):
    try:
        chunk = s.recv(1)
    except socket.timeout:
        raise Failure("no EOF: the connection stayed open")
    except ConnectionResetError:
        raise Failure("connection reset instead of EOF")
    check(chunk == b"", "unexpected byte %r where EOF was expected" % chunk)


def first_mismatch(a, b):
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return i
    return min(len(a), len(b))


def check_same(got, want, what):
    if got != want:
        i = first_mismatch(got, want)
        raise Failure("%s: %d bytes received, %d expected, first difference at byte %d"
                      % (what, len(got), len(want), i))


class Transport:
    def __init__(self, kind, addr):
        self.kind = kind
        self.addr = addr

    def connect(self, rcvbuf=None, sndbuf=None):
        if self.kind == "tcp":
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            target = (self.addr["address"], self.addr["port"])
        else:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target = self.addr["address"]
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        s.settimeout(IO_TIMEOUT)
        try:
            s.connect(target)
        except OSError as e:
            s.close()
            raise Failure("connect to %s: %s" % (target, e))
        return s

    def greeted(self, **kw):
        s = self.connect(**kw)
        check_same(recv_exact(s, len(GREETING)), GREETING, "greeting")
        return s


class Sender(threading.Thread):
    """Sends data in chunks from a thread, counting progress."""

    def __init__(self, s, data, chunk=1 << 16, shutdown=False):
        super().__init__(daemon=True)
        self.s, self.data, self.chunk, self.shutdown = s, data, chunk, shutdown
        self.sent = 0
        self.error = None

    def run(self):
        view = memoryview(self.data)
        try:
            while self.sent < len(self.data):
                self.sent += self.s.send(view[self.sent:self.sent + self.chunk])
            if self.shutdown:
                self.s.shutdown(socket.SHUT_WR)
        except OSError as e:
            self.error = e

    def finish(self):
        self.join(IO_TIMEOUT * 4)
        check(not self.is_alive(), "the sender is stuck after %d of %d bytes"
              % (self.sent, len(self.data)))
        if self.error is not None:
            raise Failure("send failed after %d bytes: %s" % (self.sent, self.error))


class RssWatch(threading.Thread):
    """Samples the RSS of some processes until stopped; keeps the peak growth."""

    def __init__(self, procs):
        super().__init__(daemon=True)
        self.procs = procs
        self.base = {p.name: rss_kib(p.pid) or 0 for p in procs}
        self.peak = dict(self.base)
        self._halt = threading.Event()

    def sample(self):
        for p in self.procs:
            v = rss_kib(p.pid)
            if v is not None and v > self.peak[p.name]:
                self.peak[p.name] = v

    def run(self):
        while not self._halt.wait(0.02):
            self.sample()

    def stop(self):
        self._halt.set()
        self.join()
        self.sample()

    def check(self, limit_mib, when):
        for name in self.base:
            growth = (self.peak[name] - self.base[name]) / 1024.0
            check(growth <= limit_mib, "%s's RSS grew by %.1f MiB %s (limit %d MiB): "
                  "something buffers without bound" % (name, growth, when, limit_mib))

    def summary(self):
        return ", ".join("%s +%.1f MiB" % (n, (self.peak[n] - self.base[n]) / 1024.0)
                         for n in self.base)


# ------------------------------------------------------------------ scenarios

def sc_greeting(t, rig, opts):
    s = t.connect()
    try:
        check_same(recv_exact(s, len(GREETING)), GREETING, "greeting")
    finally:
        s.close()


def sc_bytes256_one_write(t, rig, opts):
    data = bytes(range(256))
    s = t.greeted()
    try:
        s.sendall(data)
        check_same(recv_exact(s, 256), data, "256 byte values")
    finally:
        s.close()


def sc_bytes256_split(t, rig, opts):
    data = bytes(range(255, -1, -1))
    s = t.greeted()
    try:
        for i in range(256):
            s.sendall(data[i:i + 1])
        check_same(recv_exact(s, 256), data, "256 byte values sent one by one")
    finally:
        s.close()


def sc_random_1mib(t, rig, opts):
    data = random.Random(1).randbytes(MIB)
    s = t.greeted()
    try:
        snd = Sender(s, data)
        snd.start()
        got = recv_exact(s, len(data))
        snd.finish()
        check_same(got, data, "1 MiB random")
    finally:
        s.close()


def sc_half_close(t, rig, opts):
    data = random.Random(2).randbytes(256 * 1024)
    s = t.greeted()
    try:
        snd = Sender(s, data, shutdown=True)
        snd.start()
        got = recv_exact(s, len(data))
        snd.finish()
        check_same(got, data, "data sent before the client's FIN")
        expect_eof(s)
    finally:
        s.close()


def sc_concurrent(t, rig, opts):
    n = opts.connections
    socks = []
    try:
        for i in range(n):
            socks.append(t.connect())
        sel = selectors.DefaultSelector()
        state = {}
        for i, s in enumerate(socks):
            s.setblocking(False)
            data = random.Random(1000 + i).randbytes(8192 + i)
            state[s] = {"out": memoryview(data), "want": GREETING + data, "got": bytearray()}
            sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
        done = 0
        last = time.monotonic()
        while done < n:
            check(time.monotonic() - last < IO_TIMEOUT,
                  "no progress for %.0f s with %d of %d connections complete"
                  % (IO_TIMEOUT, done, n))
            for key, ev in sel.select(1.0):
                s, st = key.fileobj, state[key.fileobj]
                if ev & selectors.EVENT_WRITE and st["out"]:
                    k = s.send(st["out"])
                    st["out"] = st["out"][k:]
                    last = time.monotonic()
                    if not st["out"]:
                        sel.modify(s, selectors.EVENT_READ)
                if ev & selectors.EVENT_READ:
                    chunk = s.recv(65536)
                    check(chunk, "connection %d: EOF after %d bytes"
                          % (socks.index(s), len(st["got"])))
                    st["got"] += chunk
                    last = time.monotonic()
                    if len(st["got"]) >= len(st["want"]):
                        check_same(bytes(st["got"]), st["want"],
                                   "connection %d" % socks.index(s))
                        sel.unregister(s)
                        done += 1
        sel.close()
    finally:
        for s in socks:
            s.close()


def sc_slow_reader(t, rig, opts):
    size = opts.slow_mib * MIB
    data = random.Random(3).randbytes(size)
    s = t.greeted(rcvbuf=128 * 1024, sndbuf=128 * 1024)
    watch = RssWatch([rig.netcore, rig.current_actor])
    watch.start()
    try:
        snd = Sender(s, data)
        snd.start()
        off = 0
        view = memoryview(data)
        while off < size:
            try:
                chunk = s.recv(16384)
            except socket.timeout:
                raise Failure("timed out after %d of %d bytes" % (off, size))
            check(chunk, "EOF after %d of %d bytes" % (off, size))
            if view[off:off + len(chunk)] != chunk:
                raise Failure("byte %d differs (loss or reordering)"
                              % (off + first_mismatch(chunk, view[off:off + len(chunk)])))
            off += len(chunk)
            time.sleep(0.001)
        snd.finish()
    finally:
        watch.stop()
        s.close()
    watch.check(opts.rss_limit_mib, "while a slow client read %d MiB" % opts.slow_mib)
    return watch.summary()


def sc_pause_resume(t, rig, opts):
    size = opts.pause_mib * MIB
    data = random.Random(4).randbytes(size)
    s = t.greeted(rcvbuf=128 * 1024, sndbuf=128 * 1024)
    watch = RssWatch([rig.netcore, rig.current_actor])
    watch.start()
    try:
        snd = Sender(s, data)
        snd.start()
        # Read nothing until the sender stalls: every buffer on the way is full.
        last, since = -1, time.monotonic()
        while snd.is_alive():
            if snd.sent != last:
                last, since = snd.sent, time.monotonic()
            elif time.monotonic() - since >= 1.0:
                break
            time.sleep(0.05)
        check(snd.error is None, "send failed while paused: %s" % snd.error)
        check(snd.is_alive(), "all %d MiB were absorbed while the client did not read: "
              "nothing pushed back" % opts.pause_mib)
        stalled_at = snd.sent
        watch.sample()
        watch.check(opts.rss_limit_mib, "while the client did not read")
        got = recv_exact(s, size)
        snd.finish()
        check_same(got, data, "data sent while paused")
    finally:
        watch.stop()
        s.close()
    watch.check(opts.rss_limit_mib, "after the client resumed")
    return "sender stalled after %.1f MiB; %s" % (stalled_at / MIB, watch.summary())


def sc_peer_paths_not_utf8(t, rig, opts):
    """UNIX peers bound to paths that are not UTF-8 (PROTOCOL.md 1.2: netcore
    sends those as Address.address_bytes). They connect all at once, so the
    actor gets their Connection events in batches: every one must arrive and
    echo (a library whose decoder rejects such an event loses them all)."""
    n = 24
    socks = []
    try:
        for i in range(n):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            socks.append(s)
            s.settimeout(IO_TIMEOUT)
            s.bind(os.path.join(os.fsencode(rig.tmp), b"peer-\xff\xfe\xc0-%d" % i))
            s.connect(t.addr["address"])
        for i, s in enumerate(socks):
            check_same(recv_exact(s, len(GREETING)), GREETING, "greeting of peer %d" % i)
            msg = b"peer %d \xff\xfe\xc0\x80 bytes" % i
            s.sendall(msg)
            check_same(recv_exact(s, len(msg)), msg, "echo to peer %d" % i)
    finally:
        for s in socks:
            s.close()
        for i in range(n):
            try:
                os.unlink(os.path.join(os.fsencode(rig.tmp), b"peer-\xff\xfe\xc0-%d" % i))
            except OSError:
                pass


# Families every Stats answer has (PROTOCOL.md 14), whichever library asks.
STATS_FAMILIES = {
    "netcore_handler_info": "gauge", "netcore_handler_sockets": "gauge",
    "netcore_handler_read_bytes_total": "counter", "netcore_handler_written_bytes_total": "counter",
    "netcore_connections_opened_total": "counter", "netcore_read_bytes_total": "counter",
    "netcore_listener_connections": "gauge", "netcore_loop_turn_seconds": "histogram",
}


def sc_stats(t, rig, opts):
    """The Stats command through this language's library (--stats-cmd): with 3
    clients connected and greeted, the answer names the actor's handler with
    its 3 sockets and bytes, and its listener with 3 connections."""
    check(opts.stats_cmd, "no --stats-cmd: this language has no Stats client registered")
    socks = [t.connect() for _ in range(3)]
    try:
        for s in socks:
            check_same(recv_exact(s, len(GREETING)), GREETING, "greeting")
        out = subprocess.run(opts.stats_cmd + ["--endpoint", rig.endpoint], capture_output=True,
                             timeout=START_TIMEOUT, env=rig.child_env())
        check(out.returncode == 0, "stats command exit %s: %s" % (out.returncode, out.stderr[-500:]))
        st = json.loads(out.stdout)
        fams = {f["name"]: f for f in st["families"]}
        for name, kind in STATS_FAMILIES.items():
            check(name in fams and fams[name]["type"] == kind, "no %s %s in Stats" % (kind, name))
        check(st["instance_id"] and st["uptime_ms"] > 0, "instance_id/uptime_ms: %r" % st)

        def of(name, **labels):
            return [s for s in fams[name]["samples"]
                    if all(s["labels"].get(k) == v for k, v in labels.items())]
        owners = [s["labels"]["prefix"] for s in of("netcore_handler_sockets") if s["value"] == 3]
        check(len(owners) == 1, "no single handler with the 3 sockets: %r"
              % of("netcore_handler_sockets"))
        read = of("netcore_handler_written_bytes_total", prefix=owners[0])
        check(read and read[0]["value"] >= 3 * len(GREETING), "greetings not counted: %r" % read)
        lis = [s for s in of("netcore_listener_connections") if s["value"] == 3]
        check(len(lis) == 1, "no listener with 3 connections: %r"
              % of("netcore_listener_connections"))
        return "%d families" % len(fams)
    finally:
        for s in socks:
            s.close()


# Scenarios only UNIX sockets have.
UNIX_SCENARIOS = [
    ("peer_paths_not_utf8", sc_peer_paths_not_utf8),
]

SCENARIOS = [
    ("greeting", sc_greeting),
    ("bytes256_one_write", sc_bytes256_one_write),
    ("bytes256_split", sc_bytes256_split),
    ("random_1mib", sc_random_1mib),
    ("half_close", sc_half_close),
    ("concurrent", sc_concurrent),
    ("slow_reader", sc_slow_reader),
    ("pause_resume", sc_pause_resume),
    ("stats", sc_stats),
]


# ---------------------------------------------------------------------- main

class Results:
    def __init__(self, label):
        self.label = label
        self.passed = 0
        self.failed = 0

    def record(self, name, fn):
        t0 = time.monotonic()
        try:
            note = fn()
        except Failure as e:
            self.failed += 1
            print("FAIL %s/%s: %s" % (self.label, name, e), flush=True)
            return False
        except Exception as e:  # noqa: BLE001 - any crash of a scenario is a failure
            self.failed += 1
            print("FAIL %s/%s: %s: %s" % (self.label, name, type(e).__name__, e), flush=True)
            return False
        self.passed += 1
        extra = " (%s)" % note if note else ""
        print("PASS %s/%s %.2fs%s" % (self.label, name, time.monotonic() - t0, extra),
              flush=True)
        return True

    def fail(self, name, message):
        self.failed += 1
        print("FAIL %s/%s: %s" % (self.label, name, message), flush=True)


def run_transport(rig, results, kind, extra, opts):
    try:
        proc, addr = rig.start_actor("actor-" + kind, extra)
    except Failure as e:
        for name, _ in SCENARIOS + (UNIX_SCENARIOS if kind == "unix" else []):
            if opts.only in name:
                results.fail("%s/%s" % (kind, name), "actor did not start: %s" % e)
        results.fail(kind + "/sigterm_exit0", "actor did not start")
        return
    if kind == "tcp":
        ok = addr.get("address") == "127.0.0.1" and isinstance(addr.get("port"), int) \
            and addr["port"] > 0
        results.record("tcp/listening_line", lambda: check(
            ok, "address %r is not 127.0.0.1 with an OS-assigned port" % (addr,)))
    else:
        results.record("unix/listening_line", lambda: check(
            addr == {"address": extra[1]}, "address %r, expected %r"
            % (addr, {"address": extra[1]})))
    rig.current_actor = proc
    t = Transport(kind, addr)
    for name, fn in SCENARIOS + (UNIX_SCENARIOS if kind == "unix" else []):
        if opts.only not in name:
            continue

        def one(fn=fn):
            note = fn(t, rig, opts)
            rig.check_alive()
            return note
        results.record("%s/%s" % (kind, name), one)

    def sigterm():
        proc.stopped = True
        proc.signal(signal.SIGTERM)
        status = proc.wait(EXIT_TIMEOUT)
        check(status is not None, "still running %.0f s after SIGTERM" % EXIT_TIMEOUT)
        check(status == 0, "exit status %s after SIGTERM; stderr: %s"
              % (status, proc.stderr_tail()))
    results.record(kind + "/sigterm_exit0", sigterm)


def netcore_shutdown(rig):
    """SIGTERM to netcore under a running actor (reconnection off) with an open
    connection: the connection ends with EOF (not a reset), the actor and
    netcore exit 0."""
    # Without reconnection: with it (the default) the actor waits for the next netcore.
    proc, addr = rig.start_actor("shutdown-actor", ["--port", "0", "--host", "127.0.0.1"],
                                 env_extra={"NETCORE_RECONNECT": "0"})
    c = socket.create_connection(("127.0.0.1", addr["port"]), timeout=IO_TIMEOUT)
    data = bytes(range(256)) * 64
    c.sendall(data)
    got = b""
    while len(got) < len(GREETING) + len(data):
        chunk = c.recv(65536)
        check(chunk, "EOF after %d bytes, before the echo was complete" % len(got))
        got += chunk
    check(got == GREETING + data, "the echo differs from what was sent")
    proc.stopped = rig.netcore.stopped = True
    rig.netcore.p.send_signal(signal.SIGTERM)
    try:
        rest = c.recv(65536)
    except ConnectionResetError:
        raise Failure("netcore's SIGTERM reset the connection instead of closing it")
    finally:
        c.close()
    check(rest == b"", "%d unexpected bytes after the echo" % len(rest))
    status = proc.wait(EXIT_TIMEOUT)
    check(status == 0, "actor exit status %s after netcore's SIGTERM; stderr: %s"
          % (status, proc.stderr_tail()))
    check(rig.netcore.p.wait(EXIT_TIMEOUT) == 0, "netcore exit status %s after SIGTERM"
          % rig.netcore.p.returncode)


def netcore_restart(rig):
    """netcore killed -9 and started again on the same endpoint under a running
    actor: the old connection ends, the actor listens again on its port within
    1 s of netcore being back and greets a new client."""
    proc, addr = rig.start_actor("restart-actor", ["--port", "0", "--host", "127.0.0.1"])
    old = socket.create_connection(("127.0.0.1", addr["port"]), timeout=IO_TIMEOUT)
    check(recv_exact(old, len(GREETING)) == GREETING, "no greeting before the restart")
    rig.netcore.stopped = True
    rig.netcore.p.kill()
    rig.netcore.p.wait(10)
    expect_eof_or_reset(old)
    time.sleep(0.5)  # netcore stays away a while: the libraries retry meanwhile
    check(proc.alive(), "the actor exited when netcore was killed: %s" % proc.stderr_tail())
    rig.start_netcore()
    back = time.monotonic()
    again = rig.listening_line(proc, "restart-actor", timeout=10)
    check(again == addr, "listening again on %r, not on %r" % (again, addr))
    while True:
        try:
            c = socket.create_connection(("127.0.0.1", addr["port"]), timeout=IO_TIMEOUT)
            break
        except ConnectionRefusedError:
            check(time.monotonic() - back < 10, "nothing listens 10 s after netcore is back")
            time.sleep(0.01)
    with c:
        check(recv_exact(c, len(GREETING)) == GREETING, "no greeting after the restart")
        served = time.monotonic() - back
        c.sendall(b"ping\n")
        check(recv_exact(c, 5) == b"ping\n", "no echo after the restart")
    check(served <= 1.0, "the first new client was served %.0f ms after netcore was back "
          "(more than 1 s)" % (served * 1000))
    old.close()
    proc.stopped = True
    proc.signal(signal.SIGTERM)
    check(proc.wait(EXIT_TIMEOUT) == 0, "exit status after SIGTERM: %s" % proc.stderr_tail())
    return "served %.0f ms after netcore was back" % (served * 1000)


def expect_eof_or_reset(s):
    s.settimeout(IO_TIMEOUT)
    try:
        while s.recv(65536):
            pass
    except ConnectionResetError:
        pass


def curve_rig(rig):
    """A second netcore with CURVE on tcp://127.0.0.1:* (once per run): returns
    (endpoint, netcore's public key, allowed key file, unknown key file)."""
    if getattr(rig, "curve", None):
        return rig.curve
    keys = {}
    for name in ("srv", "alice", "mallory"):
        path = os.path.join(rig.tmp, name + ".key")
        out = subprocess.run([rig.netcore_bin, "keygen", path], capture_output=True, text=True)
        check(out.returncode == 0, "netcore keygen failed: %s" % out.stderr)
        keys[name] = (path, out.stdout.strip())
    allow = os.path.join(rig.tmp, "allow")
    with open(allow, "w") as f:
        f.write("alice %s\n" % keys["alice"][1])
    # A CURVE handler may do only what the policy lets it (docs/POLICY.md).
    policy = os.path.join(rig.tmp, "policy")
    with open(policy, "w") as f:
        f.write("handler key:alice\n  listen tcp 127.0.0.1 *\n")
    proc = rig.start_netcore("netcore-curve", "curve.sock", [
        "--bind", "tcp://127.0.0.1:*", "--curve-secret-file", keys["srv"][0],
        "--curve-allow", allow, "--policy", policy], level="info")
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        with open(proc.err_path, "rb") as f:
            text = f.read().decode(errors="replace")
        m = re.search(r"handlers connect to (tcp://\S+)", text)
        if m:
            break
        check(time.monotonic() < deadline, "netcore-curve did not log its tcp endpoint")
        time.sleep(0.02)
    rig.curve = (m.group(1), keys["srv"][1], keys["alice"][0], keys["mallory"][0], proc)
    return rig.curve


def curve_allowed(rig):
    ep, server_key, alice, _, _ = curve_rig(rig)
    proc, addr = rig.start_actor("curve-actor", ["--port", "0", "--host", "127.0.0.1"], ep,
                                 {"NETCORE_SERVER_KEY": server_key, "NETCORE_SECRET_FILE": alice})
    with socket.create_connection(("127.0.0.1", addr["port"]), timeout=IO_TIMEOUT) as c:
        check(recv_exact(c, len(GREETING)) == GREETING, "no greeting over CURVE")
        c.sendall(b"curve\n")
        check(recv_exact(c, 6) == b"curve\n", "no echo over CURVE")
    proc.stopped = True
    proc.signal(signal.SIGTERM)
    check(proc.wait(EXIT_TIMEOUT) == 0, "exit status after SIGTERM: %s" % proc.stderr_tail())


def curve_unknown_key(rig):
    ep, server_key, _, mallory, nc = curve_rig(rig)
    argv = list(rig.actor) + ["--port", "0", "--host", "127.0.0.1", "--endpoint", ep]
    env = rig.child_env(NETCORE_ENDPOINT=ep, NETCORE_SERVER_KEY=server_key,
                        NETCORE_SECRET_FILE=mallory)
    proc = Proc("curve-mallory", argv, rig.tmp, env)
    rig.procs.append(proc)
    proc.stopped = True
    t0 = time.monotonic()
    status = proc.wait(EXIT_TIMEOUT)
    check(status == 1, "exit status %s with an unknown key (expected 1)" % status)
    check("EACCES" in proc.stderr_tail(), "no EACCES on stderr: %s" % proc.stderr_tail())
    with open(nc.err_path, "rb") as f:
        check(b"is not in" in f.read(), "netcore did not log the refusal")
    return "refused in %.0f ms" % ((time.monotonic() - t0) * 1000)


def netcore_gone(rig):
    """Kill netcore under an actor with reconnection off: it must say so and exit 1."""
    proc, _ = rig.start_actor("gone-actor", ["--port", "0", "--host", "127.0.0.1"],
                              env_extra={"NETCORE_RECONNECT": "0"})
    proc.stopped = rig.netcore.stopped = True
    rig.netcore.p.kill()
    rig.netcore.p.wait(10)
    status = proc.wait(EXIT_TIMEOUT)
    check(status is not None, "the actor still runs %.0f s after netcore was killed"
          % EXIT_TIMEOUT)
    check(status == 1, "exit status %s after netcore was killed (expected 1)" % status)
    check(proc.stderr_tail(), "nothing on stderr after netcore was killed")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--netcore", required=True, help="path of the netcore binary")
    ap.add_argument("--label", default="echo", help="name shown in results (the language)")
    ap.add_argument("--only", default="", help="run only scenarios whose name contains this")
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--slow-mib", type=int, default=64)
    ap.add_argument("--pause-mib", type=int, default=64)
    ap.add_argument("--rss-limit-mib", type=int, default=40,
                    help="largest RSS growth allowed for netcore and the actor")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    ap.add_argument("--stats-cmd", default="",
                    help="this language's Stats client (given --endpoint E, prints JSON)")
    ap.add_argument("actor", nargs="+", help="the echo actor's command line")
    opts = ap.parse_args()
    opts.stats_cmd = shlex.split(opts.stats_cmd)

    results = Results(opts.label)
    tmp = tempfile.mkdtemp(prefix="nc-conformance-")
    rig = Rig(opts.netcore, opts.actor, tmp)
    try:
        if results.record("netcore_start", rig.start_netcore):
            run_transport(rig, results, "tcp", ["--port", "0", "--host", "127.0.0.1"], opts)
            run_transport(rig, results, "unix", ["--path", os.path.join(tmp, "echo.sock")],
                          opts)
            if not opts.only or opts.only in "netcore_restart":
                results.record("netcore_restart", lambda: netcore_restart(rig))
            if not opts.only:
                if results.record("netcore_shutdown_exit0", lambda: netcore_shutdown(rig)):
                    results.record("netcore_start_again", rig.start_netcore)
                results.record("netcore_gone_exit1", lambda: netcore_gone(rig))
            if not opts.only or "curve" in opts.only:
                results.record("curve_allowed", lambda: curve_allowed(rig))
                results.record("curve_unknown_key", lambda: curve_unknown_key(rig))
        if results.failed:
            for p in rig.procs:
                tail = p.stderr_tail()
                if tail:
                    print("--- %s stderr (tail):\n%s" % (p.name, tail))
    finally:
        rig.stop()
        if opts.keep:
            print("logs kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (results.passed, results.failed))
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
