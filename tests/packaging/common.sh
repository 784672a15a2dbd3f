# Helpers for the install-from-outside tests (sourced). Each test works in its
# own scratch directory outside the repository, starts its own netcore on an
# ipc endpoint there, and checks the seed's echo with a real TCP client.
set -euo pipefail
PKG_TMP=$(mktemp -d /tmp/nc-pkgtest-XXXXXX)
PKG_PIDS=()
cleanup() {
  for p in "${PKG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PKG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$PKG_TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# start_netcore BINARY [env...]: runs BINARY on $PKG_TMP/nc.sock; sets NETCORE_ENDPOINT.
start_netcore() {
  local bin=$1; shift
  export NETCORE_ENDPOINT=ipc://$PKG_TMP/nc.sock
  env "$@" "$bin" --bind "$NETCORE_ENDPOINT" --log-level warn &
  PKG_PIDS+=($!)
  for _ in $(seq 500); do [ -S "$PKG_TMP/nc.sock" ] && return 0; sleep 0.02; done
  fail "netcore did not start"
}

# start_bg CMD...: runs CMD in the background (output in $PKG_TMP/bg.N.log).
start_bg() {
  "$@" >"$PKG_TMP/bg.${#PKG_PIDS[@]}.log" 2>&1 &
  PKG_PIDS+=($!)
}

# free_port: a TCP port nobody listens on right now (the kernel's choice).
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# check_echo PORT: the seed's echo answers hello and echoes a line (retries
# while the actor starts).
check_echo() {
  /usr/bin/python3 - "$1" <<'PY' || { tail -n 20 "$PKG_TMP"/bg.*.log >&2 || true; fail "echo on port $1"; }
import socket, sys, time
port = int(sys.argv[1])
deadline = time.monotonic() + 30
while True:
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
got = b""
c.sendall(b"ping 42\n")
while not got.endswith(b"ping 42\n"):
    chunk = c.recv(100)
    if not chunk:
        break
    got += chunk
assert got == b"hello\r\nping 42\n", got
print("echo ok on port", port)
PY
}
