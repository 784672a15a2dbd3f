"""netcore_net: Node's `net` module for Python, over the netcore daemon.

    import netcore_net as net

    def on_connection(c):
        c.write("hello\\r\\n")
        c.pipe(c)

    net.create_server(on_connection).listen(8124, "localhost")
    net.run()

Servers and sockets are EventEmitters (on/once/off/emit) running on an asyncio
event loop; run() runs it until no server or socket is left. Names are
Python's (create_server, set_encoding, buffer_size); Node's camelCase names
are aliases for code ported line by line. See README.md for the whole API.
"""

from __future__ import annotations

import ipaddress as _ipaddress

from .emitter import EventEmitter
from .errors import NetcoreError
from .handler import Netcore, default_endpoint, default_netcore, get_loop, run
from .server import Server, create_server
from .sock import HIGH_WATER_MARK, Socket, create_connection

__all__ = [
    "EventEmitter", "HIGH_WATER_MARK", "Netcore", "NetcoreError",
    "Server", "Socket", "connect", "create_connection", "create_server", "default_endpoint",
    "default_netcore",
    "get_loop", "is_ip", "is_ipv4", "is_ipv6", "run",
]

connect = create_connection


def is_ip(text: object) -> int:
    """4 for an IPv4 address, 6 for IPv6 (a zone id is allowed), else 0."""
    if not isinstance(text, str) or not text:
        return 0
    try:
        _ipaddress.IPv4Address(text)
        return 4
    except ValueError:
        pass
    try:
        _ipaddress.IPv6Address(text)
        return 6
    except ValueError:
        return 0


def is_ipv4(text: object) -> bool:
    return is_ip(text) == 4


def is_ipv6(text: object) -> bool:
    return is_ip(text) == 6


# Node's names.
createServer = create_server
createConnection = create_connection
isIP = is_ip
isIPv4 = is_ipv4
isIPv6 = is_ipv6
