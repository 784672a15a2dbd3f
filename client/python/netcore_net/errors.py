"""Errors with Node's code names (EADDRINUSE, ECONNREFUSED, ERR_NETCORE_GONE, ...).

The names, numbers and default messages come from the project's one table,
common/include/nc_errors.h (an installed package ships a copy of it beside
this file), read once at import, so Python surfaces exactly
the names libnc and netcore use. Numbers are libnc's: -errno for POSIX names,
below -4000 for the others.
"""

from __future__ import annotations

import errno as _errno
import os
import re
from typing import Dict, Optional, Tuple

_HEADER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nc_errors.h")
if not os.path.exists(_HEADER):
    _HEADER = os.path.normpath(os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "common", "include", "nc_errors.h"))

# name -> (number, message)
TABLE: Dict[str, Tuple[int, str]] = {}


def _load_table() -> None:
    try:
        with open(_HEADER, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return
    for name, num, msg in re.findall(r'XX\((\w+),\s*(-?\w+),\s*"([^"]*)"\)', text):
        if num.lstrip("-").isdigit():
            value = int(num)
        else:
            value = -getattr(_errno, num.lstrip("-"), 0)
        TABLE[name] = (value, msg)


_load_table()


def errno_of(code: str) -> int:
    """libnc's negative number for a code name (0 if the name is unknown)."""
    if code in TABLE:
        return TABLE[code][0]
    return -getattr(_errno, code, 0)


def message_of(code: str) -> str:
    if code in TABLE:
        return TABLE[code][1]
    num = getattr(_errno, code, None)
    return os.strerror(num) if num else code


class NetcoreError(Exception):
    """An error as Node reports it: .code is the name ("ECONNREFUSED"), .errno
    libnc's negative number, .syscall the operation ("connect", "listen",
    "write", ...) when known, plus .address/.port for connect and listen errors."""

    def __init__(self, code: str, message: Optional[str] = None, syscall: Optional[str] = None,
                 address: Optional[str] = None, port: Optional[int] = None) -> None:
        self.code = code
        self.errno = errno_of(code)
        self.syscall = syscall
        self.address = address
        self.port = port
        detail = message or message_of(code)
        text = "%s %s" % (syscall, code) if syscall else code
        if address is not None:
            text += " %s" % address + (":%d" % port if port else "")
        super().__init__("%s: %s" % (text, detail) if detail != code else text)
