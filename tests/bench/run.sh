#!/usr/bin/env bash
# The benchmark suite, one command: builds everything, starts each echo server in turn on
# loopback, runs the same loads against each and prints one Markdown table (medians over
# the runs, ratio vs Node, the targets of the issue).
#
#   tests/bench/run.sh [--quick] [--runs K] [--seconds T] [--idle N] [--build-dir DIR]
#                      [--unix] [--servers a,b,..] [--loads a,b,..] [--out DIR]
#                      [--quiet-wait S] [--redis-servers a,b,..] [--redis-n N]
#
# servers: netcore-c node libuv netcore-python netcore-node (the echoes), netcore-c-via
#          netcore-python-via netcore-node-via (the echoes with --via-handler: through the
#          handler instead of pipe()), netcore-proxy node-proxy (a proxy in front of one
#          uv_echo); a missing one is "n/a"
# loads:   pingpong pipelined bulk churn churn8 idle (against every server), redis
# redis:   redis-benchmark -c 50 -n N -P 1 and -P 16, one run per test (PING_MBULK, SET,
#          GET), against each of --redis-servers: redis-c redis-node redis-python (the
#          Redis-protocol actors through netcore), redis-node-net redis-asyncio (the same
#          logic on Node's net and on asyncio), redis-server (the reference)
# Defaults: 3 runs of 5 s per load, 10,000 idle connections, -n 100000, build dir
# build-bench/. --quick: 1 run of 1 s, 1,000 idle connections, -n 20000. Before each load it waits up to S
# seconds (--quiet-wait, default 30, 0 = never) for the machine to be idle (< 20 % of a
# core busy), so other work on a shared machine disturbs less. Progress goes to stderr,
# the table to stdout and to DIR/table.md (DIR defaults to <build dir>/bench-results/
# <time>), the raw JSON lines of every loadgen run to DIR/results.jsonl.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

runs="" seconds="" idle="" bdir="$root/build-bench" out="" BENCH_UNIX=0
servers="netcore-c,node,libuv,netcore-python,netcore-node,netcore-c-via,netcore-python-via,netcore-node-via,netcore-proxy,node-proxy"
loads="pingpong,pipelined,bulk,churn,churn8,idle,redis"
redis_servers="redis-c,redis-node,redis-python,redis-node-net,redis-asyncio,redis-server"
redis_n=""
quick=0 quiet_wait=30
cmdline="tests/bench/run.sh $*"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; shift ;;
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --idle) idle=$2; shift 2 ;;
    --build-dir) bdir=$2; shift 2 ;;
    --unix) BENCH_UNIX=1; shift ;;
    --servers) servers=$2; shift 2 ;;
    --loads) loads=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --quiet-wait) quiet_wait=$2; shift 2 ;;
    --redis-servers) redis_servers=$2; shift 2 ;;
    --redis-n) redis_n=$2; shift 2 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$quick" = 1 ]; then
  runs=${runs:-1} seconds=${seconds:-1} idle=${idle:-1000} redis_n=${redis_n:-20000}
else
  runs=${runs:-3} seconds=${seconds:-5} idle=${idle:-10000} redis_n=${redis_n:-100000}
fi
IFS=, read -ra servers <<<"$servers"
IFS=, read -ra redis_servers <<<"$redis_servers"
IFS=, read -ra loads <<<"$loads"
mkdir -p "$bdir"
bdir=$(cd "$bdir" && pwd)
out=${out:-$bdir/bench-results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
results=$out/results.jsonl
: >"$results"

# 10,000 idle connections need as many fds in the server and in loadgen. 65536 if we may,
# else the hard limit (an unprivileged container may not raise it).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
bench_log "run.sh: open files limit $(ulimit -n)"

# ---- build -------------------------------------------------------------------------------
bench_log "run.sh: building in $bdir (log: $out/build.log)"
keep_going=()
# The project's default build type, without sanitizers: what users run. BENCH_BUILD_TYPE
# overrides it (e.g. Release).
build_type=${BENCH_BUILD_TYPE:-RelWithDebInfo}
cfg=(-DCMAKE_BUILD_TYPE="$build_type" -DNC_SANITIZE=OFF)
if cmake -S "$root" -B "$bdir" "${cfg[@]}" >"$out/build.log" 2>&1; then
  [ -f "$bdir/Makefile" ] && keep_going=(-- -k)
  cmake --build "$bdir" -j2 "${keep_going[@]}" >>"$out/build.log" 2>&1 ||
    bench_log "run.sh: the build of the tree failed in part; using what was built"
else
  bench_log "run.sh: the tree does not configure; building tests/bench alone"
fi
LOADGEN=$bdir/tests/bench/loadgen
UV_ECHO=$bdir/tests/bench/uv_echo
if [ ! -x "$LOADGEN" ] || [ ! -x "$UV_ECHO" ]; then
  cmake -S "$here" -B "$bdir/bench-only" "${cfg[@]}" >>"$out/build.log" 2>&1 &&
    cmake --build "$bdir/bench-only" -j2 >>"$out/build.log" 2>&1
  LOADGEN=$bdir/bench-only/loadgen
  UV_ECHO=$bdir/bench-only/uv_echo
fi
[ -x "$LOADGEN" ] || { bench_log "run.sh: loadgen did not build, see $out/build.log"; exit 1; }
bench_server_paths "$bdir" "$root"
bench_tmp nc-bench

# ---- the machine -------------------------------------------------------------------------
{
  echo "command: $cmdline"
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpus: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "kernel: $(uname -sr)"
  echo "memory: $(free -m | awk '/^Mem:/{print $2}') MiB"
  echo "node: $(node --version 2>/dev/null || echo none)"
  echo "redis-benchmark: $(redis-benchmark --version 2>/dev/null || echo none); redis-server: $(redis-server --version 2>/dev/null | cut -d' ' -f3 || echo none)"
  echo "libuv: $(pkg-config --modversion libuv 2>/dev/null), libzmq: $(pkg-config --modversion libzmq 2>/dev/null)"
  echo "build: CMAKE_BUILD_TYPE=$build_type, gcc $(gcc -dumpfullversion 2>/dev/null)"
  echo "transport: $([ "$BENCH_UNIX" = 1 ] && echo 'UNIX path' || echo 'TCP 127.0.0.1')"
  echo "runs: $runs x $seconds s per load; idle connections: $idle; quiet wait: $quiet_wait s"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/machine.txt"
cat "$out/machine.txt" >&2

load_args() {
  case $1 in
    pingpong) echo "--conns 100 --depth 1 --size 64 --seconds $seconds" ;;
    pipelined) echo "--conns 100 --depth 16 --size 64 --seconds $seconds" ;;
    bulk) echo "--conns 10 --depth 4 --size 65536 --seconds $seconds" ;;
    churn) echo "--churn --conns 32 --size 64 --seconds $seconds" ;;
    churn8) echo "--churn --conns 8 --size 64 --seconds $seconds" ;;
    idle) echo "--idle $idle --conns 256 --size 64 --settle-ms 2000" ;;
  esac
}

# record SERVER LOAD RUN RC CPU_S WALL_S MACHINE_S SOFTIRQ_S BUSY_BEFORE JSON [UPSTREAM_CPU_S]:
# one line of results.jsonl.
record() {
  local json=${10} up=""
  if [ -z "$json" ] || [ "${json:0:1}" != "{" ]; then
    json='{"error":"loadgen printed no result"}'
  fi
  [ -n "${11:-}" ] && up="\"upstream_cpu_s\":${11},"
  printf '{"server":"%s","load":"%s","run":%s,"rc":%s,"cpu_s":%s,"wall_s":%s,"machine_cpu_s":%s,"softirq_s":%s,"busy_before_pct":%s,%s%s\n' \
    "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$9" "$up" "${json:1}" >>"$results"
}

na() { # SERVER WHY: the server's row says n/a
  printf '{"server":"%s","na":"%s"}\n' "$1" "$(printf '%s' "$2" | tr -d '"\\' | head -c 200)" >>"$results"
}

now_s() { date +%s.%N; }
tck=$(getconf CLK_TCK)

# run_load SERVER LOAD RUN: runs loadgen once against the started server.
run_load() {
  local s=$1 l=$2 k=$3 args c0 c1 m0 m1 q0 q1 t0 t1 u0=0 u1=0 up="" json rc busy=-1 rss=()
  args=$(load_args "$l")
  if [ "$quiet_wait" -gt 0 ]; then
    busy=$(bench_wait_quiet "$quiet_wait" 20) ||
      bench_log "  (machine still $busy % busy after ${quiet_wait} s; measuring anyway)"
  fi
  [ "$l" = idle ] && rss=(--rss-pid "$SRV_MAIN") && [ -n "$SRV_AUX" ] && rss+=(--rss-pid "$SRV_AUX")
  c0=$(bench_cpu_ticks "${SRV_CPU_PIDS[@]}")
  [ -n "$SRV_UPSTREAM" ] && u0=$(bench_cpu_ticks "$SRV_UPSTREAM")
  read -r m0 q0 <<<"$(bench_machine_ticks)"
  t0=$(now_s)
  # shellcheck disable=SC2086
  json=$("$LOADGEN" $SRV_ADDR $args "${rss[@]}" --label "$s" --json 2>"$BENCH_TMP/loadgen.err")
  rc=$?
  t1=$(now_s)
  c1=$(bench_cpu_ticks "${SRV_CPU_PIDS[@]}")
  if [ -n "$SRV_UPSTREAM" ]; then
    u1=$(bench_cpu_ticks "$SRV_UPSTREAM")
    up=$(awk "BEGIN{printf \"%.3f\", ($u1 - $u0) / $tck}")
  fi
  read -r m1 q1 <<<"$(bench_machine_ticks)"
  record "$s" "$l" "$k" "$rc" "$(awk "BEGIN{printf \"%.3f\", ($c1 - $c0) / $tck}")" \
    "$(awk "BEGIN{printf \"%.3f\", $t1 - $t0}")" "$(awk "BEGIN{printf \"%.3f\", ($m1 - $m0) / $tck}")" \
    "$(awk "BEGIN{printf \"%.3f\", ($q1 - $q0) / $tck}")" "$busy" "$json" "$up"
  local summary
  summary=$(printf '%s' "$json" | sed -n 's/.*"rate":\([0-9.]*\).*"p99_us":\([0-9.]*\).*"corrupt_bytes":\([0-9]*\),"failed_conns":\([0-9]*\).*/rate \1  p99 \2 us  corrupt \3  failed \4/p')
  bench_log "  run $k $s $l: ${summary:-no result} (exit $rc)"
  [ -s "$BENCH_TMP/loadgen.err" ] && sed 's/^/    /' "$BENCH_TMP/loadgen.err" >&2
  return 0
}

# died SERVER LOAD RUN: if a process of the server is gone, records how, and fails.
died() {
  local why
  why=$(bench_dead)
  [ -z "$why" ] && return 1
  printf '{"server":"%s","load":"%s","run":%s,"died":"%s"}\n' "$1" "$2" "$3" \
    "$(printf '%s' "$why" | tr -d '"\\' | head -c 600)" >>"$results"
  bench_log "run.sh: $1 died during $2 (run $3): $why"
  return 0
}

timed=() want_idle=0 want_redis=0
for l in "${loads[@]}"; do
  case $l in
    idle) want_idle=1 ;;
    redis) want_redis=1 ;;
    *) timed+=("$l") ;;
  esac
done
[ "$want_redis" = 1 ] || redis_servers=()
# Only the redis loads asked for: no echo server needs to start.
[ ${#timed[@]} -eq 0 ] && [ "$want_idle" = 0 ] && servers=()

declare -A unavailable=()
for s in "${servers[@]}" "${redis_servers[@]}"; do
  why=$(bench_missing "$s")
  if [ -n "$why" ]; then
    unavailable[$s]=1
    na "$s" "missing: $why"
    bench_log "run.sh: $s n/a (missing: $why)"
  fi
done

nserv=${#servers[@]}
for ((k = 1; k <= runs; k++)); do
  # The order of the servers rotates from run to run so no server always goes first.
  for ((j = 0; j < nserv; j++)); do
    s=${servers[$(((j + k - 1) % nserv))]}
    [ -n "${unavailable[$s]:-}" ] && continue
    if [ ${#timed[@]} -gt 0 ]; then
      if ! bench_start "$s"; then
        na "$s" "failed to start: $SRV_ERR"
        bench_log "run.sh: $s failed to start: $SRV_ERR"
        continue
      fi
      for l in "${timed[@]}"; do
        run_load "$s" "$l" "$k"
        died "$s" "$l" "$k" && break
        sleep 0.5
      done
      bench_stop "${SRV_PIDS[@]}"
      SRV_PIDS=()
    fi
    if [ "$want_idle" = 1 ]; then
      # Memory on a fresh server: what the earlier loads left in its heaps is not counted.
      if bench_start "$s"; then
        run_load "$s" idle "$k"
        died "$s" idle "$k"
        bench_stop "${SRV_PIDS[@]}"
        SRV_PIDS=()
      else
        na "$s" "failed to start: $SRV_ERR"
      fi
    fi
  done
done

# ---- redis: a real client against the Redis-protocol servers ---------------------------
# One redis-benchmark per test, so that the server's CPU is measured per test; a fixed -n
# (5 times as many requests at -P 16, so that both last about as long and the CPU clock's
# 10 ms ticks stay small against the run), 50 clients, -P 1 and -P 16, after an unrecorded
# warm-up (a JIT's first seconds are not the measurement). redis-benchmark exits non-zero on an error reply (and on a
# refused or lost connection), which the table reports; after the runs a check asks PING
# and GET of the benchmark's key with redis-cli.
redis_tests=(ping_mbulk set get)

# run_redis SERVER TEST P RUN: one redis-benchmark run against the started server.
run_redis() {
  local s=$1 t=$2 p=$3 k=$4 c0 c1 m0 m1 q0 q1 t0 t1 out rc busy=-1 name line json errtext
  local n=$redis_n
  [ "$p" = 1 ] || n=$((redis_n * 5))
  local f_test f_rps f_avg f_min f_p50 f_p95 f_p99 f_max
  if [ "$quiet_wait" -gt 0 ]; then
    busy=$(bench_wait_quiet "$quiet_wait" 20) ||
      bench_log "  (machine still $busy % busy after ${quiet_wait} s; measuring anyway)"
  fi
  c0=$(bench_cpu_ticks "${SRV_CPU_PIDS[@]}")
  read -r m0 q0 <<<"$(bench_machine_ticks)"
  t0=$(now_s)
  out=$(timeout 300 redis-benchmark -h 127.0.0.1 -p "$SRV_PORT" -c 50 -n "$n" -P "$p" \
    -t "$t" --csv 2>"$BENCH_TMP/rb.err")
  rc=$?
  t1=$(now_s)
  c1=$(bench_cpu_ticks "${SRV_CPU_PIDS[@]}")
  read -r m1 q1 <<<"$(bench_machine_ticks)"
  name=$(printf '%s' "$t" | tr 'a-z' 'A-Z')
  line=$(printf '%s\n' "$out" | grep -m1 "^\"$name\",")
  # Its CONFIG GET is an unknown command to all but redis-server: not an error of the load.
  errtext=$(grep -v 'Could not fetch server CONFIG' "$BENCH_TMP/rb.err" | head -c 300 | tr '\n"\\' '   ')
  if [ "$rc" = 0 ] && [ -n "$line" ]; then
    # "TEST","rps","avg_latency_ms","min","p50","p95","p99","max" (ms)
    IFS=, read -r f_test f_rps f_avg f_min f_p50 f_p95 f_p99 f_max <<<"${line//\"/}"
    json=$(awk -v r="$f_rps" -v n="$n" -v a="$f_avg" -v p50="$f_p50" -v p99="$f_p99" -v mx="$f_max" \
      'BEGIN{printf "{\"rate\":%s,\"count\":%d,\"avg_us\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f", r, n, a*1000, p50*1000, p99*1000, mx*1000}')
    [ -n "$errtext" ] && json+=",\"error\":\"redis-benchmark said: $errtext\""
    json+="}"
  else
    json="{\"error\":\"redis-benchmark exited $rc: ${errtext:-no CSV line for $name}\"}"
  fi
  record "$s" "redis-$t-p$p" "$k" "$rc" "$(awk "BEGIN{printf \"%.3f\", ($c1 - $c0) / $tck}")" \
    "$(awk "BEGIN{printf \"%.3f\", $t1 - $t0}")" "$(awk "BEGIN{printf \"%.3f\", ($m1 - $m0) / $tck}")" \
    "$(awk "BEGIN{printf \"%.3f\", ($q1 - $q0) / $tck}")" "$busy" "$json"
  bench_log "  run $k $s redis $t -P $p: ${f_rps:-no result} req/s (exit $rc)${errtext:+: $errtext}"
}

# verify_redis SERVER RUN: the server still answers, and GET returns what SET stored (the
# benchmark's 3-byte value of key:__rand_int__); a "wrong" line in results.jsonl otherwise.
verify_redis() {
  local pong got why=""
  pong=$(timeout 10 redis-cli -h 127.0.0.1 -p "$SRV_PORT" PING 2>&1)
  [ "$pong" = PONG ] || why="PING answered '$pong'"
  got=$(timeout 10 redis-cli -h 127.0.0.1 -p "$SRV_PORT" --raw GET key:__rand_int__ 2>&1)
  [ ${#got} -eq 3 ] || why="${why:+$why; }GET key:__rand_int__ answered '$got', not the 3 bytes SET stored"
  printf '{"server":"%s","load":"redis-verify","run":%s,"wrong":"%s"}\n' "$1" "$2" \
    "$(printf '%s' "$why" | tr -d '"\\' | head -c 300)" >>"$results"
  [ -n "$why" ] && bench_log "run.sh: $1: wrong replies: $why"
}

nredis=${#redis_servers[@]}
for ((k = 1; k <= runs; k++)); do
  for ((j = 0; j < nredis; j++)); do
    s=${redis_servers[$(((j + k - 1) % nredis))]}
    [ -n "${unavailable[$s]:-}" ] && continue
    if ! bench_start "$s"; then
      na "$s" "failed to start: $SRV_ERR"
      bench_log "run.sh: $s failed to start: $SRV_ERR"
      continue
    fi
    timeout 60 redis-benchmark -h 127.0.0.1 -p "$SRV_PORT" -c 50 -n $((redis_n / 4)) -P 16 \
      -t ping_mbulk,set,get -q >/dev/null 2>&1
    gone=0
    for p in 1 16; do
      for t in "${redis_tests[@]}"; do
        run_redis "$s" "$t" "$p" "$k"
        died "$s" "redis-$t-p$p" "$k" && gone=1 && break 2
      done
    done
    [ "$gone" = 0 ] && verify_redis "$s" "$k"
    bench_stop "${SRV_PIDS[@]}"
    SRV_PIDS=()
  done
done

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
/usr/bin/python3 "$here/table.py" "$results" "$out/machine.txt" | tee "$out/table.md"
bench_log "run.sh: raw results in $results, table in $out/table.md"
