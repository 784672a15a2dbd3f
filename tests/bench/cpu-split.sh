#!/usr/bin/env bash
# Where a server's CPU goes per request, process by process and thread by thread, under one
# redis-benchmark load (or the benchmark's churn load): the robust figure on a shared
# machine (throughput is not).
#
#   tests/bench/cpu-split.sh [--server KIND] [-P N] [-n N] [--tests a,b] [--build-dir DIR]
#                            [--root DIR] [--rounds K] [--churn SECONDS]
#
# KIND: a Redis-protocol server of lib.sh: redis-c redis-node redis-python (the actors
#       through netcore), redis-node-net redis-asyncio (the same logic alone), redis-server;
#       with --churn an echo of lib.sh instead: netcore-c netcore-python netcore-node (and
#       their -via forms), node, libuv.
# --churn S: instead of redis-benchmark, run.sh's churn load (loadgen --churn, 32
#       connectors, 64 bytes each) for S seconds; the figures are then per connection.
# -P: redis-benchmark's pipeline depth (default 1); -n: requests per test (default 30000);
# --tests: redis-benchmark tests (default ping_mbulk,set,get); 50 clients.
# --root DIR: take the actors and the client libraries from another checkout (an A/B of
#       two commits: `git worktree add /tmp/base COMMIT` and copy client/node/node_modules),
#       with netcore from --build-dir (default build-bench/, built here if missing).
# --rounds K: repeat the measurement K times (default 1), one line per round.
# Prints, per round: requests/s of each test, then for each process and each of its threads
# with any CPU: CPU µs, voluntary and involuntary context switches per request (--churn:
# per connection); and the totals "CPU us/req: server S (netcore N, actor A)" (us/conn).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

kind=redis-node p=1 n=30000 tests=ping_mbulk,set,get bdir="$root/build-bench" src=$root rounds=1 churn=""
while [ $# -gt 0 ]; do
  case $1 in
    --server) kind=$2; shift 2 ;;
    -P) p=$2; shift 2 ;;
    -n) n=$2; shift 2 ;;
    --tests) tests=$2; shift 2 ;;
    --build-dir) bdir=$2; shift 2 ;;
    --root) src=$(cd "$2" && pwd); shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --churn) churn=$2; shift 2 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "cpu-split.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$churn" ]; then
  [[ $kind != redis-* ]] || { echo "cpu-split.sh: --churn needs an echo --server (netcore-c, node, ...)" >&2; exit 2; }
else
  [[ $kind == redis-* ]] || { echo "cpu-split.sh: --server must be a redis-* kind (or use --churn)" >&2; exit 2; }
  command -v redis-benchmark >/dev/null || { echo "cpu-split.sh: needs redis-benchmark (redis-tools)" >&2; exit 1; }
fi
if [ ! -x "$bdir/netcore/netcore" ] || [ ! -x "$bdir/actors/redis" ] || [ ! -x "$bdir/actors/echo" ] ||
  [ ! -x "$bdir/tests/bench/loadgen" ]; then
  cmake -S "$root" -B "$bdir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNC_SANITIZE=OFF >/dev/null &&
    cmake --build "$bdir" -j2 --target netcore redis echo loadgen uv_echo >/dev/null || exit 1
fi
LOADGEN=$bdir/tests/bench/loadgen
UV_ECHO=$bdir/tests/bench/uv_echo
bench_server_paths "$bdir" "$src"
bench_tmp nc-cpusplit

bench_start "$kind" || { echo "cpu-split.sh: $SRV_ERR" >&2; exit 1; }
# Which process is which: netcore is the daemon, the other one the actor (or the server).
nc_pid="" actor_pid=${SRV_PIDS[0]}
[ -n "$SRV_AUX" ] && nc_pid=$SRV_MAIN actor_pid=$SRV_AUX

# snap PID...: one line per thread: "PID TID COMM TICKS VOLUNTARY INVOLUNTARY".
snap() {
  local pid t f v i
  for pid in "$@"; do
    for t in /proc/"$pid"/task/*; do
      f=$(cut -d')' -f2 "$t/stat" 2>/dev/null) || continue
      read -ra f <<<"$f"
      v=$(awk '/^voluntary_ctxt_switches/ { v = $2 } /^nonvoluntary_ctxt_switches/ { i = $2 }
               END { print v + 0, i + 0 }' "$t/status" 2>/dev/null)
      echo "$pid ${t##*/} $(tr ' ' _ <"$t/comm") $((f[11] + f[12])) $v"
    done
  done
}

IFS=, read -ra tlist <<<"$tests"
if [ -n "$churn" ]; then
  echo "server $kind, churn: 32 connectors, 64 bytes each, $churn s per round; actors from $src"
  # Warm-up: a JIT's first seconds are not the measurement.
  "$LOADGEN" $SRV_ADDR --churn --conns 32 --size 64 --seconds 1 >/dev/null 2>&1
else
  echo "server $kind, -P $p, -n $n per test (${tests}), 50 clients; actors from $src"
  redis-benchmark -h 127.0.0.1 -p "$SRV_PORT" -c 50 -n 5000 -P "$p" -t ping_mbulk -q >/dev/null 2>&1
fi
tck=$(getconf CLK_TCK)
for ((r = 1; r <= rounds; r++)); do
  snap $nc_pid "$actor_pid" >"$BENCH_TMP/s0"
  rates=""
  if [ -n "$churn" ]; then
    out=$("$LOADGEN" $SRV_ADDR --churn --conns 32 --size 64 --seconds "$churn" 2>&1)
    ops=$(awk '$1 == "connections" { print $2; exit }' <<<"$out")
    bad=$(awk '/corrupt bytes/ { print $3 + $6 }' <<<"$out")
    [ -n "$ops" ] && [ "$ops" -gt 0 ] && [ "${bad:-1}" = 0 ] ||
      { echo "cpu-split.sh: the churn load failed: $out" >&2; exit 1; }
    rates="$ops connections, $(awk '$1 == "connections" { sub("/s", "", $3); print $3; exit }' <<<"$out") conn/s; "
  else
    for t in "${tlist[@]}"; do
      line=$(redis-benchmark -h 127.0.0.1 -p "$SRV_PORT" -c 50 -n "$n" -P "$p" -t "$t" --csv 2>/dev/null |
        grep -m1 '^"[A-Z_]*",')
      rates+="$(printf '%s' "$line" | cut -d, -f1,2 | tr -d '"' | tr , ' ') req/s; "
    done
    ops=$((n * ${#tlist[@]}))
  fi
  snap $nc_pid "$actor_pid" >"$BENCH_TMP/s1"
  bench_dead | grep . && exit 1
  echo "round $r: $rates"
  awk -v ops="$ops" -v t="$tck" -v nc="$nc_pid" -v a="$actor_pid" -v unit="${churn:+connection}" '
    NR == FNR { c[$2] = $4; v[$2] = $5; iv[$2] = $6; next }
    ($2 in c) {
      d = $4 - c[$2]; tot[$1] += d
      if (d > 0 || $5 - v[$2] > 0)
        printf "  %-7s %-18s cpu %7.2f us  vcs %6.3f  ivcs %6.3f  per %s\n",
               ($1 == nc ? "netcore" : "actor"), $3 ":" $2, d / t * 1e6 / ops,
               ($5 - v[$2]) / ops, ($6 - iv[$2]) / ops, (unit == "" ? "request" : unit)
    }
    END {
      na = tot[a] / t * 1e6 / ops; nn = (nc == "" ? 0 : tot[nc] / t * 1e6 / ops)
      printf "  CPU us/%s: server %.2f (netcore %.2f, actor %.2f)\n", (unit == "" ? "req" : "conn"), na + nn, nn, na
    }' "$BENCH_TMP/s0" "$BENCH_TMP/s1"
done
