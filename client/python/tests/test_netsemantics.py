#!/usr/bin/python3
"""Node's own net semantics through the Python API (issue 13): each test says
what require('net') does and checks that netcore_net does it too.

usage: test_netsemantics.py --netcore PATH [unittest args]
Same harness as test_net.py: a netcore per test on an ipc endpoint in a temp
dir, handlers under net.run() with a guard, real TCP/UNIX peers.
"""

import os
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_net  # noqa: E402  (sets sys.path for netcore_net)
from test_net import NetcoreCase  # noqa: E402
import netcore_net as net  # noqa: E402

LIB = os.path.normpath(os.path.join(HERE, ".."))


def probe_any():
    """What a plain listen() without a host binds here: '::' dual-stack, else 0.0.0.0."""
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind(("::", 0))
            return "::", "IPv6"
    except OSError:
        return "0.0.0.0", "IPv4"


def fetch(port, host="127.0.0.1", send=None):
    """Connects with the standard library, optionally sends, reads to EOF."""
    with socket.create_connection((host, port), timeout=10) as c:
        if send:
            c.sendall(send)
        out = b""
        while True:
            d = c.recv(4096)
            if not d:
                return out
            out += d


class TestListen(NetcoreCase):
    def test_listen_without_host_binds_at_once_dual_stack(self):
        seen = {}
        want_addr, want_family = probe_any()

        def main():
            srv = self.server(lambda c: c.end("hi"))
            srv.listen(0)
            seen["listening"] = srv.listening
            seen["addr"] = srv.address()

            # Our Connect reaches netcore after the Listen: connect(address().port) works.
            got = []
            c = self.connect(seen["addr"]["port"], "127.0.0.1")  # IPv4 on a '::' listener
            c.on("data", got.append)
            c.on("close", lambda e: (seen.setdefault("got", b"".join(got)), srv.close()))
            srv.on("listening", lambda: seen.setdefault("later", srv.address()))
        self.run_loop(main)
        self.assertTrue(seen["listening"])
        self.assertEqual(seen["addr"]["address"], want_addr)
        self.assertEqual(seen["addr"]["family"], want_family)
        self.assertGreater(seen["addr"]["port"], 0)
        self.assertEqual(seen["got"], b"hi")
        self.assertEqual(seen["later"], seen["addr"])

    def test_listen_path_address_at_once_and_relative_paths_are_the_handlers(self):
        seen = {}
        cwd = os.getcwd()
        os.chdir(self.tmp)
        try:
            def main():
                srv = self.server(lambda c: c.end("rel"))
                srv.listen("rel.sock")
                seen["at_once"] = srv.address()
                seen["listening"] = srv.listening

                def listening():
                    seen["exists"] = os.path.exists(os.path.join(self.tmp, "rel.sock"))
                    seen["addr"] = srv.address()
                    got = []
                    c = self.connect("rel.sock")
                    c.on("data", got.append)
                    c.on("close", lambda e: (seen.setdefault("got", b"".join(got)), srv.close()))
                srv.on("listening", listening)
            self.run_loop(main)
        finally:
            os.chdir(cwd)
        self.assertEqual(seen["at_once"], {"address": "rel.sock"})
        self.assertTrue(seen["listening"])
        self.assertTrue(seen["exists"])
        self.assertEqual(seen["addr"], {"address": "rel.sock"})  # as given, as Node's
        self.assertEqual(seen["got"], b"rel")

    def test_close_then_listen_at_once(self):
        seen = []

        def main():
            srv = self.server(lambda c: c.end("again"))

            def first():
                srv.on("close", lambda: seen.append("close"))

                def relistened():
                    seen.append("listening")
                    port = srv.address()["port"]

                    def client():
                        seen.append(fetch(port))
                        net.get_loop().call_soon_threadsafe(srv.close)
                    threading.Thread(target=client, daemon=True).start()
                srv.close()
                srv.listen(0, "127.0.0.1", relistened)
            srv.listen(0, "127.0.0.1", first)
        self.run_loop(main)
        self.assertEqual(sorted(seen[:2], key=str), ["close", "listening"])
        self.assertEqual(seen[2], b"again")

    def test_close_of_a_listen_netcore_refuses_still_closes(self):
        seen = []

        def main():
            srv = self.server()
            srv.on("error", lambda e: seen.append("error " + e.code))
            srv.on("close", lambda: seen.append("close"))
            srv.on("listening", lambda: seen.append("listening"))

            def welcomed():  # netcore knows us: the bad Listen really goes out
                srv.listen(os.path.join(self.tmp, "no", "such", "dir.sock"))
                srv.close()  # before netcore refuses it
                srv.listen(0, "127.0.0.1", srv.close)
                first.close()
            first = self.server()
            first.listen(0, "127.0.0.1", welcomed)
        self.run_loop(main)  # ends: every incarnation said its last word
        self.assertEqual(sorted(seen), ["close", "close", "listening"])

    def test_max_connections_set_after_listen_before_listening(self):
        seen = {}

        def main():
            srv = self.server(lambda c: None)
            srv.listen(0, "127.0.0.1")
            srv.max_connections = 1

            def listening():
                port = srv.address()["port"]

                def client():
                    first = socket.create_connection(("127.0.0.1", port))
                    deadline = time.monotonic() + 10
                    while srv.connections < 1 and time.monotonic() < deadline:
                        time.sleep(0.01)
                    second = socket.create_connection(("127.0.0.1", port))
                    second.settimeout(10)
                    try:
                        seen["second"] = second.recv(10)  # b"": closed by netcore at once
                    except ConnectionResetError:
                        seen["second"] = b""
                    seen["count"] = srv.connections
                    second.close()
                    first.close()
                    net.get_loop().call_soon_threadsafe(srv.close)
                threading.Thread(target=client, daemon=True).start()
            srv.on("listening", listening)
        self.run_loop(main)
        self.assertEqual(seen["second"], b"")
        self.assertEqual(seen["count"], 1)


class TestSocket(NetcoreCase):
    def peer_server(self, handle):
        """A standard-library TCP server on 127.0.0.1 in a thread: handle(conn)
        per connection. Returns its port."""
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(8)
        self.addCleanup(ls.close)

        def serve():
            while True:
                try:
                    c, _ = ls.accept()
                except OSError:
                    return
                threading.Thread(target=handle, args=(c,), daemon=True).start()
        threading.Thread(target=serve, daemon=True).start()
        return ls.getsockname()[1]

    def test_connect_again_after_close(self):
        def handle(c):
            c.recv(10)
            c.sendall(b"z")
            c.close()
        port = self.peer_server(handle)
        seen = []

        def main():
            s = net.Socket(netcore=self.nc)
            rounds = [0]
            s.on("data", lambda d: None)
            s.on("connect", lambda: (seen.append(("connect", s.bytes_written, s.bytes_read)),
                                     s.write("abc")))

            def closed(had_error):
                seen.append(("close", had_error, s.bytes_written, s.bytes_read))
                rounds[0] += 1
                if rounds[0] < 3:
                    s.connect(port, "127.0.0.1")
            s.on("close", closed)
            s.connect(port, "127.0.0.1")
        self.run_loop(main)
        self.assertEqual(seen, [("connect", 0, 0), ("close", False, 3, 1)] * 3)

    def test_end_on_a_dropped_connection_is_end_then_close_false(self):
        def handle(c):
            time.sleep(0.05)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()  # a reset
        port = self.peer_server(handle)
        seen = []

        def main():
            s = self.connect(port, "127.0.0.1")
            s.pause()  # netcore does not read: it learns of the reset only from our End
            s.on("error", lambda e: seen.append("error " + e.code))
            s.on("finish", lambda: (seen.append("finish"), s.resume()))
            s.on("end", lambda: seen.append("end"))
            s.on("close", lambda had_error: seen.append(("close", had_error)))
            s.on("connect", lambda: net.get_loop().call_later(0.3, s.end))
        self.run_loop(main)
        self.assertEqual(seen, ["finish", "end", ("close", False)])

    def test_write_is_true_within_the_high_water_mark_before_its_ack(self):
        port = self.peer_server(lambda c: (c.recv(1 << 20), time.sleep(0.5), c.close()))
        seen = {}

        def main():
            s = self.connect(port, "127.0.0.1")

            def connected():
                piece = b"x" * 8192
                seen["results"] = [s.write(piece) for _ in range(8)]  # 64 KiB in one turn
                seen["big"] = s.write(b"y" * 20000)  # one chunk past the mark: false, as Node's
                s.destroy()
            s.on("connect", connected)
        self.run_loop(main)
        self.assertEqual(seen["results"], [True] * 8)
        self.assertFalse(seen["big"])

    def test_high_water_mark_zero_is_kept(self):
        port = self.peer_server(lambda c: (c.recv(10), c.close()))
        seen = []

        def main():
            s = self.connect({"port": port, "host": "127.0.0.1", "highWaterMark": 0})

            def connected():
                seen.append(s.write("x"))
                s.on("drain", lambda: (seen.append("drain"), s.destroy()))
            s.on("connect", connected)
        self.run_loop(main)
        self.assertEqual(seen, [False, "drain"])

    def test_destroy_of_a_server_side_socket_lowers_connections_at_once(self):
        seen = []

        def main():
            srv = self.server()
            conns = []

            def on_conn(c):
                conns.append(c)
                if len(conns) < 3:
                    return
                seen.append(srv.connections)
                conns[0].destroy()
                seen.append(srv.connections)
                conns[0].destroy()  # twice counts once
                seen.append(srv.connections)
                for c in conns[1:]:
                    c.destroy()
                srv.close()
            srv.on("connection", on_conn)

            def listening():
                port = srv.address()["port"]
                peers = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
                self.addCleanup(lambda: [p.close() for p in peers])
            srv.listen(0, "127.0.0.1", listening)
        self.run_loop(main)
        self.assertEqual(seen, [3, 2, 2])


class TestRef(NetcoreCase):
    """unref(): a handler whose remaining servers and sockets are all
    unref()'d leaves net.run(), as a Node process exits."""

    def run_child(self, body, timeout=20):
        script = "import sys; sys.path.insert(0, %r)\nimport netcore_net as net\n" % LIB
        script += textwrap.dedent(body)
        env = dict(os.environ, NETCORE_ENDPOINT=self.endpoint)
        return subprocess.Popen([sys.executable, "-c", script], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def finish(self, p, timeout=20):
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            self.fail("the handler did not leave run() by itself: %r %r" % (out, err))
        return p.returncode, out.decode(), err.decode()

    def test_unrefd_server_lets_run_return(self):
        p = self.run_child("""
            srv = net.create_server(lambda c: None)
            srv.listen(0, "127.0.0.1", lambda: (print("port", srv.address()["port"], flush=True), srv.unref()))
            net.run()
            print("left run", flush=True)
        """)
        code, out, err = self.finish(p)
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"port \d+\nleft run\n")

    def test_refd_server_keeps_run_going_until_closed(self):
        p = self.run_child("""
            srv = net.create_server(lambda c: (srv.close(), c.end("bye")))
            srv.unref()
            srv.listen(0, "127.0.0.1", lambda: (srv.ref(), print("port", srv.address()["port"], flush=True)))
            net.run()
        """)
        line = p.stdout.readline().decode()
        self.assertTrue(line.startswith("port "), line)
        time.sleep(1.5)
        self.assertIsNone(p.poll(), "run() returned while a ref()'d server existed")
        self.assertEqual(fetch(int(line.split()[1])), b"bye")
        code, out, err = self.finish(p)
        self.assertEqual(code, 0, err)

    def test_unrefd_socket_still_connects_and_writes_then_run_returns(self):
        got = []
        done = threading.Event()

        def handle(c):
            data = b""
            while True:
                d = c.recv(100)
                if not d:
                    break
                data += d
            got.append(data)
            done.set()
            c.close()
        port = TestSocket.peer_server(self, handle)
        p = self.run_child("""
            s = net.create_connection(%d, "127.0.0.1")
            s.unref()
            s.write("payload")
            net.run()
            print("left run", flush=True)
        """ % port)
        code, out, err = self.finish(p)
        self.assertEqual(code, 0, err)
        self.assertEqual(out, "left run\n")
        self.assertTrue(done.wait(10))
        self.assertEqual(got, [b"payload"])


if __name__ == "__main__":
    if "--netcore" in sys.argv:
        i = sys.argv.index("--netcore")
        test_net.NETCORE = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    if not test_net.NETCORE or not os.access(test_net.NETCORE, os.X_OK):
        sys.exit("test_netsemantics.py: give the netcore binary with --netcore PATH")
    unittest.main(verbosity=2)
