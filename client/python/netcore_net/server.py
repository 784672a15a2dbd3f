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
import socket as _socket
from typing import Any, Callable, Dict, Optional, Set, Tuple

from . import _pipe
from ._proto import pb
from .emitter import EventEmitter
from .errors import NetcoreError
from ._types import AddressInfo, ErrorCallback, Message, PathArg
from .handler import Netcore, call, default_netcore
from .sock import Socket, _check_port, abs_path, address_dict, is_path, set_path


def _any_address(port: int) -> Optional[Tuple[str, int]]:
    """Node's listen() without a host binds at once: a probe bind of "::"
    (dual-stack), else 0.0.0.0, tells the address (and, for port 0, a free
    port that netcore is then asked for). None if neither binds."""
    for family, host in ((_socket.AF_INET6, "::"), (_socket.AF_INET, "0.0.0.0")):
        try:
            with _socket.socket(family, _socket.SOCK_STREAM) as s:
                if family == _socket.AF_INET6:
                    s.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 0)
                s.bind((host, port))
                return host, s.getsockname()[1]
        except OSError:
            continue
    return None


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
        self._state = "idle"   # idle -> binding -> listening -> idle (close())
        self._closing_ids: Set[int] = set()  # closed incarnations awaiting ServerClosed
        self._close_pending = 0  # closes before Welcome, their 'close' still to come
        self._early: Optional[AddressInfo] = None  # address() known at listen() time
        self._probed = False  # port 0 became the probe's port
        self._refd = True
        self._listen_args: Tuple[Any, str, Optional[PathArg], Optional[int], int] = (0, "", None, None, 0)
        self._listen_ref = 0
        self._listen_cb: Optional[Callable[..., Any]] = None
        self._address: Message = None
        self._max_connections = 0
        self._conns: Dict[Socket, int] = {}  # live connections -> the server id they came under
        self._draining: Set[int] = set()  # closing ids netcore forgot: 'close' when their last connection goes
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
        self._early = None
        self._probed = False
        if path is None and fd is None:
            port = 0 if port is None else port
            _check_port(port)
            if not host:
                # As Node: bound at once, address() known now.
                any_addr = _any_address(port)
                if any_addr is not None:
                    self._probed = port == 0
                    port = any_addr[1]
                    self._early = {"address": any_addr[0], "port": port,
                                   "family": "IPv6" if ":" in any_addr[0] else "IPv4"}
        elif path is not None:
            self._early = {"address": os.fsdecode(path)}
            path = abs_path(path)
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
        self._listen_cmd = cmd

    def _listen_again(self) -> None:
        """The resumed netcore lacks this server (its Listen was lost with the
        old one, protocol 1.4): the same Listen, the same id."""
        self._listen_ref = self._nc.send(self._listen_cmd)

    # ------------------------------------------------------------ properties

    @property
    def listening(self) -> bool:
        return self._state == "listening" or (self._state == "binding" and self._early is not None)

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
        if self._state == "binding" and self._early is not None:
            return dict(self._early)
        if self._state != "listening" or self._address is None:
            return None
        if self._early is not None and "port" not in self._early:
            return dict(self._early)  # a path: as given (Node's too), even relative
        return address_dict(self._address)

    # ------------------------------------------------------------ operations

    def close(self, callback: Optional[ErrorCallback] = None) -> Server:
        """Stops accepting now; 'close' once the last connection is gone.
        callback(err) runs then (err is ERR_SERVER_NOT_RUNNING if the server
        was not listening)."""
        loop = self._nc.loop
        if self._state == "idle":
            if callback is not None:
                loop.call_soon(call, callback,
                               NetcoreError("ERR_SERVER_NOT_RUNNING", syscall="close"))
            return self
        if callback is not None:
            on_close = callback
            self.once("close", lambda: on_close(None))
        # The server is free to listen again at once (Node's too); the
        # closed incarnation's 'close' follows on its own.
        self._state = "idle"
        self._address = None
        self._early = None
        if self._id is None:
            # Still waiting for Welcome: nothing to undo in netcore.
            self._nc.cancel_waiting(self)
            self._close_pending += 1
            loop.call_soon(self._closed_early)
            return self
        self._closing_ids.add(self._id)
        cmd = pb.Command()
        cmd.server_close.server_id = self._id
        self._id = None
        self._nc.send(cmd)
        return self

    def _close_again(self, skip: Set[int]) -> None:
        """The session resumed on a new netcore (PROTOCOL.md 16.1): every
        closed incarnation still waiting for its ServerClosed (but those in
        skip, whose ServerClose is about to go anyway) says ServerClose again.
        netcore answers ServerClosed (it closes it now, or its last
        connection closed), Error ERR_SERVER_NOT_RUNNING (closing already:
        ServerClosed follows) or Error EBADF (it closed on the old netcore
        and the ServerClosed was lost, or the old netcore shipped the
        closing server's connections but not the server: 'close' then waits
        for the last of them): _on_command_error."""
        for sid in sorted(self._closing_ids):
            if sid not in skip:
                cmd = pb.Command()
                cmd.server_close.server_id = sid
                self._nc.send(cmd)

    def _closed_early(self) -> None:
        self._close_pending -= 1
        self._maybe_release()
        self.emit("close")

    def _maybe_release(self) -> None:
        if self._state == "idle" and not self._closing_ids and not self._close_pending:
            self._nc.release(self)

    def ref(self) -> Server:
        """Node's server.ref(): this server keeps run() going (the default)."""
        self._refd = True
        self._nc.ref_changed()
        return self

    def unref(self) -> Server:
        """Node's server.unref(): run() may end while this server listens."""
        self._refd = False
        self._nc.ref_changed()
        return self

    def _keeps_alive(self) -> bool:
        # An unref'd server still waits for netcore's answer to listen() and
        # close() ('listening', 'close'), which Node gives in the same turn.
        return self._refd or self._state == "binding" or bool(self._closing_ids) or self._close_pending > 0

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
        if m.server_id != self._id:
            return
        self._address = m.address
        if self._early is not None and "port" in self._early:
            self._early["port"] = m.address.port  # the probed port was taken: netcore's
        if self._state == "binding":
            self._state = "listening"
            self.emit("listening")

    def _on_server_error(self, m: Message) -> None:
        if m.server_id in self._closing_ids:
            # Closed before netcore refused it: that incarnation is over.
            self._close_done(m.server_id)
            return
        if m.server_id != self._id:
            return
        if self._probed and m.code == "EADDRINUSE":
            # Another process took the probed port first: let netcore pick one.
            self._nc.unregister_server(self)
            self._probed = False
            port, host, path, fd, backlog = self._listen_args
            self._listen_args = (0, host, path, fd, backlog)
            self._start_io()
            return
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
        self._state = "idle"
        self._early = None
        if self._listen_cb is not None:
            self.off("listening", self._listen_cb)
            self._listen_cb = None
        self._maybe_release()
        self.emit("error", err)

    def _on_server_closed(self, m: Message) -> None:
        nc = self._nc
        if m.server_id in self._closing_ids:
            # An incarnation we closed: the server may be listening again.
            self._close_done(m.server_id)
            return
        if m.server_id != self._id:
            return
        nc.unregister_server(self)
        if nc.reconnect and nc._shutting_down and self._link_lost():
            nc._waiting.append(self)  # netcore restarts: listen on the next one
            return
        self._closed()

    def _closed(self) -> None:
        self._id = None
        self._state = "idle"
        self._address = None
        self._early = None
        self._maybe_release()
        self.emit("close")

    def _on_connection(self, m: Message, seq: int = 0, adopted: bool = False) -> None:
        """Connection, or Adopted (a connection of a handler that died or
        left: 'connection' with sock.adopted True, PROTOCOL.md 13). One for
        an incarnation close() ended (it raced the ServerClose, or came from
        a netcore that had not read it yet) is destroyed, unseen: a closed
        server accepts nothing (Node's either)."""
        if m.server_id in self._closing_ids:
            s = Socket._adopt(self._nc, m.socket_id, m.local, m.remote, m.allow_half_open)
            s._seq = seq
            s.destroy()
            return
        s = Socket._adopt(self._nc, m.socket_id, m.local, m.remote, m.allow_half_open,
                          server=self)
        s._seq = seq
        s.adopted = adopted
        if adopted:
            s._bytes_read = m.bytes_read
            # bytes_written goes on from the old owner's writes: those the
            # kernel took and those still queued in netcore (PROTOCOL.md 13).
            s._acked_written = m.bytes_written
            s._adopted_written = m.bytes_written + m.queued_bytes
            _pipe.adopt(self._nc, s, m)  # a pipe inside netcore carries on (PROTOCOL.md 17)
        self._conns[s] = m.server_id
        self.emit("connection", s)

    def _socket_closed(self, sock: Socket) -> None:
        sid = self._conns.pop(sock, None)
        if sid in self._draining and sid not in self._conns.values():
            # Node: 'close' on the tick after the last connection's end.
            self._nc.loop.call_soon(self._close_done, sid)

    def _close_done(self, sid: int) -> None:
        """A closed incarnation is over: 'close' (and the close callback),
        once."""
        if sid not in self._closing_ids:
            return
        self._closing_ids.discard(sid)
        self._draining.discard(sid)
        self._nc.unregister_server(self, sid)
        self._maybe_release()
        self.emit("close")

    def _on_command_error(self, err: NetcoreError, m: Message) -> None:
        if m.server_id in self._closing_ids:
            # A closed incarnation netcore does not know (its Listen was
            # refused, or it is gone already): no ServerClosed will come.
            # EBADF after a resume: the old netcore did not ship a closing
            # server but did ship its connections; as Node, 'close' waits
            # for the last of them (_socket_closed).
            if m.command == "listen" or (err.code == "EBADF"
                                         and m.server_id not in self._conns.values()):
                self._close_done(m.server_id)
            elif err.code == "EBADF":
                self._draining.add(m.server_id)
            return
        if err.code == "EBADF":
            return
        if m.ref and m.ref == self._listen_ref and self._state == "binding":
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
        self._drop_closing()
        if self._state not in ("binding", "listening"):
            return False
        self._id = None
        port, host, path, fd, backlog = self._listen_args
        if path is None and fd is None and port == 0 and self._address is not None:
            self._listen_args = (self._address.port, host, path, fd, backlog)
        self._state = "binding"
        return True

    def _drop_closing(self) -> None:
        """The link is gone: closed incarnations will hear nothing more."""
        if self._closing_ids:
            self._closing_ids.clear()
            self._draining.clear()
            self._maybe_release()
            call(self.emit, "close")

    def _lost(self, err: NetcoreError) -> None:
        self._drop_closing()
        if self._state == "idle":
            return
        self._id = None
        self._state = "idle"
        self._maybe_release()
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
