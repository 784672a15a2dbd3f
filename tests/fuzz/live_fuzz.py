#!/usr/bin/python3
"""The protocol fuzzer against a live netcore (issue 9, "Fuzzing in the repository").

Starts the real netcore binary (run.sh gives it the ASan + UBSan build) on a
fresh ipc:// endpoint and, for --seconds, lets several raw handlers (ZeroMQ
DEALERs speaking netcore.v1 without a client library) send it random, mutated
and truncated envelopes, wrong frame counts, batches (some holding Hello or a
nested batch), Hellos at any time, Byes, and handlers that vanish without a
word, before and after Hello. Valid commands name ids and ports the handlers
learnt from their events, so real servers and sockets are created, written,
paused, credited and destroyed in between.

Throughout, a bystander handler keeps one real TCP connection whose peer sends
random bytes that the bystander echoes back; every byte that returns is
checked against what was sent, and the bystander's Pings must keep being
answered. At the end netcore must be alive, the echo complete, a new handler
welcomed, and on SIGTERM netcore must exit 0 with no sanitizer report in its
stderr. Any failure exits 1 and writes the last messages sent (hex) and
netcore's stderr into --artifacts.

Everything stays in a sandbox: listens on loopback port 0, connects only to
ports this netcore listens on (or port 1, refused), UNIX paths in the
temporary directory; a mutated envelope that would leave it is not sent.
$NCF_MAX_NESTING caps how deep generated batches nest (0 = no cap; then one
4,400-deep batch, issue 9 item 1, is sent before Hello as well).
Run with /usr/bin/python3 (Debian's python3-zmq and python3-protobuf).
"""

import argparse
import collections
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import warnings

import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "client", "python"))
from netcore_net import _proto  # noqa: E402

pb = _proto.load()
C = pb.Command

SANITIZER_MARKS = (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer", b"runtime error:",
                   b"SUMMARY: UndefinedBehaviorSanitizer", b"AddressSanitizer:DEADLYSIGNAL")
HOSTS = ("127.0.0.1", "::1", "localhost")


class Failure(Exception):
    pass


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def nest(cmd_bytes, depth):
    """cmd_bytes wrapped in `depth` levels of Command.batch, built as bytes."""
    for _ in range(depth):
        b = b"\x0a" + varint(len(cmd_bytes)) + cmd_bytes
        cmd_bytes = b"\x92\x03" + varint(len(b)) + b
    return cmd_bytes


def parse_events(frames):
    """The events of one message and their payload frames, in order."""
    ev = pb.Event.FromString(frames[0])
    if ev.WhichOneof("event") == "batch":
        return list(ev.batch.events)
    return [ev]


class Handler:
    """A raw handler: one DEALER and what it learnt from its events."""

    def __init__(self, fz, name):
        self.fz, self.name = fz, name
        self.z = None
        self.connect()

    def connect(self):
        if self.z is not None:
            self.z.close(linger=0)
        self.z = self.fz.ctx.socket(zmq.DEALER)
        self.z.setsockopt(zmq.LINGER, 0)
        self.z.setsockopt(zmq.SNDHWM, 0)
        self.z.connect(self.fz.endpoint)
        self.prefix, self.n, self.last = 0, 0, 0
        self.sockets, self.servers = [], []

    def new_id(self):
        self.n += self.fz.rng.choice((1, 1, 1, 2, 1000))
        self.last = (self.prefix << 32) | self.n
        return self.last

    def send(self, frames):
        self.fz.log.append((self.name, frames))
        try:
            self.z.send_multipart(frames, flags=zmq.NOBLOCK, copy=True)
            self.fz.sent += 1
        except zmq.Again:
            pass

    def drain(self):
        while True:
            try:
                frames = self.z.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                evs = parse_events(frames)
            except Exception as e:
                raise Failure("%s got an envelope that is not a netcore.v1.Event: %s (%r)"
                              % (self.name, e, frames[0][:64]))
            for ev in evs:
                self.learn(ev)

    def learn(self, ev):
        kind = ev.WhichOneof("event")
        if kind == "welcome":
            self.prefix, self.n = ev.welcome.id_prefix, 0
            self.sockets, self.servers = [], []
        elif kind == "listening":
            self.servers.append(ev.listening.server_id)
            if ev.listening.address.port:
                self.fz.ports.append(ev.listening.address.port)
                del self.fz.ports[:-32]
        elif kind == "connection":
            self.sockets.append(ev.connection.socket_id)
        elif kind == "fd":
            self.sockets.append(ev.fd.new_socket_id)
        elif kind == "closed" and ev.closed.socket_id in self.sockets:
            self.sockets.remove(ev.closed.socket_id)
        elif kind in ("server_closed", "server_error"):
            sid = getattr(ev, kind).server_id
            if sid in self.servers:
                self.servers.remove(sid)
        del self.sockets[:-64]
        del self.servers[:-16]


class Bystander:
    """A well-behaved handler with one echoed TCP connection, checked byte for byte."""

    def __init__(self, fz):
        self.fz = fz
        self.z = fz.ctx.socket(zmq.DEALER)
        self.z.setsockopt(zmq.LINGER, 0)
        self.z.connect(fz.endpoint)
        self.send(C(hello=pb.Hello(version=1, name="bystander", batch_events=True)))
        welcome = self.wait_for("welcome")
        self.prefix = welcome.welcome.id_prefix
        self.server = (self.prefix << 32) | 1
        self.send(C(listen=pb.Listen(server_id=self.server,
                                     tcp=pb.TcpEndpoint(host="127.0.0.1", port=0))))
        port = self.wait_for("listening").listening.address.port
        self.peer = socket.create_connection(("127.0.0.1", port), timeout=5)
        # Only the connection from our own peer: on a shared machine another
        # program may reach a port it once had and this listener took since.
        mine = self.peer.getsockname()[1]
        self.foreign = set()        # connections of other programs, destroyed at once
        while True:
            conn = self.wait_for("connection").connection
            if conn.remote.port == mine:
                break
            self.send(C(destroy=pb.Destroy(socket_id=conn.socket_id)))
            self.foreign.add(conn.socket_id)
        self.sid = conn.socket_id
        self.peer.setblocking(False)
        self.expect = bytearray()   # sent by the peer, not yet echoed back
        self.echoed = 0
        self.nonce = 0
        self.ping_sent = None       # (nonce, time) of a Ping awaiting its Pong
        self.max_ping_ms = 0.0

    def send(self, cmd, payload=None):
        frames = [cmd.SerializeToString()] + ([payload] if payload is not None else [])
        self.z.send_multipart(frames)

    def wait_for(self, kind, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.z.poll(100):
                frames = self.z.recv_multipart()
                for ev in parse_events(frames):
                    if ev.WhichOneof("event") == kind:
                        return ev
        raise Failure("bystander: no %s within %.0f s" % (kind, timeout))

    def service(self, send=True):
        """Echoes Data, checks Pongs and that nothing bad happens to its socket; the
        peer sends more (unless send is false) and checks what came back."""
        while True:
            try:
                frames = self.z.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                break
            payloads = frames[1:]
            for ev in parse_events(frames):
                kind = ev.WhichOneof("event")
                sid = getattr(getattr(ev, kind), "socket_id", None)
                if kind == "connection":
                    # Another program on this shared machine reached our port
                    # (a port it once had): not our peer, and not our concern.
                    self.send(C(destroy=pb.Destroy(socket_id=sid)))
                    self.foreign.add(sid)
                    continue
                if kind == "data":
                    data = payloads.pop(0)
                if sid in self.foreign:
                    continue  # what that connection did before our Destroy, and its Closed
                if kind == "data":
                    if sid != self.sid:
                        raise Failure("bystander got data for a socket it never had: %s" % ev)
                    self.send(C(batch=pb.CommandBatch(commands=[
                        C(write=pb.Write(socket_id=self.sid)),
                        C(credit=pb.Credit(socket_id=self.sid, bytes=len(data)))])), data)
                elif kind == "pong" and self.ping_sent and ev.pong.nonce == self.ping_sent[0]:
                    self.max_ping_ms = max(self.max_ping_ms, (time.time() - self.ping_sent[1]) * 1e3)
                    self.ping_sent = None
                elif kind in ("closed", "socket_error", "ended", "error", "server_error",
                              "server_closed", "shutdown"):
                    raise Failure("bystander got %s: %s" % (kind, ev))
        if send and len(self.expect) < 256 * 1024:
            chunk = self.fz.rng.randbytes(self.fz.rng.randint(1, 8192))
            try:
                n = self.peer.send(chunk)
                self.expect += chunk[:n]
            except BlockingIOError:
                pass
        self.read_peer()
        if not send:
            return
        if self.ping_sent is None:
            self.nonce += 1
            self.ping_sent = (self.nonce, time.time())
            self.send(C(ping=pb.Ping(nonce=self.nonce)))
        elif time.time() - self.ping_sent[1] > 10:
            raise Failure("bystander: a Ping unanswered for 10 s")

    def read_peer(self):
        while True:
            try:
                got = self.peer.recv(65536)
            except BlockingIOError:
                return
            if not got:
                raise Failure("bystander: netcore closed the peer's connection")
            if self.expect[:len(got)] != got:
                raise Failure("bystander: echo differs after %d intact bytes" % self.echoed)
            del self.expect[:len(got)]
            self.echoed += len(got)

    def finish(self, timeout=20.0):
        """Waits until every byte the peer sent came back intact."""
        deadline = time.time() + timeout
        while self.expect and time.time() < deadline:
            self.service(send=False)
            time.sleep(0.005)
        if self.expect:
            raise Failure("bystander: %d bytes never came back" % len(self.expect))


class Fuzzer:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.cap = int(os.environ.get("NCF_MAX_NESTING", "0") or 0)
        self.dir = tempfile.mkdtemp(prefix="ncf-live-")
        self.endpoint = "ipc://%s/nc.sock" % self.dir
        self.ctx = zmq.Context()
        self.ports = []
        self.log = collections.deque(maxlen=2000)
        self.sent = 0
        self.counts = collections.Counter()
        self.pool = self.rng.randbytes(2 << 20)  # payload bytes, sliced
        self.seeds = []
        seed_dir = os.path.join(HERE, "corpus", "cmd_decode")
        for f in sorted(os.listdir(seed_dir)):
            data = open(os.path.join(seed_dir, f), "rb").read()
            if len(data) < 4096:
                self.seeds.append(data)

    # ------------------------------------------------------------ netcore

    def start(self):
        self.err_path = os.path.join(self.dir, "netcore.stderr")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([os.path.abspath(self.args.netcore), "--bind", self.endpoint, "--log-level", "warn"],
                                     stdout=subprocess.DEVNULL, stderr=self.err, cwd=self.dir, env=env)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.hello_probe(1.0):
                return
            if self.proc.poll() is not None:
                break
        raise Failure("netcore did not answer a Hello after starting")

    def hello_probe(self, timeout):
        z = self.ctx.socket(zmq.DEALER)
        z.setsockopt(zmq.LINGER, 0)
        z.connect(self.endpoint)
        try:
            z.send(C(hello=pb.Hello(version=1, name="probe")).SerializeToString())
            deadline = time.time() + timeout
            while time.time() < deadline:
                if z.poll(50):
                    ev = parse_events(z.recv_multipart())[0]
                    if ev.WhichOneof("event") == "welcome":
                        z.send(C(bye=pb.Bye()).SerializeToString())
                        time.sleep(0.01)
                        return True
            return False
        finally:
            z.close(linger=100)

    def alive(self):
        if self.proc.poll() is not None:
            raise Failure("netcore died (status %s)" % self.proc.returncode)

    # ------------------------------------------------------------ generating

    def pick_id(self, h, server=False):
        r = self.rng.random()
        others = [o for o in self.handlers if o is not h]
        own = h.servers if server else h.sockets
        if r < 0.45 and own:
            return self.rng.choice(own)
        if r < 0.7:
            return h.new_id()
        if r < 0.8:
            o = self.rng.choice(others)
            pool = o.servers if server else o.sockets
            return self.rng.choice(pool) if pool else 0
        if r < 0.85:
            return h.last
        if r < 0.9:
            return self.bystander.sid if not server else self.bystander.server  # EPERM
        return self.rng.choice((0, 1, 2 ** 64 - 1, self.rng.getrandbits(64)))

    def endpoint_of(self, connect):
        r = self.rng.random()
        if r < 0.6:
            port = 0
            if connect:
                port = self.rng.choice(self.ports) if self.ports and self.rng.random() < 0.8 else 1
            return {"tcp": pb.TcpEndpoint(host=self.rng.choice(HOSTS), port=port)}
        if r < 0.75:
            return {"path": os.path.join(self.dir, "s%d" % self.rng.randint(0, 3))}
        if r < 0.85:
            return {"tcp": pb.TcpEndpoint(host="127.0.0.1",
                                          port=self.rng.choice((-1, 65536, 2 ** 31 - 1, -2 ** 31)))}
        if r < 0.9:
            return {"path": "p" * self.rng.randint(108, 300)}
        if r < 0.95 and not connect:
            return {"fd": self.rng.randint(-2, 40)}
        return {}

    def command(self, h):
        """One valid-looking command and whether it takes a payload frame."""
        rng = self.rng
        k = rng.randrange(19)
        u32 = rng.choice((0, 1, 5, 1000, 65536, 2 ** 32 - 1))
        ref = rng.choice((0, 0, rng.getrandbits(64)))
        if k == 0:
            return C(ref=ref, ping=pb.Ping(nonce=rng.getrandbits(64))), None
        if k == 1:
            return C(ref=ref, listen=pb.Listen(
                server_id=self.pick_id(h, True), allow_half_open=rng.random() < 0.5,
                backlog=rng.choice((0, 1, -1, 511)), max_connections=rng.choice((0, 1, 2)),
                group=rng.choice(("", "", "g1", "g2")), **self.endpoint_of(False))), None
        if k == 2:
            return C(ref=ref, server_pause=pb.ServerPause(server_id=self.pick_id(h, True),
                                                          msecs=rng.choice((0, 1, 50)))), None
        if k == 3:
            return C(ref=ref, server_close=pb.ServerClose(server_id=self.pick_id(h, True))), None
        if k == 4:
            return C(ref=ref, server_set_max_connections=pb.ServerSetMaxConnections(
                server_id=self.pick_id(h, True), max_connections=rng.choice((0, 1, 3)))), None
        if k == 5:
            return C(ref=ref, connect=pb.Connect(socket_id=self.pick_id(h),
                                                 allow_half_open=rng.random() < 0.5,
                                                 **self.endpoint_of(True))), None
        if k in (6, 7, 8):
            size = rng.choice((0, 1, 100, 4096, 70000)) if rng.random() < 0.9 else 1 << 20
            w = pb.Write(socket_id=self.pick_id(h), ack_now=rng.random() < 0.3)
            if rng.random() < 0.1:
                w.fd_socket_id = self.pick_id(h)
            return C(ref=ref, write=w), self.bytes(size)
        if k == 9:
            end = C(ref=ref, end=pb.End(socket_id=self.pick_id(h), ack_now=rng.random() < 0.5))
            return end, (rng.randbytes(rng.randint(0, 64)) if rng.random() < 0.5 else None)
        if k == 10:
            return C(ref=ref, destroy=pb.Destroy(socket_id=self.pick_id(h))), None
        if k == 11:
            return C(ref=ref, pause=pb.Pause(socket_id=self.pick_id(h))), None
        if k == 12:
            return C(ref=ref, resume=pb.Resume(socket_id=self.pick_id(h))), None
        if k == 13:
            return C(ref=ref, credit=pb.Credit(socket_id=self.pick_id(h), bytes=u32)), None
        if k == 14:
            return C(ref=ref, set_timeout=pb.SetTimeout(socket_id=self.pick_id(h),
                                                        msecs=rng.choice((0, 1, 20, 60000)))), None
        if k == 15:
            which = rng.random() < 0.5
            if which:
                return C(ref=ref, set_no_delay=pb.SetNoDelay(socket_id=self.pick_id(h),
                                                             enable=rng.random() < 0.5)), None
            return C(ref=ref, set_keep_alive=pb.SetKeepAlive(
                socket_id=self.pick_id(h), enable=rng.random() < 0.5, initial_delay_ms=u32)), None
        if k == 16:  # pipes inside netcore (PROTOCOL.md 17): self, cycles, foreign ids
            return C(ref=ref, pipe=pb.Pipe(socket_id=self.pick_id(h), dest_socket_id=self.pick_id(h),
                                           no_end=rng.random() < 0.5,
                                           high_water_mark=rng.choice((0, 1, 4096, 2 ** 32 - 1)))), None
        if k == 17:
            return C(ref=ref, unpipe=pb.Unpipe(socket_id=self.pick_id(h))), None
        return C(ref=ref, bye=pb.Bye()), None

    def bytes(self, n):
        off = self.rng.randrange(len(self.pool) - n + 1)
        return self.pool[off:off + n]

    def hello(self):
        rng = self.rng
        return C(hello=pb.Hello(version=1 if rng.random() < 0.9 else rng.choice((0, 2, 2 ** 32 - 1)),
                                name=rng.choice(("fuzz", "", "x" * 300)),
                                credit_window=rng.choice((0, 0, 1, 16, 2 ** 32 - 1)),
                                lease_ms=rng.choice((0, 0, 0, 50, 200)),
                                lazy_acks=rng.random() < 0.5, batch_events=rng.random() < 0.5))

    def batch(self, h):
        rng = self.rng
        cmds, payloads = [], []
        for _ in range(rng.choice((0, 1, 2, 5, 10, 30))):
            r = rng.random()
            if r < 0.03:
                cmds.append(self.hello())
                continue
            c, p = self.command(h)
            cmds.append(c)
            if c.WhichOneof("command") == "write":
                payloads.append(p)
        env = C(ref=rng.choice((0, 5)), batch=pb.CommandBatch(commands=cmds)).SerializeToString()
        if rng.random() < 0.05:
            depth = rng.randint(1, min(self.cap, 8) if self.cap else 8)
            env = nest(env, depth)
        r = rng.random()
        if r < 0.1:
            payloads = payloads[:-1]
        elif r < 0.2:
            payloads.append(b"extra")
        elif r < 0.25:
            payloads = []
        return [env] + payloads

    def mutate(self, data):
        rng = self.rng
        b = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            r = rng.random()
            if r < 0.25 and b:
                i = rng.randrange(len(b))
                b[i] ^= 1 << rng.randrange(8)
            elif r < 0.45 and b:
                b[rng.randrange(len(b))] = rng.choice((0, 0x7F, 0x80, 0xFF, rng.randrange(256)))
            elif r < 0.6:
                i = rng.randint(0, len(b))
                b[i:i] = rng.randbytes(rng.randint(1, 8))
            elif r < 0.75 and b:
                i = rng.randrange(len(b))
                del b[i:i + rng.randint(1, 8)]
            elif r < 0.9 and b:
                del b[rng.randint(0, len(b) - 1):]  # truncated
            elif b:
                i = rng.randrange(len(b))
                b[i:i] = b[i:i + rng.randint(1, 16)]
        return bytes(b)

    def sandboxed(self, env):
        """Whether netcore, decoding env, could only listen/connect inside the sandbox."""
        try:
            cmd = C.FromString(env)
        except Exception:
            # Python's decoder refused it; protobuf-c might not: allow it only if it
            # holds no key of Listen (field 20) or Connect (field 30), in any encoding.
            for i in range(len(env) - 1):
                if env[i] in (0xA2, 0xF2) and env[i + 1] & 0x7F == 1:
                    return False
            return True
        return self.cmd_sandboxed(cmd, 0)

    def cmd_sandboxed(self, cmd, depth):
        kind = cmd.WhichOneof("command")
        if kind == "batch":
            return depth < 64 and all(self.cmd_sandboxed(c, depth + 1) for c in cmd.batch.commands)
        if kind not in ("listen", "connect"):
            return True
        m = getattr(cmd, kind)
        ep = m.WhichOneof("endpoint")
        if ep == "tcp":
            port, host = m.tcp.port, m.tcp.host
            if port < 0 or port > 65535:
                return True
            if host not in HOSTS:
                return False
            return port == 0 if kind == "listen" else (port == 1 or port in self.ports)
        if ep == "path":
            return len(m.path) > 107 or (m.path.startswith(self.dir + "/") and ".." not in m.path)
        return True

    def message(self, h):
        """One message to send from h (a list of frames), or None."""
        rng = self.rng
        r = rng.random()
        if r < 0.08:
            self.counts["hello"] += 1
            frames = [self.hello().SerializeToString()]
            if rng.random() < 0.1:
                frames.append(b"x")
            return frames
        if r < 0.40:
            self.counts["command"] += 1
            c, p = self.command(h)
            frames = [c.SerializeToString()] + ([p] if p is not None else [])
            if rng.random() < 0.1:
                frames = frames[:1] + [b"?"] * rng.randint(0, 3)  # wrong frame count
            return frames
        if r < 0.55:
            self.counts["batch"] += 1
            return self.batch(h)
        if r < 0.85:
            self.counts["mutated"] += 1
            base = (rng.choice(self.seeds) if rng.random() < 0.3
                    else self.command(h)[0].SerializeToString() if rng.random() < 0.6
                    else self.batch(h)[0])
            env = self.mutate(base)
            return [env] + [rng.randbytes(rng.randint(0, 32)) for _ in range(rng.choice((0, 0, 1, 1, 2, 3)))]
        if r < 0.92:
            self.counts["random"] += 1
            return [rng.randbytes(rng.choice((0, 1, 2, 7, 64, 512)))] + [b""] * rng.choice((0, 1))
        if r < 0.96:
            self.counts["truncated"] += 1
            c, p = self.command(h)
            env = c.SerializeToString()
            return [env[:rng.randint(0, max(0, len(env) - 1))]] + ([p] if p is not None else [])
        if r < 0.985:
            self.counts["bye"] += 1
            return [C(bye=pb.Bye()).SerializeToString()]
        self.counts["vanish"] += 1
        h.connect()  # the old DEALER is gone without a word; a new one starts before Hello
        return None

    # ------------------------------------------------------------ running

    def run(self):
        self.start()
        self.bystander = Bystander(self)
        self.handlers = [Handler(self, "h%d" % i) for i in range(self.args.handlers)]
        if self.cap == 0:
            # Issue 9 item 1, exactly: a Command nesting batch 4,400 deep, before Hello.
            h = self.handlers[0]
            h.send([nest(C(ping=pb.Ping(nonce=1)).SerializeToString(), 4400)])
            self.counts["deep"] += 1
        start = time.time()
        end = start + self.args.seconds
        it = 0
        while time.time() < end:
            it += 1
            h = self.rng.choice(self.handlers)
            frames = self.message(h)
            if frames is not None:
                if self.sandboxed(frames[0]):
                    h.send(frames)
                else:
                    self.counts["not sent (sandbox)"] += 1
            if it % 16 == 0:
                for x in self.handlers:
                    x.drain()
                self.bystander.service()
            if it % 512 == 0:
                self.alive()
        elapsed = time.time() - start
        for x in self.handlers:
            x.drain()
        self.alive()
        self.bystander.finish()
        if not self.hello_probe(5.0):
            raise Failure("netcore did not welcome a new handler after the fuzzing")
        self.bystander.ping_sent = None
        self.bystander.service()
        self.bystander.wait_for("pong")
        self.stop()
        return elapsed

    def stop(self):
        self.alive()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise Failure("netcore did not exit within 30 s of SIGTERM")
        if rc != 0:
            raise Failure("netcore exited with status %d after SIGTERM" % rc)
        self.check_stderr()

    def check_stderr(self):
        self.err.flush()
        data = open(self.err_path, "rb").read()
        for mark in SANITIZER_MARKS:
            if mark in data:
                raise Failure("sanitizer report in netcore's stderr (%s)" % mark.decode())

    def dump(self, why):
        os.makedirs(self.args.artifacts, exist_ok=True)
        with open(os.path.join(self.args.artifacts, "live-last-messages.txt"), "w") as f:
            f.write("# seed %d; %s\n# handler: frame hex | frame hex ...\n" % (self.args.seed, why))
            for name, frames in self.log:
                f.write("%s: %s\n" % (name, " | ".join(fr.hex() for fr in frames)))
        if hasattr(self, "err_path") and os.path.exists(self.err_path):
            shutil.copy(self.err_path, os.path.join(self.args.artifacts, "live-netcore.stderr"))

    def cleanup(self):
        if hasattr(self, "proc") and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.ctx.destroy(linger=0)
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--netcore", required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--handlers", type=int, default=4)
    ap.add_argument("--artifacts", default=".")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    # Python's protobuf logs every invalid UTF-8 string it meets to fd 2, and the
    # mutator makes many: reports go to stdout, fd 2 to /dev/null.
    warnings.simplefilter("ignore")
    sys.stderr.flush()
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    sys.stderr = sys.stdout
    if args.seed is None:
        args.seed = random.SystemRandom().getrandbits(32)
    print("live: seed %d, nesting cap %s" % (args.seed, os.environ.get("NCF_MAX_NESTING", "0")))
    fz = Fuzzer(args)
    try:
        elapsed = fz.run()
    except Exception as e:  # noqa: BLE001 - every failure is reported the same way
        if not isinstance(e, Failure):
            traceback.print_exc(file=sys.stdout)
        fz.dump(str(e))
        try:
            fz.check_stderr()
        except Failure as s:
            e = "%s; %s" % (e, s)
        print("live: FAIL: %s (seed %d; last messages and netcore's stderr in %s)"
              % (e, args.seed, args.artifacts))
        sys.stdout.flush()
        try:
            sys.stdout.write(open(fz.err_path, "rb").read()[-6000:].decode(errors="replace"))
        except (OSError, AttributeError):
            pass
        fz.cleanup()
        return 1
    fz.cleanup()
    print("live: " + ", ".join("%s %d" % kv for kv in sorted(fz.counts.items())))
    print("live: %d messages in %.1f s (%.0f/s) from %d handlers; bystander echoed %d bytes "
          "intact (slowest ping %.0f ms); new handler welcomed; exit 0 on SIGTERM; no sanitizer report"
          % (fz.sent, elapsed, fz.sent / elapsed, args.handlers, fz.bystander.echoed,
             fz.bystander.max_ping_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
