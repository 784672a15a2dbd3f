"""Netcore: one handler's connection to the netcore daemon (one DEALER socket).

It owns the ZeroMQ socket and everything the protocol needs below the Server
and Socket objects: the Hello/Welcome handshake, the ids this handler gives its
objects ((id_prefix << 32) | ++n), routing each event to the object it belongs
to, Ping when idle, and noticing that netcore is gone. It runs on an asyncio
event loop: the DEALER's file descriptor is watched with loop.add_reader, so
nothing blocks the loop and other asyncio code can share it.

Objects created before Welcome wait in a queue and are started once it arrives
(their ids need the prefix). If netcore never answers (or refuses this handler:
EACCES, EPROTO), every server and socket gets 'error' (ERR_NETCORE_UNAVAILABLE,
...) then 'close', the connection closes, and run() returns: nothing hangs.

When the link is lost after a Welcome (netcore killed or restarted: ZeroMQ's
DISCONNECTED, no Pong within the lease, ERR_NO_HELLO, a Shutdown) and
reconnection is on (the default; reconnect=False or NETCORE_RECONNECT=0 turn it
off), every socket gets 'error' ERR_NETCORE_GONE then 'close', and the handler
reconnects: a new DEALER (libzmq retries 50 ms doubling to 500 ms; a fresh one
every 2 s without Welcome), Hello again, and every server that was listening
listens again with the same options on the port it had ('listening' again; a
listen that fails now is that server's 'error'). Without reconnection the loss
ends everything as when netcore never answered.

A lost link that may be a netcore takeover (not a Shutdown) first tries to
resume the session (PROTOCOL.md 16.1): every object waits as it is, the Hello
carries the session token and what each socket has seen, and a
Welcome{resumed} lets everything go on (writes netcore never read are sent
again, and a ServerClose whose ServerClosed has not come; the application
sees a pause). Without it (another netcore, or none
within 5 s) the objects end as above. NETCORE_RESUME=0 turns this off.

CURVE (tcp:// endpoints of a netcore with --curve-secret-file): server_key
(netcore's public key, Z85) and secret_file (this handler's key pair file, as
`netcore keygen` writes it), else NETCORE_SERVER_KEY and NETCORE_SECRET_FILE;
see keys.py.

A process normally uses the default instance (default_netcore(), endpoint from
the NETCORE_ENDPOINT environment variable, else default_endpoint()); several
instances are several independent handlers.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional, Set, Union

import zmq
from zmq.utils.monitor import parse_monitor_message

from . import _wire
from ._proto import pb
from ._types import Message
from .emitter import EventEmitter
from .errors import NetcoreError
from .keys import curve_keys

if TYPE_CHECKING:
    from .server import Server
    from .sock import Socket

PROTOCOL_VERSION = 1
_RECV_BATCH = 256  # messages handled per loop turn before yielding to other callbacks
_BATCH_MAX_COMMANDS = 256  # a CommandBatch holds at most this many commands (netcore's lowest --max-batch)
_BATCH_MAX_PAYLOAD = 64 * 1024  # or this many payload bytes
_RELINK_HELLO_TIMEOUT = 2.0  # reconnecting: a fresh DEALER after this long without Welcome
_RESUME_WAIT = 5.0  # a session waits this long for a netcore that resumes it (PROTOCOL.md 16.1)


def default_endpoint() -> str:
    """netcore's default endpoint for this process, the rule netcore and every
    client library share: ipc://$XDG_RUNTIME_DIR/netcore/netcore.sock when
    XDG_RUNTIME_DIR is an absolute path, else for root
    ipc:///run/netcore/netcore.sock, else ipc:///tmp/netcore-<uid>/netcore.sock.
    NETCORE_ENDPOINT is not looked at here: it overrides this default."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg.startswith("/"):
        return "ipc://" + xdg.rstrip("/") + "/netcore/netcore.sock"
    uid = os.geteuid()
    if uid == 0:
        return "ipc:///run/netcore/netcore.sock"
    return "ipc:///tmp/netcore-%d/netcore.sock" % uid


_varint = _wire.varint
_SMALL = _wire.SMALL

# pyzmq's Socket.send_multipart checks every frame and builds an enum flag per
# frame in Python; the Cython send underneath with plain int flags does the
# same send (_send_frames).
_zsend = zmq.backend.Socket.send
_zrecv = zmq.backend.Socket.recv
_RCVMORE = int(zmq.RCVMORE)
_NOBLOCK = int(zmq.NOBLOCK)
_MORE_NOBLOCK = int(zmq.SNDMORE | zmq.NOBLOCK)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_POLLOUT = int(zmq.POLLOUT)

log = logging.getLogger("netcore_net")

_instances: List[Netcore] = []
_default: Optional[Netcore] = None
_default_loop: Optional[asyncio.AbstractEventLoop] = None
_run: Optional[Dict[str, Any]] = None  # while run() is active: {"wake": future, "error": exception or None}


def get_loop() -> asyncio.AbstractEventLoop:
    """The running asyncio loop, else the module's own loop that run() will run."""
    global _default_loop
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    if _default_loop is None or _default_loop.is_closed():
        _default_loop = asyncio.new_event_loop()
    return _default_loop


def default_netcore() -> Netcore:
    """The process's default handler connection (created on first use)."""
    global _default
    if _default is None or _default.state == "closed":
        _default = Netcore()
    return _default


def _wake_run() -> None:
    if _run is not None and not _run["wake"].done():
        _run["wake"].set_result(None)


def fatal(exc: BaseException) -> None:
    """An exception escaped a listener: end run() with it (Node would crash),
    or, outside run(), hand it to the loop's exception handler."""
    if _run is not None and _run["error"] is None:
        _run["error"] = exc
        _wake_run()
    else:
        get_loop().call_exception_handler({"message": "netcore_net listener failed",
                                           "exception": exc})


def call(fn: Callable[..., Any], *args: Any) -> None:
    """Calls a listener; an exception from it becomes fatal()."""
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - every listener failure is reported
        fatal(e)


class Netcore(EventEmitter):
    """One handler: a DEALER connection to netcore.

    Events: 'welcome' (the Welcome message), 'shutdown' (reason), 'error'
    (NetcoreError; only emitted when someone listens), 'close'.
    """

    def __init__(self, endpoint: Optional[str] = None, name: str = "python", credit_window: int = 0,
                 lease_ms: int = 0, connect_timeout_ms: int = 10000,
                 server_key: Optional[str] = None, secret_file: Optional[str] = None,
                 reconnect: Optional[bool] = None) -> None:
        super().__init__()
        self.endpoint = endpoint or os.environ.get("NETCORE_ENDPOINT") or default_endpoint()
        self._curve = curve_keys(self.endpoint, server_key, secret_file)  # EINVAL: raised here
        if reconnect is None:
            reconnect = os.environ.get("NETCORE_RECONNECT", "1") != "0"
        self.reconnect = bool(reconnect)
        self._relinking = False
        # Session resumption after a takeover (PROTOCOL.md 16.1).
        self._resumable = self.reconnect and os.environ.get("NETCORE_RESUME", "1") != "0"
        self._resuming = False
        self._resume_deadline = 0.0
        self._held: List[Message] = []  # socket commands said while resuming (not writes)
        self._shutting_down = False
        self.name = name
        self.state = "new"  # new -> connecting -> ready -> closed
        self.welcome: Message = None
        self.max_frame = 1 << 20  # Welcome.max_frame: the largest frame netcore takes
        self._hello_credit = credit_window
        self._hello_lease = lease_ms
        self._connect_timeout = connect_timeout_ms / 1000.0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._zs: Any = None  # zmq.Socket (DEALER) while connected
        self._mon: Any = None  # its monitor socket
        self._outq: Deque[List[bytes]] = collections.deque()
        # The commands of this loop turn (PROTOCOL.md 1.1), each serialized as
        # CommandBatch's field 1 (0x0a, length, Command).
        self._batch: List[bytes] = []
        self._batch_frames: List[bytes] = []  # their Write payloads, in order
        self._batch_bytes = 0
        self._batch_scheduled = False
        self._poll_scheduled = False
        self._waiting: List[Any] = []  # objects to start once Welcome arrives
        self._pipe_waiters: Dict[int, Any] = {}  # dest id -> adopted source piping into it (_pipe.py)
        self._sockets: Dict[int, Socket] = {}  # id -> Socket
        self._by_field: Dict[bytes, Socket] = {}  # _wire.sid_field(id) -> Socket (Data's body)
        self._servers: Dict[int, Server] = {}  # id -> Server
        self._live: Set[object] = set()  # objects that keep run() going
        self._unrefd = False  # some object was unref()'d: run() rechecks after events
        self._idle_waiters: List[asyncio.Future[None]] = []
        self._n = 0
        self._ref = 0
        self._last_send = 0.0
        self._ping_sent: Optional[float] = None
        self._timer: Optional[asyncio.TimerHandle] = None
        self._stats_asked: Deque["_StatsRequest"] = collections.deque()  # answered in order
        self.instance_id: Optional[int] = None
        _instances.append(self)

    # -------------------------------------------------------------- lifecycle

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = get_loop()
        return self._loop

    def _start(self) -> None:
        self.state = "connecting"
        ctx = zmq.Context.instance()
        self._zs = ctx.socket(zmq.DEALER)
        self._zs.setsockopt(zmq.LINGER, 0)
        self._zs.setsockopt(zmq.RECONNECT_IVL, 50)
        self._zs.setsockopt(zmq.RECONNECT_IVL_MAX, 500)
        if self._curve is not None:
            server, public, secret = self._curve
            self._zs.curve_serverkey = server.encode()
            self._zs.curve_publickey = public.encode()
            self._zs.curve_secretkey = secret.encode()
        self._mon = self._zs.get_monitor_socket(
            zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
            | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
        loop = self.loop
        try:
            self._zs.connect(self.endpoint)
        except zmq.ZMQError as e:
            loop.call_soon(self._lost, NetcoreError(
                "ERR_NETCORE_UNAVAILABLE", "%s: %s" % (self.endpoint, e), syscall="connect"))
            return
        loop.add_reader(int(self._zs.getsockopt(zmq.FD)), self._poll)
        loop.add_reader(int(self._mon.getsockopt(zmq.FD)), self._poll_monitor)
        # ZMQ_FD only signals after a read found the socket empty: look once now.
        loop.call_soon(self._poll_monitor)
        hello = pb.Command()
        hello.hello.version = PROTOCOL_VERSION
        hello.hello.name = self.name
        hello.hello.credit_window = self._hello_credit
        hello.hello.lease_ms = self._hello_lease
        hello.hello.batch_events = True  # several events per message; see _dispatch
        # Acks only where something waits (Write.ack_now, End.ack_now); the rest
        # ride along with the socket's next event (PROTOCOL.md 7).
        hello.hello.lazy_acks = True
        # Successors with the same service name inherit (PROTOCOL.md 13).
        hello.hello.service = os.environ.get("NETCORE_SERVICE", "")
        hello.hello.resumable = self._resumable
        if self._resuming:
            hello.hello.resume_token = self.welcome.session_token
            for sock in self._sockets.values():
                sock._resume_entry(hello.hello.resume_sockets)
            # Servers whose Listen is unanswered (protocol 1.4).
            for sid, srv in self._servers.items():
                if srv._state == "binding" and srv._id == sid:
                    hello.hello.resume_servers.append(sid)
        self._send_raw([hello.SerializeToString()])
        wait = _RELINK_HELLO_TIMEOUT if self._relinking else self._connect_timeout
        self._timer = loop.call_later(wait, self._connect_timed_out)

    def when_ready(self, obj: Union[Server, Socket]) -> None:
        """Starts obj (calls obj._start_io()) now if Welcome came, else once it does."""
        if self.state == "closed":
            raise NetcoreError("ERR_NETCORE_GONE", syscall="connect")
        self._live.add(obj)
        if self.state == "ready":
            obj._start_io()
            return
        self._waiting.append(obj)
        if self.state == "new":
            self._start()

    def cancel_waiting(self, obj: object) -> bool:
        """Forgets obj if it still waits for Welcome; True if it did."""
        if obj in self._waiting:
            self._waiting.remove(obj)
            return True
        return False

    def stats(self) -> "asyncio.Future[Dict[str, Any]]":
        """Asks netcore for its numbers (the Stats command, PROTOCOL.md 14): a
        Future of a dict {"instance_id", "uptime_ms", "families": [{"name",
        "help", "type", "samples": [{"name", "labels": {...}, "value"}]}]},
        the same series and values as netcore's Prometheus /metrics. Fails
        with NetcoreError when netcore is gone."""
        req = _StatsRequest(self)
        self.when_ready(req)
        return req.future

    def hold(self, obj: object) -> None:
        """obj keeps run() going until release(obj)."""
        self._live.add(obj)

    def release(self, obj: object) -> None:
        self._live.discard(obj)
        if not self._live:
            self.loop.call_soon(self._check_idle)
        elif self._unrefd:
            _wake_run()

    def keeps_alive(self) -> bool:
        """Whether a live object keeps run() going: one not unref()'d, or an
        unref()'d one waiting for what Node's libuv requests wait for. Not
        once close() ended the link: nothing of it can hear from netcore
        again (after close(handoff=True) its connections, and the acks of
        their queued writes, are another handler's)."""
        if self.state == "closed":
            return False
        for o in self._live:
            keeps = getattr(o, "_keeps_alive", None)
            if keeps is None or keeps():
                return True
        return False

    def ref_changed(self) -> None:
        """A server or socket was ref()'d or unref()'d: run() looks again."""
        self._unrefd = True
        _wake_run()

    def _check_idle(self) -> None:
        if self._live:
            return
        _wake_run()
        waiters, self._idle_waiters = self._idle_waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(None)

    def idle(self) -> asyncio.Future[None]:
        """A future that completes when this handler has no live server or socket."""
        f = self.loop.create_future()
        self._idle_waiters.append(f)
        if not self._live:
            self.loop.call_soon(self._check_idle)
        return f

    def close(self, handoff: bool = False) -> None:
        """Says Bye (if connected) and closes the connection. Live objects are
        not told: use it once they are closed (run() does it at its end).
        handoff: Bye{handoff}, the connections pass to a group member or a
        successor under the same service name (PROTOCOL.md 13); what this
        turn batched (writes and the credits of their data) goes first."""
        if self.state in ("new", "closed"):
            self.state = "closed"
            return
        if self.state == "ready":
            bye = pb.Command()
            bye.bye.SetInParent()
            bye.bye.handoff = bool(handoff)
            self._zs.setsockopt(zmq.LINGER, 1000)
            self._flush_batch()
            self._flush_outq()
            try:
                self._zs.send(bye.SerializeToString(), zmq.NOBLOCK)
            except zmq.ZMQError:
                pass
        self._teardown()

    def _teardown(self) -> None:
        self.state = "closed"
        self._close_dealer()
        self.emit("close")
        self.loop.call_soon(self._check_idle)

    def _close_dealer(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._zs is not None:
            loop = self.loop
            if not loop.is_closed():
                loop.remove_reader(self._zs.getsockopt(zmq.FD))
                loop.remove_reader(self._mon.getsockopt(zmq.FD))
            self._zs.disable_monitor()
            self._mon.close(0)
            self._zs.close()
            self._zs = None
            self._mon = None
        self._outq.clear()
        self._batch, self._batch_frames, self._batch_bytes = [], [], 0
        self._ping_sent = None

    def _lost(self, err: NetcoreError) -> None:
        """netcore is unreachable or gone: every object fails, then we close
        (or, with reconnection, sockets fail and we reconnect)."""
        if self.state == "closed":
            return
        log.debug("netcore lost: %s", err)
        if (self.reconnect and self.welcome is not None
                and err.code in ("ERR_NETCORE_GONE", "ERR_NETCORE_SHUTDOWN")):
            if (self._resumable and err.code == "ERR_NETCORE_GONE" and not self._shutting_down
                    and self.welcome.session_token):
                self._hold_session()
                return
            self._relink(err)
            return
        self._teardown_objects(err)
        self._teardown()
        if self.listener_count("error"):
            call(self.emit, "error", err)

    def _teardown_objects(self, err: NetcoreError) -> None:
        waiting, self._waiting = self._waiting, []
        asked, self._stats_asked = list(self._stats_asked), collections.deque()
        objs = waiting + asked + list(dict.fromkeys(self._servers.values())) + list(self._sockets.values())
        self._servers.clear()
        self._sockets.clear()
        self._by_field.clear()
        for obj in objs:
            obj._lost(err)
        self._live.clear()

    def _hold_session(self) -> None:
        """The link is lost, maybe to a takeover: every object waits as it is
        and a new DEALER asks to resume the session (PROTOCOL.md 16.1)."""
        self._close_dealer()
        if not self._resuming:
            self._resume_deadline = time.monotonic() + _RESUME_WAIT
            self._held = []
        self._resuming = True
        self._relinking = True
        self.state = "connecting"
        self._start()

    def _resume_abandoned(self, why: str) -> None:
        """No resumption: the objects end as after a lost link (_relink)."""
        self._resuming = False
        self._held = []
        self._close_dealer()
        self._relink(NetcoreError("ERR_NETCORE_GONE", why))

    def _resumed(self, w: Message) -> None:
        """Welcome{resumed}: the same session goes on with every object."""
        self._resuming = False
        self._relinking = False
        if self._timer is not None:
            self._timer.cancel()
        self.welcome = w
        self.max_frame = int(w.max_frame) or 1 << 20
        self.instance_id = w.instance_id
        self.state = "ready"
        lease = w.lease_ms / 1000.0 or 15.0
        self._timer = self.loop.call_later(lease / 3, self._tick)
        writes = {r.socket_id: r.writes for r in w.resumed_sockets}
        # Protocol 1.4: a Listen or Connect the old netcore never read (or a
        # connect it had not finished) goes again under its id.
        again = w.minor_version >= 4
        held_servers = set(w.resumed_servers)
        for sid, srv in list(self._servers.items()):
            if again and srv._state == "binding" and srv._id == sid and sid not in held_servers:
                srv._listen_again()
        for sock in list(self._sockets.values()):
            if sock._id in writes and sock._state == "connecting" and not again:
                # A netcore of 1.3 never says Connected again: the socket ends.
                self.send(sock._command("destroy", socket_id=sock._id))
                writes.pop(sock._id)
            if sock._id in writes:
                sock._resume(writes[sock._id])
            elif again and sock._state == "connecting" and sock._connect_again():
                pass
            elif sock._state in ("open", "connecting"):
                self._sockets.pop(sock._id, None)
                self._by_field.pop(_wire.sid_field(sock._id), None)  # type: ignore[arg-type]
                sock._lost(NetcoreError("ERR_NETCORE_GONE",
                                        "the socket did not survive the netcore takeover"))
        held, self._held = self._held, []
        # A ServerClose whose ServerClosed has not come goes again: the old
        # netcore may never have read it, or its answer was lost with it
        # (PROTOCOL.md 16.1). One said while resuming is among the held.
        held_closes = {c.server_close.server_id for c in held
                       if c.WhichOneof("command") == "server_close"}
        for srv in list(dict.fromkeys(self._servers.values())):
            srv._close_again(held_closes)
        for cmd in held:
            self.send(cmd)
        if self.listener_count("welcome"):
            self.emit("welcome", w)
        waiting, self._waiting = self._waiting, []
        for obj in waiting:
            obj._start_io()

    def _relink(self, err: NetcoreError) -> None:
        """Sockets get 'error' ERR_NETCORE_GONE then 'close'; servers that were
        listening wait for the next Welcome (ahead of anything else waiting);
        a new DEALER says Hello."""
        self._close_dealer()
        self._relinking = True
        self._shutting_down = False
        self.state = "connecting"
        gone = err if err.code == "ERR_NETCORE_GONE" else NetcoreError("ERR_NETCORE_GONE", str(err))
        servers = list(dict.fromkeys(self._servers.values()))  # closing incarnations share one
        sockets = list(self._sockets.values())
        self._servers.clear()
        self._sockets.clear()
        self._by_field.clear()
        relisten = [srv for srv in servers if srv._link_lost()]
        self._waiting[:0] = relisten
        for srv in servers:
            if srv not in relisten:
                srv._lost(gone)
        for sock in sockets:
            sock._lost(gone)
        self._start()

    def _relink_again(self) -> None:
        self._timer = None
        if self.state == "connecting" and self._relinking and self._zs is None:
            self._start()

    def _connect_timed_out(self) -> None:
        self._timer = None
        if self._resuming and time.monotonic() >= self._resume_deadline:
            self._resume_abandoned("netcore at %s went away and no netcore resumed this session"
                                   % self.endpoint)
            return
        if self.state == "connecting" and self._relinking:
            # No Welcome on this DEALER: start afresh (libzmq keeps its own
            # backoff per DEALER; a new one also forgets a half-dead link).
            self._close_dealer()
            self._start()
            return
        if self.state == "connecting":
            self._lost(NetcoreError("ERR_NETCORE_UNAVAILABLE",
                                    "no Welcome from netcore at %s" % self.endpoint,
                                    syscall="connect"))

    def _tick(self) -> None:
        """Every lease/3: Ping if we said nothing for that long; declare netcore
        gone if a Ping stayed unanswered for a whole lease."""
        self._timer = None
        if self.state != "ready":
            return
        lease = self.welcome.lease_ms / 1000.0 or 15.0
        now = time.monotonic()
        if self._ping_sent is not None and now - self._ping_sent > lease:
            self._lost(NetcoreError("ERR_NETCORE_GONE", "no Pong within the lease"))
            return
        if now - self._last_send >= lease / 3 * 0.9:
            cmd = pb.Command()
            cmd.ping.nonce = int(now * 1000)
            if self._ping_sent is None:
                self._ping_sent = now
            self.send(cmd)
        self._timer = self.loop.call_later(lease / 3, self._tick)

    # -------------------------------------------------------------------- ids

    def next_id(self) -> int:
        self._n += 1
        return int(self.welcome.id_prefix << 32) | self._n

    def register_socket(self, sock: Socket) -> None:
        assert sock._id is not None
        self._sockets[sock._id] = sock
        self._by_field[_wire.sid_field(sock._id)] = sock

    def unregister_socket(self, sock: Socket) -> None:
        assert sock._id is not None
        if self._sockets.get(sock._id) is sock:
            del self._sockets[sock._id]
            self._by_field.pop(_wire.sid_field(sock._id), None)

    def register_server(self, srv: Server) -> None:
        assert srv._id is not None
        self._servers[srv._id] = srv

    def unregister_server(self, srv: Server, server_id: Optional[int] = None) -> None:
        """Forgets srv's current id, or server_id (an incarnation it closed)."""
        sid = srv._id if server_id is None else server_id
        assert sid is not None
        if self._servers.get(sid) is srv:
            del self._servers[sid]

    # ---------------------------------------------------------------- sending

    def send(self, cmd: Message, payload: Optional[bytes] = None) -> int:
        """Sends a Command (with an optional payload frame); returns its ref.

        Commands sent during one turn of the asyncio loop leave together, as
        one CommandBatch (PROTOCOL.md 1.1), at the end of the turn. Inside a
        batch only Write carries a payload frame: any other command with one
        goes alone, after the batch."""
        self._ref += 1
        cmd.ref = self._ref
        if self._resuming:
            # Writes wait in their socket's queue and credit in its count
            # (both are sent once resumed); the rest is said then.
            if cmd.WhichOneof("command") not in ("write", "end", "credit"):
                self._held.append(cmd)
            return cmd.ref
        if payload is not None and cmd.WhichOneof("command") != "write":
            self._flush_batch()
            self._send_raw([cmd.SerializeToString(), payload])
            return cmd.ref
        if not self._room_for(payload is not None):
            self._flush_batch()
        c = cmd.SerializeToString()
        self._batch.append(b"\x0a" + _varint(len(c)) + c)
        if payload is not None:
            self._batch_frames.append(payload)
            self._batch_bytes += len(payload)
        if not self._batch_scheduled:
            self._batch_scheduled = True
            self.loop.call_soon(self._flush_batch)
        return cmd.ref

    def send_encoded(self, tag: bytes, body: bytes, payload: Optional[bytes] = None) -> int:
        """send() of a Write (tag _wire.TAG_WRITE, with its payload) or a
        Credit (_wire.TAG_CREDIT) that the caller serialized by hand (the
        Command's oneof tag and its body, _wire.py); the same batching, and
        while resuming the same silence as send() for these commands."""
        self._ref += 1
        ref = self._ref
        if self._resuming:
            return ref
        if not self._room_for(payload is not None):
            self._flush_batch()
        # body < 128 bytes (a Write or Credit): its length is one byte.
        c = b"\x08" + _varint(ref) + tag + _SMALL[len(body)] + body
        self._batch.append(b"\x0a" + _SMALL[len(c)] + c)
        if payload is not None:
            self._batch_frames.append(payload)
            self._batch_bytes += len(payload)
        if not self._batch_scheduled:
            self._batch_scheduled = True
            self.loop.call_soon(self._flush_batch)
        return ref

    def _room_for(self, is_write: bool) -> bool:
        """Whether the open batch takes one more command (PROTOCOL.md 1.1).
        A full batch leaves before a Write, never after it: the Credit for
        the data that Write answers must share its message (PROTOCOL.md 13),
        so a Write needs room for two, and its payload must fit too.
        _BATCH_MAX_COMMANDS is netcore's lowest --max-batch: no netcore
        refuses a batch of this library's."""
        if is_write:
            return len(self._batch) < _BATCH_MAX_COMMANDS - 1 and self._batch_bytes < _BATCH_MAX_PAYLOAD
        return len(self._batch) < _BATCH_MAX_COMMANDS

    def _flush_batch(self) -> None:
        self._batch_scheduled = False
        if not self._batch:
            return
        cmds, frames = self._batch, self._batch_frames
        self._batch, self._batch_frames, self._batch_bytes = [], [], 0
        if len(cmds) == 1:
            env = cmds[0][_wire.skip_varint(cmds[0], 1):]  # the Command alone
        else:
            # Command{batch = 50: CommandBatch{repeated Command commands = 1}},
            # assembled from the commands already serialized.
            body = b"".join(cmds)
            env = b"\x92\x03" + _varint(len(body)) + body
        self._send_raw([env] + frames)

    def _send_raw(self, frames: List[bytes]) -> None:
        if self._zs is None:
            return
        self._last_send = time.monotonic()
        if not self._outq:
            try:
                self._send_frames(frames)
                self._schedule_poll()
                return
            except zmq.Again:
                pass
        self._outq.append(frames)
        self._schedule_poll()

    def _send_frames(self, frames: List[bytes]) -> None:
        """One multipart message, NOBLOCK (zmq.Again if it cannot go: a DEALER
        takes all of a message or none of it). Frames of 64 KiB or more are
        sent without a copy, as before."""
        zs = self._zs
        last = len(frames) - 1
        for i, f in enumerate(frames):
            _zsend(zs, f, _MORE_NOBLOCK if i < last else _NOBLOCK, len(f) < 65536)

    def _flush_outq(self) -> None:
        while self._outq:
            try:
                self._send_frames(self._outq[0])
            except zmq.Again:
                return
            self._outq.popleft()

    def _schedule_poll(self) -> None:
        # ZMQ_FD is edge-triggered and any send may consume the edge, so
        # whoever sends makes sure the socket is looked at again.
        if not self._poll_scheduled:
            self._poll_scheduled = True
            self.loop.call_soon(self._poll)

    # -------------------------------------------------------------- receiving

    def _poll(self) -> None:
        self._poll_scheduled = False
        n = 0
        while self._zs is not None:
            try:
                events = self._zs.getsockopt(_EVENTS)
            except zmq.ZMQError as e:
                self._lost(NetcoreError("ERR_NETCORE_GONE", str(e)))
                return
            if self._outq and events & _POLLOUT:
                self._flush_outq()
            if not events & _POLLIN:
                return
            if n >= _RECV_BATCH:
                self._schedule_poll()
                return
            zs = self._zs
            frames = [_zrecv(zs, _NOBLOCK)]
            while zs.getsockopt(_RCVMORE):
                frames.append(_zrecv(zs, _NOBLOCK))
            n += 1
            try:
                self._dispatch(frames)
            except Exception as e:  # noqa: BLE001 - a listener failed: fatal, as in Node
                fatal(e)

    def _poll_monitor(self) -> None:
        while self._mon is not None and self._mon.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            msg = parse_monitor_message(self._mon.recv_multipart(zmq.NOBLOCK))
            if msg["event"] in (zmq.EVENT_HANDSHAKE_FAILED_AUTH,
                                zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL) and self.state == "connecting":
                self._relinking = False  # refused: reconnecting cannot help
                self.welcome = None
                self._lost(self._handshake_error(msg))
                return
            if (msg["event"] == zmq.EVENT_DISCONNECTED and self.state == "connecting"
                    and self._relinking):
                # Reconnecting, and this DEALER's connection dropped before
                # Welcome: it may have reached a netcore that was being taken
                # over, which took our Hello with it. A fresh DEALER (and
                # Hello) soon, not after the whole Hello timeout.
                self._close_dealer()
                self._timer = self.loop.call_later(0.1, self._relink_again)
                return
            if msg["event"] == zmq.EVENT_DISCONNECTED and self.state == "ready":
                # (Before Welcome a drop is libzmq's to retry, or a handshake
                # failure that the next event names.)
                # Read what netcore sent before it went (its last Closed events).
                self._poll()
                self._lost(NetcoreError("ERR_NETCORE_GONE", "netcore closed the connection"))
                return

    def _handshake_error(self, msg: Dict[str, Any]) -> NetcoreError:
        if msg["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            why = ("its public key is not in netcore's --curve-allow file" if self._curve
                   else "its uid may not connect (netcore's own uid or gid, or --allow-uid)")
            return NetcoreError("EACCES", "netcore at %s refused this handler (ZAP status %s): %s"
                                % (self.endpoint, msg["value"], why), syscall="connect")
        why = ("does netcore use CURVE (--curve-secret-file) on this endpoint?" if self._curve
               else "netcore uses CURVE here: set NETCORE_SERVER_KEY and NETCORE_SECRET_FILE")
        return NetcoreError("EPROTO", "the handshake with netcore at %s failed (ZMTP error 0x%x): %s"
                            % (self.endpoint, msg["value"], why), syscall="connect")

    def _dispatch(self, frames: List[bytes]) -> None:
        self._ping_sent = None
        if self._unrefd:
            _wake_run()  # an unref()'d object's connect or write may be done
        entries = _wire.decode_batch(frames[0])
        if entries is not None:
            self._dispatch_entries(entries, frames)
            return
        ev = pb.Event()
        ev.ParseFromString(frames[0])
        if ev.WhichOneof("event") != "batch":
            self._dispatch_event(ev, frames[1] if len(frames) > 1 else None)
            return
        # An EventBatch (PROTOCOL.md 1.1): its events in order, one payload
        # frame per Data event.
        payloads = iter(frames[1:])
        for inner in ev.batch.events:
            is_data = inner.WhichOneof("event") == "data"
            self._dispatch_event(inner, next(payloads, None) if is_data else None)

    def _dispatch_entries(self, entries: List[_wire.Entry], frames: List[bytes]) -> None:
        """An EventBatch that _wire.decode_batch read: Data and WriteAck events
        go straight to their socket, the rest through protobuf and
        _dispatch_event, in order, one payload frame per Data event."""
        sockets = self._sockets
        by_field = self._by_field
        k = 1
        nframes = len(frames)
        for kind, seq, sid, ack in entries:
            if kind == _wire.EV_DATA:
                payload = frames[k] if k < nframes else None
                k += 1
                # sid: the Data's body, socket_id's field as registered.
                sock = by_field.get(sid)
                if sock is None or sockets.get(sock._id) is not sock:  # type: ignore[arg-type]
                    sid = _wire.sid_of(sid)
                    sock = sockets.get(sid)
                if sock is None:
                    log.debug("data for unknown socket %d", sid)
                    continue
                if ack is not None:  # a lazy ack is applied before its event
                    sock._apply_ack(ack)
                sock._on_data(None, payload, seq)  # type: ignore[arg-type]
            elif kind == _wire.EV_WRITE_ACK:
                sock = sockets.get(sid)
                if sock is None:
                    log.debug("write_ack for unknown socket %d", sid)
                    continue
                sock._on_write_ack(ack, None, seq)
            else:
                inner = pb.Event()
                inner.ParseFromString(seq)
                payload = None
                if inner.WhichOneof("event") == "data":
                    payload = frames[k] if k < nframes else None
                    k += 1
                self._dispatch_event(inner, payload)

    def _dispatch_event(self, ev: Message, payload: Optional[bytes]) -> None:
        kind = ev.WhichOneof("event")
        msg = getattr(ev, kind) if kind else None
        if kind == "welcome":
            self._on_welcome(msg)
        elif kind in _SOCKET_EVENTS:
            sock = self._sockets.get(msg.socket_id)
            if sock is None:
                log.debug("%s for unknown socket %d", kind, msg.socket_id)
                return
            if ev.HasField("ack"):  # a lazy ack is applied before its event
                sock._apply_ack(ev.ack)
            getattr(sock, "_on_" + kind)(msg, payload, ev.seq)
        elif kind in _SERVER_EVENTS:
            srv = self._servers.get(msg.server_id)
            if srv is None:
                log.debug("%s for unknown server %d", kind, msg.server_id)
                return
            if kind in ("connection", "adopted"):
                srv._on_connection(msg, ev.seq, adopted=kind == "adopted")
            else:
                getattr(srv, "_on_" + kind)(msg)
        elif kind == "error":
            self._on_error(msg)
        elif kind == "shutdown":
            self._on_shutdown(msg)
        elif kind == "pong":
            pass
        elif kind == "stats":
            if self._stats_asked:
                self._stats_asked.popleft()._answer(msg)
        else:
            log.warning("unknown event from netcore: %s", kind)

    def _on_welcome(self, w: Message) -> None:
        if self.state == "ready":
            if w.instance_id != self.instance_id:
                self._lost(NetcoreError("ERR_NETCORE_GONE", "netcore restarted"))
            return
        if self._resuming:
            if w.resumed and w.id_prefix == self.welcome.id_prefix:
                self._resumed(w)
                return
            # Another netcore, or a restart: the session ended with the old one.
            self._resuming = False
            self._held = []
            gone = NetcoreError("ERR_NETCORE_GONE", "netcore at %s went away (the new one does "
                                "not hold this session)" % self.endpoint)
            servers, sockets = list(self._servers.values()), list(self._sockets.values())
            self._servers.clear()
            self._sockets.clear()
            self._by_field.clear()
            relisten = [srv for srv in servers if srv._link_lost()]
            self._waiting[:0] = relisten
            for srv in servers:
                if srv not in relisten:
                    srv._lost(gone)
            for sock in sockets:
                sock._lost(gone)
        self._relinking = False
        self._n = 0
        if self._timer is not None:
            self._timer.cancel()
        self.welcome = w
        self.max_frame = int(w.max_frame) or 1 << 20
        self.instance_id = w.instance_id
        self.state = "ready"
        lease = w.lease_ms / 1000.0 or 15.0
        self._timer = self.loop.call_later(lease / 3, self._tick)
        if self.listener_count("welcome"):
            self.emit("welcome", w)
        waiting, self._waiting = self._waiting, []
        for obj in waiting:
            obj._start_io()

    def _on_error(self, m: Message) -> None:
        err = NetcoreError(m.code, m.message or None, syscall=m.command or None)
        if self.state == "connecting":
            # The handshake itself was refused (ERR_UNSUPPORTED_VERSION, ...).
            self._lost(err)
            return
        if m.code == "ERR_NO_HELLO":
            # netcore forgot us (our lease ran out while this process was
            # blocked): everything we had there is gone.
            self._lost(NetcoreError("ERR_NETCORE_GONE", "netcore dropped this handler: %s"
                                    % (m.message or "lease expired")))
            return
        target: Union[Server, Socket, None] = self._sockets.get(m.socket_id) if m.socket_id else None
        if target is None and m.server_id:
            target = self._servers.get(m.server_id)
        if target is not None:
            target._on_command_error(err, m)
        elif m.code == "EBADF" and (m.socket_id or m.server_id):
            # About an object that netcore already closed; its last event came.
            log.debug("netcore: %s", err)
        elif self.listener_count("error"):
            self.emit("error", err)
        else:
            log.warning("netcore rejected a command: %s", err)

    def _on_shutdown(self, m: Message) -> None:
        self._shutting_down = True
        if self.listener_count("shutdown"):
            self.emit("shutdown", m.reason)
        if self.reconnect:
            return  # servers listen again on the next netcore (Server._on_server_closed)
        err = NetcoreError("ERR_NETCORE_SHUTDOWN", m.reason or None)
        for srv in list(self._servers.values()):
            srv._on_shutdown(err)


_SOCKET_EVENTS = frozenset(("connected", "data", "ended", "write_ack", "timeout",
                            "socket_error", "closed", "fd", "unpiped"))
_SERVER_EVENTS = frozenset(("listening", "server_error", "server_closed", "connection",
                            "adopted"))


class _StatsRequest:
    """One Stats command on its way; lives in Netcore._stats_asked until answered."""

    def __init__(self, nc: "Netcore") -> None:
        self.nc = nc
        self.future = nc.loop.create_future()

    def _start_io(self) -> None:
        cmd = pb.Command()
        cmd.stats.SetInParent()
        self.nc._stats_asked.append(self)
        self.nc.send(cmd)

    def _answer(self, st: Message) -> None:
        self.nc.release(self)
        if not self.future.done():
            self.future.set_result(stats_dict(st))

    def _lost(self, err: NetcoreError) -> None:
        if not self.future.done():
            self.future.set_exception(err)


def stats_dict(st: Message) -> Dict[str, Any]:
    """A Stats message as plain Python values."""
    return {
        "instance_id": st.instance_id,
        "uptime_ms": st.uptime_ms,
        "families": [{
            "name": f.name, "help": f.help, "type": f.type,
            "samples": [{"name": s.name, "labels": {l.name: l.value for l in s.labels},
                         "value": s.value} for s in f.samples],
        } for f in st.families],
    }


def run(main: Optional[Callable[..., Any]] = None, *args: Any) -> None:
    """Runs the event loop until no server or socket is left (Node's rule for
    when a program ends), then closes the handler connections.

    main, if given, is called first inside the loop (a plain function or a
    coroutine function). An exception that escapes any listener ends run()
    and is raised here, as an uncaught exception ends a Node program.
    """
    global _run, _default
    loop = get_loop()

    async def body() -> None:
        assert _run is not None
        if main is not None:
            r = main(*args)
            if asyncio.iscoroutine(r):
                await r
        while True:
            if _run["error"] is not None:
                raise _run["error"]
            # Done when nothing is live (a listener of the last 'close' may
            # have started something new: then we keep going), or when what
            # is live is unref()'d (Node's handle refs).
            if not any(nc.keeps_alive() for nc in _instances):
                return
            _run["wake"] = loop.create_future()
            await _run["wake"]

    _run = {"wake": loop.create_future(), "error": None}
    try:
        loop.run_until_complete(body())
    finally:
        _run = None
        for nc in list(_instances):
            if nc.state != "closed":
                nc.close()
        _instances.clear()
        _default = None
