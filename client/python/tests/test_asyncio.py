#!/usr/bin/python3
"""netcore_net.asyncio against the real netcore: the stdlib's streams API.

usage: test_asyncio.py --netcore PATH [unittest args]
Each test starts its own netcore on an ipc endpoint in a temp dir (found by
the library through NETCORE_ENDPOINT) and runs asyncio.run(); peers are real
TCP/UNIX sockets of the standard library. The same echo code runs once on the
stdlib's asyncio streams and once on netcore's, and must behave the same.
"""

import asyncio
import errno
import os
import socket
import sys
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from netcore_net import asyncio as ncio  # noqa: E402
from netcore_launch import Netcore as Daemon  # noqa: E402

NETCORE = None
GUARD_S = 60


async def echo_session(streams, host, path=None):
    """Code written for asyncio streams: an echo server that greets, and a
    client that sends three lines and half-closes. `streams` is the module
    (asyncio or netcore_net.asyncio). Returns what the client read."""
    async def handle(reader, writer):
        writer.write(b"hello\r\n")
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    if path is None:
        server = await streams.start_server(handle, host, 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await streams.open_connection(host, port)
    else:
        server = await streams.start_unix_server(handle, path)
        reader, writer = await streams.open_unix_connection(path)
    async with server:
        greeting = await reader.readline()
        lines = []
        for text in (b"one\n", b"two\n", b"three\n"):
            writer.write(text)
            await writer.drain()
            lines.append(await reader.readline())
        writer.write_eof()
        rest = await reader.read()
        writer.close()
        await writer.wait_closed()
    return greeting, lines, rest, server.is_serving()


class AsyncioCase(unittest.TestCase):
    def setUp(self):
        self.daemon = Daemon(NETCORE).start()
        self.addCleanup(self.daemon.stop)
        self.tmp, self.endpoint = self.daemon.dir, self.daemon.endpoint
        os.environ["NETCORE_ENDPOINT"] = self.endpoint

    def tearDown(self):
        os.environ.pop("NETCORE_ENDPOINT", None)

    def run_async(self, coro):
        return asyncio.run(asyncio.wait_for(coro, GUARD_S))

    def test_asyncio_echo_same_as_stdlib(self):
        stdlib = self.run_async(echo_session(asyncio, "127.0.0.1"))
        ours = self.run_async(echo_session(ncio, "127.0.0.1"))
        self.assertEqual(stdlib, (b"hello\r\n", [b"one\n", b"two\n", b"three\n"], b"", False))
        self.assertEqual(ours, stdlib)

    def test_asyncio_unix_echo_same_as_stdlib(self):
        stdlib = self.run_async(echo_session(asyncio, None, os.path.join(self.tmp, "s.sock")))
        ours = self.run_async(echo_session(ncio, None, os.path.join(self.tmp, "n.sock")))
        self.assertEqual(ours, stdlib)

    def test_asyncio_plain_tcp_peer_and_addresses(self):
        """A client of the stdlib's socket module; peername/sockname are
        netcore's addresses; serve_forever ends on close()."""
        seen = {}

        async def handle(reader, writer):
            seen["peer"] = writer.get_extra_info("peername")
            seen["sock"] = writer.get_extra_info("sockname")
            writer.write(b"hello\r\n" + await reader.readexactly(5))
            await writer.drain()
            writer.close()

        async def main():
            server = await ncio.start_server(handle, "127.0.0.1", 0)
            host, port = server.sockets[0].getsockname()
            forever = asyncio.ensure_future(server.serve_forever())

            def client():
                with socket.create_connection((host, port), timeout=GUARD_S) as c:
                    c.sendall(b"12345")
                    got = b""
                    while len(got) < 12:
                        chunk = c.recv(100)
                        if not chunk:
                            break
                        got += chunk
                    seen["client_port"] = c.getsockname()[1]
                    return got

            got = await asyncio.get_running_loop().run_in_executor(None, client)
            server.close()
            await server.wait_closed()
            with self.assertRaises(asyncio.CancelledError):
                await forever
            return host, port, got

        host, port, got = self.run_async(main())
        self.assertEqual((host, got), ("127.0.0.1", b"hello\r\n12345"))
        self.assertGreater(port, 0)
        self.assertEqual(seen["peer"], ("127.0.0.1", seen["client_port"]))
        self.assertEqual(seen["sock"], ("127.0.0.1", port))

    def test_asyncio_errors_are_oserrors(self):
        async def main():
            server = await ncio.start_server(lambda r, w: None, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            with self.assertRaises(OSError) as inuse:
                await ncio.start_server(lambda r, w: None, "127.0.0.1", port)
            server.close()
            await server.wait_closed()
            with self.assertRaises(ConnectionRefusedError) as refused:
                await ncio.open_connection("127.0.0.1", port)
            with self.assertRaises(FileNotFoundError):
                await ncio.open_unix_connection(os.path.join(self.tmp, "nobody.sock"))
            with self.assertRaises(TypeError):
                await ncio.open_connection("127.0.0.1", port, ssl=True)
            return inuse.exception, refused.exception

        inuse, refused = self.run_async(main())
        self.assertEqual(inuse.errno, errno.EADDRINUSE)
        self.assertEqual(refused.__cause__.code, "ECONNREFUSED")

    def test_asyncio_drain_waits_for_a_slow_peer(self):
        """The peer does not read: drain() must stop returning (netcore has
        not handed the bytes to the kernel), long before netcore's 16 MiB
        write queue limit; once the peer reads, everything arrives, in order."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        chunk = bytes(range(256)) * 1024  # 256 KiB
        peer = {}
        may_read = threading.Event()

        def slow_peer():
            c, _ = listener.accept()
            may_read.wait(GUARD_S)
            n = 0
            ok = True
            while True:
                data = c.recv(1 << 20)
                if not data:
                    break
                ok = ok and all(data[i] == (n + i) % 256 for i in range(0, len(data), 4093))
                n += len(data)
            peer["n"], peer["ok"] = n, ok
            c.close()

        t = threading.Thread(target=slow_peer)
        t.start()

        async def main():
            reader, writer = await ncio.open_connection("127.0.0.1", port)
            written = 0
            blocked = False
            while written < 64 << 20:
                writer.write(chunk)
                written += len(chunk)
                try:
                    await asyncio.wait_for(asyncio.shield(drain := asyncio.ensure_future(writer.drain())), 1.0)
                except asyncio.TimeoutError:
                    blocked = True
                    break
            pending = writer.transport.get_write_buffer_size()
            may_read.set()
            await drain
            self.assertEqual(writer.transport.get_write_buffer_size(), 0)
            writer.close()
            await writer.wait_closed()
            return written, blocked, pending

        try:
            written, blocked, pending = self.run_async(main())
        finally:
            may_read.set()
            t.join(GUARD_S)
            listener.close()
        self.assertTrue(blocked, "drain() never waited although the peer read nothing")
        self.assertGreater(pending, 0)
        self.assertEqual(peer, {"n": written, "ok": True})

    def test_asyncio_reader_limit_pushes_back_to_the_peer(self):
        """A handler that does not read: past twice the reader's limit netcore
        stops reading, so the peer's sendall() blocks well before 64 MiB; then
        the handler reads everything, intact."""
        total = 64 << 20
        got = {}
        start_reading = None

        async def handle(reader, writer):
            await start_reading.wait()
            n = 0
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    break
                n += len(data)
            got["n"] = n
            writer.close()

        async def main():
            nonlocal start_reading
            start_reading = asyncio.Event()
            server = await ncio.start_server(handle, "127.0.0.1", 0, limit=1 << 16)
            port = server.sockets[0].getsockname()[1]
            sent = {}

            def peer():
                c = socket.create_connection(("127.0.0.1", port))
                c.settimeout(2.0)
                block = b"x" * (1 << 20)
                n = 0
                try:
                    while n < total:
                        n += c.send(block)
                except socket.timeout:
                    sent["blocked_at"] = n
                c.settimeout(GUARD_S)
                sent["stuck"] = n
                return c, n

            loop = asyncio.get_running_loop()
            c, n = await loop.run_in_executor(None, peer)
            start_reading.set()

            def finish():
                rest = total - n
                c.sendall(b"x" * rest)
                c.shutdown(socket.SHUT_WR)
                c.recv(1)
                c.close()

            await loop.run_in_executor(None, finish)
            server.close()
            await server.wait_closed()
            return sent

        sent = self.run_async(main())
        self.assertIn("blocked_at", sent, "the peer could send 64 MiB to a handler that read nothing")
        self.assertEqual(got["n"], total)


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--netcore" in args:
        i = args.index("--netcore")
        NETCORE = args[i + 1]
        del args[i:i + 2]
    if not NETCORE or not os.access(NETCORE, os.X_OK):
        sys.exit("usage: test_asyncio.py --netcore PATH")
    unittest.main(argv=[sys.argv[0]] + args, verbosity=2)
