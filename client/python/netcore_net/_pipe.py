"""src.pipe(dest) carried out inside netcore (PROTOCOL.md 17).

Socket.pipe() always attaches the library's own pipe (a 'data' listener that
writes into dest, pausing src while dest is full); this module decides when
netcore can move the bytes itself instead and keeps that state. It applies
when both sockets are netcore sockets of one Netcore link, netcore speaks
protocol 1.2 (Welcome.minor_version >= 2), NETCORE_PIPE_OFFLOAD is not "0"
and nothing else reads src (no other 'data' listener, no encoding, no other
pipe destination): then Pipe goes to netcore and no Data comes, so the
library's pipe sits idle. Data netcore had sent before it carried the Pipe
out still arrives and goes through that pipe into dest; netcore starts moving
only once that Data is credited, and the credit follows the writes it
produced, so no byte overtakes another.

Handing the stream back: a new 'data' listener, set_encoding(), unpipe() or a
second pipe() send Unpipe; from netcore's Unpiped on, src's input comes as
Data again and flows through the pipe's and the application's listeners,
without a lost or repeated byte. Unpiped also brings the byte counts
(bytes_read, bytes_written) and, when src's end ended dest, dest's 'finish'.

The Pipe leaves on the next turn of the loop (call_soon), once the events
already received have been dispatched: Data of src that came with them is
written into dest first, and a src whose end came with them is not piped.

The state lives on the source (Socket._offload) while netcore runs its pipe.
Event-loop thread only, like every Socket method.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

from ._proto import pb
from ._types import Message

if TYPE_CHECKING:
    from .handler import Netcore
    from .sock import Socket


class Offload:
    """A pipe netcore runs from its source; dest is None until the adopter
    knows the destination (adoption, PROTOCOL.md 13)."""

    __slots__ = ("dest", "dest_id", "end", "state", "adopted")

    def __init__(self, dest: Optional["Socket"], dest_id: int, end: bool, adopted: bool) -> None:
        self.dest = dest
        self.dest_id = dest_id
        self.end = end
        self.state = "arming"  # -> "active" once Pipe left -> "unpiping" once Unpipe left
        self.adopted = adopted


def _open(s: "Socket") -> bool:
    return s._id is not None and s._state == "open"


def _pending(s: "Socket") -> bool:
    return s._state in ("new", "connecting")


def applies(src: "Socket", dest: "Socket", piped: bool) -> bool:
    """Whether src.pipe(dest) can run inside netcore now. piped: the library's
    pipe of src into dest is attached already (a check deferred to 'connect')."""
    if os.environ.get("NETCORE_PIPE_OFFLOAD") == "0":
        return False
    nc = src._nc
    w = nc.welcome
    if dest._nc is not nc or w is None or w.minor_version < 2:
        return False
    if src._offload is not None or src.destroyed or dest.destroyed or not src._readable or src._eof_pending:
        return False
    if dest._ended or not dest._writable or dest._pipe_ending or src._decoder is not None:
        return False
    data = src.listener_count("data")
    if piped:
        return len(src._pipes) == 1 and src._pipes[0].dest is dest and data == 1
    return not src._pipes and data == 0


def plan(src: "Socket", dest: "Socket") -> Optional[str]:
    """Before the library's pipe is attached: "now" to offload at once,
    "later" to decide once both sockets are connected, None for no offload."""
    from .sock import Socket
    if not isinstance(dest, Socket) or os.environ.get("NETCORE_PIPE_OFFLOAD") == "0":
        return None
    if _open(src) and _open(dest):
        return "now" if applies(src, dest, False) else None
    if (_pending(src) or _open(src)) and (_pending(dest) or _open(dest)):
        return "later"
    return None


def start(src: "Socket", dest: "Socket", end: bool) -> None:
    """The library's pipe of src into dest is attached: Pipe goes on the next
    turn if the rules still allow it then."""
    o = Offload(dest, dest._id, end, adopted=False)
    src._offload = o
    src._nc.loop.call_soon(_arm, src, o)


def _arm(src: "Socket", o: Offload) -> None:
    """Sends the Pipe. Writes of dest the handler made before it are already
    on their way (Socket sends each write at once), so netcore puts the piped
    bytes behind them."""
    if src._offload is not o or o.state != "arming":
        return
    dest = o.dest
    assert dest is not None
    ok = (_open(src) and _open(dest) and not src.destroyed and not dest.destroyed
          and src._readable and not src._eof_pending and not dest._ended and dest._writable
          and not dest._pipe_ending and src._decoder is None and src.listener_count("data") == 1
          and len(src._pipes) == 1 and src._pipes[0].dest is dest)
    if not ok:
        src._offload = None
        return
    o.state = "active"
    end = o.end
    cmd = pb.Command()
    cmd.pipe.dest_socket_id = dest._id
    cmd.pipe.no_end = not end
    cmd.pipe.high_water_mark = dest.high_water_mark
    src._send(cmd)


def start_when_open(src: "Socket", dest: "Socket", end: bool) -> None:
    """The library's pipe is attached; offload once both sockets are
    connected if the rules still allow it then (a proxy pipes into its
    upstream before it connects)."""
    def check() -> None:
        if not _open(src) or not _open(dest):
            return
        src.off("connect", check)
        dest.off("connect", check)
        if applies(src, dest, True):
            start(src, dest, end)

    if not _open(src):
        src.once("connect", check)
    if not _open(dest) and dest is not src:
        dest.once("connect", check)
    check()


def hand_back(src: "Socket") -> None:
    """Asks netcore to stop src's pipe; its input comes as Data from the
    Unpiped on."""
    o = src._offload
    if o is not None and o.state == "arming":
        src._offload = None  # its Pipe never left: the pipe stays the library's
        return
    if o is None or o.state != "active":
        return
    o.state = "unpiping"
    if src._id is not None and src._state == "open":
        cmd = pb.Command()
        cmd.unpipe.SetInParent()
        src._send(cmd)


def on_source_ended(src: "Socket") -> None:
    """src's peer ended while netcore pipes it: netcore ends dest (unless
    end=False), so dest.end() from the pipe must not send an End."""
    o = src._offload
    if o is not None and o.state == "arming":
        src._offload = None
    elif o is not None and o.state == "active" and o.end and o.dest is not None:
        o.dest._pipe_ending = True


def on_unpiped(src: "Socket", m: Message) -> None:
    """Unpiped: the pipe stopped. Counts become exact again; an end of src
    that ended dest gives dest its 'finish'."""
    o, src._offload = src._offload, None
    if m.bytes_read > src._bytes_read:
        src._bytes_read = m.bytes_read
    dest = o.dest if o is not None and o.dest is not None else src._nc._sockets.get(m.dest_socket_id)
    if dest is None:
        return
    dest._piped_in += m.bytes
    dest._pipe_ending = False
    if m.reason == pb.UNPIPE_SOURCE_ENDED and m.dest_ended:
        dest._ended_by_pipe()
    elif dest._finish_waits_pipe:
        # dest.end() waited for netcore's end, which did not happen: send ours.
        dest._finish_waits_pipe = False
        dest._write_chunks(b"", None, is_end=True)


def adopt(nc: "Netcore", src: "Socket", m: Message) -> None:
    """Adopted with pipe_dest_socket_id: the pipe runs on in netcore. Once
    both sockets are known here the library's pipe is attached, so src
    reports it (pipes) and unpipe() works."""
    adopted_socket(nc, src)
    if not m.pipe_dest_socket_id:
        return
    o = Offload(None, m.pipe_dest_socket_id, not m.pipe_no_end, adopted=True)
    o.state = "active"
    src._offload = o
    dest = nc._sockets.get(m.pipe_dest_socket_id)
    if dest is not None:
        _attach_adopted(src, dest)
    else:
        nc._pipe_waiters[m.pipe_dest_socket_id] = src


def adopted_socket(nc: "Netcore", sock: "Socket") -> None:
    """sock was adopted: a source adopted before it may wait for it."""
    src = nc._pipe_waiters.pop(sock._id, None)
    if src is not None and src._offload is not None and src._offload.dest_id == sock._id:
        _attach_adopted(src, sock)


def _attach_adopted(src: "Socket", dest: "Socket") -> None:
    o = src._offload
    assert o is not None
    o.dest = dest
    src._attach_pipe(dest, o.end)


def already_piped(src: "Socket", dest: "Socket") -> bool:
    """pipe(dest) again on an adopted source whose pipe into dest netcore
    runs already: nothing to do (the adopter pipes as the first handler did)."""
    o = src._offload
    return o is not None and o.adopted and o.dest is dest and o.state == "active"
