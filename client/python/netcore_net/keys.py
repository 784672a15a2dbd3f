"""CURVE keys for the link to netcore: netcore's public key and this handler's
key pair, from arguments or NETCORE_SERVER_KEY / NETCORE_SECRET_FILE.

The key pair file is the one `netcore keygen FILE` writes, parsed by the same
rules as libnc's (common/keyfile.c):
    # netcore CURVE key pair (Z85). Keep this file secret.
    public-key = "<40 Z85 chars>"
    secret-key = "<40 Z85 chars>"
Blank lines and '#' lines are ignored, spaces around '=' are optional, and a
public key that does not belong to the secret key is refused. Every problem is
NetcoreError("EINVAL") with a message naming the file and line, as libnc's
nc_loop_new reports it. Pure functions; any thread.
"""

import os
import re
import struct

import zmq
from zmq.utils import z85

from .errors import NetcoreError

Z85_KEY_LEN = 40
_ASSIGN = re.compile(r'^[ \t]*([^ \t=]*)[ \t]*=[ \t]*"([^"]*)"[ \t\r\n]*$')


def z85_key_valid(s):
    """True if s is 40 Z85 characters that decode to a 32-byte key."""
    if not isinstance(s, str) or len(s) != Z85_KEY_LEN:
        return False
    try:
        return len(z85.decode(s)) == 32
    except (ValueError, KeyError, TypeError, struct.error):
        return False


def read_keyfile(path):
    """(public_z85, secret_z85) of the key pair file at path."""
    try:
        with open(path, "r", encoding="latin-1") as f:
            lines = f.readlines()
    except OSError as e:
        raise NetcoreError("EINVAL", "this handler's key pair: cannot open key pair file %s: %s"
                           % (path, e.strerror))
    keys = {}
    for lineno, line in enumerate(lines, 1):
        stripped = line.lstrip(" \t")
        if stripped == "" or stripped[0] in "#\r\n":
            continue
        m = _ASSIGN.match(line)
        if m is None or m.group(1) not in ("public-key", "secret-key"):
            raise NetcoreError("EINVAL", "this handler's key pair: %s:%d: expected public-key = "
                               "\"...\" or secret-key = \"...\"" % (path, lineno))
        if not z85_key_valid(m.group(2)):
            raise NetcoreError("EINVAL", "this handler's key pair: %s:%d: %s is not a %d-character "
                               "Z85 CURVE key" % (path, lineno, m.group(1), Z85_KEY_LEN))
        keys[m.group(1)] = m.group(2)
    if "public-key" not in keys or "secret-key" not in keys:
        raise NetcoreError("EINVAL", "this handler's key pair: %s: needs both public-key and "
                           "secret-key (as `netcore keygen` writes)" % path)
    derived = zmq.curve_public(keys["secret-key"].encode()).decode()
    if derived != keys["public-key"]:
        raise NetcoreError("EINVAL", "this handler's key pair: %s: its public-key does not belong "
                           "to its secret-key" % path)
    return keys["public-key"], keys["secret-key"]


def curve_keys(endpoint, server_key=None, secret_file=None):
    """(server, public, secret) Z85 keys for a tcp:// endpoint, or None when
    neither key is given (arguments, else the environment). The keys are
    checked for every endpoint but used on tcp:// only: netcore authenticates
    ipc peers by uid."""
    if server_key is None:
        server_key = os.environ.get("NETCORE_SERVER_KEY")
    if secret_file is None:
        secret_file = os.environ.get("NETCORE_SECRET_FILE")
    server_key = server_key or None
    secret_file = os.fspath(secret_file) if secret_file else None
    if server_key is None and secret_file is None:
        return None
    if server_key is None or secret_file is None:
        raise NetcoreError("EINVAL", "CURVE needs both netcore's public key (server_key or "
                           "NETCORE_SERVER_KEY) and this handler's key pair file (secret_file or "
                           "NETCORE_SECRET_FILE); only the %s is set"
                           % ("public key" if server_key else "key pair file"))
    if not z85_key_valid(server_key):
        raise NetcoreError("EINVAL", "netcore's public key (server_key or NETCORE_SERVER_KEY) is "
                           "not a CURVE key: it must be the 40 Z85 characters `netcore keygen` "
                           "prints")
    public, secret = read_keyfile(secret_file)
    if not endpoint.startswith("tcp://"):
        return None
    return server_key, public, secret
