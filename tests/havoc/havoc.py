#!/usr/bin/python3
"""havoc: kill handlers at random while clients stream through the others (Ranch's havoc_SUITE).

usage: havoc.py --netcore PATH --echo PATH [--node PATH] [--seconds N] [--connections N]
                [--lease-ms MS] [--seed N] [--rogue-modes LIST] [--discard] (--help: all)

Starts the real netcore on an ipc endpoint in a temporary directory with a short
lease, and a pool of handler actors, each a real process listening on 127.0.0.1
port 0: C echo actors (build/actors/echo), the Python and the Node.js echo actors
(all three run the seed's c.pipe(c) inside netcore, PROTOCOL.md 17), and rogue
handlers (rogue.py: raw protocol, they say Bye, vanish in the middle of a batch,
or stop reading their events). Client connections, many at once, stream a
position-dependent byte pattern through live actors and check every echoed byte.

For --seconds (default $HAVOC_SECONDS, else 60) a random actor is killed with SIGKILL
at random intervals and its slot gets a replacement (listening on port 0 again: the
dead one's port stays bound until netcore's lease drops it). Checks:
  - a connection whose actor stays alive gets every byte back exactly, in order,
    then EOF after its own FIN (the echo actors are not allowHalfOpen);
  - a connection whose actor was killed, or is a rogue, only ever sees a correct
    prefix of the stream, and it ends (EOF or RST) within a lease plus slack once
    its actor is gone;
  - netcore never dies; after warm-up and again at the end, with no traffic and the
    same live actors, its open fds return to the baseline and its RSS to the
    baseline plus a small slack once the killed actors' sockets are gone;
  - a bystander handler that only pings gets every Pong within a lease (its round
    trips are printed: they show how long netcore's loop stalled);
  - netcore answers a fresh Hello with Welcome, and exits 0 on SIGTERM.
The lease is 3000 ms by default: with 1000 ms, the libnc actors on a loaded 2-core
machine now and then gave netcore up (ERR_NETCORE_GONE) though it was fine.
Prints a summary (kills, connections, bytes checked); exit status 1 on any failure.
Run it with /usr/bin/python3 (python3-zmq, python3-protobuf; NETCORE_PB2_DIR as
for the Python library).
"""

import argparse
import errno
import json
import os
import random
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "client", "python"))
from netcore_net._proto import pb  # noqa: E402

GREETING = b"hello\r\n"
PERIOD = 65521            # prime period of the byte pattern (no chunk size aligns with it)
WINDOW = 128 * 1024       # bytes a client sends ahead of what came back
STALL = 30.0              # a healthy connection without progress this long has failed
START_TIMEOUT = 30.0      # for an actor to print its "listening on" line
SLACK_FDS = 2             # open fds allowed above the baseline at the end
SLACK_RSS_KIB = 4096      # RSS allowed above the baseline at the end (plus 10 %)
SETTLE_TIMEOUT = 30.0     # for fds and RSS to come back after the last kill


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def child_env(**extra):
    """Small ASan quarantine, so that under the sanitizer RSS still means buffering."""
    env = dict(os.environ, **extra)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [
        "quarantine_size_mb=8", "allocator_release_to_os_interval_ms=100",
        env.get("ASAN_OPTIONS", "")]))
    return env


class Fatal(Exception):
    """A failure after which the run cannot go on (netcore died, an actor never started)."""


# ------------------------------------------------------------------ the byte pattern

class Pattern:
    """Byte i of a stream with (offset, shift) is base[(i + offset) % PERIOD] mapped through
    table[(i // PERIOD + shift) % 256]: a drop, duplicate or reorder of any length shows."""

    def __init__(self, rng):
        self.base = rng.randbytes(PERIOD)
        self.base2 = self.base + self.base
        self.tables = []
        for _ in range(256):
            perm = list(range(256))
            rng.shuffle(perm)
            self.tables.append(bytes(perm))

    def slice(self, offset, shift, pos, n):
        out = []
        while n > 0:
            block, within = divmod(pos, PERIOD)
            take = min(n, PERIOD - within)
            start = (within + offset) % PERIOD
            out.append(self.base2[start:start + take].translate(self.tables[(block + shift) % 256]))
            pos += take
            n -= take
        return b"".join(out)


# ------------------------------------------------------------------ actors

ECHO_KINDS = ("c", "python", "node")


class Actor:
    """One handler process in a pool slot. kind: c, python, node or rogue."""

    def __init__(self, rig, slot, kind, argv, mode=None):
        self.rig, self.slot, self.kind, self.mode = rig, slot, kind, mode
        self.name = "%s%d-%s%s" % (kind, slot, rig.started, "-" + mode if mode else "")
        self.err_path = os.path.join(rig.tmp, self.name + ".stderr")
        with open(self.err_path, "wb") as err:
            try:
                self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=err, env=rig.env)
            except OSError as e:
                raise Fatal("cannot start %s (%s): %s" % (self.name, " ".join(argv), e))
        os.set_blocking(self.p.stdout.fileno(), False)
        self.out = b""
        self.port = None          # set once it printed its "listening on" line
        self.started = time.monotonic()
        self.conns = set()
        self.killed = False       # we sent SIGKILL
        self.gone_at = None       # when we learnt that it is gone

    @property
    def ready(self):
        return self.port is not None and self.gone_at is None

    def on_stdout(self):
        try:
            chunk = os.read(self.p.stdout.fileno(), 4096)
        except BlockingIOError:
            return
        if not chunk:
            self.rig.sel.unregister(self.p.stdout)
            return
        self.out += chunk
        if self.port is None and b"\n" in self.out:
            line = self.out.split(b"\n", 1)[0].decode(errors="replace")
            prefix = "echo server listening on "
            if not line.startswith(prefix):
                raise Fatal("%s printed %r" % (self.name, line))
            self.port = json.loads(line[len(prefix):])["port"]

    def stderr_tail(self, n=800):
        try:
            with open(self.err_path, "rb") as f:
                return f.read()[-n:].decode(errors="replace").strip()
        except OSError:
            return ""

    def reap(self):
        if self.p.stdout is not None:
            try:
                self.rig.sel.unregister(self.p.stdout)
            except (KeyError, ValueError):
                pass
            self.p.stdout.close()
        self.p.wait(10)


# ------------------------------------------------------------------ client connections

class Conn:
    """A client connection streaming `total` pattern bytes through an actor."""

    def __init__(self, rig, actor, total):
        self.rig, self.actor, self.total = rig, actor, total
        self.offset = rig.rng.randrange(PERIOD)
        self.shift = rig.rng.randrange(256)
        self.sent = 0
        self.rpos = 0              # bytes of (greeting + echo) received and checked
        self.shut = False
        self.doomed_at = None      # its actor is gone: it must end by doomed_at + grace
        self.last_progress = time.monotonic()
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.setblocking(False)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.events = 0
        rv = self.s.connect_ex(("127.0.0.1", actor.port))
        if rv not in (0, errno.EINPROGRESS):
            raise Fatal("connect to %s port %d: %s" % (actor.name, actor.port, os.strerror(rv)))
        actor.conns.add(self)
        self.update()

    @property
    def trusted(self):
        """Its actor is an echo that was never killed: it must complete exactly."""
        return self.actor.kind in ECHO_KINDS and self.doomed_at is None

    def want(self):
        ev = selectors.EVENT_READ
        if self.sent < self.total and self.sent + len(GREETING) - self.rpos < WINDOW:
            ev |= selectors.EVENT_WRITE
        return ev

    def update(self):
        ev = self.want()
        if ev == self.events:
            return
        if self.events:
            self.rig.sel.modify(self.s, ev, self)
        else:
            self.rig.sel.register(self.s, ev, self)
        self.events = ev

    def on_write(self):
        n = min(self.total - self.sent, 65536, WINDOW - (self.sent + len(GREETING) - self.rpos))
        if n > 0:
            data = self.rig.pattern.slice(self.offset, self.shift, self.sent, n)
            try:
                self.sent += self.s.send(data)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as e:
                return self.ended("send: %s" % e)
        if self.sent == self.total and not self.shut:
            self.shut = True
            try:
                self.s.shutdown(socket.SHUT_WR)
            except OSError as e:
                return self.ended("shutdown: %s" % e)
        self.update()

    def on_read(self):
        try:
            chunk = self.s.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            return self.ended(e.strerror or str(e))
        if not chunk:
            return self.ended("EOF")
        self.last_progress = time.monotonic()
        want = self.expected(self.rpos, len(chunk))
        if chunk != want or self.rpos + len(chunk) > self.total + len(GREETING):
            i = next((k for k in range(min(len(chunk), len(want))) if chunk[k] != want[k]),
                     min(len(chunk), len(want)))
            self.rig.corrupt += len(chunk) - i
            self.rig.fail("%s: wrong byte at stream position %d, greeting included (%s actor, %s)"
                          % (self.actor.name, self.rpos + i,
                             "live" if self.trusted else "dead or rogue",
                             "%d bytes sent" % self.sent))
            return self.close()
        self.rpos += len(chunk)
        self.rig.checked += len(chunk)
        self.update()

    def expected(self, rpos, n):
        head = GREETING[rpos:rpos + n] if rpos < len(GREETING) else b""
        pos = max(0, rpos - len(GREETING))
        rest = min(n - len(head), max(0, self.total - pos))
        return head + self.rig.pattern.slice(self.offset, self.shift, pos, rest)

    def ended(self, how):
        complete = self.rpos == self.total + len(GREETING) and how == "EOF"
        if complete:
            self.rig.stats["complete"] += 1
        elif self.trusted:
            self.rig.fail("%s: connection ended (%s) after %d of %d echoed bytes, %d sent; "
                          "its actor is alive" % (self.actor.name, how,
                                                  max(0, self.rpos - len(GREETING)),
                                                  self.total, self.sent))
        else:
            self.rig.stats["cut"] += 1
        if self.doomed_at is not None:
            self.rig.end_delays.append(time.monotonic() - self.doomed_at)
        self.close()

    def close(self):
        if self.events:
            self.rig.sel.unregister(self.s)
            self.events = 0
        self.s.close()
        self.actor.conns.discard(self)
        self.rig.conns.discard(self)

    def check_time(self, now, grace):
        if self.doomed_at is not None:
            if now - self.doomed_at > grace:
                self.rig.fail("%s: connection still open %.1f s after its actor was gone "
                              "(%d of %d bytes echoed)" % (self.actor.name, now - self.doomed_at,
                                                           self.rpos, self.total))
                self.close()
        elif self.trusted and now - self.last_progress > STALL:
            self.rig.fail("%s: no progress for %.0f s (%d sent, %d of %d echoed)"
                          % (self.actor.name, STALL, self.sent, self.rpos, self.total))
            self.close()


# ------------------------------------------------------------------ the bystander probe

class Probe:
    """A raw handler that only pings netcore every PING_EVERY seconds: the round trip
    of its pings shows how long netcore's loop (or the whole machine) stalled."""

    PING_EVERY = 0.2

    def __init__(self, endpoint):
        self.ctx = zmq.Context()
        self.s = self.ctx.socket(zmq.DEALER)
        self.s.setsockopt(zmq.LINGER, 0)
        self.s.connect(endpoint)
        self.s.send(pb.Command(hello=pb.Hello(version=1, name="havoc-probe")).SerializeToString())
        if not self.s.poll(START_TIMEOUT * 1000):
            raise Fatal("netcore did not answer the probe's Hello")
        ev = pb.Event.FromString(self.s.recv_multipart()[0])
        if ev.WhichOneof("event") != "welcome":
            raise Fatal("the probe's Hello got %s" % ev.WhichOneof("event"))
        self.nonce = 0
        self.sent_at = None
        self.last = 0.0
        self.rtts = []

    def tick(self, now):
        while self.s.poll(0):
            ev = pb.Event.FromString(self.s.recv_multipart()[0])
            if ev.WhichOneof("event") == "pong" and ev.pong.nonce == self.nonce and self.sent_at:
                self.rtts.append(now - self.sent_at)
                self.sent_at = None
        if self.sent_at is None and now - self.last >= self.PING_EVERY:
            self.nonce += 1
            self.sent_at = self.last = now
            self.s.send(pb.Command(ping=pb.Ping(nonce=self.nonce)).SerializeToString())

    def late(self, now):
        """Seconds the current ping has been waiting for its Pong (0 if none waits)."""
        return now - self.sent_at if self.sent_at is not None else 0.0

    def close(self):
        self.s.close()
        self.ctx.term()


# ------------------------------------------------------------------ the rig

class Rig:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.pattern = Pattern(self.rng)
        self.tmp = tempfile.mkdtemp(prefix="nc-havoc-")
        self.endpoint = "ipc://%s/nc.sock" % self.tmp
        self.env = child_env(NETCORE_ENDPOINT=self.endpoint)
        self.sel = selectors.DefaultSelector()
        self.actors = []          # live (or starting) actors
        self.conns = set()
        self.started = 0
        self.failures = []
        self.corrupt = 0
        self.checked = 0
        self.stats = {"complete": 0, "cut": 0, "opened": 0, "kills": 0, "rogue_exits": 0}
        self.kills_by_kind = {}
        self.end_delays = []      # from an actor's death to the end of each of its connections
        self.grace = a.lease_ms / 1000.0 + 10.0
        self.slots = ["c"] * a.c_actors + ["python"] * a.python_actors
        if a.node:
            self.slots += ["node"] * a.node_actors
        self.slots += ["rogue"] * a.rogues
        self.netcore = None
        self.probe = None
        self.peak_rss = 0

    def fail(self, msg):
        if len(self.failures) < 50:
            print("FAIL: " + msg, flush=True)
        self.failures.append(msg)

    # ----------------------------------------------------------- processes
    def start_netcore(self):
        self.nc_err = os.path.join(self.tmp, "netcore.stderr")
        with open(self.nc_err, "wb") as err:
            self.netcore = subprocess.Popen(
                [self.a.netcore, "--bind", self.endpoint, "--lease-ms", str(self.a.lease_ms),
                 "--log-level", "warn"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err, env=self.env)
        deadline = time.monotonic() + START_TIMEOUT
        while not os.path.exists(os.path.join(self.tmp, "nc.sock")):
            self.check_netcore()
            if time.monotonic() > deadline:
                raise Fatal("netcore did not bind %s" % self.endpoint)
            time.sleep(0.02)

    def netcore_tail(self, n=2000):
        try:
            with open(self.nc_err, "rb") as f:
                return f.read()[-n:].decode(errors="replace").strip()
        except OSError:
            return ""

    def check_netcore(self):
        if self.netcore.poll() is not None:
            raise Fatal("netcore died (status %s); its log ends:\n%s"
                        % (self.netcore.returncode, self.netcore_tail()))
        rss = rss_kib(self.netcore.pid)
        if rss and rss > self.peak_rss:
            self.peak_rss = rss

    def spawn(self, slot, kind=None, rogues=True):
        kind = kind or self.slots[slot]
        self.started += 1
        mode = None
        if kind == "c":
            argv = [self.a.echo]
        elif kind == "python":
            argv = ["/usr/bin/python3", os.path.join(HERE, "..", "..", "actors", "python", "echo.py")]
        elif kind == "node":
            argv = [self.a.node, os.path.join(HERE, "..", "..", "actors", "node", "echo.js")]
        else:
            if not rogues:
                return None
            mode = self.rng.choice(self.a.rogue_modes.split(","))
            argv = ["/usr/bin/python3", os.path.join(HERE, "rogue.py"), "--mode", mode,
                    "--after", str(self.rng.randrange(1024, 1 << 20)),
                    "--seed", str(self.rng.randrange(1 << 30))]
        if kind != "rogue":
            argv += ["--port", "0", "--host", "127.0.0.1"]
        argv += ["--endpoint", self.endpoint]
        actor = Actor(self, slot, kind, argv, mode)
        self.sel.register(actor.p.stdout, selectors.EVENT_READ, actor)
        self.actors.append(actor)
        return actor

    def gone(self, actor, now):
        """The actor is dead (killed or exited): its connections must end soon."""
        actor.gone_at = now
        for c in actor.conns:
            if c.doomed_at is None:
                c.doomed_at = now
        self.actors.remove(actor)
        actor.reap()

    def kill(self, actor, now):
        actor.killed = True
        actor.p.kill()
        self.stats["kills"] += 1
        self.kills_by_kind[actor.kind] = self.kills_by_kind.get(actor.kind, 0) + 1
        self.gone(actor, now)

    def watch_actors(self, now, respawn, rogues):
        for actor in list(self.actors):
            if actor.p.poll() is not None:
                if actor.kind == "rogue":
                    self.stats["rogue_exits"] += 1
                    if actor.p.returncode != 0 or actor.port is None:
                        self.fail("%s exited with status %s: %s" % (actor.name, actor.p.returncode,
                                                                    actor.stderr_tail()))
                else:
                    self.fail("%s died by itself (status %s): %s"
                              % (actor.name, actor.p.returncode, actor.stderr_tail()))
                self.gone(actor, now)
                if respawn:
                    self.spawn(actor.slot, rogues=rogues)
            elif actor.port is None and now - actor.started > START_TIMEOUT:
                raise Fatal("%s printed no line within %.0f s: %s"
                            % (actor.name, START_TIMEOUT, actor.stderr_tail()))
            elif actor.kind == "rogue" and actor.ready and now - actor.started > self.a.rogue_max_s:
                self.kill(actor, now)   # a deaf rogue would hold its clients forever
                if respawn:
                    self.spawn(actor.slot, rogues=rogues)

    # ----------------------------------------------------------- traffic
    def open_conn(self):
        live = [x for x in self.actors if x.ready]
        if not live:
            return
        actor = self.rng.choice(live)
        r = self.rng.random()
        if r < 0.5:
            total = self.rng.randrange(1, 16 * 1024)
        elif r < 0.9:
            total = self.rng.randrange(16 * 1024, 256 * 1024)
        else:
            total = self.rng.randrange(256 * 1024, 2 * 1024 * 1024)
        self.conns.add(Conn(self, actor, total))
        self.stats["opened"] += 1

    def pump(self, seconds, traffic=True, kills=False, respawn=True, rogues=True, until=None):
        """Runs the loop for `seconds` (or until `until()` is true): clients, actors, kills."""
        now = time.monotonic()
        end = now + seconds
        next_kill = now + self.rng.uniform(self.a.kill_min, self.a.kill_max)
        next_check = now
        while now < end:
            if until is not None and until():
                return True
            if traffic:
                while len(self.conns) < self.a.connections and any(x.ready for x in self.actors):
                    self.open_conn()
            for key, ev in self.sel.select(0.05):
                obj = key.data
                if isinstance(obj, Actor):
                    obj.on_stdout()
                    continue
                if isinstance(obj, Probe):
                    continue
                if obj.s.fileno() < 0:
                    continue
                if ev & selectors.EVENT_READ:
                    obj.on_read()
                if ev & selectors.EVENT_WRITE and obj.s.fileno() >= 0:
                    obj.on_write()
            now = time.monotonic()
            self.probe.tick(now)
            if kills and now >= next_kill:
                victims = [x for x in self.actors if x.ready]
                if victims:
                    victim = self.rng.choice(victims)
                    self.kill(victim, now)
                    self.spawn(victim.slot, rogues=rogues)
                next_kill = now + self.rng.uniform(self.a.kill_min, self.a.kill_max)
            if now >= next_check:
                next_check = now + 0.2
                self.check_netcore()
                if self.probe.late(now) > self.a.lease_ms / 1000.0:
                    raise Fatal("netcore did not answer the probe's Ping for %.1f s (a lease)"
                                % self.probe.late(now))
                self.watch_actors(now, respawn, rogues)
                for c in list(self.conns):
                    c.check_time(now, self.grace)
        return until is None

    def quiesce(self):
        """No new connections, no rogues: every connection finishes or ends, every echo
        slot holds a ready actor. Returns when only the echo actors are left, idle."""
        for actor in list(self.actors):
            if actor.kind == "rogue":
                self.kill(actor, time.monotonic())
        ok = self.pump(STALL + self.grace, traffic=False, rogues=False,
                       until=lambda: not self.conns and
                       sum(1 for x in self.actors if x.ready) == len(self.actors) ==
                       sum(1 for k in self.slots if k != "rogue"))
        if not ok:
            raise Fatal("no quiet moment: %d connections still open, actors %s"
                        % (len(self.conns), [(x.name, x.ready) for x in self.actors]))
        # Connections of actors killed by quiesce() end as soon as netcore drops the rogue:
        # wait for two leases more, so the last ones are surely gone from netcore.
        self.pump(2 * self.a.lease_ms / 1000.0 + 0.5, traffic=False, rogues=False)

    def sample(self):
        return rss_kib(self.netcore.pid), fd_count(self.netcore.pid)

    def hello_check(self):
        ctx = zmq.Context()
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        try:
            s.connect(self.endpoint)
            s.send(pb.Command(hello=pb.Hello(version=1, name="havoc-probe")).SerializeToString())
            if not s.poll(10000):
                return "no answer to Hello within 10 s"
            ev = pb.Event.FromString(s.recv_multipart()[0])
            if ev.WhichOneof("event") != "welcome":
                return "Hello answered with %s" % ev.WhichOneof("event")
            s.send(pb.Command(bye=pb.Bye()).SerializeToString())
            return None
        finally:
            s.close()
            ctx.term()

    def stop_all(self):
        for c in list(self.conns):
            c.close()
        for actor in list(self.actors):
            if actor.p.poll() is None:
                actor.p.kill()
            actor.reap()
        if self.probe is not None:
            self.sel.unregister(self.probe.s.getsockopt(zmq.FD))
            self.probe.close()
        if self.netcore is not None and self.netcore.poll() is None:
            self.netcore.kill()
            self.netcore.wait(10)


def settle(rig, base_rss, base_fds):
    """Polls netcore's RSS and fds until both are back near the baseline, or the timeout."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    t0 = time.monotonic()
    rss_limit = base_rss + SLACK_RSS_KIB + base_rss // 10
    while True:
        rss, fds = rig.sample()
        if rss is not None and rss <= rss_limit and fds is not None and fds <= base_fds + SLACK_FDS:
            return rss, fds, time.monotonic() - t0, True
        if time.monotonic() > deadline:
            return rss, fds, time.monotonic() - t0, False
        rig.pump(0.5, traffic=False, rogues=False)


def main():
    p = argparse.ArgumentParser(prog="havoc")
    p.add_argument("--netcore", required=True)
    p.add_argument("--echo", required=True, help="the C echo actor")
    p.add_argument("--node", help="node, to run actors/node/echo.js too")
    p.add_argument("--seconds", type=float, default=float(os.environ.get("HAVOC_SECONDS", 60)))
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--lease-ms", type=int, default=3000)
    p.add_argument("--c-actors", type=int, default=3)
    p.add_argument("--python-actors", type=int, default=1)
    p.add_argument("--node-actors", type=int, default=1)
    p.add_argument("--rogues", type=int, default=2)
    p.add_argument("--rogue-max-s", type=float, default=8.0)
    p.add_argument("--rogue-modes", default="bye,midbatch,deaf",
                   help="comma-separated rogue.py modes to pick from (flip: the self-check)")
    p.add_argument("--kill-min", type=float, default=0.3)
    p.add_argument("--kill-max", type=float, default=2.0)
    p.add_argument("--discard", action="store_true",
                   help="remove the temporary directory (logs) even after a failure")
    p.add_argument("--seed", type=int, default=int(os.environ.get("HAVOC_SEED", 0)) or None)
    a = p.parse_args()
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1, 1 << 31)
    print("havoc: seed %d (HAVOC_SEED=%d repeats the choices), %.0f s, %d connections, "
          "lease %d ms" % (a.seed, a.seed, a.seconds, a.connections, a.lease_ms), flush=True)
    rig = Rig(a)
    status = 1
    try:
        rig.start_netcore()
        rig.probe = Probe(rig.endpoint)
        # Its ZeroMQ fd wakes the loop as soon as a Pong may be there (tick() reads it).
        rig.sel.register(rig.probe.s.getsockopt(zmq.FD), selectors.EVENT_READ, rig.probe)
        for slot in range(len(rig.slots)):
            rig.spawn(slot)
        rig.pump(START_TIMEOUT, traffic=False,
                 until=lambda: all(x.ready for x in rig.actors))
        # Warm-up: the same havoc for a few seconds, so that allocator pools and ZeroMQ's
        # pipes have their working size before the baseline is taken.
        rig.pump(a.warmup, kills=True)
        rig.quiesce()
        base_rss, base_fds = rig.sample()
        print("havoc: baseline after warm-up: netcore RSS %d KiB, %d fds, %d actors"
              % (base_rss, base_fds, len(rig.actors)), flush=True)
        rig.peak_rss = base_rss
        for slot, kind in enumerate(rig.slots):
            if kind == "rogue":
                rig.spawn(slot)
        t0 = time.monotonic()
        rig.pump(a.seconds, kills=True)
        havoc_s = time.monotonic() - t0
        rig.quiesce()
        rss, fds, took, ok = settle(rig, base_rss, base_fds)
        print("havoc: after %.1f s of havoc: netcore RSS %d KiB (baseline %d, peak %d), "
              "%d fds (baseline %d), settled in %.1f s"
              % (havoc_s, rss, base_rss, rig.peak_rss, fds, base_fds, took), flush=True)
        if not ok:
            rig.fail("netcore did not return to its baseline within %.0f s: RSS %d KiB "
                     "(baseline %d, limit %d), %d fds (baseline %d, limit %d)"
                     % (SETTLE_TIMEOUT, rss, base_rss,
                        base_rss + SLACK_RSS_KIB + base_rss // 10, fds, base_fds,
                        base_fds + SLACK_FDS))
        problem = rig.hello_check()
        if problem:
            rig.fail("netcore after havoc: " + problem)
        rig.netcore.send_signal(signal.SIGTERM)
        try:
            code = rig.netcore.wait(30)
        except subprocess.TimeoutExpired:
            code = None
        if code != 0:
            rig.fail("netcore exited with %s on SIGTERM; log ends:\n%s" % (code, rig.netcore_tail()))
        s = rig.stats
        print("havoc: %d kills (%s), %d rogue exits, %d connections (%d complete and exact, "
              "%d cut by a dead actor), %d bytes checked, %d corrupt"
              % (s["kills"], ", ".join("%s %d" % kv for kv in sorted(rig.kills_by_kind.items())),
                 s["rogue_exits"], s["opened"], s["complete"], s["cut"], rig.checked,
                 rig.corrupt), flush=True)
        r = sorted(rig.probe.rtts) or [0.0]
        print("havoc: a bystander's %d pings: round trip %.1f ms (median), %.1f ms (99th), "
              "%.1f ms (max)" % (len(r), 1000 * r[len(r) // 2], 1000 * r[len(r) * 99 // 100],
                                 1000 * r[-1]), flush=True)
        d = sorted(rig.end_delays) or [0.0]
        print("havoc: connections of dead actors ended %.2f s (median), %.2f s (max) after "
              "the death (lease %d ms)" % (d[len(d) // 2], d[-1], a.lease_ms), flush=True)
        if s["kills"] == 0 or s["complete"] == 0:
            rig.fail("nothing happened: %d kills, %d complete connections"
                     % (s["kills"], s["complete"]))
        status = 1 if rig.failures else 0
    except Fatal as e:
        rig.fail(str(e))
    finally:
        rig.stop_all()
        if rig.failures and not a.discard:
            print("havoc: FAILED (%d failures); files kept in %s" % (len(rig.failures), rig.tmp))
        else:
            shutil.rmtree(rig.tmp, ignore_errors=True)
            print("havoc: FAILED (%d failures)" % len(rig.failures) if rig.failures
                  else "havoc: PASS")
    return status


if __name__ == "__main__":
    sys.exit(main())
