"""Socket: Node's net.Socket over netcore (one TCP or UNIX connection).

The real socket lives in netcore; this object keeps what Node's socket knows
and turns method calls into commands and events into Node's events:
'connect', 'data', 'end', 'drain', 'timeout', 'error', 'close' (had_error),
plus 'finish' (our FIN was sent), 'fd' (a socket received by fd passing) and
'lookup'-free connects (netcore resolves names).

Backpressure, both ways:
- reads: netcore sends at most credit_window unconsumed bytes. Data handed to
  'data' listeners is consumed; credit goes back in batches of a quarter window.
  pause() sends Pause and stops granting; data already on its way is kept and
  given out on resume(), which sends Resume and the credit owed.
- writes: buffer_size is the bytes written but not yet acknowledged by
  WriteAck (acks are cumulative: `writes` Write/End commands completed, in
  order, so callbacks wait in a FIFO). write() returns False once buffer_size
  reaches high_water_mark (16 KiB, Node's default); 'drain' follows when it
  is back to 0.

pipe(dest) runs inside netcore when it can (_pipe.py says when, and how the
stream comes back to the handler); unpipe() as Node's.

Like the seed (Node v0.4), data is emitted whether or not a 'data' listener is
attached. Without allow_half_open, the peer's FIN ('end') makes this side end()
too once the 'end' listeners ran (netcore leaves that decision to handlers).
"""

from __future__ import annotations

import collections
import os
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple, Union, cast

from . import _pipe, _wire, codec
from ._proto import pb
from .emitter import EventEmitter
from .errors import NetcoreError
from ._types import AddressInfo, Data, ErrorCallback, Message, PathArg
from .handler import Netcore, call, default_netcore, log

if TYPE_CHECKING:
    from .server import Server

HIGH_WATER_MARK = 16 * 1024

_FAMILY: Dict[int, str] = {pb.FAMILY_IPV4: "IPv4", pb.FAMILY_IPV6: "IPv6", pb.FAMILY_UNIX: "unix"}


def address_text(a: Message) -> str:
    """The address of an Address message as a str. A UNIX path that is not
    UTF-8 comes as address_bytes (PROTOCOL.md 1.2): os.fsdecode gives it back
    exactly (surrogateescape), so os.fsencode() of the result is the path."""
    if a.address_bytes:
        return os.fsdecode(a.address_bytes)
    return str(a.address)


def set_path(msg: Message, path: PathArg) -> None:
    """Puts a UNIX path (str, bytes or os.PathLike) into a Listen or Connect:
    as path when it is UTF-8, else its exact bytes as path_bytes."""
    raw = os.fsencode(path)
    try:
        msg.path = raw.decode("utf-8")
    except UnicodeDecodeError:
        msg.path_bytes = raw


def abs_path(path: PathArg) -> PathArg:
    """A UNIX path is the handler's: a relative one is resolved against this
    process's working directory before it goes to netcore (whose cwd is not
    ours). Bytes stay bytes; anything else becomes str."""
    p = os.fspath(path)
    if os.path.isabs(p):
        return p
    if isinstance(p, bytes):
        return os.path.join(os.getcwdb(), p)
    return os.path.join(os.getcwd(), p)


def is_path(x: object) -> bool:
    """Whether a listen()/connect() argument is a UNIX path (not a port)."""
    if isinstance(x, str):
        return not x.isdigit()
    return isinstance(x, (bytes, os.PathLike))


def address_dict(a: Message) -> AddressInfo:
    """Node's address(): {address, family, port} for TCP, {address} for UNIX."""
    if a is None:
        return {}
    if a.family == pb.FAMILY_UNIX:
        return {"address": address_text(a)}
    return {"address": a.address, "family": _FAMILY.get(a.family, ""), "port": a.port}


class _Write:
    """A Write or End waiting for its ack; its payload is kept for a netcore
    that resumes the session and never got it (PROTOCOL.md 16.1). cmd is the
    Command, or for a Write that write()'s short path encoded by hand, the
    Write's serialized body (_wire.py)."""
    __slots__ = ("ref", "nbytes", "callback", "is_end", "seq", "cmd", "payload")

    def __init__(self, nbytes: int, callback: Optional[ErrorCallback], is_end: bool) -> None:
        self.ref = 0
        self.nbytes = nbytes
        self.callback = callback
        self.is_end = is_end
        self.seq = 0
        self.cmd: Message = None
        self.payload: Optional[bytes] = None


class _PipeRec:
    """One destination of pipe(): its listeners, removed by unpipe()."""
    __slots__ = ("dest", "end", "ondata", "ondrain", "onend", "ondest_close", "awaiting_drain")

    def __init__(self, dest: "Socket", end: bool) -> None:
        self.dest = dest
        self.end = end
        self.awaiting_drain = False


class Socket(EventEmitter):
    """A TCP or UNIX stream socket (Node's net.Socket)."""

    def __init__(self, allow_half_open: bool = False, netcore: Optional[Netcore] = None,
                 high_water_mark: int = HIGH_WATER_MARK) -> None:
        super().__init__()
        self._nc = netcore or default_netcore()
        self.allow_half_open = allow_half_open
        self.high_water_mark = high_water_mark
        self.server: Optional[Server] = None
        self._refd = True
        self._decoder: Optional[codec.Decoder] = None  # set_encoding() outlives a reconnect
        # (id, Write body, Write body with ack_now, socket_id field) for the
        # hand-encoded Write and Credit (_wire.py); rebuilt when the id changes.
        self._enc: Optional[Tuple[int, bytes, bytes, bytes]] = None
        self._reset_connection()

    def _reset_connection(self) -> None:
        """Everything of one connection: connect() after 'close' starts here
        again, as Node's reconnect of the same object does (counters at 0)."""
        self._id: Optional[int] = None
        self._state = "new"          # new -> connecting -> open -> closed
        self._endpoint: Union[Tuple[int, str], PathArg, None] = None  # (port, host) or path for connect
        self._pre: List[Tuple[Message, Optional[bytes], Optional[_Write]]] = []  # commands waiting for our id: (cmd, payload, entry)
        self._connect_ref = 0
        self._local: Message = None
        self._remote: Message = None
        self._seq = 0
        # reading
        self._readable = True
        self._paused = False
        self._rbuf: Deque[bytes] = collections.deque()
        self._eof_pending = False
        self._close_pending: Optional[Tuple[bool, Optional[int], Optional[int]]] = None
        self._consumed = 0
        self._bytes_read = 0
        self.adopted = False  # came from a handler that went (PROTOCOL.md 13)
        # writing
        self._writable = True
        self._ended = False
        self._wq: Deque[_Write] = collections.deque()
        self._buffer_size = 0
        self._need_drain = False
        self._acked_written = 0
        self._adopted_written = 0  # Adopted: the old owner's bytes written and queued
        # The options as this side set them (Hello.resume_sockets, protocol 1.4).
        self._opt_timeout = 0
        self._opt_no_delay: Optional[bool] = None
        self._opt_keep_alive: Optional[bool] = None
        self._opt_keep_alive_delay = 0
        # Session resumption (PROTOCOL.md 16.1): totals netcore is told.
        self._write_seq = 0   # Write/End commands sent
        self._acked_seq = 0   # of them acknowledged
        self._acked_bytes = 0
        self._credited = 0    # bytes given back by Credit
        self._got_end = False
        self._connect_cmd: Optional[Message] = None  # sent again if the resumed netcore lacks it
        self._final_written: Optional[int] = None
        self._error: Optional[BaseException] = None
        self._close_emitted = False
        self.destroyed = False
        self._backlog = 0  # netcore's queue for this socket at its last ack (the kernel refused it)
        self._shutdown_failed = False  # our End met ENOTCONN: Node ignores shutdown errors
        self._uncounted = False  # left server.connections (destroy() or close)
        # pipes (_pipe.py)
        self._pipes: List[_PipeRec] = []  # destinations of pipe(), in order
        self._offload: Optional[_pipe.Offload] = None  # as a source: the pipe netcore runs
        self._piped_in = 0            # as a destination: bytes pipes inside netcore moved into it
        self._own_acked = 0           # bytes of our own writes acknowledged
        self._pipe_ending = False     # a source piping into it ended: netcore ends it
        self._pipe_ended = False      # netcore ended it for a pipe
        self._finish_waits_pipe = False  # end() was called while _pipe_ending

    @classmethod
    def _adopt(cls, nc: Netcore, socket_id: int, local: Message, remote: Message,
               allow_half_open: bool, server: Optional[Server] = None) -> Socket:
        """A socket netcore created (accepted, or received as an fd)."""
        s = cls(allow_half_open=allow_half_open, netcore=nc)
        s._id = socket_id
        s._state = "open"
        s._local = local
        s._remote = remote
        s.server = server
        nc.register_socket(s)
        nc.hold(s)
        return s

    # ------------------------------------------------------------ properties

    @property
    def connecting(self) -> bool:
        return self._state in ("new", "connecting") and self._endpoint is not None

    @property
    def pending(self) -> bool:
        return self._state != "open"

    @property
    def ready_state(self) -> str:
        if self._state == "closed":
            return "closed"
        if self._state != "open":
            return "opening"
        if self._readable and self._writable:
            return "open"
        return "readOnly" if self._readable else ("writeOnly" if self._writable else "closed")

    @property
    def buffer_size(self) -> int:
        """Bytes written but not yet handed to the kernel by netcore."""
        return self._buffer_size

    @property
    def writable_length(self) -> int:
        return self._buffer_size

    @property
    def bytes_read(self) -> int:
        return self._bytes_read

    @property
    def bytes_written(self) -> int:
        if self._final_written is not None:
            return self._final_written
        return max(self._acked_written, self._adopted_written + self._own_acked + self._piped_in) + \
            self._buffer_size

    @property
    def remote_address(self) -> Optional[str]:
        return self._remote.address if self._remote is not None and self._remote.family != pb.FAMILY_UNIX else None

    @property
    def remote_port(self) -> Optional[int]:
        return self._remote.port if self._remote is not None and self._remote.family != pb.FAMILY_UNIX else None

    @property
    def remote_family(self) -> Optional[str]:
        return _FAMILY.get(self._remote.family) if self._remote is not None else None

    @property
    def remote_path(self) -> Optional[str]:
        """The peer's UNIX path ("" if its socket is unnamed; None for TCP).
        Not in Node, which cannot see it; netcore reports it."""
        return address_text(self._remote) if self._remote is not None and self._remote.family == pb.FAMILY_UNIX else None

    @property
    def local_address(self) -> Optional[str]:
        return address_text(self._local) if self._local is not None else None

    @property
    def local_port(self) -> Optional[int]:
        return self._local.port if self._local is not None and self._local.family != pb.FAMILY_UNIX else None

    @property
    def id(self) -> Optional[int]:
        """netcore's id of this socket (None until it is known)."""
        return self._id

    def address(self) -> AddressInfo:
        return address_dict(self._local)

    # --------------------------------------------------------------- connect

    def connect(self, *args: Any, **kw: Any) -> Socket:
        """connect(port, [host], [callback]) or connect(path, [callback]);
        also keywords port=, host=, path=. 'connect' follows, or 'error' and
        'close'. Raises ERR_SOCKET_BAD_PORT at once for a bad port, as Node."""
        port, host, path, callback = _parse_endpoint(args, kw, "localhost")
        if self._state == "closed" and self._close_emitted:
            self._reset_connection()  # Node reconnects a socket after 'close'
        if self._state != "new":
            raise NetcoreError("EISCONN", syscall="connect")
        if path is None:
            _check_port(port)
            self._endpoint = (port, host)
        else:
            self._endpoint = abs_path(path)
        if callback is not None:
            self.once("connect", callback)
        self._state = "connecting"
        self._nc.when_ready(self)
        return self

    def _start_io(self) -> None:
        """Called by Netcore once Welcome came: name the socket and send Connect."""
        nc = self._nc
        self._id = nc.next_id()
        nc.register_socket(self)
        cmd = pb.Command()
        cmd.connect.socket_id = self._id
        cmd.connect.allow_half_open = self.allow_half_open
        if isinstance(self._endpoint, tuple):
            cmd.connect.tcp.port = self._endpoint[0]
            cmd.connect.tcp.host = self._endpoint[1]
        elif self._endpoint is not None:
            set_path(cmd.connect, self._endpoint)
        self._connect_ref = nc.send(cmd)
        self._connect_cmd = cmd
        pre, self._pre = self._pre, []
        for cmd, payload, entry in pre:
            self._send(cmd, payload, entry)

    def _send(self, cmd: Message, payload: Optional[bytes] = None,
              entry: Optional[_Write] = None) -> None:
        """Sends a socket command, or keeps it until our id is known. cmd's
        socket_id is filled in here."""
        if self._id is None:
            self._pre.append((cmd, payload, entry))
            return
        getattr(cmd, cmd.WhichOneof("command")).socket_id = self._id
        ref = self._nc.send(cmd, payload)
        if entry is not None:
            entry.ref = ref
            self._write_seq += 1
            entry.seq, entry.cmd, entry.payload = self._write_seq, cmd, payload

    def _command(self, name: str, **fields: Any) -> Message:
        cmd = pb.Command()
        sub = getattr(cmd, name)
        sub.SetInParent()
        for k, v in fields.items():
            setattr(sub, k, v)
        return cmd

    # ----------------------------------------------------------------- write

    def write(self, data: Data, encoding: Union[str, ErrorCallback, None] = None,
              callback: Optional[ErrorCallback] = None, fd: Optional[Socket] = None) -> bool:
        """Queues data (bytes, or str in encoding, default utf8); returns False
        once buffer_size reached the high-water mark (wait for 'drain').
        callback(err) runs when netcore handed the bytes to the kernel.
        fd: another Socket of this handler whose descriptor is sent with the
        data (UNIX sockets only)."""
        if (type(data) is bytes and encoding is None and callback is None and fd is None
                and self._state == "open" and not self.destroyed and not self._ended
                and self._id is not None and len(data) <= self._nc.max_frame):
            return self._write_short(data)
        if callable(encoding) and callback is None:
            encoding, callback = None, encoding
        buf = codec.encode(data, cast(Optional[str], encoding))
        buffered = self._buffered()
        if self._state == "closed" or self.destroyed:
            self._fail_write(callback, NetcoreError("ERR_SOCKET_CLOSED", syscall="write"), False)
            return False
        if self._ended:
            self._fail_write(callback, NetcoreError("EPIPE", "This socket has been ended",
                                                    syscall="write"), True)
            return False
        if fd is not None:
            if fd._id is None:
                raise NetcoreError("EBADF", "the fd's socket is not open", syscall="write")
            entry = _Write(len(buf), callback, False)
            self._queue(entry)
            prompt = callback is not None or self._buffer_size >= self.high_water_mark
            self._send(self._command("write", fd_socket_id=fd._id, ack_now=prompt), buf, entry)
        else:
            self._write_chunks(buf, callback, is_end=False)
        # Node's Writable: false once what is buffered, this chunk included,
        # reaches the high-water mark (0 included).
        if buffered + len(buf) >= self.high_water_mark:
            self._need_drain = True
            return False
        return True

    def _write_short(self, buf: bytes) -> bool:
        """write() of bytes that fit in one frame, without a callback, on an
        open socket: what _write_chunks does for them, with the Write encoded
        by hand (the request path of every echo and server)."""
        n = len(buf)
        buffered = self._buffer_size if self._backlog > 0 else 0
        entry = _Write(n, None, False)
        self._wq.append(entry)
        self._buffer_size += n
        enc = self._enc
        if enc is None or enc[0] != self._id:
            enc = self._encode_id()
        # Lazy acks, as _write_chunks: a prompt one when a 'drain' becomes due
        # or an unref()'d socket waits for it.
        body = enc[2] if self._buffer_size >= self.high_water_mark or not self._refd else enc[1]
        entry.ref = self._nc.send_encoded(_wire.TAG_WRITE, body, buf)
        self._write_seq += 1
        entry.seq, entry.cmd, entry.payload = self._write_seq, body, buf
        if buffered + n >= self.high_water_mark:
            self._need_drain = True
            return False
        return True

    def _encode_id(self) -> Tuple[int, bytes, bytes, bytes]:
        assert self._id is not None
        sid = _wire.sid_field(self._id)
        self._enc = (self._id, _wire.write_body(sid, False), _wire.write_body(sid, True), sid)
        return self._enc

    def _buffered(self) -> int:
        """What Node would count as buffered: bytes the kernel did not take at
        once. Bytes netcore can hand to the kernel straight away are not:
        unacknowledged bytes count only while connecting, or while netcore's
        last WriteAck reported a queue for this socket."""
        if self._state != "open" or self._backlog > 0:
            return self._buffer_size
        return 0

    def _max_frame(self) -> int:
        w = self._nc.welcome
        return int(w.max_frame) if w is not None and w.max_frame else 1 << 20

    def _write_chunks(self, buf: bytes, callback: Optional[ErrorCallback], is_end: bool) -> None:
        """One Write per max_frame bytes; the callback rides on the last."""
        limit = self._max_frame()
        view = memoryview(buf)
        start = 0
        while len(buf) - start > limit:
            entry = _Write(limit, None, False)
            self._queue(entry)
            self._send(self._command("write"), bytes(view[start:start + limit]), entry)
            start += limit
        rest = buf[start:] if start else buf
        entry = _Write(len(rest), callback, is_end)
        self._queue(entry)
        # Lazy acks (PROTOCOL.md 7): a prompt one only when something waits for
        # it: a callback, 'finish' (every End), or a 'drain' this write makes due.
        # It covers the writes before it.
        if is_end:
            self._send(self._command("end", ack_now=True), rest if rest else None, entry)
        elif callback is not None or self._buffer_size >= self.high_water_mark or not self._refd:
            self._send(self._command("write", ack_now=True), rest, entry)
        else:
            self._send(self._command("write"), rest, entry)

    def _queue(self, entry: _Write) -> None:
        self._wq.append(entry)
        self._buffer_size += entry.nbytes

    def _fail_write(self, callback: Optional[ErrorCallback], err: NetcoreError, emit: bool) -> None:
        loop = self._nc.loop
        if callback is not None:
            loop.call_soon(call, callback, err)
        if emit:
            loop.call_soon(call, self.emit, "error", err)

    def end(self, data: Union[Data, Callable[[], Any], None] = None,
            encoding: Union[str, Callable[[], Any], None] = None,
            callback: Optional[Callable[[], Any]] = None) -> Socket:
        """Half-closes: FIN after everything queued (Node's end([data])).
        callback runs on 'finish', once the FIN was sent."""
        if callable(data) and encoding is None and callback is None:
            data, callback = None, data
        elif callable(encoding) and callback is None:
            encoding, callback = None, encoding
        if self._ended or self._state == "closed" or self.destroyed:
            return self
        if callback is not None:
            self.once("finish", callback)
        buf = codec.encode(cast(Data, data), cast(Optional[str], encoding)) if data is not None else b""
        if self._pipe_ending and not buf:
            # netcore ends this socket for a pipe (_pipe.py): 'finish' comes with its Unpiped.
            self._ended = True
            self._writable = False
            self._finish_waits_pipe = True
            return self
        self._ended = True
        self._writable = False
        self._write_chunks(buf, None, is_end=True)
        return self

    def _ended_by_pipe(self) -> None:
        """netcore queued this socket's FIN behind what a pipe moved into it:
        ended, as the pipe's end() would have made it."""
        self._pipe_ended = True
        self._finish_waits_pipe = False
        self._ended = True
        self._writable = False
        self.emit("finish")

    def destroy(self, error: Optional[BaseException] = None) -> Socket:
        """Closes now, dropping queued writes. With error: 'error' then
        'close'(True); without: 'close'(False)."""
        if self.destroyed or self._state == "closed":
            return self
        self.destroyed = True
        self._uncount()  # server.connections drops now, as Node's
        self._readable = self._writable = False
        if error is not None:
            self._error = error
            self._nc.loop.call_soon(call, self.emit, "error", error)
        if self._id is not None:
            self._send(self._command("destroy"))
        else:
            self._nc.cancel_waiting(self)
            self._nc.loop.call_soon(self._finish_close, error is not None, None, None)
        return self

    # ------------------------------------------------------------------ read

    def pause(self) -> Socket:
        """Stops 'data' events; netcore stops reading this socket at once."""
        if not self._paused:
            self._paused = True
            if self._readable and self._state != "closed":
                self._send(self._command("pause"))
        return self

    def resume(self) -> Socket:
        """Starts 'data' again: what arrived meanwhile first, in order."""
        if not self._paused:
            return self
        self._paused = False
        if self._readable and self._state != "closed":
            self._send(self._command("resume"))
        while self._rbuf and not self._paused:
            self._deliver(self._rbuf.popleft())
        if not self._paused:
            self._grant(force=True)
            if self._eof_pending:
                self._eof_pending = False
                self._emit_end()
            if self._close_pending is not None and not self._eof_pending:
                args, self._close_pending = self._close_pending, None
                self._finish_close(*args)
        return self

    @property
    def is_paused(self) -> bool:
        return self._paused

    def set_encoding(self, encoding: Optional[str] = None) -> Socket:
        """'data' gives str in this encoding (utf8, ascii, latin1, base64,
        hex, utf16le), or bytes with None."""
        _pipe.hand_back(self)
        self._decoder = codec.Decoder(encoding) if encoding is not None else None
        return self

    def on(self, event: str, listener: Callable[..., Any]) -> Socket:
        """EventEmitter.on; a 'data' listener other than a pipe's takes the
        stream back from a pipe inside netcore first (_pipe.py)."""
        if event == "data" and self._offload is not None and not getattr(listener, "_nc_pipe", False):
            _pipe.hand_back(self)
        return super().on(event, listener)

    add_listener = on
    addListener = on

    def _deliver(self, chunk: bytes) -> None:
        n = len(chunk)
        if self._decoder is not None:
            text = self._decoder.write(chunk)
            if text:
                self.emit("data", text)
        else:
            self.emit("data", chunk)
        self._consumed += n
        self._grant()

    def _grant(self, force: bool = False) -> None:
        """Gives consumed bytes back as read credit at once: it joins this
        turn's batch with the writes they produced, netcore's proof that they
        were handled (PROTOCOL.md 13). A paused socket grants too: Pause has
        stopped netcore, and what still comes waits here, uncredited. So does
        one whose peer ended: Data read before the FIN and consumed after
        Ended is owed all the same, and netcore starts a pipe of this socket,
        which ends its destination, only once every byte it sent as Data is
        credited (PROTOCOL.md 17). Only a socket gone in netcore (closed,
        destroyed, failed) owes nothing."""
        if (not self._consumed or self._id is None or self._nc._resuming or self.destroyed
                or self._state == "closed" or self._error is not None):
            return
        enc = self._enc
        if enc is None or enc[0] != self._id:
            enc = self._encode_id()
        n = self._consumed
        self._nc.send_encoded(_wire.TAG_CREDIT, enc[3] + b"\x10" + _wire.varint(n))  # _wire.credit_body
        self._credited += n
        self._consumed = 0

    def _emit_end(self) -> None:
        if self._decoder is not None:
            rest = self._decoder.end()
            if rest:
                self.emit("data", rest)
        self.emit("end")
        if not self.allow_half_open:
            self.end()

    # --------------------------------------------------------------- options

    def set_timeout(self, msecs: float, callback: Optional[Callable[[], Any]] = None) -> Socket:
        """'timeout' after msecs idle (0 disables); the socket stays open."""
        if callback is not None:
            if msecs == 0:
                self.off("timeout", callback)
            else:
                self.once("timeout", callback)
        self._opt_timeout = int(msecs)
        if self._state != "closed" and not self.destroyed:
            self._send(self._command("set_timeout", msecs=int(msecs)))
        return self

    def set_no_delay(self, no_delay: bool = True) -> Socket:
        self._opt_no_delay = bool(no_delay)
        if self._state != "closed" and not self.destroyed:
            self._send(self._command("set_no_delay", enable=bool(no_delay)))
        return self

    def set_keep_alive(self, enable: bool = False, initial_delay: float = 0) -> Socket:
        self._opt_keep_alive = bool(enable)
        self._opt_keep_alive_delay = int(initial_delay)
        if self._state != "closed" and not self.destroyed:
            self._send(self._command("set_keep_alive", enable=bool(enable),
                                     initial_delay_ms=int(initial_delay)))
        return self

    # ------------------------------------------------------------------ pipe

    def pipe(self, dest: Socket, end: bool = True) -> Socket:
        """Sends everything read here to dest, pausing while dest is full
        (its write() returned False) until its 'drain'. end: dest.end() on
        'end'. Between two netcore sockets netcore moves the bytes itself
        when nothing else reads this socket (_pipe.py)."""
        if _pipe.already_piped(self, dest):
            return dest
        when = _pipe.plan(self, dest)
        _pipe.hand_back(self)  # any other consumer takes the stream back first
        self._attach_pipe(dest, end)
        if when == "now":
            _pipe.start(self, dest, end)
        elif when == "later":
            _pipe.start_when_open(self, dest, end)
        return dest

    def _attach_pipe(self, dest: Socket, end: bool) -> None:
        """The library's own pipe (Node's rules): data into dest, pause while
        dest is full, dest.end() on 'end', unpipe when dest finishes or closes."""
        rec = _PipeRec(dest, end)

        def ondata(chunk: Data) -> None:
            if dest.write(chunk) is False:
                rec.awaiting_drain = True
                self.pause()

        def ondrain() -> None:
            if rec.awaiting_drain:
                rec.awaiting_drain = False
                self.resume()

        def onend() -> None:
            dest.end()

        def ondest_close(*_: Any) -> None:
            self.unpipe(dest)

        ondata._nc_pipe = True  # type: ignore[attr-defined]
        rec.ondata, rec.ondrain, rec.onend, rec.ondest_close = ondata, ondrain, onend, ondest_close
        self._pipes.append(rec)
        self.on("data", ondata)
        dest.on("drain", ondrain)
        if end:
            self.on("end", onend)
        dest.on("finish", ondest_close)
        dest.on("close", ondest_close)
        if dest.listener_count("pipe"):
            dest.emit("pipe", self)

    def unpipe(self, dest: Optional[Socket] = None) -> Socket:
        """Node's unpipe([dest]): stops piping into dest (every destination
        without one); this socket pauses once it pipes nowhere, and dest
        gets 'unpipe'. A pipe inside netcore hands the stream back first."""
        o = self._offload
        if o is not None and (dest is None or o.dest is dest):
            _pipe.hand_back(self)
        recs = [r for r in self._pipes if dest is None or r.dest is dest]
        if not recs:
            return self
        for r in recs:
            self._pipes.remove(r)
            self.off("data", r.ondata)
            self.off("end", r.onend)
            r.dest.off("drain", r.ondrain)
            r.dest.off("finish", r.ondest_close)
            r.dest.off("close", r.ondest_close)
        if not self._pipes:
            self.pause()
        for r in recs:
            r.dest.emit("unpipe", self)
        return self

    @property
    def pipes(self) -> List[Socket]:
        """The destinations this socket pipes into (adopted pipes included)."""
        return [r.dest for r in self._pipes]

    # ---------------------------------------------------------------- events

    def _check_seq(self, seq: int) -> None:
        if seq and seq != self._seq + 1:
            log.error("socket %d: event seq %d after %d (a gap)", self._id, seq, self._seq)
        self._seq = seq

    def _on_connected(self, m: Message, payload: Optional[bytes], seq: int) -> None:
        self._check_seq(seq)
        self._local = m.local
        self._remote = m.remote
        self._state = "open"
        self.emit("connect")
        if self.listener_count("ready"):
            self.emit("ready")

    def _on_data(self, m: Message, payload: bytes, seq: int) -> None:
        """A Data event (m: its Data message, or None from _wire's decoder:
        nothing of it is read here)."""
        if seq == self._seq + 1:
            self._seq = seq
        else:
            self._check_seq(seq)
        n = len(payload)
        self._bytes_read += n
        if self._paused or self._rbuf:
            self._rbuf.append(payload)
        elif self._decoder is None:
            lst = self._listeners.get("data")
            if lst and len(lst) == 1:
                lst[0](payload)  # emit("data", payload), without its call
            else:
                self.emit("data", payload)
            self._consumed += n
            self._grant()
        else:
            self._deliver(payload)

    def _on_ended(self, m: Message, payload: Optional[bytes], seq: int) -> None:
        self._check_seq(seq)
        self._got_end = True
        self._readable = False
        _pipe.on_source_ended(self)
        if self._paused:
            # Node gives 'end' only once everything before it was read.
            self._eof_pending = True
            return
        self._emit_end()

    def _on_write_ack(self, m: Message, payload: Optional[bytes], seq: int) -> None:
        self._check_seq(seq)
        self._apply_ack(m)

    def _apply_ack(self, m: Message) -> None:
        """A WriteAck, alone or riding along with another event (Event.ack)."""
        self._acked_seq += m.writes
        self._acked_bytes += m.bytes
        if m.writes == 1 and self._wq:
            # The usual ack: one write.
            e = self._wq.popleft()
            self._buffer_size -= e.nbytes
            self._own_acked += e.nbytes
            self._acked_written = m.bytes_written
            self._backlog = m.queued_bytes
            if e.callback is not None:
                e.callback(None)
            if e.is_end:
                self.emit("finish")
            if self._need_drain and self._buffer_size == 0:
                self._need_drain = False
                self.emit("drain")
            return
        done = []
        for _ in range(m.writes):
            if not self._wq:
                break
            e = self._wq.popleft()
            self._buffer_size -= e.nbytes
            self._own_acked += e.nbytes
            done.append(e)
        self._acked_written = m.bytes_written
        self._backlog = m.queued_bytes
        for e in done:
            if e.callback is not None:
                e.callback(None)
            if e.is_end:
                self.emit("finish")
        if self._need_drain and self._buffer_size == 0:
            self._need_drain = False
            self.emit("drain")

    def _on_timeout(self, m: Message, payload: Optional[bytes], seq: int) -> None:
        self._check_seq(seq)
        self.emit("timeout")

    def _on_socket_error(self, m: Message, payload: Optional[bytes], seq: int) -> None:
        self._check_seq(seq)
        if m.code == "ENOTCONN" and self._ended:
            # Our End found the connection already dropped (shutdown(2) says
            # ENOTCONN). Node ignores shutdown errors: 'finish', 'end', then
            # 'close'(False) once netcore's Closed arrives.
            self._shutdown_failed = True
            for e in list(self._wq):
                if e.is_end:
                    self._wq.remove(e)
                    self._buffer_size -= e.nbytes
                    self.emit("finish")
            if self._readable:
                self._readable = False
                if self._paused:
                    self._eof_pending = True
                else:
                    self._emit_end()
            return
        ep = self._endpoint
        address: Optional[str] = None
        port: Optional[int] = None
        syscall = "connect" if self._state == "connecting" else None
        if syscall and isinstance(ep, tuple):
            port, address = ep
        elif syscall and ep is not None and not isinstance(ep, tuple):
            address = os.fsdecode(ep)
        err = NetcoreError(m.code, m.message or None, syscall=syscall, address=address,
                           port=port)
        self._error = err
        self._readable = self._writable = False
        self.emit("error", err)

    def _on_unpiped(self, m: Message, payload: Optional[bytes], seq: int) -> None:
        self._check_seq(seq)
        _pipe.on_unpiped(self, m)

    def _on_fd(self, m: Message, payload: Optional[bytes], seq: int) -> None:
        self._check_seq(seq)
        s = Socket._adopt(self._nc, m.new_socket_id, m.local, m.remote, self.allow_half_open)
        self.emit("fd", s)

    def _on_closed(self, m: Message, payload: Optional[bytes], seq: int) -> None:
        self._check_seq(seq)
        self._nc.unregister_socket(self)
        had_error = m.had_error and not self._shutdown_failed
        if (self._rbuf or self._eof_pending) and not had_error and not self.destroyed:
            # Paused with data still unread: 'close' waits until it was read.
            self._close_pending = (had_error, m.bytes_read, m.bytes_written)
            self._state = "closed"
            return
        self._finish_close(had_error, m.bytes_read, m.bytes_written)

    def _on_command_error(self, err: NetcoreError, m: Message) -> None:
        """netcore rejected one of our commands (nothing changed in netcore)."""
        if err.code == "EBADF":
            return  # the socket is gone in netcore: its Closed is on the way or came
        if m.command in ("pipe", "unpipe"):
            return  # it crossed the pipe's own end: the Unpiped or Closed says what happened
        if m.ref and m.ref == self._connect_ref:
            self._error = err
            self._nc.unregister_socket(self)
            self.emit("error", err)
            self._finish_close(True, None, None)
            return
        for e in self._wq:
            if e.ref == m.ref and m.ref:
                self._wq.remove(e)
                self._buffer_size -= e.nbytes
                if e.callback is not None:
                    e.callback(err)
                break
        self.emit("error", err)

    def _finish_close(self, had_error: bool, bytes_read: Optional[int],
                      bytes_written: Optional[int]) -> None:
        if self._close_emitted:
            return
        self._close_emitted = True
        self._state = "closed"
        self._readable = self._writable = False
        self._final_written = bytes_written if bytes_written is not None else self.bytes_written
        if bytes_read is not None:
            self._bytes_read = bytes_read
        self._rbuf.clear()
        err = self._error or NetcoreError("ERR_SOCKET_CLOSED", syscall="write")
        pending, self._wq = self._wq, collections.deque()
        self._buffer_size = 0
        for e in pending:
            if e.callback is not None:
                call(e.callback, err)
        self._uncount()
        self._nc.release(self)
        self.emit("close", bool(had_error))

    def _uncount(self) -> None:
        if self.server is not None and not self._uncounted:
            self._uncounted = True
            self.server._socket_closed(self)

    def ref(self) -> Socket:
        """Node's socket.ref(): this socket keeps run() going (the default)."""
        self._refd = True
        self._nc.ref_changed()
        return self

    def unref(self) -> Socket:
        """Node's socket.unref(): run() may end while this socket is open."""
        self._refd = False
        # Writes sent with a lazy ack (PROTOCOL.md 7) are acknowledged only with
        # the socket's next event, which may never come, and an unref'd socket
        # waits for them (_keeps_alive): ask for the ack with an empty Write.
        if self._wq and self._state == "open" and not self._ended and not self.destroyed:
            entry = _Write(0, None, False)
            self._queue(entry)
            self._send(self._command("write", ack_now=True), b"", entry)
        self._nc.ref_changed()
        return self

    def _keeps_alive(self) -> bool:
        # An unref'd socket still waits for its connect and its writes, as
        # Node's pending libuv requests keep the loop alive.
        return self._refd or self._state in ("new", "connecting") or bool(self._wq)

    # ---------------------------------------------------- session resumption

    def _resume_entry(self, entries: Any) -> None:
        """Adds what this socket has seen to Hello.resume_sockets: an open
        one, or a connecting one whose Connect went (protocol 1.4)."""
        if self._state not in ("open", "connecting") or self._id is None:
            return
        r = entries.add()
        r.socket_id = self._id
        r.bytes_received = self._bytes_read
        r.bytes_credited = self._credited
        r.writes_acked = self._acked_seq
        r.bytes_acked = self._acked_bytes
        r.saw_end = self._got_end
        r.last_seq = self._seq
        r.connecting = self._state == "connecting"
        # Its view of the options: one the old netcore never read is applied
        # by the new one (PROTOCOL.md 16.1).
        r.has_options = True
        r.timeout_ms = self._opt_timeout
        r.no_delay = 0 if self._opt_no_delay is None else 1 + self._opt_no_delay
        r.keep_alive = 0 if self._opt_keep_alive is None else 1 + self._opt_keep_alive
        r.keep_alive_delay_ms = self._opt_keep_alive_delay

    def _connect_again(self) -> bool:
        """A connecting socket the resumed netcore lacks (its Connect was lost,
        or it was still connecting at the takeover): Connect again under the
        same id, its options, then every write. False if there is no Connect."""
        if self._connect_cmd is None or self.destroyed:
            return False
        self._connect_ref = self._nc.send(self._connect_cmd)
        if self._opt_timeout:
            self._send(self._command("set_timeout", msecs=self._opt_timeout))
        if self._opt_no_delay is not None:
            self._send(self._command("set_no_delay", enable=self._opt_no_delay))
        if self._opt_keep_alive is not None:
            self._send(self._command("set_keep_alive", enable=self._opt_keep_alive,
                                     initial_delay_ms=self._opt_keep_alive_delay))
        self._resume(0)
        return True

    def _resume(self, writes: int) -> None:
        """The session resumed: the writes netcore never got go again, then
        the pause state (either command is harmless if it changes nothing),
        a destroy, and the credit owed."""
        for e in self._wq:
            if e.seq > writes and isinstance(e.cmd, bytes):
                self._nc.send_encoded(_wire.TAG_WRITE, e.cmd, e.payload)
            elif e.seq > writes and e.cmd is not None:
                self._nc.send(e.cmd, e.payload)
        if self.destroyed:
            self._send(self._command("destroy"))
            return
        self._send(self._command("pause" if self._paused else "resume"))
        if not self._paused:
            self._grant()

    def _lost(self, err: NetcoreError) -> None:
        """netcore is gone (or never answered): 'error' then 'close'(True)."""
        if self._close_emitted:
            return
        self._error = err
        call(self.emit, "error", err)
        self._finish_close(True, None, None)

    # Node's names, for code ported line by line.
    setEncoding = set_encoding
    setTimeout = set_timeout
    setNoDelay = set_no_delay
    setKeepAlive = set_keep_alive

    @property
    def bufferSize(self) -> int:
        return self._buffer_size

    @property
    def bytesRead(self) -> int:
        return self.bytes_read

    @property
    def bytesWritten(self) -> int:
        return self.bytes_written

    @property
    def remoteAddress(self) -> Optional[str]:
        return self.remote_address

    @property
    def remotePort(self) -> Optional[int]:
        return self.remote_port

    @property
    def readyState(self) -> str:
        return self.ready_state


def _check_port(port: object) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise NetcoreError("ERR_SOCKET_BAD_PORT",
                           "Port should be >= 0 and < 65536. Received %r." % (port,))


def _parse_endpoint(args: Sequence[Any], kw: Dict[str, Any], default_host: str
                    ) -> Tuple[Any, str, Optional[PathArg], Optional[Callable[..., Any]]]:
    """Node's overloads: (port, [host], [cb]), (path, [cb]), (cb) or keywords,
    or an options dict first. Returns (port, host, path, callback)."""
    rest = list(args)
    callback = kw.pop("callback", None)
    if rest and isinstance(rest[0], dict):
        kw = dict(rest.pop(0), **kw)
    if rest and callable(rest[-1]):
        callback = rest.pop()
    port = kw.pop("port", None)
    host = kw.pop("host", None)
    path = kw.pop("path", None)
    if rest:
        first = rest.pop(0)
        if is_path(first):
            path = first
        elif isinstance(first, str):
            port = int(first)
        else:
            port = first
    if rest and isinstance(rest[0], str):
        host = rest.pop(0)
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if host is None:
        host = default_host
    return port, host, path, callback


def create_connection(*args: Any, allow_half_open: bool = False, netcore: Optional[Netcore] = None,
                      high_water_mark: int = HIGH_WATER_MARK, **kw: Any) -> Socket:
    """Node's net.createConnection(port, [host], [callback]) /
    (path, [callback]): a new Socket, connecting."""
    hwm = high_water_mark
    if args and isinstance(args[0], dict):
        opts = dict(args[0])
        allow_half_open = opts.pop("allow_half_open", opts.pop("allowHalfOpen", allow_half_open))
        hwm = opts.pop("high_water_mark", opts.pop("highWaterMark", hwm))
        args = (opts,) + tuple(args[1:])
    s = Socket(allow_half_open=allow_half_open, netcore=netcore, high_water_mark=hwm)
    return s.connect(*args, **kw)
