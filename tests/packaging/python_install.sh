#!/usr/bin/env bash
# netcore_net installed as its users install it, from outside the repository:
# `pip install ./client/python` into a fresh venv, a wheel and an sdist built
# from it into two more; each venv runs the seed's echo (callback API and
# asyncio streams API) against a real netcore. Nothing may be generated at
# import (HOME/XDG cache empty and untouched), and mypy sees the package as
# typed (py.typed): a well-typed program passes --strict, a wrong one fails.
# usage: python_install.sh SRC_DIR NETCORE_BINARY
src=$(cd "$1" && pwd); netcore=$2
. "$(dirname "$0")/common.sh"
cd "$PKG_TMP"
export HOME=$PKG_TMP/home XDG_CACHE_HOME=$PKG_TMP/home/.cache PYTHONDONTWRITEBYTECODE=1
unset NETCORE_PB2_DIR NETCORE_PROTO PYTHONPATH
mkdir -p "$HOME"
PIP=(--disable-pip-version-check --no-input --no-build-isolation --no-index --no-cache-dir)

/usr/bin/python3 -m venv --system-site-packages venv-dir
venv-dir/bin/pip install -q "${PIP[@]}" "$src/client/python"
venv-dir/bin/pip wheel -q "${PIP[@]}" --no-deps -w dist "$src/client/python"
ls dist/netcore_net-*.whl >/dev/null || fail "no wheel"
/usr/bin/python3 -m venv --system-site-packages venv-wheel
venv-wheel/bin/pip install -q "${PIP[@]}" dist/netcore_net-*.whl
# An sdist must build a wheel on its own, far from the repository.
(cd "$src/client/python" && /usr/bin/python3 setup.py -q sdist -d "$PKG_TMP/sdist" >/dev/null 2>&1) \
  || fail "sdist"
tar -xzf sdist/netcore-net-*.tar.gz
/usr/bin/python3 -m venv --system-site-packages venv-sdist
venv-sdist/bin/pip install -q "${PIP[@]}" ./netcore-net-*/

cat >echo_cb.py <<'PY'
import sys
import netcore_net as net

def on_connection(c: net.Socket) -> None:
    c.write("hello\r\n")
    c.pipe(c)

net.create_server(on_connection).listen(int(sys.argv[1]), "127.0.0.1")
net.run()
PY
cat >echo_streams.py <<'PY'
import asyncio
import sys

from netcore_net import asyncio as streams


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"hello\r\n")
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def main() -> None:
    server = await streams.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()

asyncio.run(main())
PY
cat >wrong.py <<'PY'
import netcore_net as net
family: str = net.is_ip("::1")
PY

start_netcore "$netcore"
for v in venv-dir venv-wheel venv-sdist; do
  loc=$($v/bin/python -c 'import netcore_net, os; print(os.path.dirname(netcore_net.__file__))')
  case $loc in "$PKG_TMP/$v"/*) ;; *) fail "$v imports netcore_net from $loc";; esac
  for f in netcore_pb2.py nc_errors.h py.typed asyncio.py; do
    [ -f "$loc/$f" ] || fail "$v: $f not installed"
  done
  $v/bin/python -c 'import netcore_net.errors as e; assert e.TABLE["ECONNREFUSED"][0] < 0'
  for script in echo_cb.py echo_streams.py; do
    port=$(free_port)
    start_bg $v/bin/python "$script" "$port"
    check_echo "$port"
  done
done
[ -z "$(find "$HOME" -name '*netcore*')" ] || fail "importing generated: $(find "$HOME" -name '*netcore*')"

if /usr/bin/python3 -c 'import mypy' 2>/dev/null; then
  py=$PKG_TMP/venv-wheel/bin/python
  /usr/bin/python3 -m mypy --strict --no-incremental --python-executable "$py" \
    echo_cb.py echo_streams.py || fail "mypy --strict on programs using the installed package"
  if /usr/bin/python3 -m mypy --no-incremental --python-executable "$py" wrong.py >mypy.out; then
    fail "mypy accepted a str annotated with is_ip()'s int: the package's hints are not seen"
  fi
  grep -q 'Incompatible types in assignment' mypy.out || fail "mypy: $(cat mypy.out)"
else
  echo "mypy not installed: type check skipped (scripts/install-deps.sh installs python3-mypy)"
fi
echo "python_install: pip install dir, wheel and sdist in venvs; echo (callbacks, asyncio streams) ok"
