#!/usr/bin/python3
"""netcore_net's link to netcore against the real netcore: CURVE (keys by
argument and from NETCORE_SERVER_KEY / NETCORE_SECRET_FILE, EACCES for an
unknown key, EPROTO without keys, EINVAL for bad keys) and reconnection
(netcore killed -9 or shut down and restarted on the same endpoint: sockets
get ERR_NETCORE_GONE then 'close', servers listen again on their port and
serve new clients; a handler blocked past its lease comes back; reconnect=False
and NETCORE_RECONNECT=0 end everything instead) and takeovers (the session
resumes; commands in flight, a server.close() among them, take effect once).

usage: test_link.py --netcore PATH [unittest args]
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import netcore_net as net  # noqa: E402
from netcore_net import handler as _handler  # noqa: E402
import netcore_launch  # noqa: E402

NETCORE = None
GUARD_S = 30


def run_loop(main):
    """net.run(main) with a guard: past GUARD_S the test fails."""
    guard = net.get_loop().call_later(GUARD_S, _handler.fatal,
                                      AssertionError("test still running after %d s" % GUARD_S))
    try:
        net.run(main)
    finally:
        guard.cancel()


# ---- commands in flight at a takeover (PROTOCOL.md 16.1, protocol 1.4)
_libc = None


def _ptrace(req, tid):
    global _libc
    if _libc is None:
        import ctypes
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        _libc.ptrace.restype = ctypes.c_long
    if _libc.ptrace(req, tid, None, None) != 0:
        import ctypes
        raise OSError(ctypes.get_errno(), "ptrace %#x of thread %d" % (req, tid))


def io_thread_stop(pid):
    """Stops netcore's ZeroMQ I/O thread alone (ptrace; the caller's thread
    is its tracer and must let it go): netcore reads nothing from handlers."""
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            if f.read().startswith("ZMQbg/IO/"):
                _ptrace(0x4206, int(tid))  # PTRACE_SEIZE
                _ptrace(0x4207, int(tid))  # PTRACE_INTERRUPT
                os.waitpid(int(tid), 0x40000000)  # __WALL: until it stops
                return int(tid)
    raise AssertionError("no ZeroMQ I/O thread in netcore %d" % pid)


def io_thread_go(tid):
    _ptrace(17, tid)  # PTRACE_DETACH


def keepalive_on(local_port):
    """Whether the kernel's established TCP socket with this local port has a
    keep-alive timer (/proc/net/tcp "tr" 2)."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == local_port and fields[3] == "01":
                return fields[5].split(":")[0] == "02"
    return False


def keygen(path):
    out = subprocess.run([NETCORE, "keygen", path], capture_output=True, check=True, text=True)
    return out.stdout.strip()


def greeting(port, timeout=10):
    """Connects to 127.0.0.1:port and returns what arrives until EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        data = b""
        while True:
            chunk = s.recv(100)
            if not chunk:
                return data
            data += chunk


class Daemon(netcore_launch.Netcore):
    """netcore in tmp (kept on stop, for restarts) on ipc://TMP/nc.sock plus any
    extra flags; its stderr, at info level, in TMP/netcore.log."""

    def __init__(self, tmp, extra=()):
        super().__init__(NETCORE, extra, dir=tmp, log_level="info",
                         stderr_path=os.path.join(tmp, "netcore.log"))


class TestCurve(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="nc-pycurve-")
        k = lambda name: os.path.join(cls.tmp, name)  # noqa: E731
        cls.srv_pub = keygen(k("srv.key"))
        alice_pub = keygen(k("alice.key"))
        keygen(k("mallory.key"))
        cls.alice, cls.mallory = k("alice.key"), k("mallory.key")
        with open(k("allow"), "w") as f:
            f.write("alice %s\n" % alice_pub)
        with open(k("policy"), "w") as f:  # a CURVE handler may do what its entry says
            f.write("handler key:alice\n  listen tcp 127.0.0.1 *\n  connect tcp 127.0.0.1 *\n"
                    "handler uid:%d\n  all\n" % os.geteuid())
        cls.d = Daemon(cls.tmp, ["--bind", "tcp://127.0.0.1:*", "--curve-secret-file",
                                 k("srv.key"), "--curve-allow", k("allow"),
                                 "--policy", k("policy")])
        cls.d.start()
        deadline = time.monotonic() + 10
        while True:
            m = re.search(r"handlers connect to (tcp://\S+)", cls.d.log())
            if m:
                cls.ep = m.group(1)
                break
            assert time.monotonic() < deadline, "no tcp endpoint in netcore's log"
            time.sleep(0.02)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def serve_once(self, nc):
        """A server on nc that greets one client; returns what the client got."""
        got = {}

        def main():
            srv = net.create_server(lambda c: (c.end("hi\n"), srv.close()), netcore=nc)
            srv.on("error", lambda e: got.setdefault("error", e))

            def client():
                got["data"] = greeting(srv.address()["port"])

            def start():
                got["thread"] = threading.Thread(target=client)
                got["thread"].start()
            srv.listen(0, "127.0.0.1", start)
        run_loop(main)
        # The loop may end (the server closed) before the client has read.
        if "thread" in got:
            got.pop("thread").join(10)
        return got

    def test_allowed_key_by_argument(self):
        nc = net.Netcore(self.ep, server_key=self.srv_pub, secret_file=self.alice)
        got = self.serve_once(nc)
        self.assertNotIn("error", got)
        self.assertEqual(got["data"], b"hi\n")

    def test_allowed_key_from_environment(self):
        old = dict(os.environ)
        os.environ.update(NETCORE_SERVER_KEY=self.srv_pub, NETCORE_SECRET_FILE=self.alice)
        try:
            nc = net.Netcore(self.ep)
        finally:
            os.environ.clear()
            os.environ.update(old)
        self.assertEqual(self.serve_once(nc)["data"], b"hi\n")

    def test_unknown_key_is_eacces(self):
        nc = net.Netcore(self.ep, server_key=self.srv_pub, secret_file=self.mallory,
                         connect_timeout_ms=5000)
        t0 = time.monotonic()
        got = self.serve_once(nc)
        self.assertEqual(got["error"].code, "EACCES")
        self.assertIn("refused this handler", str(got["error"]))
        self.assertLess(time.monotonic() - t0, 5.0, "EACCES came only with the timeout")
        self.assertIsNone(nc.welcome)
        self.assertIn("is not in", self.d.log())  # netcore logged the refusal

    def test_no_keys_on_a_curve_endpoint_is_eproto(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("NETCORE_S")}
        old = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            nc = net.Netcore(self.ep, connect_timeout_ms=5000)
        finally:
            os.environ.clear()
            os.environ.update(old)
        err = self.serve_once(nc)["error"]
        self.assertEqual(err.code, "EPROTO", err)

    def test_bad_keys_are_einval(self):
        bad_file = os.path.join(self.tmp, "bad.key")
        with open(bad_file, "w") as f:
            f.write('public-key = "%s"\nsecret-key = "short"\n' % self.srv_pub)
        wrong_pair = os.path.join(self.tmp, "wrong.key")
        with open(self.alice) as f:
            alice = f.read()
        with open(self.mallory) as f:
            mallory_secret = re.search(r'secret-key = ".*"', f.read()).group(0)
        with open(wrong_pair, "w") as f:
            f.write(re.sub(r'secret-key = ".*"', mallory_secret, alice))
        cases = [
            (dict(server_key="not a key", secret_file=self.alice), "not a CURVE key"),
            (dict(server_key=self.srv_pub), "only the public key"),
            (dict(secret_file=self.alice), "only the key pair file"),
            (dict(server_key=self.srv_pub, secret_file=bad_file), "bad.key:2"),
            (dict(server_key=self.srv_pub, secret_file=wrong_pair), "does not belong"),
            (dict(server_key=self.srv_pub, secret_file=self.tmp + "/none"), "cannot open"),
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("NETCORE_S")}
        old = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            for kw, text in cases:
                with self.assertRaises(net.NetcoreError) as cm:
                    net.Netcore(self.ep, **kw)
                self.assertEqual(cm.exception.code, "EINVAL", kw)
                self.assertIn(text, str(cm.exception), kw)
        finally:
            os.environ.clear()
            os.environ.update(old)


def drop_first_server_closed(nc, state, then):
    """The first ServerClosed nc receives never reaches its server (a lost
    answer, made deterministic): state["dropped"] gets its server id, and
    then() starts in a thread of its own."""
    real = nc._dispatch_event

    def dispatch(ev, payload):
        if ev.WhichOneof("event") == "server_closed" and "dropped" not in state:
            state["dropped"] = ev.server_closed.server_id
            threading.Thread(target=then).start()
            return
        real(ev, payload)
    nc._dispatch_event = dispatch


class TestReconnect(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nc-pyrelink-")
        self.d = Daemon(self.tmp)
        self.d.start()

    def tearDown(self):
        self.d.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def restart_test(self, how):
        nc = net.Netcore(self.d.endpoint, name="relink")
        seen = {"listening": [], "sock": [], "server_errors": []}
        old_client = []

        def main():
            srv = net.create_server(lambda c: on_conn(c), netcore=nc)
            srv.on("error", lambda e: seen["server_errors"].append(e.code))

            def on_conn(c):
                c.write("hi\n")
                if not old_client[1:]:
                    c.on("error", lambda e: seen["sock"].append(e.code))
                    c.on("close", lambda had_error: seen["sock"].append(("close", had_error)))
                    old_client.append(c)
                    net.get_loop().call_later(0.2, restart)
                else:
                    c.end()

            def restart():
                if how == "kill":
                    self.d.kill()
                else:
                    self.d.stop()
                seen["starter"] = threading.Thread(target=back_later)
                seen["starter"].start()

            def back_later():
                time.sleep(0.3)
                self.d.start()
                seen["back"] = time.monotonic()

            def on_listening():
                seen["listening"].append((time.monotonic(), srv.address()["port"]))
                if len(seen["listening"]) == 1:
                    s = socket.create_connection(("127.0.0.1", srv.address()["port"]))
                    old_client.append(s)
                    self.addCleanup(s.close)
                else:
                    def client():
                        seen["new"] = greeting(srv.address()["port"])
                        net.get_loop().call_soon_threadsafe(srv.close)
                    threading.Thread(target=client).start()
            srv.on("listening", on_listening)
            srv.listen(0, "127.0.0.1")
        run_loop(main)
        # The handler may serve again before start() has seen netcore answer.
        seen["starter"].join(10)
        self.assertEqual(len(seen["listening"]), 2)
        self.assertEqual(seen["listening"][0][1], seen["listening"][1][1], "the same port again")
        self.assertEqual(seen["server_errors"], [])
        self.assertEqual(seen["new"], b"hi\n")
        if how == "kill":
            self.assertEqual(seen["sock"], ["ERR_NETCORE_GONE", ("close", True)])
        else:
            self.assertIn(("close", True), seen["sock"][-1:] + [("close", True)])
        print("listening again %.0f ms after netcore was back"
              % ((seen["listening"][1][0] - seen["back"]) * 1000), file=sys.stderr)

    def test_netcore_killed_and_restarted(self):
        self.restart_test("kill")

    def test_netcore_shut_down_and_restarted(self):
        self.restart_test("sigterm")

    def test_blocked_past_lease_reconnects(self):
        """ERR_NO_HELLO (netcore dropped us while we were blocked): the handler
        says Hello again and listens again."""
        nc = net.Netcore(self.d.endpoint, lease_ms=300)
        seen = []

        def main():
            srv = net.create_server(lambda c: c.end("back\n"), netcore=nc)
            srv.on("error", lambda e: seen.append(e.code))

            def on_listening():
                seen.append("listening")
                if seen.count("listening") == 1:
                    time.sleep(1.5)
                    srv.pause(10)  # answered ERR_NO_HELLO
                else:
                    def client():
                        seen.append(greeting(srv.address()["port"]))
                        net.get_loop().call_soon_threadsafe(srv.close)
                    threading.Thread(target=client).start()
            srv.on("listening", on_listening)
            srv.listen(0, "127.0.0.1")
        run_loop(main)
        self.assertEqual(seen, ["listening", "listening", b"back\n"])

    def test_reconnect_off(self):
        for make in (lambda: net.Netcore(self.d.endpoint, reconnect=False), self.env_off):
            nc = make()
            seen = []

            def main():
                srv = net.create_server(netcore=nc)
                srv.on("error", lambda e: seen.append(e.code))
                srv.on("close", lambda: seen.append("close"))
                srv.listen(0, "127.0.0.1", lambda: net.get_loop().call_later(0.1, self.d.kill))
            run_loop(main)
            self.assertEqual(seen, ["ERR_NETCORE_GONE", "close"])
            self.d.start()

    def env_off(self):
        os.environ["NETCORE_RECONNECT"] = "0"
        try:
            return net.Netcore(self.d.endpoint)
        finally:
            del os.environ["NETCORE_RECONNECT"]


class TestResume(unittest.TestCase):
    """A netcore takeover (PROTOCOL.md 16.1): the session resumes and every
    object goes on as the same object: an accepted socket with a pending
    set_timeout, an outbound socket, the listening server; no 'close', no
    'error', no second 'listening' or 'connection'; data both ways after."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nc-pyresume-")
        self.d = Daemon(self.tmp, ["--handoff-ms", "5000"])
        self.d.start()

    def tearDown(self):
        self.d.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def takeover(self):
        """netcore --takeover; returns once the old one has exited 0."""
        old = self.d.p
        log = open(self.d.err_path, "ab")
        self.d.p = subprocess.Popen([NETCORE, "--bind", self.d.endpoint, "--log-level", "info",
                                     "--handoff-ms", "5000", "--takeover"], stderr=log)
        log.close()
        self.assertEqual(old.wait(10), 0, self.d.log())

    def test_session_resumes(self):
        nc = net.Netcore(self.d.endpoint, name="resume")
        seen = []
        peer = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(peer.close)
        out_port = peer.getsockname()[1]
        state = {}

        def main():
            srv = net.create_server(netcore=nc)
            srv.on("listening", lambda: seen.append("listening"))
            srv.on("connection", lambda c: on_conn(c))
            srv.on("error", lambda e: seen.append(("server error", e.code)))

            def watch(name, s):
                s.on("error", lambda e: seen.append((name, "error", e.code)))
                s.on("close", lambda had_error: seen.append((name, "close")))

            def on_conn(c):
                seen.append("connection")
                state["c"] = c
                watch("c", c)
                c.on("data", lambda d: state.setdefault("c_data", []).append(d))
                c.write("before\n")
                # Pending across the takeover: fires on the new netcore.
                c.set_timeout(1500, lambda: state.setdefault("timeout", time.monotonic()))
                out = net.create_connection(out_port, "127.0.0.1", netcore=nc)
                state["out"] = out
                watch("out", out)
                out.on("data", lambda d: state.setdefault("out_data", []).append(d))
                out.on("connect", lambda: threading.Thread(target=drive).start())

            def drive():
                client = state["client"]
                self.assertEqual(client.recv(100), b"before\n")
                o, _ = peer.accept()
                state["o"] = o
                self.addCleanup(o.close)
                self.takeover()
                state["taken"] = time.monotonic()
                net.get_loop().call_soon_threadsafe(after)

            def after():
                state["c"].write("after\n")
                state["out"].write("out\n")
                threading.Thread(target=peers).start()

            def peers():
                client, o = state["client"], state["o"]
                self.assertEqual(client.recv(100), b"after\n")
                self.assertEqual(o.recv(100), b"out\n")
                client.sendall(b"c-in")
                o.sendall(b"o-in")
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not (
                        state.get("c_data") and state.get("out_data") and state.get("timeout")):
                    time.sleep(0.02)
                net.get_loop().call_soon_threadsafe(finish)

            def finish():
                seen.append("done")
                state["c"].destroy()
                state["out"].destroy()
                srv.close()

            def start():
                client = socket.create_connection(("127.0.0.1", srv.address()["port"]))
                self.addCleanup(client.close)
                state["client"] = client
            srv.listen(0, "127.0.0.1", start)
        run_loop(main)
        self.assertEqual(seen[:3], ["listening", "connection", "done"], seen)
        self.assertEqual(b"".join(state.get("c_data", [])), b"c-in")
        self.assertEqual(b"".join(state.get("out_data", [])), b"o-in")
        self.assertIn("timeout", state, "the set_timeout set before the takeover fired")
        self.assertIn("resumed", self.d.log())
        print("session resumed; timeout fired %.0f ms after the takeover"
              % ((state["timeout"] - state["taken"]) * 1000), file=sys.stderr)


    def test_commands_in_flight(self):
        """Commands sent on a link that looked up and that the old netcore
        never read (its ZeroMQ I/O thread is stopped while they are sent and
        until it has shipped the session): set_timeout and set_keep_alive take
        effect on the new netcore, a Listen listens and a Connect connects,
        once each (protocol 1.4)."""
        nc = net.Netcore(self.d.endpoint, name="inflight")
        seen = []
        peer = socket.create_server(("127.0.0.1", 0))
        peer.settimeout(15)  # a lost Connect must not hang the test
        self.addCleanup(peer.close)
        out_port = peer.getsockname()[1]
        state = {}

        def main():
            out = net.create_connection(out_port, "127.0.0.1", netcore=nc)
            state["out"] = out
            out.on("error", lambda e: seen.append(("out error", e.code)))
            out.on("connect", lambda: threading.Thread(target=drive).start())

        def send_commands(done):
            out = state["out"]
            out.set_timeout(1500, lambda: seen.append("timeout"))
            out.set_no_delay(True)
            out.set_keep_alive(True, 1000)
            srv = net.create_server(netcore=nc)
            state["srv"] = srv
            srv.on("listening", lambda: seen.append("listening"))
            srv.on("error", lambda e: seen.append(("server error", e.code)))
            srv.listen(0, "127.0.0.1")
            out2 = net.create_connection(out_port, "127.0.0.1", netcore=nc)
            state["out2"] = out2
            out2.on("connect", lambda: seen.append("connect2"))
            out2.on("error", lambda e: seen.append(("out2 error", e.code)))
            out2.write("two|")
            out2.end()
            net.get_loop().call_later(0.2, done)

        def drive():
            o, _ = peer.accept()
            self.addCleanup(o.close)
            state["port"] = o.getpeername()[1]
            self.assertFalse(keepalive_on(state["port"]))
            self.frozen_takeover(send_commands)
            o2, _ = peer.accept()
            self.addCleanup(o2.close)
            o2.settimeout(10)
            got = b""
            while True:
                b = o2.recv(100)
                if not b:
                    break
                got += b
            o2.close()
            state["got2"] = got
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not ("timeout" in seen and "listening" in seen):
                time.sleep(0.02)
            state["keepalive"] = keepalive_on(state["port"])
            net.get_loop().call_soon_threadsafe(finish)

        def finish():
            state["out"].destroy()
            state["out2"].destroy()
            state["srv"].close()

        run_loop(main)
        self.assertEqual(state.get("got2"), b"two|", seen)
        self.assertEqual(sorted(x for x in seen if isinstance(x, str)),
                         ["connect2", "listening", "timeout"], seen)
        self.assertTrue(state.get("keepalive"), "set_keep_alive sent in flight is on")

    def frozen_takeover(self, on_loop):
        """Stops the old netcore's ZeroMQ I/O thread, runs on_loop(done) on the
        event loop (it calls done() once what it sent has been sent), then
        netcore --takeover while the old one reads nothing; returns once the
        old one has exited 0. Call from a thread other than the loop's."""
        tk_path = self.d.endpoint[len("ipc://"):] + ".takeover"
        old = self.d.p
        io = io_thread_stop(old.pid)
        try:
            sent = threading.Event()
            net.get_loop().call_soon_threadsafe(on_loop, sent.set)
            self.assertTrue(sent.wait(10))
            log = open(self.d.err_path, "ab")
            self.d.p = subprocess.Popen([NETCORE, "--bind", self.d.endpoint, "--log-level",
                                         "info", "--handoff-ms", "5000", "--takeover"],
                                        stderr=log)
            log.close()
            deadline = time.monotonic() + 10
            while os.path.exists(tk_path) and time.monotonic() < deadline:
                time.sleep(0.001)
        finally:
            io_thread_go(io)
        self.assertEqual(old.wait(10), 0, self.d.log())

    def wait_for(self, cond, what, timeout=10):
        """From a test thread: until cond(), else the test fails (fatal)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not cond():
            time.sleep(0.02)
        if not cond():
            net.get_loop().call_soon_threadsafe(_handler.fatal, AssertionError(what))
            return False
        return True

    def test_server_close_in_flight(self):
        """server.close() on a link that looked up, which the old netcore never
        read (its ZeroMQ I/O thread is stopped), then a takeover: the library
        says ServerClose again after Welcome{resumed}, the new netcore closes
        the server, the close callback runs and 'close' comes once; a client
        that connected meanwhile is never a 'connection' and is cut off; the
        port is free afterwards."""
        nc = net.Netcore(self.d.endpoint, name="closeinflight")
        seen = []
        nc.on("error", lambda e: seen.append(("netcore error", e.code)))
        state = {"welcomes": []}
        nc.on("welcome", lambda w: state["welcomes"].append(bool(w.resumed)))

        def main():
            srv = net.create_server(netcore=nc)
            state["srv"] = srv
            srv.on("connection", lambda c: seen.append("connection"))
            srv.on("error", lambda e: seen.append(("server error", e.code)))
            srv.on("close", lambda: seen.append("close"))
            nc.hold(self)  # until drive() has looked at the port
            srv.listen(0, "127.0.0.1", lambda: threading.Thread(target=drive).start())

        def close_it(done):
            state["srv"].close(lambda err: seen.append(("close cb", err)))
            net.get_loop().call_later(0.2, done)

        def drive():
            port = state["srv"].address()["port"]
            state["port"] = port

            def close_and_connect(done):
                def connected():
                    # The listener is still open in the kernel: this lands
                    # in its backlog, for the new netcore to accept or cut.
                    state["client"] = socket.create_connection(("127.0.0.1", port), timeout=10)
                    done()
                close_it(lambda: threading.Thread(target=connected).start())
            self.frozen_takeover(close_and_connect)
            client = state["client"]
            try:
                state["client_got"] = client.recv(100)
            except ConnectionResetError:
                state["client_got"] = "reset"
            except socket.timeout:
                state["client_got"] = "timeout"
            client.close()
            if self.wait_for(lambda: ("close cb", None) in seen,
                             "the close callback never ran: %r" % seen):
                time.sleep(0.3)  # a second 'close' would come now
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                    state["refused"] = False
                except ConnectionRefusedError:
                    state["refused"] = True
            net.get_loop().call_soon_threadsafe(nc.release, self)

        run_loop(main)
        self.assertEqual(seen, ["close", ("close cb", None)], seen)
        self.assertIn(state.get("client_got"), (b"", "reset"), state)
        self.assertTrue(state.get("refused"), "a connect to the closed server's port is refused")
        self.assertEqual(state["welcomes"], [False, True], "the session resumed")

    def test_server_closed_lost(self):
        """The old netcore read the ServerClose while a connection accepted
        under that server id was open: the server is closing, its
        ServerClosed waits for that connection. The takeover ships the
        connection with the session but not the closing server, so that
        ServerClosed can never come and the library's ServerClose again gets
        EBADF. As Node, the close does not complete while the connection is
        open (checked ~300 ms after the resume); it completes once, after the
        socket's 'close', when the peer ends the connection."""
        nc = net.Netcore(self.d.endpoint, name="closedlostconn")
        seen = []
        nc.on("error", lambda e: seen.append(("netcore error", e.code)))
        state = {"welcomes": [], "errors": []}
        nc.on("welcome", lambda w: state["welcomes"].append(bool(w.resumed)))
        real = nc._dispatch_event

        def dispatch(ev, payload):
            if ev.WhichOneof("event") == "error":
                state["errors"].append((ev.error.code, ev.error.server_id))
            real(ev, payload)
        nc._dispatch_event = dispatch

        def main():
            srv = net.create_server(netcore=nc)
            state["srv"] = srv
            srv.on("error", lambda e: seen.append(("server error", e.code)))
            srv.on("close", lambda: seen.append("close"))
            srv.on("connection", on_conn)
            nc.hold(self)  # until drive() has seen what follows the close
            srv.listen(0, "127.0.0.1", lambda: threading.Thread(target=drive).start())

        def on_conn(c):
            srv = state["srv"]
            state["id"] = srv.id
            state["conn"] = c
            c.on("error", lambda e: seen.append(("conn error", e.code)))
            c.on("close", lambda had_error: seen.append("conn close"))
            srv.close(lambda err: seen.append(("close cb", err)))
            # Commands are read in order: the client reading this means the
            # old netcore read the ServerClose first.
            c.write(b"x")

        def drive():
            port = state["srv"].address()["port"]
            client = socket.create_connection(("127.0.0.1", port), timeout=10)
            try:
                state["client_got"] = client.recv(1)
                self.takeover()
                if self.wait_for(lambda: ("EBADF", state.get("id")) in state["errors"],
                                 "no EBADF for the closed server: %r" % state["errors"]):
                    time.sleep(0.3)  # the close must not complete now
                    state["before"] = list(seen)
                    state["conns_before"] = state["srv"].connections
            finally:
                client.close()  # the peer ends the connection
            if self.wait_for(lambda: ("close cb", None) in seen,
                             "the close callback never ran: %r" % seen):
                time.sleep(0.3)  # a second 'close' or an error would come now
            net.get_loop().call_soon_threadsafe(nc.release, self)

        run_loop(main)
        self.assertEqual(state.get("client_got"), b"x")
        self.assertEqual(state["welcomes"], [False, True], "the session resumed")
        self.assertIn(("EBADF", state.get("id")), state["errors"])
        self.assertEqual(state.get("before"), [], "nothing completes while the connection is open")
        self.assertEqual(state.get("conns_before"), 1)
        self.assertEqual(seen, ["conn close", "close", ("close cb", None)], seen)

    def test_server_closed_lost_idle(self):
        """The old netcore read the ServerClose of a server with no
        connection and answered ServerClosed, and the answer never reached
        the handler (made deterministic by dropping it in the library's
        dispatch: the takeover's own race is not), then a takeover: the
        library says ServerClose again, the new netcore does not know the id
        (EBADF), and the close completes now, once; no error reaches the
        application."""
        nc = net.Netcore(self.d.endpoint, name="closedlost")
        seen = []
        nc.on("error", lambda e: seen.append(("netcore error", e.code)))
        state = {"welcomes": []}
        nc.on("welcome", lambda w: state["welcomes"].append(bool(w.resumed)))
        drop_first_server_closed(nc, state, lambda: drive())  # drive is defined below

        def main():
            srv = net.create_server(netcore=nc)
            state["srv"] = srv
            srv.on("error", lambda e: seen.append(("server error", e.code)))
            srv.on("close", lambda: seen.append("close"))

            def on_listening():
                state["id"] = srv.id
                srv.close(lambda err: seen.append(("close cb", err)))
            # A session that holds nothing is not shipped: this one keeps it.
            keeper = net.create_server(netcore=nc)
            state["keeper"] = keeper
            keeper.on("error", lambda e: seen.append(("keeper error", e.code)))
            keeper.listen(0, "127.0.0.1", lambda: srv.listen(0, "127.0.0.1", on_listening))

        def drive():
            self.takeover()
            if self.wait_for(lambda: ("close cb", None) in seen,
                             "the close callback never ran: %r" % seen):
                time.sleep(0.3)  # a second 'close' or an error would come now
            net.get_loop().call_soon_threadsafe(state["keeper"].close)

        run_loop(main)
        self.assertEqual(state.get("dropped"), state.get("id"))
        self.assertEqual(state["welcomes"], [False, True], "the session resumed")
        self.assertEqual(seen, ["close", ("close cb", None)], seen)

    def test_closing_server_when_the_session_ends(self):
        """As test_server_closed_lost_idle, but the handler holds nothing else, so
        the old netcore ships no session and the new one starts a new one:
        the closed server's 'close' comes once, with the lost link, and
        run() ends (the server no longer keeps it going)."""
        nc = net.Netcore(self.d.endpoint, name="closednosession")
        seen = []
        nc.on("error", lambda e: seen.append(("netcore error", e.code)))
        state = {"welcomes": []}
        nc.on("welcome", lambda w: state["welcomes"].append(bool(w.resumed)))
        drop_first_server_closed(nc, state, self.takeover)

        def main():
            srv = net.create_server(netcore=nc)
            srv.on("error", lambda e: seen.append(("server error", e.code)))
            srv.on("close", lambda: seen.append("close"))
            srv.listen(0, "127.0.0.1",
                       lambda: srv.close(lambda err: seen.append(("close cb", err))))

        run_loop(main)
        self.assertTrue(state.get("dropped"))
        self.assertEqual(state["welcomes"], [False, False], "a new session")
        self.assertEqual(seen, ["close", ("close cb", None)], seen)


if __name__ == "__main__":
    if "--netcore" in sys.argv:
        i = sys.argv.index("--netcore")
        NETCORE = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    if not NETCORE or not os.access(NETCORE, os.X_OK):
        sys.exit("test_link.py: give the netcore binary with --netcore PATH (got %r)" % NETCORE)
    unittest.main(verbosity=2)
