"""resp: the Redis protocol (RESP) logic of the benchmark's Redis-protocol server,
without any transport: actors/python/redis.py runs it on our library through
netcore, tests/bench/asyncio-redis.py on asyncio's own streams, so the two differ
only in the socket underneath. The same logic as actors/redis.c (C) and
actors/node/resp.js (JavaScript).

Multibulk (b"*2\\r\\n$4\\r\\nECHO\\r\\n$2\\r\\nhi\\r\\n") and inline (b"PING\\r\\n",
words split on blanks, without Redis's quoting) commands, pipelined and split
across reads at any byte. PING [msg], ECHO msg, SET key value, GET key; any
other command gets Redis's "-ERR unknown command ...". Bounds as Redis's
defaults: bulk <= 512 MiB, an inline command or a "*N"/"$N" line <= 64 KiB,
<= 1,048,576 arguments; a protocol error gets Redis's "-ERR Protocol error:
..." and the session is over (the transport ends the connection).
"""

from typing import Dict, List, Optional, Tuple

MAX_BULK = 512 * 1024 * 1024
MAX_INLINE = 64 * 1024
MAX_ARGS = 1024 * 1024

PONG = b"+PONG\r\n"
OK = b"+OK\r\n"
NIL = b"$-1\r\n"
SYNTAX = b"-ERR syntax error\r\n"


class ProtocolError(Exception):
    pass


def _error(text: bytes) -> bytes:
    """-ERR ...\\r\\n with CR and LF turned into blanks, as Redis does."""
    return b"-" + text.replace(b"\r", b" ").replace(b"\n", b" ") + b"\r\n"


def _wrong_args(cmd: str) -> bytes:
    return _error(b"ERR wrong number of arguments for '%s' command" % cmd.encode())


def _bulk(v: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(v), v)


def _integer(line: bytes) -> Optional[int]:
    """A decimal integer filling line exactly, or None."""
    digits = line[1:] if line[:1] == b"-" else line
    if not digits or len(digits) > 18 or not digits.isdigit():
        return None
    return int(line)


def _unknown(args: List[bytes]) -> bytes:
    """Redis's message: the name and the first arguments, 128 bytes of each at most."""
    rest = b""
    for a in args[1:]:
        if len(rest) >= 128:
            break
        rest += b"'" + a[:128 - len(rest)] + b"' "
    return _error(b"ERR unknown command '" + args[0][:128] + b"', with args beginning with: " + rest)


class Session:
    """One connection's parser. store: a dict (bytes -> bytes) shared by every session."""

    def __init__(self, store: Dict[bytes, bytes]):
        self.store = store
        self.pending = b""
        self.closed = False  # after a protocol error

    def feed(self, chunk: bytes) -> bytes:
        """Runs every whole command of what has arrived; returns the replies (b""
        if none). After a protocol error closed is True, the error is the last
        reply and the caller ends the connection."""
        if self.closed:
            return b""
        buf = self.pending + chunk if self.pending else bytes(chunk)
        out: List[bytes] = []
        off = 0
        n = len(buf)
        try:
            while off < n:
                cmd = self._multibulk(buf, off) if buf[off] == 0x2A else self._inline(buf, off)
                if cmd is None:
                    break
                args, off = cmd
                if args:
                    out.append(self._execute(args))
        except ProtocolError as e:
            out.append(_error(e.args[0]))
            self.closed = True
            self.pending = b""
            return b"".join(out)
        self.pending = buf[off:] if off < n else b""
        return b"".join(out)

    @staticmethod
    def _count(buf: bytes, off: int, too_big: bytes, invalid: bytes) -> Optional[Tuple[int, int]]:
        """"<prefix>N\\r\\n" at off: (N, next) or None for more; raises on a bad line."""
        cr = buf.find(b"\r\n", off)
        if cr < 0:
            if len(buf) - off > MAX_INLINE:
                raise ProtocolError(too_big)
            return None
        if cr - off > MAX_INLINE:
            raise ProtocolError(too_big)
        v = _integer(buf[off + 1:cr])
        if v is None:
            raise ProtocolError(invalid)
        return v, cr + 2

    def _multibulk(self, buf: bytes, off: int) -> Optional[Tuple[List[bytes], int]]:
        head = self._count(buf, off, b"ERR Protocol error: too big mbulk count string",
                           b"ERR Protocol error: invalid multibulk length")
        if head is None:
            return None
        count, q = head
        if count > MAX_ARGS:
            raise ProtocolError(b"ERR Protocol error: invalid multibulk length")
        args = []
        n = len(buf)
        for _ in range(count):
            if q >= n:
                return None
            if buf[q] != 0x24:
                raise ProtocolError(b"ERR Protocol error: expected '$', got '%s'" % buf[q:q + 1])
            line = self._count(buf, q, b"ERR Protocol error: too big bulk count string",
                               b"ERR Protocol error: invalid bulk length")
            if line is None:
                return None
            size, start = line
            if size < 0 or size > MAX_BULK:
                raise ProtocolError(b"ERR Protocol error: invalid bulk length")
            if n - start < size + 2:
                return None
            args.append(buf[start:start + size])
            q = start + size + 2  # Redis does not look at the two bytes after the data either
        return args, q

    @staticmethod
    def _inline(buf: bytes, off: int) -> Optional[Tuple[List[bytes], int]]:
        nl = buf.find(b"\n", off)
        if nl < 0 or nl - off > MAX_INLINE:
            if nl < 0 and len(buf) - off <= MAX_INLINE:
                return None
            raise ProtocolError(b"ERR Protocol error: too big inline request")
        stop = nl - 1 if nl > off and buf[nl - 1] == 0x0D else nl
        return [w for w in buf[off:stop].replace(b"\t", b" ").split(b" ") if w], nl + 1

    def _execute(self, args: List[bytes]) -> bytes:
        name = args[0].upper() if len(args[0]) <= 4 else b""
        n = len(args)
        if name == b"PING":
            if n == 1:
                return PONG
            return _bulk(args[1]) if n == 2 else _wrong_args("ping")
        if name == b"ECHO":
            return _bulk(args[1]) if n == 2 else _wrong_args("echo")
        if name == b"SET":
            if n < 3:
                return _wrong_args("set")
            if n > 3:
                return SYNTAX  # Redis's options (EX, NX, ...) are not here
            self.store[args[1]] = args[2]
            return OK
        if name == b"GET":
            if n != 2:
                return _wrong_args("get")
            v = self.store.get(args[1])
            return NIL if v is None else _bulk(v)
        return _unknown(args)
