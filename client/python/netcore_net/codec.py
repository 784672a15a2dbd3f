"""Node's string encodings: encode() for write(), Decoder for setEncoding().

Names follow Node: 'utf8' ('utf-8'), 'ascii', 'latin1' ('binary'), 'base64',
'hex', 'utf16le' ('ucs2'). A Decoder is Node's StringDecoder: a multi-byte
character (or a base64 group) split across two reads is held back until it is
complete, so the 'data' strings are always whole characters.
"""

from __future__ import annotations

from typing import Dict, Optional

from ._types import Data

import base64
import binascii
import codecs

_ALIASES: Dict[str, str] = {
    "utf8": "utf8", "utf-8": "utf8",
    "ascii": "ascii",
    "latin1": "latin1", "binary": "latin1",
    "base64": "base64",
    "hex": "hex",
    "utf16le": "utf16le", "utf-16le": "utf16le", "ucs2": "utf16le", "ucs-2": "utf16le",
}


def normalize(encoding: Optional[str]) -> Optional[str]:
    """Canonical name of a Node encoding; ValueError if unknown."""
    if encoding is None:
        return None
    name = _ALIASES.get(str(encoding).lower())
    if name is None:
        raise ValueError("unknown encoding: %r" % (encoding,))
    return name


def encode(data: Data, encoding: Optional[str] = None) -> bytes:
    """bytes to send for data (bytes-like, or str in encoding, default utf8)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if not isinstance(data, str):
        raise TypeError("data must be str or bytes-like, not %s" % type(data).__name__)
    enc = normalize(encoding) or "utf8"
    if enc == "utf8":
        return data.encode("utf-8", "surrogatepass")
    if enc in ("ascii", "latin1"):
        # Node keeps the low byte of each code unit.
        return bytes(ord(c) & 0xFF for c in data) if not data.isascii() else data.encode("ascii")
    if enc == "base64":
        s = "".join(data.split()).replace("-", "+").replace("_", "/")
        return base64.b64decode(s + "=" * (-len(s) % 4))
    if enc == "hex":
        n = len(data) // 2 * 2
        try:
            return binascii.unhexlify(data[:n])
        except binascii.Error:
            out = bytearray()
            for i in range(0, n, 2):
                try:
                    out.append(int(data[i:i + 2], 16))
                except ValueError:
                    break
            return bytes(out)
    return data.encode("utf-16-le", "surrogatepass")


class Decoder:
    """Turns a stream of byte chunks into strings (Node's StringDecoder)."""

    def __init__(self, encoding: Optional[str]) -> None:
        self.encoding = normalize(encoding)
        self._rest = b""
        if self.encoding == "utf8":
            self._inc: Optional[codecs.IncrementalDecoder] = \
                codecs.getincrementaldecoder("utf-8")("replace")
        elif self.encoding == "utf16le":
            self._inc = codecs.getincrementaldecoder("utf-16-le")("replace")
        else:
            self._inc = None

    def write(self, chunk: bytes) -> str:
        if self._inc is not None:
            return self._inc.decode(chunk)
        if self.encoding == "latin1":
            return chunk.decode("latin-1")
        if self.encoding == "ascii":
            return bytes(b & 0x7F for b in chunk).decode("ascii") if not chunk.isascii() \
                else chunk.decode("ascii")
        if self.encoding == "hex":
            return chunk.hex()
        buf = self._rest + chunk
        n = len(buf) // 3 * 3
        self._rest = buf[n:]
        return base64.b64encode(buf[:n]).decode("ascii")

    def end(self) -> str:
        """What is still held back, decoded as far as it goes (at the stream's end)."""
        if self._inc is not None:
            return self._inc.decode(b"", final=True)
        if self.encoding == "base64" and self._rest:
            rest, self._rest = self._rest, b""
            return base64.b64encode(rest).decode("ascii")
        return ""
