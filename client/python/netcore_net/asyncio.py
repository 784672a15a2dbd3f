"""asyncio streams over netcore: start_server() and open_connection().

    from netcore_net import asyncio as ncio   # instead of the stdlib's streams

    async def handle(reader, writer):
        writer.write(b"hello\\r\\n")
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    async def main():
        server = await ncio.start_server(handle, "localhost", 8124)
        async with server:
            await server.serve_forever()

The reader and writer are the standard library's own asyncio.StreamReader and
asyncio.StreamWriter, fed by a Transport that wraps a netcore Socket, so code
written for asyncio.start_server/open_connection runs unchanged. Backpressure
is netcore's, both ways:
- writes: the transport pauses its protocol when Socket.write() returns False
  (bytes not yet acknowledged by netcore reached the high-water mark) and
  resumes it on 'drain' (all of them acknowledged), so `await writer.drain()`
  waits for netcore to have handed the bytes to the kernel;
- reads: when the StreamReader holds more than twice its limit it calls
  pause_reading(), which is Socket.pause(): netcore stops reading that socket
  at once and the peer's TCP window fills; resume_reading() grants credit again.

Errors that have a POSIX name (ECONNREFUSED, EADDRINUSE, ENOENT, ...) are
raised as the matching OSError subclass (ConnectionRefusedError, ...), as the
stdlib does, with the NetcoreError as __cause__; netcore's own codes
(ERR_NETCORE_GONE, ...) stay NetcoreError.

Each event loop gets its own handler connection to netcore (endpoint from
NETCORE_ENDPOINT, else the default), said goodbye to when asyncio.run() shuts
the loop down; pass netcore= to use another. Call these from a coroutine.
"""

from __future__ import annotations

import asyncio
import errno as _errno
import weakref
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, Optional, Tuple, Union

from .errors import NetcoreError
from .handler import Netcore
from .server import Server as _NcServer
from .sock import Socket

__all__ = ["Server", "open_connection", "open_unix_connection", "start_server",
           "start_unix_server"]

_DEFAULT_LIMIT = 2 ** 16  # the stdlib's StreamReader limit

ClientConnected = Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                           Union[Awaitable[None], None]]

# loop -> (its Netcore, the async generator that closes it at loop shutdown)
_per_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Tuple[Netcore, AsyncIterator[None]]]" \
    = weakref.WeakKeyDictionary()


async def _close_at_shutdown(nc: Netcore) -> AsyncIterator[None]:
    # asyncio.run() calls loop.shutdown_asyncgens() before closing the loop:
    # that runs this finally, so the handler says Bye instead of lingering.
    try:
        yield
    finally:
        nc.close()


async def _netcore_of_loop() -> Netcore:
    loop = asyncio.get_running_loop()
    entry = _per_loop.get(loop)
    if entry is not None and entry[0].state != "closed":
        return entry[0]
    nc = Netcore(name="python-asyncio")
    closer = _close_at_shutdown(nc)
    await closer.__anext__()
    _per_loop[loop] = (nc, closer)
    return nc


def _settle(f: "asyncio.Future[None]") -> None:
    if not f.done():
        f.set_result(None)


def _os_error(err: BaseException) -> Exception:
    """The stdlib's exception for a netcore error (see the module comment)."""
    if isinstance(err, NetcoreError):
        num = getattr(_errno, err.code, None)
        if isinstance(num, int):
            e = OSError(num, str(err))
            e.__cause__ = err
            return e
    return err if isinstance(err, Exception) else NetcoreError("ERR_NETCORE_GONE", str(err))


class _Transport(asyncio.Transport):
    """An asyncio Transport over one netcore Socket (see the module comment).
    Lives on the loop of its Netcore; called from that loop only."""

    def __init__(self, sock: Socket, protocol: asyncio.BaseProtocol,
                 loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(extra={
            "peername": _peer(sock), "sockname": _local(sock), "socket": None,
            "netcore_socket": sock})
        self._sock = sock
        self._protocol = protocol
        self._loop = loop
        self._closing = False
        self._write_paused = False
        self._reading = True
        self._error: Optional[Exception] = None
        sock.on("data", self._on_data)
        sock.on("end", self._on_end)
        sock.on("drain", self._on_drain)
        sock.on("error", self._on_error)
        sock.on("close", self._on_close)

    # -- from the netcore Socket

    def _on_data(self, chunk: bytes) -> None:
        proto = self._protocol
        assert isinstance(proto, asyncio.Protocol)
        proto.data_received(chunk)

    def _on_end(self) -> None:
        proto = self._protocol
        assert isinstance(proto, asyncio.Protocol)
        if not proto.eof_received():
            self.close()

    def _on_drain(self) -> None:
        if self._write_paused:
            self._write_paused = False
            self._protocol.resume_writing()

    def _on_error(self, err: BaseException) -> None:
        self._error = _os_error(err)

    def _on_close(self, had_error: bool) -> None:
        self._closing = True
        self._protocol.connection_lost(self._error)

    # -- asyncio.Transport

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Sends what is queued, then FIN; 'close' (connection_lost) follows."""
        if self._closing:
            return
        self._closing = True
        self._sock.end()

    def abort(self) -> None:
        self._closing = True
        self._sock.destroy()

    def write(self, data: Union[bytes, bytearray, memoryview]) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("data argument must be a bytes-like object, not %r"
                            % type(data).__name__)
        if self._closing or not data:
            return
        if not self._sock.write(bytes(data)) and not self._write_paused:
            self._write_paused = True
            self._protocol.pause_writing()

    def write_eof(self) -> None:
        self._sock.end()

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return self._sock.buffer_size

    def get_write_buffer_limits(self) -> Tuple[int, int]:
        return (0, self._sock.high_water_mark)

    def set_write_buffer_limits(self, high: Optional[int] = None,
                                low: Optional[int] = None) -> None:
        """high becomes the Socket's high-water mark; writing resumes when
        everything is acknowledged (Node's 'drain'), whatever low says."""
        if high is not None:
            self._sock.high_water_mark = high

    def pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._sock.pause()

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            self._sock.resume()

    def is_reading(self) -> bool:
        return self._reading


def _peer(sock: Socket) -> Any:
    if sock.remote_family == "unix":
        return ""
    return (sock.remote_address, sock.remote_port)


def _local(sock: Socket) -> Any:
    a = sock.address()
    return (a.get("address"), a.get("port")) if "port" in a else a.get("address", "")


def _streams(sock: Socket, limit: int, loop: asyncio.AbstractEventLoop,
             cb: Optional[ClientConnected] = None
             ) -> Tuple[asyncio.StreamReader, asyncio.StreamReaderProtocol, _Transport]:
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, cb, loop=loop)
    transport = _Transport(sock, protocol, loop)
    protocol.connection_made(transport)
    return reader, protocol, transport


async def _connect(args: Tuple[Any, ...], limit: int, netcore: Optional[Netcore]
                   ) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    nc = netcore or await _netcore_of_loop()
    sock = Socket(allow_half_open=True, netcore=nc)
    done: asyncio.Future[None] = loop.create_future()

    def on_error(err: BaseException) -> None:
        if not done.done():
            done.set_exception(_os_error(err))

    sock.once("connect", lambda: _settle(done))
    sock.once("error", on_error)
    sock.connect(*args)
    try:
        await done
    except asyncio.CancelledError:
        sock.destroy()
        raise
    sock.off("error", on_error)
    reader, protocol, transport = _streams(sock, limit, loop)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


async def open_connection(host: Optional[str] = None, port: Optional[int] = None, *,
                          limit: int = _DEFAULT_LIMIT, netcore: Optional[Netcore] = None,
                          **kwds: Any) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio.open_connection(host, port): a TCP connection made by netcore.
    Raises ConnectionRefusedError etc. as the stdlib does. Socket options the
    stdlib takes (ssl=, family=, local_addr=, ...) are not supported."""
    _no_extra(kwds)
    return await _connect((port, host or "localhost"), limit, netcore)


async def open_unix_connection(path: str, *, limit: int = _DEFAULT_LIMIT,
                               netcore: Optional[Netcore] = None, **kwds: Any
                               ) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio.open_unix_connection(path) through netcore."""
    _no_extra(kwds)
    return await _connect((path,), limit, netcore)


def _no_extra(kwds: Dict[str, Any]) -> None:
    unsupported = [k for k, v in kwds.items() if v is not None]
    if unsupported:
        raise TypeError("netcore_net.asyncio does not support: %s" % ", ".join(sorted(unsupported)))


class _ListeningSocket:
    """What Server.sockets holds: enough of socket.socket for getsockname()."""

    def __init__(self, address: Dict[str, Any]) -> None:
        self._address = address

    @property
    def family(self) -> str:
        return str(self._address.get("family", "unix"))

    def getsockname(self) -> Any:
        a = self._address
        return (a["address"], a["port"]) if "port" in a else a["address"]


class Server:
    """asyncio.Server's interface over a netcore Server: close(), wait_closed(),
    serve_forever(), is_serving(), sockets, async with."""

    def __init__(self, server: _NcServer, loop: asyncio.AbstractEventLoop) -> None:
        self._server = server
        self._loop = loop
        self._closed: asyncio.Future[None] = loop.create_future()
        self._serving_forever: Optional[asyncio.Future[None]] = None
        self._address = server.address() or {}
        server.once("close", lambda: _settle(self._closed))

    @property
    def netcore_server(self) -> _NcServer:
        return self._server

    @property
    def sockets(self) -> Tuple[_ListeningSocket, ...]:
        return (_ListeningSocket(self._address),) if self.is_serving() else ()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._server.listening

    async def start_serving(self) -> None:
        """Already serving: start_server() returns once netcore listens."""

    def close(self) -> None:
        """Stops accepting now; open connections go on (as the stdlib's)."""
        if self._server.listening:
            self._server.close()
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.cancel()

    async def wait_closed(self) -> None:
        """Returns once the server is closed and its last connection is gone."""
        if self._server.listening or not self._closed.done():
            await asyncio.shield(self._closed)

    async def serve_forever(self) -> None:
        if self._serving_forever is not None:
            raise RuntimeError("server %r is already being awaited on serve_forever()" % self)
        self._serving_forever = self._loop.create_future()
        try:
            await self._serving_forever
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever = None

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
        await self.wait_closed()


async def _serve(cb: ClientConnected, listen_args: Tuple[Any, ...], limit: int,
                 netcore: Optional[Netcore], backlog: int) -> Server:
    loop = asyncio.get_running_loop()
    nc = netcore or await _netcore_of_loop()
    ncs = _NcServer(allow_half_open=True, netcore=nc)
    ready: asyncio.Future[None] = loop.create_future()

    def on_connection(sock: Socket) -> None:
        _streams(sock, limit, loop, cb)

    def on_error(err: BaseException) -> None:
        if not ready.done():
            ready.set_exception(_os_error(err))

    ncs.on("connection", on_connection)
    ncs.once("error", on_error)
    ncs.listen(*listen_args, backlog=backlog, callback=lambda: _settle(ready))
    await ready
    ncs.off("error", on_error)
    return Server(ncs, loop)


async def start_server(client_connected_cb: ClientConnected, host: Optional[str] = None,
                       port: Optional[int] = None, *, limit: int = _DEFAULT_LIMIT,
                       backlog: int = 100, netcore: Optional[Netcore] = None,
                       **kwds: Any) -> Server:
    """asyncio.start_server(cb, host, port): netcore listens; each connection
    calls cb(reader, writer) (a coroutine becomes a task). host None: any
    IPv4 address; port 0 or None: OS-assigned (see server.sockets). Raises
    OSError (EADDRINUSE, ...) if the listen fails. reuse_address=,
    reuse_port= and start_serving=True are accepted; ssl= and the like are not."""
    for k in ("reuse_address", "reuse_port"):
        kwds.pop(k, None)
    if kwds.pop("start_serving", True) is not True:
        raise TypeError("netcore_net.asyncio servers always start serving")
    _no_extra(kwds)
    return await _serve(client_connected_cb, (port or 0, host), limit, netcore, backlog)


async def start_unix_server(client_connected_cb: ClientConnected, path: str, *,
                            limit: int = _DEFAULT_LIMIT, backlog: int = 100,
                            netcore: Optional[Netcore] = None, **kwds: Any) -> Server:
    """asyncio.start_unix_server(cb, path) through netcore."""
    kwds.pop("start_serving", None)
    _no_extra(kwds)
    return await _serve(client_connected_cb, (path,), limit, netcore, backlog)
