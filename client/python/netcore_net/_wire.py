"""_wire: the protobuf wire format of the hot messages, by hand.

Owned by handler.py and sock.py; called on the asyncio loop's thread only.

Every request through a handler is a Data event in (with its lazy WriteAck),
a Write and a Credit out. Building and reading those as python3-protobuf
objects costs more than the rest of the library put together (every field
access makes a wrapper object), so:

- decode_batch() reads an EventBatch (Event{batch = 50}) into plain tuples:
  Data and WriteAck events fully, every other event as its serialized bytes,
  which the caller parses with protobuf as before. Anything it does not
  recognise exactly (a field it does not know, a wire type it does not
  expect, a truncated buffer) makes it answer None: the caller parses the
  whole message with protobuf, so behaviour never depends on this module.
- write_body() / credit_body() and command() build Write and Credit commands
  byte for byte as protobuf serializes them (fields in number order, zero
  fields left out); tests/test_units.py compares them with protobuf's.

Field numbers are those of proto/netcore.proto.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple, Union

# Event's oneof fields this module decodes.
EV_DATA = 31
EV_WRITE_ACK = 33

# Command's oneof tags (field << 3 | 2, as varints).
TAG_WRITE = b"\xfa\x01"    # Write write = 31
TAG_CREDIT = b"\xa2\x02"   # Credit credit = 36

_BATCH_TAG = b"\x92\x03"   # Event.batch = 50, length-delimited
SMALL = [bytes((i,)) for i in range(128)]  # the varints of 0..127


def varint(n: int) -> bytes:
    """Protobuf's base-128 varint of a non-negative int."""
    if n < 0x80:
        return SMALL[n]
    if n < 0x4000:  # the refs and credits of every request: no loop
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    if n < 0x200000:
        return bytes(((n & 0x7F) | 0x80, ((n >> 7) & 0x7F) | 0x80, n >> 14))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _uvarint(b: bytes, i: int) -> Tuple[int, int]:
    """The varint at b[i] and the index after it (IndexError if truncated)."""
    x = b[i]
    i += 1
    if x < 0x80:
        return x, i
    x &= 0x7F
    s = 7
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7F) << s
        if c < 0x80:
            return x, i
        s += 7
        if s > 63:
            raise IndexError("varint too long")


def skip_varint(b: bytes, i: int) -> int:
    """The index after the varint at b[i]."""
    while b[i] & 0x80:
        i += 1
    return i + 1


def sid_of(body: bytes) -> int:
    """socket_id of a Data body (0 if absent)."""
    return _uvarint(body, 1)[0] if body else 0


class Ack:
    """A WriteAck as plain attributes (the fields sock.Socket._apply_ack reads)."""
    __slots__ = ("socket_id", "writes", "bytes", "bytes_written", "queued_bytes")

    def __init__(self) -> None:
        self.socket_id = 0
        self.writes = 0
        self.bytes = 0
        self.bytes_written = 0
        self.queued_bytes = 0


def _ack(b: bytes, i: int, end: int) -> Optional[Ack]:
    """The WriteAck in b[i:end], or None if it has a field this module does not know."""
    a = Ack()
    while i < end:
        t = b[i]
        v = b[i + 1]
        if v < 0x80:
            i += 2
        else:
            v, i = _uvarint(b, i + 1)
        if t == 0x08:
            a.socket_id = v
        elif t == 0x10:
            a.writes = v
        elif t == 0x18:
            a.bytes = v
        elif t == 0x20:
            a.bytes_written = v
        elif t == 0x28:
            a.queued_bytes = v
        else:
            return None
    if i != end:
        return None
    return a


# One event of a batch: (EV_DATA, seq, Data's body = sid_field(socket_id),
# lazy ack or None), (EV_WRITE_ACK, seq, socket_id, the ack), or
# (0, serialized Event, 0, None). (Any: the kind says which; no casts on this path.)
Entry = Tuple[int, Any, Any, Optional[Ack]]


def _event(b: bytes, i: int, end: int) -> Optional[Entry]:
    """A Data or WriteAck event in b[i:end] as a tuple, else None."""
    seq = 0
    ack = None
    kind = 0
    body: Union[bytes, Ack, None] = None
    while i < end:
        t = b[i]
        i += 1
        if t == 0x08:  # seq
            seq = b[i]
            if seq < 0x80:
                i += 1
            else:
                seq, i = _uvarint(b, i)
            continue
        if t == 0x12:  # ack
            n = b[i]
            if n < 0x80:
                i += 1
            else:
                n, i = _uvarint(b, i)
            ack = _ack(b, i, i + n)
            if ack is None:
                return None
            i += n
            continue
        if t == 0xFA and b[i] == 0x01:  # data
            n = b[i + 1]
            if n < 0x80:
                i += 2
            else:
                n, i = _uvarint(b, i + 1)
            # Data is {socket_id = 1}: its body is that field (sid_field()),
            # kept as bytes, the key the handler finds the socket by.
            body = b[i:i + n]
            if n and (body[0] != 0x08 or skip_varint(body, 1) != n):
                return None
            kind = EV_DATA
            i += n
            continue
        if t == 0x8A and b[i] == 0x02:  # write_ack
            n, i = _uvarint(b, i + 1)
            body = _ack(b, i, i + n)
            if body is None:
                return None
            kind = EV_WRITE_ACK
            i += n
            continue
        return None
    if i != end or kind == 0:
        return None
    if kind == EV_DATA:
        assert isinstance(body, bytes)
        return (EV_DATA, seq, body, ack)
    if ack is not None:
        return None  # a WriteAck carrying another: protobuf's path
    assert isinstance(body, Ack)
    return (EV_WRITE_ACK, seq, body.socket_id, body)


def decode_batch(b: bytes) -> Optional[List[Entry]]:
    """The events of an Event that is exactly Event{batch}, in order, or None
    (not a batch, or not read exactly: the caller uses protobuf).

    Each is an Entry: Data and WriteAck events decoded, any other event as
    (0, its serialized bytes, 0, None)."""
    if b[:2] != _BATCH_TAG:
        return None
    try:
        n, i = _uvarint(b, 2)
        if i + n != len(b):
            return None
        out: List[Entry] = []
        end = len(b)
        while i < end:
            if b[i] != 0x0A:
                return None
            n = b[i + 1]
            if n < 0x80:
                i += 2
            else:
                n, i = _uvarint(b, i + 1)
            j = i + n
            if j > end:
                return None
            e = _event(b, i, j)
            if e is None:
                # Not one we read: protobuf parses it (it may still be a
                # Data event, with a field we do not know: the caller asks).
                e = (0, b[i:j], 0, None)
            out.append(e)
            i = j
        return out
    except IndexError:
        return None


def write_body(sid_field: bytes, ack_now: bool) -> bytes:
    """Write{socket_id, ack_now} (no fd); sid_field = sid_field(socket_id)."""
    return sid_field + b"\x18\x01" if ack_now else sid_field


def credit_body(sid_field: bytes, nbytes: int) -> bytes:
    """Credit{socket_id, bytes}."""
    return sid_field + b"\x10" + varint(nbytes) if nbytes else sid_field


def sid_field(socket_id: int) -> bytes:
    """The socket_id = 1 field of a socket command (empty for id 0)."""
    return b"\x08" + varint(socket_id) if socket_id else b""


def command(ref: int, tag: bytes, body: bytes) -> bytes:
    """Command{ref, <oneof field tag> = body}."""
    head = b"\x08" + varint(ref) if ref else b""
    return head + tag + varint(len(body)) + body
