#!/usr/bin/python3
"""pipe() inside netcore (PROTOCOL.md 17, netcore_net/_pipe.py) against the real netcore.

usage: test_pipe.py --netcore PATH [unittest args]
Peers are the standard library's asyncio TCP streams on the handler's own
loop. Every stream carries a position-dependent pattern (each 4 KiB block
repeats its index), so a lost, repeated or reordered byte shows. That the
bytes moved inside netcore shows in netcore's numbers: netcore_piped_bytes_total
grows and the handler's own payload bytes do not. The cases that make sense
without the offload run again with NETCORE_PIPE_OFFLOAD=0.
"""

import asyncio
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import netcore_net as net  # noqa: E402
from netcore_net import handler as _handler  # noqa: E402
from netcore_net._proto import pb  # noqa: E402

import zmq  # noqa: E402

NETCORE = None
GUARD_S = 120
MiB = 1 << 20
_PAT = b"".join(struct.pack(">Q", k) * 512 for k in range((80 * MiB) // 4096))


def pattern(off, n):
    return _PAT[off:off + n]


async def write_pattern(writer, total, chunk=256 * 1024, start=0):
    off = start
    while off < total:
        writer.write(pattern(off, min(chunk, total - off)))
        off += chunk
        await writer.drain()


async def until(pred, what, limit=60.0):
    deadline = time.monotonic() + limit
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        await asyncio.sleep(0.005)


class Sink:
    """An asyncio upstream server that keeps what it receives."""

    def __init__(self, on_data=None, on_end=None):
        self.data = bytearray()
        self.ended = False
        self.writers = []
        self.on_data = on_data
        self.on_end = on_end

    async def start(self):
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _conn(self, reader, writer):
        self.writers.append(writer)
        try:
            while True:
                d = await reader.read(256 * 1024)
                if not d:
                    break
                self.data += d
                if self.on_data:
                    self.on_data(self, writer)
        except ConnectionError:
            return
        self.ended = True
        if self.on_end:
            await self.on_end(self, writer)
        else:
            writer.close()

    async def close(self):
        for w in self.writers:
            w.transport.abort()
        self.server.close()
        await self.server.wait_closed()


class EventCount:
    """A raw handler link that asks netcore, blocking, how many events it has
    sent toward a handler (netcore_handler_events_total): the test's way to
    know that netcore read something before a command of the handler's
    reaches it, with the handler's own loop held."""

    def __init__(self, endpoint):
        self.ctx = zmq.Context()
        self.s = self.ctx.socket(zmq.DEALER)
        self.s.setsockopt(zmq.LINGER, 0)
        self.s.connect(endpoint)
        self.s.send(pb.Command(hello=pb.Hello(version=1, name="event-count")).SerializeToString())
        if self._recv("welcome") is None:
            raise AssertionError("netcore did not answer the probe's Hello")

    def _recv(self, kind):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not self.s.poll(100):
                continue
            ev = pb.Event.FromString(self.s.recv_multipart()[0])
            if ev.WhichOneof("event") == kind:
                return getattr(ev, kind)
        return None

    def events(self, handler):
        self.s.send(pb.Command(stats=pb.StatsQuery()).SerializeToString())
        st = self._recv("stats")
        if st is None:
            raise AssertionError("netcore did not answer the probe's Stats")
        return sum(x["value"] for f in _handler.stats_dict(st)["families"]
                   if f["name"] == "netcore_handler_events_total" for x in f["samples"]
                   if x["labels"].get("handler") == handler)

    def wait_events(self, handler, n):
        deadline = time.monotonic() + 10
        while self.events(handler) < n:
            if time.monotonic() > deadline:
                raise AssertionError("netcore sent %s fewer than %d events" % (handler, n))
            time.sleep(0.005)

    def close(self):
        self.s.close()
        self.ctx.term()


class PipeCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nc-pypipe-")
        self.endpoint = "ipc://%s/nc.sock" % self.tmp
        self.daemon = subprocess.Popen([NETCORE, "--bind", self.endpoint, "--log-level", "warn"])
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(self.tmp, "nc.sock")):
            self.assertIsNone(self.daemon.poll(), "netcore exited")
            self.assertLess(time.monotonic(), deadline, "netcore did not start")
            time.sleep(0.01)
        self.nc = net.Netcore(self.endpoint, name="test")
        self._env = os.environ.get("NETCORE_PIPE_OFFLOAD")

    def tearDown(self):
        if self._env is None:
            os.environ.pop("NETCORE_PIPE_OFFLOAD", None)
        else:
            os.environ["NETCORE_PIPE_OFFLOAD"] = self._env
        if self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(10)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def offload(self, on):
        if on:
            os.environ.pop("NETCORE_PIPE_OFFLOAD", None)
        else:
            os.environ["NETCORE_PIPE_OFFLOAD"] = "0"

    def run_loop(self, main):
        loop = net.get_loop()
        guard = loop.call_later(GUARD_S, _handler.fatal,
                                AssertionError("test still running after %d s" % GUARD_S))
        try:
            net.run(main)
        finally:
            guard.cancel()

    def rss_kib(self):
        with open("/proc/%d/status" % self.daemon.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    async def moved(self):
        st = await self.nc.stats()

        def total(name):
            return sum(s["value"] for f in st["families"] if f["name"] == name for s in f["samples"])
        return total("netcore_piped_bytes_total"), total("netcore_handler_payload_bytes_total")

    async def listen(self, on_conn, **kw):
        srv = net.create_server(on_conn, netcore=self.nc, **kw)
        ready = asyncio.get_running_loop().create_future()
        srv.listen(0, "127.0.0.1", lambda: ready.set_result(None))
        await ready
        return srv

    def check_moved(self, on, before, after, total):
        piped, own = after[0] - before[0], after[1] - before[1]
        if on:
            # Data in flight before the Pipe is the handler's to write.
            self.assertLess(own, 2 * MiB, "the handler wrote %d bytes itself" % own)
            self.assertGreaterEqual(piped + own, total)
        else:
            self.assertEqual(piped, 0)
            self.assertGreaterEqual(own, total)

    # ------------------------------------------------------------------ tests

    def test_64mib_self_pipe_slow_reader_flat_memory(self):
        total = 64 * MiB
        seen = {"events": []}

        async def main():
            def on_conn(c):
                seen["c"] = c
                for ev in ("end", "finish"):
                    c.on(ev, lambda ev=ev: seen["events"].append(ev))
                c.on("close", lambda had_error: seen.__setitem__("close", had_error))
                c.pipe(c)
            srv = await self.listen(on_conn)
            before = await self.moved()
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.address()["port"])
            await until(lambda: "c" in seen, "connection")
            base = peak = self.rss_kib()
            got = bytearray()
            bad = []

            async def read_slowly():
                nonlocal peak
                next_pause = 4 * MiB
                while True:
                    d = await reader.read(1 << 20)
                    if not d:
                        return
                    if bytes(d) != pattern(len(got), len(d)) and not bad:
                        bad.append(len(got))
                    got.extend(d)
                    peak = max(peak, self.rss_kib())
                    if len(got) >= next_pause:
                        next_pause += 4 * MiB
                        await asyncio.sleep(0.02)
            rd = asyncio.ensure_future(read_slowly())
            await write_pattern(writer, total, 1 << 20)
            writer.write_eof()
            await rd
            writer.close()
            after = await self.moved()
            await until(lambda: "close" in seen, "close")
            srv.close()
            seen.update(n=len(got), bad=bad, grow=peak - base, base=base, before=before, after=after)
        self.run_loop(main)
        self.assertEqual(seen["bad"], [])
        self.assertEqual(seen["n"], total)
        self.check_moved(True, seen["before"], seen["after"], total)
        self.assertLess(seen["grow"], 48 * 1024, "netcore grew %d KiB from %d" % (seen["grow"], seen["base"]))
        self.assertEqual(sorted(seen["events"]), ["end", "finish"])
        self.assertIs(seen["close"], False)
        self.assertEqual(seen["c"].bytes_read, total)
        self.assertEqual(seen["c"].bytes_written, total)

    def _proxy(self, on):
        self.offload(on)
        up_n, down_n = 6 * MiB + 123, 5 * MiB + 7
        seen = {"events": []}

        async def main():
            async def answer(sink, w):
                await write_pattern(w, down_n)
                w.close()
            sink = await Sink(on_end=answer).start()

            def on_conn(c):
                up = net.create_connection(sink.port, "127.0.0.1", netcore=self.nc)
                seen["c"], seen["up"] = c, up
                for name, s in (("c", c), ("up", up)):
                    for ev in ("end", "finish", "unpipe"):
                        s.on(ev, lambda *_, e="%s:%s" % (name, ev): seen["events"].append(e))
                    s.on("close", lambda _h, e="%s:close" % name: seen["events"].append(e))
                c.pipe(up)
                up.pipe(c)
            srv = await self.listen(on_conn, allow_half_open=True)
            before = await self.moved()
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.address()["port"])
            got = bytearray()

            async def read_all():
                while True:
                    d = await reader.read(1 << 20)
                    if not d:
                        return
                    got.extend(d)
            rd = asyncio.ensure_future(read_all())
            await write_pattern(writer, up_n)
            writer.write_eof()
            await rd
            writer.close()
            await until(lambda: "c:close" in seen["events"] and "up:close" in seen["events"], "both closed")
            seen.update(got=bytes(got), sink=bytes(sink.data), before=before, after=await self.moved())
            srv.close()
            await sink.close()
        self.run_loop(main)
        self.assertTrue(seen["sink"] == pattern(0, up_n), "upstream got %d bytes, wrong" % len(seen["sink"]))
        self.assertTrue(seen["got"] == pattern(0, down_n), "client got %d bytes, wrong" % len(seen["got"]))
        ev = seen["events"]
        for e in ("c:end", "up:finish", "up:end", "c:finish", "up:unpipe", "c:unpipe"):
            self.assertIn(e, ev)
        self.assertLess(ev.index("c:end"), ev.index("up:finish"))
        self.assertLess(ev.index("up:end"), ev.index("c:finish"))
        self.assertEqual(seen["c"].bytes_read, up_n)
        self.assertEqual(seen["up"].bytes_written, up_n)
        self.assertEqual(seen["up"].bytes_read, down_n)
        self.assertEqual(seen["c"].bytes_written, down_n)
        self.check_moved(on, seen["before"], seen["after"], up_n + down_n)

    def test_proxy_both_ways(self):
        self._proxy(True)

    def test_proxy_both_ways_no_offload(self):
        self._proxy(False)

    def _end_false(self, on):
        self.offload(on)
        n = 3 * MiB + 5
        seen = {}

        async def main():
            sink = await Sink().start()

            def on_conn(c):
                up = net.create_connection(sink.port, "127.0.0.1", netcore=self.nc)
                c.pipe(up, end=False)

                def on_end():
                    seen["writable"] = not up._ended
                    up.end(pattern(n, 1000))
                c.on("end", on_end)
            srv = await self.listen(on_conn)
            _reader, writer = await asyncio.open_connection("127.0.0.1", srv.address()["port"])
            await write_pattern(writer, n)
            writer.write_eof()
            await until(lambda: sink.ended, "upstream's end")
            seen["sink"] = bytes(sink.data)
            writer.close()
            srv.close()
            await sink.close()
        self.run_loop(main)
        self.assertTrue(seen["writable"])
        self.assertTrue(seen["sink"] == pattern(0, n + 1000))

    def test_end_false(self):
        self._end_false(True)

    def test_end_false_no_offload(self):
        self._end_false(False)

    def _handback(self, on, how):
        """how: "unpipe" (unpipe(), then a 'data' listener and resume()) or
        "listener" (a late 'data' listener while the pipe goes on)."""
        self.offload(on)
        n = 16 * MiB
        seen = {"late": bytearray(), "unpipe": []}
        state = {}

        async def main():
            def on_data(sink, _w):
                src = state["src"]
                if "done" in state or len(sink.data) < 2 * MiB:
                    return
                state["done"] = True
                if how == "unpipe":
                    src.unpipe()
                    net.get_loop().call_later(0.05, lambda: (src.on("data", seen["late"].extend),
                                                             src.resume()))
                else:
                    src.on("data", seen["late"].extend)
            sink = await Sink(on_data=on_data).start()

            def on_conn(c):
                state["src"] = c
                up = net.create_connection(sink.port, "127.0.0.1", netcore=self.nc)
                up.on("unpipe", lambda s: seen["unpipe"].append(s is c))
                c.pipe(up)
            srv = await self.listen(on_conn)
            _reader, writer = await asyncio.open_connection("127.0.0.1", srv.address()["port"])
            # The second half leaves only once the stream was handed back, so
            # that part is the handler's to see however much of the first half
            # the kernel's buffers held (all of it, on a loaded machine).
            await write_pattern(writer, n // 2)
            await until(lambda: "done" in state, "the hand-back mid-stream")
            await write_pattern(writer, n, start=n // 2)
            writer.write_eof()
            if how == "unpipe":
                await until(lambda: len(sink.data) + len(seen["late"]) >= n, "every byte")
                await asyncio.sleep(0.05)
            else:
                await until(lambda: sink.ended, "upstream's end")
            seen["sink"] = bytes(sink.data)
            seen["read"] = state["src"].bytes_read
            writer.close()
            state["src"].destroy()
            srv.close()
            await sink.close()
        self.run_loop(main)
        sink, late = seen["sink"], bytes(seen["late"])
        self.assertGreaterEqual(len(sink), 2 * MiB)
        self.assertGreater(len(late), 0)
        if how == "unpipe":
            self.assertEqual(len(sink) + len(late), n)
            self.assertTrue(sink == pattern(0, len(sink)))
            self.assertTrue(late == pattern(len(sink), len(late)), "the handler's part follows the pipe's")
            self.assertEqual(seen["unpipe"], [True])
            self.assertEqual(seen["read"], n)
        else:
            self.assertTrue(sink == pattern(0, n), "upstream got %d bytes, wrong" % len(sink))
            self.assertTrue(late == pattern(n - len(late), len(late)), "the late part is the tail, once")

    def test_unpipe_mid_stream(self):
        self._handback(True, "unpipe")

    def test_unpipe_mid_stream_no_offload(self):
        self._handback(False, "unpipe")

    def test_late_data_listener(self):
        self._handback(True, "listener")

    def test_late_data_listener_no_offload(self):
        self._handback(False, "listener")

    def _dest_reset(self, on):
        self.offload(on)
        seen = {"tail": bytearray()}

        async def main():
            def on_data(sink, w):
                if len(sink.data) >= MiB and not w.transport.is_closing():
                    w.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                         struct.pack("ii", 1, 0))
                    w.transport.abort()
            sink = await Sink(on_data=on_data).start()

            def on_conn(c):
                seen["src"] = c
                up = net.create_connection(sink.port, "127.0.0.1", netcore=self.nc)
                up.on("error", lambda e: seen.__setitem__("err", e.code))
                up.on("unpipe", lambda _s: seen.__setitem__("unpiped", True))
                c.pipe(up)
            srv = await self.listen(on_conn)
            _reader, writer = await asyncio.open_connection("127.0.0.1", srv.address()["port"])
            off = 0
            while "err" not in seen and off < 64 * MiB:
                writer.write(pattern(off, 64 * 1024))
                off += 64 * 1024
                try:
                    await asyncio.wait_for(writer.drain(), 0.1)
                except asyncio.TimeoutError:
                    pass
            # Node's rule: the destination's error (then close) unpipes and pauses the source.
            await until(lambda: "err" in seen and "unpiped" in seen, "the destination's error")
            src = seen["src"]
            seen["destroyed"] = src.destroyed
            src.on("data", seen["tail"].extend)
            src.resume()
            writer.write(b"after the reset")
            await until(lambda: seen["tail"].endswith(b"after the reset"), "data after the reset")
            writer.transport.abort()
            src.destroy()
            srv.close()
            await sink.close()
        self.run_loop(main)
        self.assertIn(seen["err"], ("ECONNRESET", "EPIPE"))
        self.assertFalse(seen["destroyed"])

    def _ended_while_paused(self, on):
        """The havoc test's hang (HAVOC_SEED=707733204): c.pipe(c)'s Pipe
        leaves while netcore has already read the peer's bytes and FIN, so
        their Data and Ended come after it to a paused socket. On resume()
        the Data is written back and must be credited, though the peer has
        ended: netcore starts its pipe (and ends c for it) only once every
        byte it sent as Data is credited. Without that Credit c was never
        ended: the client got its bytes back and no EOF."""
        self.offload(on)
        seen = {"events": []}
        probe = EventCount(self.endpoint)
        loop = net.get_loop()
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)

        def held_turn(c):
            # The turn after pipe(): _arm has queued the Pipe; nothing left yet.
            base = probe.events("test")
            client.sendall(b"hello")
            client.shutdown(socket.SHUT_WR)
            probe.wait_events("test", base + 2)  # its Data and Ended are on their way
            c.pause()  # leaves behind the Pipe: netcore read everything before either
            seen["held"] = True

        async def main():
            def on_conn(c):
                seen["c"] = c
                for ev in ("end", "finish"):
                    c.on(ev, lambda ev=ev: seen["events"].append(ev))
                c.on("close", lambda had_error: seen.__setitem__("close", had_error))
                c.pipe(c)
                loop.call_soon(held_turn, c)
            srv = await self.listen(on_conn)
            client.connect(("127.0.0.1", srv.address()["port"]))
            client.setblocking(False)
            await until(lambda: "held" in seen, "the held turn")
            c = seen["c"]
            await until(lambda: c._eof_pending, "Ended while paused")
            seen["offload"] = c._offload is not None and c._offload.state == "active"
            c.resume()
            got = bytearray()
            while True:
                try:
                    d = await asyncio.wait_for(loop.sock_recv(client, 4096), 15)
                except asyncio.TimeoutError:
                    raise AssertionError("the client got %r and no EOF: c was never ended"
                                         % bytes(got)) from None
                if not d:
                    break
                got.extend(d)
            seen["got"] = bytes(got)
            await until(lambda: "close" in seen, "close")
            client.close()
            srv.close()
        try:
            self.run_loop(main)
        finally:
            probe.close()
        if on:
            self.assertTrue(seen["offload"], "the Pipe had not left before Ended came")
        self.assertEqual(seen["got"], b"hello")
        self.assertEqual(seen["events"], ["end", "finish"])
        self.assertIs(seen["close"], False)

    def test_ended_while_paused_after_pipe(self):
        self._ended_while_paused(True)

    def test_ended_while_paused_after_pipe_no_offload(self):
        self._ended_while_paused(False)

    def test_ended_while_paused_no_replay_to_adopter(self):
        """The same Credit without a pipe (PROTOCOL.md 13): Data a paused
        socket held when Ended came, consumed on resume(), is credited, so a
        group member that adopts the socket after a handoff gets no replay
        of bytes the first handler already had."""
        seen = {"heir": bytearray(), "first": bytearray()}
        probe = EventCount(self.endpoint)
        loop = net.get_loop()
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        heir = net.Netcore(self.endpoint, name="heir")

        def held_turn(c):
            base = probe.events("test")
            client.sendall(b"hello")
            client.shutdown(socket.SHUT_WR)
            probe.wait_events("test", base + 2)  # its Data and Ended are on their way
            c.pause()
            seen["held"] = True

        async def main():
            def on_conn(c):
                seen["c"] = c
                held_turn(c)
            srv = net.create_server(on_conn, netcore=self.nc, allow_half_open=True)
            ready = loop.create_future()
            srv.listen({"port": 0, "host": "127.0.0.1", "group": "g"}, lambda: ready.set_result(None))
            await ready
            port = srv.address()["port"]
            client.connect(("127.0.0.1", port))
            client.setblocking(False)
            await until(lambda: "held" in seen, "the held turn")
            c = seen["c"]
            await until(lambda: c._eof_pending, "Ended while paused")

            def on_heir_conn(c2):
                seen["c2"], seen["adopted"] = c2, c2.adopted
                c2.on("data", seen["heir"].extend)
                c2.on("end", lambda: seen.__setitem__("heir_end", True))
            srv2 = net.create_server(on_heir_conn, netcore=heir, allow_half_open=True)
            ready2 = loop.create_future()
            srv2.listen({"port": port, "host": "127.0.0.1", "group": "g"}, lambda: ready2.set_result(None))
            await ready2
            c.on("data", seen["first"].extend)
            c.resume()  # 'data' now, and its Credit in this turn's batch
            self.nc.close(handoff=True)  # the Bye goes after that batch
            # The first handler is gone: its objects are not told (close()),
            # and must not keep run() going.
            c.unref()
            srv.unref()
            await until(lambda: "heir_end" in seen, "the adopter's 'end'")
            client.close()
            seen["c2"].destroy()
            srv2.close()
        try:
            self.run_loop(main)
        finally:
            probe.close()
        self.assertEqual(bytes(seen["first"]), b"hello")
        self.assertIs(seen["adopted"], True)
        self.assertEqual(bytes(seen["heir"]), b"", "the adopter got a replay of consumed bytes")

    def test_dest_reset(self):
        self._dest_reset(True)

    def test_dest_reset_no_offload(self):
        self._dest_reset(False)


if __name__ == "__main__":
    if "--netcore" in sys.argv:
        i = sys.argv.index("--netcore")
        NETCORE = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    if not NETCORE or not os.access(NETCORE, os.X_OK):
        sys.exit("test_pipe.py: give the netcore binary with --netcore PATH (got %r)" % NETCORE)
    unittest.main(verbosity=2)
