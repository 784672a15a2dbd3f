"""Loads netcore_pb2, the protobuf module generated from proto/netcore.proto.

Nothing generated is committed. The module is found, in this order:
1. in the directory named by the environment variable NETCORE_PB2_DIR (the build
   writes it to <build>/client/python/gen, and the ctest tests set the variable);
2. in a per-user cache, under a name that contains the SHA-256 of netcore.proto,
   so a changed .proto can never be paired with a stale module: if it is not there
   yet, `protoc --python_out` (Debian's protobuf-compiler) writes it there once.
The cache is $XDG_CACHE_HOME/netcore_net, else ~/.cache/netcore_net, else a
directory in the system temp dir. Generation writes into a private temp
directory first and renames, so two processes starting at once cannot see a
half-written file.
"""

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile

_HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.environ.get("NETCORE_PROTO") or os.path.normpath(
    os.path.join(_HERE, "..", "..", "..", "proto", "netcore.proto"))


def _cache_dirs():
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        yield os.path.join(xdg, "netcore_net")
    home = os.path.expanduser("~")
    if home and home != "~":
        yield os.path.join(home, ".cache", "netcore_net")
    yield os.path.join(tempfile.gettempdir(), "netcore_net-%d" % os.getuid())


def _generate(proto, target_dir, target_name):
    """Runs protoc into a fresh temp dir inside target_dir, then renames the
    result to target_name. Returns the final path."""
    os.makedirs(target_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".gen-", dir=target_dir)
    try:
        subprocess.run(
            ["protoc", "--proto_path=" + os.path.dirname(proto),
             "--python_out=" + work, os.path.basename(proto)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        final = os.path.join(target_dir, target_name)
        os.replace(os.path.join(work, "netcore_pb2.py"), final)
        return final
    finally:
        for name in os.listdir(work):
            os.unlink(os.path.join(work, name))
        os.rmdir(work)


def _find_or_generate():
    env_dir = os.environ.get("NETCORE_PB2_DIR")
    if env_dir:
        path = os.path.join(env_dir, "netcore_pb2.py")
        if os.path.exists(path):
            return path
    if not os.path.exists(PROTO):
        raise ImportError("netcore_net: %s not found and NETCORE_PB2_DIR does not hold "
                          "netcore_pb2.py" % PROTO)
    with open(PROTO, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    name = "netcore_pb2_%s.py" % digest
    errors = []
    for d in _cache_dirs():
        path = os.path.join(d, name)
        if os.path.exists(path):
            return path
        try:
            return _generate(PROTO, d, name)
        except FileNotFoundError as e:
            errors.append("%s: %s" % (d, e))
        except subprocess.CalledProcessError as e:
            raise ImportError("netcore_net: protoc failed on %s: %s"
                              % (PROTO, e.stderr.decode(errors="replace").strip()))
        except OSError as e:
            errors.append("%s: %s" % (d, e))
    raise ImportError("netcore_net: cannot generate netcore_pb2 (is protobuf-compiler "
                      "installed?): " + "; ".join(errors))


def load():
    """Returns the netcore_pb2 module (loaded once per process)."""
    mod = sys.modules.get("netcore_net.netcore_pb2")
    if mod is not None:
        return mod
    path = _find_or_generate()
    spec = importlib.util.spec_from_file_location("netcore_net.netcore_pb2", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


pb = load()
