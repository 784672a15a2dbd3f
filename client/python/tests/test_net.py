#!/usr/bin/python3
"""netcore_net against the real netcore: Node's net behaviours through the Python API.

usage: test_net.py --netcore PATH [unittest args]
Each test starts its own netcore on an ipc endpoint in a temp dir, runs a
handler with net.run(), and talks to it with real TCP/UNIX sockets (netcore_net
clients or the standard library's). Bound by a guard timer: a test that would
hang fails instead.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import netcore_net as net  # noqa: E402
from netcore_net import handler as _handler  # noqa: E402
from netcore_net._proto import pb  # noqa: E402
from netcore_launch import Netcore as Daemon  # noqa: E402

NETCORE = None
ACTORS = os.path.normpath(os.path.join(HERE, "..", "..", "..", "actors", "python"))
GUARD_S = 30


class NetcoreCase(unittest.TestCase):
    """Starts netcore for each test; self.nc is a handler connected to it."""

    def setUp(self):
        self.daemon = Daemon(NETCORE).start()
        self.addCleanup(self.daemon.stop)
        self.tmp, self.endpoint = self.daemon.dir, self.daemon.endpoint
        self.nc = net.Netcore(self.endpoint, name="test")

    def run_loop(self, main):
        """net.run(main) with a guard: past GUARD_S the test fails."""
        loop = net.get_loop()
        guard = loop.call_later(GUARD_S, _handler.fatal,
                                AssertionError("test still running after %d s" % GUARD_S))
        try:
            net.run(main)
        finally:
            guard.cancel()

    def server(self, on_conn=None, **kw):
        return net.create_server(on_conn, netcore=self.nc, **kw)

    def connect(self, *args, **kw):
        return net.create_connection(*args, netcore=self.nc, **kw)


class TestBatchLimit(NetcoreCase):
    """A batch never holds more commands than the lowest --max-batch (256):
    600 option commands of one loop turn leave in batches netcore takes."""

    def setUp(self):
        self.daemon = Daemon(NETCORE, ["--max-batch", "256"]).start()
        self.addCleanup(self.daemon.stop)
        self.tmp, self.endpoint = self.daemon.dir, self.daemon.endpoint
        self.nc = net.Netcore(self.endpoint, name="test")

    def test_600_commands_in_one_turn(self):
        seen = {"got": []}
        conns = []
        errors = []

        def main():
            def on_conn(c):
                c.on("error", lambda e: errors.append(e.code))
                conns.append(c)
                if len(conns) < 300:
                    return
                for x in conns:  # one turn: 600 commands, none a Write
                    x.set_no_delay(True)
                    x.set_keep_alive(True, 1.0)
                for x in conns:
                    x.write(b"ok")
            srv = self.server(on_conn)
            srv.on("error", lambda e: errors.append(e.code))
            loop = net.get_loop()

            def clients():
                port = srv.address()["port"]
                socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
                for s in socks:
                    s.settimeout(10)
                    try:
                        seen["got"].append(s.recv(2))
                    except OSError as e:
                        seen["got"].append(repr(e))
                for s in socks:
                    s.close()
                loop.call_soon_threadsafe(lambda: ([x.destroy() for x in conns], srv.close()))

            def listening():
                seen["thread"] = threading.Thread(target=clients, daemon=True)
                seen["thread"].start()
            srv.listen(0, "127.0.0.1", listening)
        self.run_loop(main)
        seen["thread"].join(10)
        self.assertEqual(errors, [])
        self.assertEqual(seen["got"], [b"ok"] * 300)


class TestServer(NetcoreCase):
    def test_server_listen_port0_and_close(self):
        seen = {}

        def main():
            srv = self.server()

            def listening():
                seen["addr"] = srv.address()
                seen["listening"] = srv.listening
                srv.close(lambda err: seen.setdefault("close_err", err))
            srv.listen(0, "127.0.0.1", listening)
        self.run_loop(main)
        self.assertEqual(seen["addr"]["address"], "127.0.0.1")
        self.assertGreater(seen["addr"]["port"], 0)
        self.assertEqual(seen["addr"]["family"], "IPv4")
        self.assertTrue(seen["listening"])
        self.assertIsNone(seen["close_err"])

    def test_server_eaddrinuse_then_other_port(self):
        seen = []

        def main():
            a = self.server()
            b = self.server()
            b.on("listening", lambda: seen.append(("b listening", b.address()["port"])))

            def b_error(err):
                seen.append(("b error", err.code, err.syscall))
                b.listen(0, "127.0.0.1", lambda: (a.close(), b.close()))
            b.once("error", b_error)
            a.listen(0, "127.0.0.1", lambda: b.listen(a.address()["port"], "127.0.0.1",
                                                       lambda: seen.append("wrong cb")))
        self.run_loop(main)
        self.assertEqual(seen[0], ("b error", "EADDRINUSE", "listen"))
        self.assertEqual(seen[1][0], "b listening")
        self.assertNotIn("wrong cb", seen)

    def test_server_unix_path_unlinked_on_close(self):
        path = os.path.join(self.tmp, "s.sock")
        seen = {}

        def main():
            srv = self.server(lambda c: c.end("hi"))

            def client():
                c = socket.socket(socket.AF_UNIX)
                c.connect(path)
                seen["got"] = c.recv(10)
                c.close()

            def listening():
                seen["addr"] = srv.address()
                seen["exists"] = os.path.exists(path)
                t = threading.Thread(target=client, daemon=True)
                t.start()
                srv.on("connection", lambda c: c.on("close", lambda e: srv.close()))
            srv.listen(path, listening)
        self.run_loop(main)
        self.assertEqual(seen["addr"], {"address": path})
        self.assertTrue(seen["exists"])
        self.assertEqual(seen["got"], b"hi")
        self.assertFalse(os.path.exists(path))

    def test_server_close_waits_for_connections(self):
        order = []

        def main():
            srv = self.server()

            def on_conn(c):
                order.append("connection %d" % srv.connections)
                srv.close(lambda err: order.append("server close"))
                c.on("close", lambda had_error: order.append("socket close"))
                net.get_loop().call_later(0.2, c.end)
            srv.on("connection", on_conn)
            srv.listen(0, "127.0.0.1", lambda: self.connect(srv.address()["port"],
                                                            "127.0.0.1").resume())
        self.run_loop(main)
        self.assertEqual(order[0], "connection 1")
        self.assertLess(order.index("socket close"), order.index("server close"))
        self.assertEqual(order.count("server close"), 1)


class TestNonUtf8Paths(NetcoreCase):
    """PROTOCOL.md 1.2: UNIX paths that are not UTF-8 travel as bytes. The
    issue's case: peers bound to such paths connect while the server is paused,
    so netcore accepts them in one loop turn and their Connection events come
    in one EventBatch (Python's protobuf rejected the whole batch when the
    addresses were invalid UTF-8 strings)."""

    PEERS = 12

    def test_non_utf8_paths_batched_connections_echo(self):
        tmpb = os.fsencode(self.tmp)
        path = os.path.join(tmpb, b"srv-\xff\xfe.sock")
        peer_paths = [os.path.join(tmpb, b"peer-\xc0-%d" % i) for i in range(self.PEERS)]
        seen = {"remote": [], "local": set(), "batched": 0, "echo": {}}
        nc = self.nc
        dispatch = nc._dispatch

        def counting_dispatch(frames):
            ev = pb.Event()
            ev.ParseFromString(frames[0])
            if ev.WhichOneof("event") == "batch":
                n = sum(1 for e in ev.batch.events if e.WhichOneof("event") == "connection"
                        and e.connection.remote.address_bytes)
                seen["batched"] = max(seen["batched"], n)
            dispatch(frames)
        nc._dispatch = counting_dispatch

        def peer(i):
            c = socket.socket(socket.AF_UNIX)
            c.settimeout(20)
            c.bind(peer_paths[i])
            c.connect(path)
            msg = b"peer %d \xff\x00 data" % i
            c.sendall(msg)
            got = b""
            while len(got) < len(msg):
                chunk = c.recv(100)
                if not chunk:
                    break
                got += chunk
            seen["echo"][i] = got == msg
            c.close()

        def main():
            closes = []

            def on_conn(c):
                seen["remote"].append(c.remote_path)
                seen["local"].add(c.local_address)
                c.on("data", c.write)
                c.on("close", lambda e: closed())

            def closed():
                closes.append(1)
                if len(closes) == self.PEERS + 1:
                    srv.close()

            srv = self.server(on_conn)

            def listening():
                seen["addr"] = srv.address()
                srv.pause(1500)  # the peers wait in the backlog, then come at once
                threads = [threading.Thread(target=peer, args=(i,), daemon=True)
                           for i in range(self.PEERS)]
                for t in threads:
                    t.start()
                out = self.connect(path)  # the library's own connect, as path_bytes

                def on_connect():
                    seen["client_remote"] = out.remote_path
                    out.write(b"own")
                out.on("connect", on_connect)
                out.on("data", lambda d: (seen.__setitem__("own", d), out.end()))
            srv.listen(path, listening)
        self.run_loop(main)
        self.assertEqual(os.fsencode(seen["addr"]["address"]), path)
        self.assertEqual(seen["local"], {os.fsdecode(path)})
        self.assertEqual(sorted(os.fsencode(r) for r in seen["remote"] if r),
                         sorted(peer_paths))
        self.assertEqual(len(seen["remote"]), self.PEERS + 1)  # + our own, unnamed
        self.assertEqual(seen["echo"], {i: True for i in range(self.PEERS)})
        self.assertEqual(os.fsencode(seen["client_remote"]), path)
        self.assertEqual(seen["own"], b"own")
        # At least one such Connection came inside an EventBatch (with other
        # events): the batch decoder met the non-UTF-8 address and lost nothing.
        self.assertGreaterEqual(seen["batched"], 1, "no EventBatch held such a connection")
        self.assertFalse(os.path.exists(path))

    def test_listen_bytes_path_errors_name_it(self):
        file_path = os.path.join(os.fsencode(self.tmp), b"file-\xff")
        with open(file_path, "w"):
            pass
        seen = {}

        def main():
            srv = self.server()

            srv.on("error", lambda err: seen.__setitem__("err", err))
            srv.listen(file_path)
        self.run_loop(main)
        self.assertEqual(seen["err"].code, "EADDRINUSE")
        self.assertEqual(seen["err"].address, os.fsdecode(file_path))
        self.assertIn("\ufffd", str(seen["err"]))


class TestConnect(NetcoreCase):
    def test_connect_econnrefused(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        seen = []

        def main():
            c = self.connect(port, "127.0.0.1")
            c.on("connect", lambda: seen.append("connect"))
            c.on("error", lambda err: seen.append((err.code, err.syscall, err.port)))
            c.on("close", lambda had_error: seen.append(("close", had_error)))
        self.run_loop(main)
        self.assertEqual(seen, [("ECONNREFUSED", "connect", port), ("close", True)])

    def test_connect_unix_enoent(self):
        seen = []

        def main():
            c = self.connect(os.path.join(self.tmp, "missing.sock"))
            c.on("error", lambda err: seen.append(err.code))
            c.on("close", lambda had_error: seen.append(had_error))
        self.run_loop(main)
        self.assertEqual(seen, ["ENOENT", True])

    def test_connect_bad_port_raises(self):
        with self.assertRaises(net.NetcoreError) as cm:
            self.connect(70000)
        self.assertEqual(cm.exception.code, "ERR_SOCKET_BAD_PORT")

    def test_connect_addresses_both_sides(self):
        seen = {}

        def main():
            srv = self.server()

            def on_conn(c):
                seen["server_remote_port"] = c.remote_port
                seen["server_remote_address"] = c.remote_address
                c.end()
                srv.close()
            srv.on("connection", on_conn)

            def listening():
                port = srv.address()["port"]
                seen["port"] = port
                c = self.connect(port, "localhost")

                def on_connect():
                    seen["client_remote"] = (c.remote_address, c.remote_port)
                    seen["client_local_port"] = c.address()["port"]
                c.on("connect", on_connect)
                c.resume()
            srv.listen(0, "127.0.0.1", listening)
        self.run_loop(main)
        self.assertEqual(seen["client_remote"], ("127.0.0.1", seen["port"]))
        self.assertEqual(seen["server_remote_port"], seen["client_local_port"])
        self.assertEqual(seen["server_remote_address"], "127.0.0.1")


class TestData(NetcoreCase):
    def test_pingpong_half_open_counts(self):
        """allowHalfOpen server: the client's end() still gets the last reply;
        write callbacks all fire; byte counts are exact; close(had_error=False)."""
        rounds = 200
        seen = {"cbs": 0, "pongs": 0}

        def main():
            def on_conn(c):
                c.set_encoding("utf8")
                buf = [""]

                def on_data(d):
                    buf[0] += d
                    while buf[0].startswith("PING"):
                        buf[0] = buf[0][4:]
                        c.write("PONG", lambda err: seen.__setitem__(
                            "cbs", seen["cbs"] + (err is None)))
                c.on("data", on_data)

                def on_end():
                    seen["server_end"] = True
                    c.end("BYE")
                c.on("end", on_end)

                def on_close(had_error):
                    seen["server_close"] = had_error
                    seen["server_counts"] = (c.bytes_read, c.bytes_written)
                    srv.close()
                c.on("close", on_close)
            srv = self.server(on_conn, allow_half_open=True)

            def listening():
                c = self.connect(srv.address()["port"], "127.0.0.1", allow_half_open=True)
                c.set_encoding("ascii")
                text = [""]

                def on_data(d):
                    text[0] += d
                    n = text[0].count("PONG")
                    while seen["pongs"] < n:
                        seen["pongs"] += 1
                        if seen["pongs"] < rounds:
                            c.write("PING")
                        else:
                            c.end()

                def on_close(had_error):
                    seen["client_close"] = had_error
                    seen["client_counts"] = (c.bytes_read, c.bytes_written)
                c.on("data", on_data)
                c.on("end", lambda: seen.__setitem__("client_text", text[0]))
                c.on("close", on_close)
                c.write("PING")
            srv.listen(0, "127.0.0.1", listening)
        self.run_loop(main)
        self.assertEqual(seen["pongs"], rounds)
        self.assertTrue(seen["server_end"])
        self.assertTrue(seen["client_text"].endswith("PONGBYE"))
        self.assertEqual(seen["cbs"], rounds)
        self.assertIs(seen["server_close"], False)
        self.assertIs(seen["client_close"], False)
        self.assertEqual(seen["server_counts"], (4 * rounds, 4 * rounds + 3))
        self.assertEqual(seen["client_counts"], (4 * rounds + 3, 4 * rounds))

    def test_lazy_acks(self):
        """Hello.lazy_acks (PROTOCOL.md 7): writes nothing waits for get no
        WriteAck message of their own; a write callback still gets its ack
        at once, and end() still gets 'finish' while the peer stays open."""
        rounds = 50
        seen = {"acks": 0, "data": 0, "pongs": 0}

        def main():
            def on_conn(c):
                plain = c._on_write_ack

                def counting(*a):
                    seen["acks"] += 1
                    plain(*a)
                c._on_write_ack = counting

                def on_data(d):
                    seen["data"] += 1
                    if d != b"LAST":
                        c.write(d)  # no callback, far below the high-water mark
                        return
                    seen["acks_before_cb"] = seen["acks"]

                    def written(err):
                        seen["cb"] = err
                        c.end()
                    c.write(b"DONE", written)
                c.on("data", on_data)
                c.on("finish", lambda: (seen.__setitem__("finish", True), srv.close(),
                                        client[0].destroy()))
            srv = self.server(on_conn)
            client = [None]

            def listening():
                c = client[0] = self.connect(srv.address()["port"], "127.0.0.1")

                def on_data(d):
                    if d == b"DONE":
                        return
                    seen["pongs"] += 1
                    c.write(b"PING" if seen["pongs"] < rounds else b"LAST")
                c.on("data", on_data)
                c.on("error", lambda err: None)
                c.write(b"PING")
            srv.listen(0, "127.0.0.1", listening)
        self.run_loop(main)
        self.assertEqual(seen["data"], rounds + 1)
        self.assertEqual(seen["acks_before_cb"], 0)
        self.assertIsNone(seen["cb"])
        self.assertTrue(seen["finish"])

    def test_binary_all_bytes_both_ways(self):
        data = bytes(range(256)) * 4
        seen = {}

        def main():
            srv = self.server(lambda c: c.pipe(c))

            def listening():
                c = self.connect(srv.address()["port"], "127.0.0.1")
                got = bytearray()
                c.on("data", got.extend)
                c.on("end", lambda: seen.__setitem__("got", bytes(got)))
                c.on("close", lambda had_error: srv.close())
                c.end(data)
            srv.listen(0, "127.0.0.1", listening)
        self.run_loop(main)
        self.assertEqual(seen["got"], data)

    def test_utf8_split_across_reads(self):
        text = "€𝄞é" * 50
        raw = text.encode("utf-8")
        seen = []

        def main():
            def on_conn(c):
                c.set_encoding("utf8")
                c.on("data", seen.append)
                c.on("close", lambda had_error: srv.close())
            srv = self.server(on_conn)

            def listening():
                s = socket.create_connection(("127.0.0.1", srv.address()["port"]))
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for i in range(0, len(raw), 5):
                    s.sendall(raw[i:i + 5])
                    time.sleep(0.001)
                s.close()
            srv.listen(0, "127.0.0.1", listening)
        self.run_loop(main)
        self.assertEqual("".join(seen), text)
        self.assertTrue(all(isinstance(x, str) and x for x in seen))

    def test_throttle_write_false_then_drain(self):
        """160 KB to a peer that does not read yet: write() is False,
        buffer_size > 0; 'drain' once the peer reads."""
        peer = socket.socket()
        peer.bind(("127.0.0.1", 0))
        peer.listen(1)
        port = peer.getsockname()[1]
        seen = {"false_at": None}
        got = bytearray()

        def reader():
            conn, _ = peer.accept()
            time.sleep(0.5)
            while len(got) < 160 * 1024:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                got.extend(chunk)
            conn.close()
        t = threading.Thread(target=reader, daemon=True)
        t.start()

        def main():
            c = self.connect(port, "127.0.0.1")
            chunk = b"x" * 1024
            for i in range(160):
                if not c.write(chunk) and seen["false_at"] is None:
                    seen["false_at"] = i
                    seen["buffer"] = c.buffer_size

            def drain():
                seen["drain_buffer"] = c.buffer_size
                c.destroy()
            c.once("drain", drain)
        self.run_loop(main)
        t.join(10)
        peer.close()
        self.assertIsNotNone(seen["false_at"])
        self.assertGreater(seen["buffer"], 0)
        self.assertEqual(seen["drain_buffer"], 0)
        self.assertEqual(len(got), 160 * 1024)

    def test_pause_no_data_until_resume(self):
        total = 2 * 1024 * 1024
        seen = {"during_pause": 0, "got": bytearray()}

        def main():
            def on_conn(c):
                state = {"paused": False}

                def on_data(d):
                    if state["paused"]:
                        seen["during_pause"] += len(d)
                    seen["got"].extend(d)
                c.on("data", on_data)
                c.pause()
                state["paused"] = True

                def resume():
                    state["paused"] = False
                    c.resume()
                net.get_loop().call_later(0.5, resume)
                c.on("end", srv.close)
            srv = self.server(on_conn)

            def listening():
                def send():
                    s = socket.create_connection(("127.0.0.1", srv.address()["port"]))
                    s.sendall(bytes(i % 251 for i in range(total)))
                    s.close()
                threading.Thread(target=send, daemon=True).start()
            srv.listen(0, "127.0.0.1", listening)
        self.run_loop(main)
        self.assertEqual(seen["during_pause"], 0)
        self.assertEqual(bytes(seen["got"]), bytes(i % 251 for i in range(total)))

    def test_write_after_end_epipe(self):
        seen = []

        def main():
            srv = self.server(lambda c: c.resume())

            def listening():
                c = self.connect(srv.address()["port"], "127.0.0.1")
                c.end()
                r = c.write(b"late", lambda err: seen.append(("cb", err.code)))
                seen.append(("returned", r))
                c.on("error", lambda err: seen.append(("error", err.code)))
                c.on("close", lambda had_error: srv.close())
            srv.listen(0, "127.0.0.1", listening)
        self.run_loop(main)
        self.assertEqual(seen[0], ("returned", False))
        self.assertIn(("cb", "EPIPE"), seen)
        self.assertIn(("error", "EPIPE"), seen)

    def test_without_half_open_peer_fin_ends_us(self):
        seen = {}

        def main():
            def on_conn(c):
                c.on("end", lambda: c.write("after end\n"))
                c.on("close", lambda had_error: (seen.__setitem__("had_error", had_error),
                                                 srv.close()))
            srv = self.server(on_conn)

            def listening():
                def client():
                    s = socket.create_connection(("127.0.0.1", srv.address()["port"]))
                    s.shutdown(socket.SHUT_WR)
                    s.settimeout(10)
                    data = b""
                    while True:
                        chunk = s.recv(100)
                        if not chunk:
                            break
                        data += chunk
                    seen["client_got"] = data
                    s.close()
                seen["thread"] = threading.Thread(target=client, daemon=True)
                seen["thread"].start()
            srv.listen(0, "127.0.0.1", listening)
        self.run_loop(main)
        # The loop ends with the server's close, which may come before the client
        # thread has stored what it read.
        seen["thread"].join(10)
        self.assertEqual(seen["client_got"], b"after end\n")
        self.assertIs(seen["had_error"], False)

    def test_set_timeout_fires_and_keeps_socket(self):
        seen = []

        def main():
            def on_conn(c):
                def on_timeout():
                    seen.append(("timeout", c.ready_state))
                    c.end("bye")
                    srv.close()
                c.set_timeout(100, on_timeout)
            srv = self.server(on_conn)

            def listening():
                c = self.connect(srv.address()["port"], "127.0.0.1")
                c.set_encoding("utf8")
                c.on("data", lambda d: seen.append(("data", d)))
            srv.listen(0, "127.0.0.1", listening)
        self.run_loop(main)
        self.assertEqual(seen, [("timeout", "open"), ("data", "bye")])


class TestFdPassing(NetcoreCase):
    def test_fd_passing_over_unix(self):
        """A socket's fd sent with data over a UNIX connection arrives as an
        'fd' Socket before the data, and writing to it reaches the original
        peer; an fd with empty data is an error."""
        path = os.path.join(self.tmp, "fd.sock")
        seen = []

        def main():
            tcp_srv = self.server()
            unix_srv = self.server()
            objs = []

            def finish():
                for o in objs:
                    o.destroy()
                tcp_srv.close()
                unix_srv.close()

            def on_tcp_conn(c):
                objs.append(c)
                c.set_encoding("utf8")

                def on_data(d):
                    seen.append(("tcp peer got", d))
                    finish()
                c.on("data", on_data)
            tcp_srv.on("connection", on_tcp_conn)

            def on_unix_conn(c):
                objs.append(c)

                def on_fd(s):
                    objs.append(s)
                    seen.append("fd")
                    s.write("via passed fd")
                c.on("fd", on_fd)
                c.on("data", lambda d: seen.append(("data", d)))
            unix_srv.on("connection", on_unix_conn)

            def start():
                a = self.connect(path)
                a2 = self.connect(path)
                b = self.connect(tcp_srv.address()["port"], "127.0.0.1")
                objs.extend([a, a2, b])
                a2.on("error", lambda e: seen.append(("a2 error", e.code)))
                pending = [3]

                def connected():
                    pending[0] -= 1
                    if pending[0] == 0:
                        a2.write(b"", lambda err: seen.append(
                            ("empty cb", err.code if err else None)), fd=b)
                        a.write(b"fd", fd=b)
                for x in (a, a2, b):
                    x.on("connect", connected)
            tcp_srv.listen(0, "127.0.0.1", lambda: unix_srv.listen(path, start))
        self.run_loop(main)
        self.assertIn(("empty cb", "EINVAL"), seen)
        self.assertIn(("a2 error", "EINVAL"), seen)
        self.assertIn("fd", seen)
        self.assertIn(("data", b"fd"), seen)
        self.assertLess(seen.index("fd"), seen.index(("data", b"fd")))
        self.assertIn(("tcp peer got", "via passed fd"), seen)


class TestAsyncio(NetcoreCase):
    def test_inside_asyncio_run(self):
        import asyncio
        seen = []

        async def main():
            srv = net.create_server(lambda c: c.end("hi"), netcore=self.nc)
            listening = asyncio.get_running_loop().create_future()
            srv.listen(0, "127.0.0.1", lambda: listening.set_result(srv.address()["port"]))
            port = await listening
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            seen.append(await reader.read())
            writer.close()
            srv.close()
            await self.nc.idle()
            self.nc.close()
        asyncio.run(asyncio.wait_for(main(), GUARD_S))
        self.assertEqual(seen, [b"hi"])


class TestLiveness(NetcoreCase):
    def test_netcore_gone_errors_and_closes_everything(self):
        """Without reconnection (test_link.py has it): everything ends."""
        self.nc = net.Netcore(self.endpoint, name="test", reconnect=False)
        seen = []

        def main():
            srv = self.server(lambda c: c.on("error", lambda e: seen.append(("sock", e.code))))
            srv.on("error", lambda e: seen.append(("server", e.code)))
            srv.on("close", lambda: seen.append("server close"))

            def listening():
                s = socket.create_connection(("127.0.0.1", srv.address()["port"]))
                seen.append("connected")
                net.get_loop().call_later(0.3, self.daemon.kill)
                self.addCleanup(s.close)
            srv.listen(0, "127.0.0.1", listening)
        self.run_loop(main)
        self.assertIn(("server", "ERR_NETCORE_GONE"), seen)
        self.assertIn(("sock", "ERR_NETCORE_GONE"), seen)
        self.assertIn("server close", seen)

    def test_idle_handler_keeps_its_lease(self):
        """A handler with nothing to say Pings every lease/3, so netcore keeps
        its server through several leases of silence."""
        nc = net.Netcore(self.endpoint, lease_ms=600)
        seen = {}

        def main():
            srv = net.create_server(lambda c: c.end("still here"), netcore=nc)

            def probe():
                seen["lease"] = nc.welcome.lease_ms
                s = socket.create_connection(("127.0.0.1", srv.address()["port"]))
                s.settimeout(10)

                def read():
                    seen["got"] = s.recv(100)
                    s.close()
                    srv.close()
                threading.Thread(target=read, daemon=True).start()
            srv.listen(0, "127.0.0.1", lambda: net.get_loop().call_later(2.5, probe))
        self.run_loop(main)
        self.assertEqual(seen["lease"], 600)
        self.assertEqual(seen["got"], b"still here")

    def test_blocked_past_lease_is_gone(self):
        """A handler whose loop was blocked longer than its lease learns, at its
        next command, that netcore dropped it: 'error' ERR_NETCORE_GONE and
        'close' on its objects, and run() returns."""
        nc = net.Netcore(self.endpoint, lease_ms=300, reconnect=False)
        seen = []

        def main():
            srv = net.create_server(netcore=nc)
            srv.on("error", lambda e: seen.append(e.code))
            srv.on("close", lambda: seen.append("close"))

            def block():
                time.sleep(1.5)
                srv.pause(10)
            srv.listen(0, "127.0.0.1", block)
        self.run_loop(main)
        self.assertEqual(seen, ["ERR_NETCORE_GONE", "close"])

    def test_netcore_unavailable(self):
        seen = []
        nc = net.Netcore("ipc://%s/nobody.sock" % self.tmp, connect_timeout_ms=300)

        def main():
            srv = net.create_server(netcore=nc)
            srv.on("error", lambda e: seen.append(e.code))
            srv.listen(0)
        self.run_loop(main)
        self.assertEqual(seen, ["ERR_NETCORE_UNAVAILABLE"])


class TestAdoption(NetcoreCase):
    """A connection adopted from a handler that left (PROTOCOL.md 13): in the
    'connection' listener sock.adopted is True and bytes_written already
    counts the old owner's writes (Adopted.bytes_written + queued_bytes), so
    a handler can tell a peer that was written to from one that was not."""

    def _adopt(self, greeting, big=0):
        """big: the first handler also writes big bytes that the client,
        reading nothing yet, cannot take, and hands over once netcore holds
        them (Adopted.queued_bytes > 0)."""
        seen = {}
        loop = net.get_loop()
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        heir = net.Netcore(self.endpoint, name="heir")

        async def until(pred, what):
            deadline = time.monotonic() + 20
            while not pred():
                if time.monotonic() > deadline:
                    raise AssertionError("timed out waiting for " + what)
                await asyncio.sleep(0.005)

        async def main():
            def on_conn(c):
                seen["c"] = c
                if greeting:  # handed over once it reached the kernel
                    c.write(greeting, lambda err: seen.__setitem__("written", err))
                else:
                    seen["written"] = None
            srv = self.server(on_conn)
            ready = loop.create_future()
            srv.listen({"port": 0, "host": "127.0.0.1", "group": "g"},
                       lambda: ready.set_result(None))
            await ready
            port = srv.address()["port"]
            client.connect(("127.0.0.1", port))
            await until(lambda: "written" in seen, "the first handler's connection")
            if big:
                seen["c"].write(b"b" * big)
                while await self._write_queue() == 0:  # after the Writes: in order
                    await asyncio.sleep(0.02)

            def on_heir_conn(c2):
                seen["c2"] = c2
                seen["adopted"], seen["at_adoption"] = c2.adopted, c2.bytes_written
                c2.write(b"more", lambda err: seen.__setitem__("heir_written", err))
                seen["after_write"] = c2.bytes_written
            srv2 = net.create_server(on_heir_conn, netcore=heir)
            ready2 = loop.create_future()
            srv2.listen({"port": port, "host": "127.0.0.1", "group": "g"},
                        lambda: ready2.set_result(None))
            await ready2
            self.nc.close(handoff=True)
            seen["c"].unref()  # the first handler is gone: its objects are not told
            srv.unref()
            if big:  # the heir's write is acked once the client reads
                await until(lambda: "c2" in seen, "the adoption")
            else:
                await until(lambda: "heir_written" in seen, "the adopter's write")

            def read_all():
                client.settimeout(10)
                got = b""
                while len(got) < len(greeting) + big + 4:
                    d = client.recv(65536)
                    if not d:
                        break
                    got += d
                return got
            seen["got"] = await loop.run_in_executor(None, read_all)
            await until(lambda: "heir_written" in seen, "the adopter's write")
            client.close()
            seen["c2"].destroy()
            srv2.close()
        self.run_loop(main)
        self.assertIsNone(seen["written"])
        self.assertIs(seen["adopted"], True)
        self.assertEqual(seen["at_adoption"], len(greeting) + big)
        self.assertEqual(seen["after_write"], len(greeting) + big + 4)
        self.assertIsNone(seen["heir_written"])
        self.assertEqual(seen["got"], greeting + b"b" * big + b"more")

    async def _write_queue(self):
        st = await self.nc.stats()
        for f in st["families"]:
            if f["name"] == "netcore_write_queue_bytes":
                return f["samples"][0]["value"]
        return 0

    def test_adopted_after_a_write(self):
        self._adopt(b"hello\r\n")

    def test_adopted_with_bytes_still_queued(self):
        """Adopted.queued_bytes > 0: netcore still held part of the first
        handler's writes; bytes_written counts them and they reach the
        client before the heir's."""
        self._adopt(b"hello\r\n", 7 * 1024 * 1024)

    def test_adopted_before_any_write(self):
        self._adopt(b"")


class TestActors(NetcoreCase):
    def test_goodbye_actor(self):
        p = subprocess.Popen([sys.executable, os.path.join(ACTORS, "goodbye.py"),
                              "--endpoint", self.endpoint], stdout=subprocess.PIPE)
        try:
            line = p.stdout.readline().decode()
            prefix = 'opened server on {"address":"127.0.0.1","port":'
            self.assertTrue(line.startswith(prefix), line)
            port = int(line[len(prefix):].rstrip().rstrip("}"))
            s = socket.create_connection(("127.0.0.1", port))
            s.settimeout(10)
            data = b""
            while True:
                chunk = s.recv(100)
                if not chunk:
                    break
                data += chunk
            s.close()
            self.assertEqual(data, b"goodbye\n")
            p.send_signal(signal.SIGINT)
            self.assertEqual(p.wait(10), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()

    def test_echo_actor_eaddrinuse(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        try:
            r = subprocess.run([sys.executable, os.path.join(ACTORS, "echo.py"), "--port",
                                str(port), "--host", "127.0.0.1", "--endpoint", self.endpoint],
                               capture_output=True, timeout=20)
        finally:
            s.close()
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"EADDRINUSE", r.stderr)
        self.assertEqual(r.stdout, b"")


if __name__ == "__main__":
    if "--netcore" in sys.argv:
        i = sys.argv.index("--netcore")
        NETCORE = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    if not NETCORE or not os.access(NETCORE, os.X_OK):
        sys.exit("test_net.py: give the netcore binary with --netcore PATH (got %r)" % NETCORE)
    unittest.main(verbosity=2)
