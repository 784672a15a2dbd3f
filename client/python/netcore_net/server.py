"""Server: Node's net.Server over netcore (a TCP or UNIX listener).

netcore owns the listening socket; this object names it (its id), turns
listen/close/pause into commands and Listening/Connection/ServerError/
ServerClosed into Node's 'listening', 'connection', 'error' and 'close'.
A server that failed to listen can listen again (a new id, as the protocol
wants); close() stops accepting at once and 'close' comes after the last
connection is gone.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Set, Tuple

from . import _pipe
from ._proto import pb
from .emitter import EventEmitter
from .errors import NetcoreError
from ._types import AddressInfo, ErrorCallback, Message, PathArg
from .handler import Netcore, call, default_netcore
from .sock import Socket, _check_port, address_dict, is_path, set_path


class Server(EventEmitter):
    """A TCP or UNIX server (Node's net.Server).

    Events: 'listening', 'connection' (Socket), 'error' (NetcoreError),
    'close'.
    """

    def __init__(self, connection_listener: Optional[Callable[[Socket], Any]] = None,
                 allow_half_open: bool = False, netcore: Optional[Netcore] = None) -> None:
        super().__init__()
        self._nc = netcore or default_netcore()
        self.allow_half_open = allow_half_open
        self._id: Optional[int] = None
        self._state = "idle"   # idle -> binding -> listening -> closing -> idle
        self._listen_args: Tuple[Any, str, Optional[PathArg], Optional[int], int] = (0, "", None, None, 0)
        self._listen_ref = 0
        self._listen_cb: Optional[Callable[..., Any]] = None
        self._address: Message = None
        self._max_connections = 0
        self._conns: Set[Socket] = set()
        self._group = ""
        if connection_listener is not None:
            self.on("connection", connection_listener)

    # ----------------------------------------------------------------- listen

    def listen(self, *args: Any, backlog: int = 0, group: str = "", fd: Optional[int] = None,
               **kw: Any) -> Server:
        """listen([port], [host], [backlog], [callback]), listen(path, [callback]),
        listen(callback) (port 0: OS-assigned), or keywords port=, host=,
        path=, fd= (a listening fd netcore inherited: Node's listenFD),
        backlog=, group= (share the listener with handlers of that group).
        Without host, any IPv4 address. callback runs on 'listening'."""
        rest = list(args)
        callback = kw.pop("callback", None)
        if rest and isinstance(rest[0], dict):
            kw = dict(rest.pop(0), **kw)
        if rest and callable(rest[-1]):
            callback = rest.pop()
        port, host, path = kw.pop("port", None), kw.pop("host", None), kw.pop("path", None)
        fd = kw.pop("fd", fd)
        backlog = kw.pop("backlog", backlog)
        group = kw.pop("group", group)
        if kw:
            raise TypeError("unknown listen() options: %s" % ", ".join(kw))
        if rest:
            first = rest.pop(0)
            if is_path(first):
                path = first
            else:
                port = int(first) if isinstance(first, str) else first
        if rest and (isinstance(rest[0], str) or rest[0] is None):
            host = rest.pop(0)
        if rest and isinstance(rest[0], int):
            backlog = rest.pop(0)
        if self._state != "idle":
            raise NetcoreError("ERR_SERVER_ALREADY_LISTEN", syscall="listen")
        if path is None and fd is None:
            port = 0 if port is None else port
            _check_port(port)
        self._listen_args = (port, host or "", path, fd, int(backlog or 0))
        self._group = group or ""
        # Node: a listen that fails never runs its callback, not even after a
        # later listen succeeds.
        self._listen_cb = callback
        if callback is not None:
            self.once("listening", callback)
        self._state = "binding"
        self._nc.when_ready(self)
        return self

    def listen_fd(self, fd: int, callback: Optional[Callable[[], Any]] = None) -> Server:
        """Node's listenFD(fd): adopt a listening fd netcore was started with."""
        return self.listen(fd=fd, callback=callback)

    def _start_io(self) -> None:
        nc = self._nc
        self._id = nc.next_id()
        nc.register_server(self)
        port, host, path, fd, backlog = self._listen_args
        cmd = pb.Command()
        lst = cmd.listen
        lst.server_id = self._id
        if fd is not None:
            lst.fd = fd
        elif path is not None:
            set_path(lst, path)
        else:
            lst.tcp.host = host
            lst.tcp.port = port
        lst.allow_half_open = self.allow_half_open
        lst.backlog = backlog
        lst.max_connections = self._max_connections
        lst.group = self._group
        self._listen_ref = nc.send(cmd)

    # ------------------------------------------------------------ properties

    @property
    def listening(self) -> bool:
        return self._state == "listening"

    @property
    def connections(self) -> int:
        """Live connections of this server (Node's server.connections)."""
        return len(self._conns)

    @property
    def max_connections(self) -> int:
        return self._max_connections

    @max_connections.setter
    def max_connections(self, n: int) -> None:
        self._max_connections = int(n)
        if self._id is not None and self._state in ("binding", "listening"):
            cmd = pb.Command()
            cmd.server_set_max_connections.server_id = self._id
            cmd.server_set_max_connections.max_connections = self._max_connections
            self._nc.send(cmd)

    maxConnections = max_connections

    @property
    def id(self) -> Optional[int]:
        return self._id

    def address(self) -> Optional[AddressInfo]:
        """Node's server.address(): {address, family, port} for TCP, {address}
        (the path) for UNIX; None when not listening."""
        if self._state != "listening" or self._address is None:
            return None
        return address_dict(self._address)

    # ------------------------------------------------------------ operations

    def close(self, callback: Optional[ErrorCallback] = None) -> Server:
        """Stops accepting now; 'close' once the last connection is gone.
        callback(err) runs then (err is ERR_SERVER_NOT_RUNNING if the server
        was not listening)."""
        loop = self._nc.loop
        if self._state in ("idle", "closing"):
            if callback is not None:
                loop.call_soon(call, callback,
                               NetcoreError("ERR_SERVER_NOT_RUNNING", syscall="close"))
            return self
        if callback is not None:
            on_close = callback
            self.once("close", lambda: on_close(None))
        if self._id is None:
            # Still waiting for Welcome: nothing to undo in netcore.
            self._nc.cancel_waiting(self)
            self._state = "closing"
            loop.call_soon(self._closed)
            return self
        self._state = "closing"
        cmd = pb.Command()
        cmd.server_close.server_id = self._id
        self._nc.send(cmd)
        return self

    def pause(self, msecs: float = 1000) -> Server:
        """Node's server.pause(msecs): accept nothing for msecs."""
        if self._id is not None and self._state == "listening":
            cmd = pb.Command()
            cmd.server_pause.server_id = self._id
            cmd.server_pause.msecs = int(msecs)
            self._nc.send(cmd)
        return self

    def get_connections(self, callback: Callable[[Optional[BaseException], int], Any]) -> Server:
        """Node's server.getConnections(cb): cb(None, count)."""
        self._nc.loop.call_soon(call, callback, None, len(self._conns))
        return self

    # ---------------------------------------------------------------- events

    def _on_listening(self, m: Message) -> None:
        self._address = m.address
        if self._state == "binding":
            self._state = "listening"
            self.emit("listening")

    def _on_server_error(self, m: Message) -> None:
        self._fail(NetcoreError(m.code, m.message or None, syscall="listen",
                                address=self._err_address(), port=self._err_port()))

    def _err_address(self) -> Optional[str]:
        port, host, path, fd, _ = self._listen_args
        return os.fsdecode(path) if path is not None else (host or None)

    def _err_port(self) -> Optional[int]:
        port, host, path, fd, _ = self._listen_args
        return port if path is None and fd is None else None

    def _fail(self, err: NetcoreError) -> None:
        """The listen failed: the id is dead, the server may listen again."""
        self._nc.unregister_server(self)
        self._id = None
        closing = self._state == "closing"
        self._state = "idle"
        if self._listen_cb is not None:
            self.off("listening", self._listen_cb)
            self._listen_cb = None
        self._nc.release(self)
        self.emit("error", err)
        if closing:
            self.emit("close")

    def _on_server_closed(self, m: Message) -> None:
        nc = self._nc
        nc.unregister_server(self)
        if nc.reconnect and nc._shutting_down and self._link_lost():
            nc._waiting.append(self)  # netcore restarts: listen on the next one
            return
        self._closed()

    def _closed(self) -> None:
        self._id = None
        self._state = "idle"
        self._address = None
        self._nc.release(self)
        self.emit("close")

    def _on_connection(self, m: Message, seq: int = 0, adopted: bool = False) -> None:
        """Connection, or Adopted (a connection of a handler that died or
        left: 'connection' with sock.adopted True, PROTOCOL.md 13)."""
        s = Socket._adopt(self._nc, m.socket_id, m.local, m.remote, m.allow_half_open,
                          server=self)
        s._seq = seq
        s.adopted = adopted
        if adopted:
            s._bytes_read = m.bytes_read
            _pipe.adopt(self._nc, s, m)  # a pipe inside netcore carries on (PROTOCOL.md 17)
        self._conns.add(s)
        self.emit("connection", s)

    def _socket_closed(self, sock: Socket) -> None:
        self._conns.discard(sock)

    def _on_command_error(self, err: NetcoreError, m: Message) -> None:
        if err.code == "EBADF":
            return
        if m.ref and m.ref == self._listen_ref and self._state in ("binding", "closing"):
            self._fail(err)
        else:
            self.emit("error", err)

    def _on_shutdown(self, err: NetcoreError) -> None:
        if self._state == "listening":
            call(self.emit, "error", err)

    def _link_lost(self) -> bool:
        """The link to netcore was lost and the handler reconnects: True if
        this server listens again after the next Welcome (it was listening or
        about to), with the port netcore had chosen for a port-0 listen."""
        if self._state not in ("binding", "listening"):
            return False
        self._id = None
        port, host, path, fd, backlog = self._listen_args
        if path is None and fd is None and port == 0 and self._address is not None:
            self._listen_args = (self._address.port, host, path, fd, backlog)
        self._state = "binding"
        return True

    def _lost(self, err: NetcoreError) -> None:
        if self._state == "idle":
            return
        self._id = None
        self._state = "idle"
        call(self.emit, "error", err)
        call(self.emit, "close")

    # Node's names.
    listenFD = listen_fd
    getConnections = get_connections


def create_server(*args: Any, allow_half_open: bool = False, netcore: Optional[Netcore] = None
                  ) -> Server:
    """Node's net.createServer([options], [connection_listener])."""
    rest = list(args)
    listener = None
    if rest and isinstance(rest[0], dict):
        opts = rest.pop(0)
        allow_half_open = opts.get("allow_half_open", opts.get("allowHalfOpen", allow_half_open))
    if rest:
        listener = rest.pop(0)
    return Server(listener, allow_half_open=allow_half_open, netcore=netcore)
