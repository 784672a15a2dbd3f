#!/usr/bin/env bash
# bench_smoke (ctest): every load of the benchmark for about a second, over TCP and a UNIX
# path, against the libuv echo (always), Node's echo (when node is installed) and netcore +
# the C echo actor (when given, i.e. when this tree builds them). It fails on any corrupt
# byte, failed connection or server that does not start; it never looks at timing.
# With --proxy-actor (and node) also, for ping-pong and bulk over TCP only, the C echo with
# --via-handler and both proxies of the benchmark in front of the libuv echo.
#   smoke.sh --loadgen L --uv-echo U [--node-echo JS] [--netcore N] [--echo-actor A]
#            [--proxy-actor P]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

LOADGEN="" UV_ECHO="" NODE_ECHO="" NETCORE="" C_ACTOR="" PY_ACTOR="" NODE_ACTOR="" PROXY_ACTOR=""
NODE_PROXY=$here/node-proxy.js
while [ $# -gt 0 ]; do
  case $1 in
    --loadgen) LOADGEN=$2; shift 2 ;;
    --uv-echo) UV_ECHO=$2; shift 2 ;;
    --node-echo) NODE_ECHO=$2; shift 2 ;;
    --netcore) NETCORE=$2; shift 2 ;;
    --echo-actor) C_ACTOR=$2; shift 2 ;;
    --proxy-actor) PROXY_ACTOR=$2; shift 2 ;;
    *) echo "smoke.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$LOADGEN" ] && [ -x "$UV_ECHO" ] || { echo "smoke.sh: loadgen and uv_echo are required" >&2; exit 2; }

bench_tmp nc-bench-smoke

servers=(libuv)
if [ -n "$NODE_ECHO" ] && command -v node >/dev/null; then servers+=(node); fi
if [ -n "$NETCORE" ] || [ -n "$C_ACTOR" ]; then
  # The tree defines them: they must work. Only one of the two defined is a failure too.
  servers+=(netcore-c)
  [ -n "$C_ACTOR" ] && servers+=(netcore-c-via)
fi
[ -n "$PROXY_ACTOR" ] && servers+=(netcore-proxy)
if [ -n "$NODE_ECHO" ] && command -v node >/dev/null; then servers+=(node-proxy); fi

loads=(
  "pingpong --conns 100 --depth 1 --size 64 --seconds 1"
  "pipelined --conns 100 --depth 16 --size 64 --seconds 1"
  "bulk --conns 10 --depth 4 --size 65536 --seconds 1"
  "churn --churn --conns 8 --size 64 --seconds 1"
  "idle --idle 300 --conns 64 --settle-ms 100"
)

fails=0

# The checker first: loadgen must fail, with corrupt bytes, against a server that flips,
# reorders or loses a byte, and against a greeting it does not expect.
if [ -x /usr/bin/python3 ]; then
  for mode in flip swap drop; do
    /usr/bin/python3 "$here/bad_echo.py" "$mode" >"$BENCH_TMP/bad.out" 2>&1 &
    SRV_PIDS=($!)
    if ! bench_wait_line "$BENCH_TMP/bad.out" "${SRV_PIDS[0]}" 10; then
      echo "FAIL bad_echo.py $mode did not start: $(cat "$BENCH_TMP/bad.out")"
      fails=$((fails + 1))
    else
      port=""
      for _ in 1 2 3 4 5 6 7 8 9 10; do # the line may still be half written
        port=$(sed -n 's/.*"port":\([0-9][0-9]*\)}.*/\1/p' "$BENCH_TMP/bad.out")
        [ -n "$port" ] && break
        sleep 0.1
      done
      out=$("$LOADGEN" --port "$port" --conns 4 --depth 4 --seconds 1 --timeout 2 2>&1)
      rc=$?
      if [ $rc -eq 1 ] && echo "$out" | grep -Eq 'corrupt bytes [1-9]'; then
        echo "ok   checker sees a $mode: $(echo "$out" | grep 'corrupt bytes' | sed 's/^ *//')"
      else
        echo "FAIL checker missed a $mode (exit $rc):"
        echo "$out" | sed 's/^/     /'
        fails=$((fails + 1))
      fi
    fi
    bench_stop "${SRV_PIDS[@]}"
    SRV_PIDS=()
  done
fi
BENCH_UNIX=0
if bench_start libuv; then
  # shellcheck disable=SC2086
  out=$("$LOADGEN" $SRV_ADDR --conns 2 --seconds 0.2 --greeting 'howdy\r\n' 2>&1)
  rc=$?
  if [ $rc -eq 1 ] && echo "$out" | grep -q 'greeting mismatch'; then
    echo "ok   checker sees a wrong greeting"
  else
    echo "FAIL checker missed a wrong greeting (exit $rc):"
    echo "$out" | sed 's/^/     /'
    fails=$((fails + 1))
  fi
  bench_stop "${SRV_PIDS[@]}"
  SRV_PIDS=()
fi

for unix in 0 1; do
  BENCH_UNIX=$unix
  for s in "${servers[@]}"; do
    missing=$(bench_missing "$s")
    if [ -n "$missing" ]; then
      echo "FAIL $s: missing $missing"
      fails=$((fails + 1))
      continue
    fi
    if ! bench_start "$s"; then
      echo "FAIL $s: $SRV_ERR"
      fails=$((fails + 1))
      continue
    fi
    for l in "${loads[@]}"; do
      read -r name args <<<"$l"
      # Over a UNIX path only ping-pong and churn: the path is what they test.
      [ "$unix" = 1 ] && [ "$name" != pingpong ] && [ "$name" != churn ] && continue
      # The through-the-handler echo and the proxies: ping-pong and bulk over TCP.
      if [[ $s == *-via || $s == *-proxy ]]; then
        [ "$unix" = 1 ] || { [ "$name" != pingpong ] && [ "$name" != bulk ]; } && continue
      fi
      rss=()
      [ "$name" = idle ] && rss=(--rss-pid "$SRV_MAIN")
      # shellcheck disable=SC2086
      if out=$("$LOADGEN" $SRV_ADDR $args "${rss[@]}" --timeout 20 2>&1); then
        echo "ok   $s $([ "$unix" = 1 ] && echo unix || echo tcp) $name: $(echo "$out" | grep -E 'requests|connections [0-9]|per connection' | head -1 | sed 's/^ *//')"
      else
        echo "FAIL $s $([ "$unix" = 1 ] && echo unix || echo tcp) $name:"
        echo "$out" | sed 's/^/     /'
        fails=$((fails + 1))
      fi
    done
    dead=$(bench_dead)
    if [ -n "$dead" ]; then
      echo "FAIL $s: $dead"
      fails=$((fails + 1))
    fi
    bench_stop "${SRV_PIDS[@]}"
    SRV_PIDS=()
  done
done
if [ "$fails" -ne 0 ]; then
  echo "bench_smoke: $fails failure(s)"
  exit 1
fi
echo "bench_smoke: all loads clean (no corrupt bytes, no failed connections)"
