#!/usr/bin/env bash
# Where netcore + the C echo actor spend their time under one load: starts them (the
# build in build-bench/, as run.sh builds it), runs the load generator, and meanwhile
#  - counts system calls per process and thread (perf stat, raw_syscalls:sys_enter),
#  - samples call stacks of the daemon and the actor (perf record -g, cpu-clock),
#  - reads every thread's CPU time and context switches (/proc/PID/task/TID),
# then prints requests done, per thread: syscalls, context switches and CPU per request,
# and the top symbols of each process.
#
#   tests/bench/profile.sh [pingpong|pipelined|bulk|churn] [--seconds T] [--build-dir DIR]
#                          [--actor pipe-c|via-c|pipe-python|via-python|pipe-node|via-node]
#
# --actor: which handler (default pipe-c, the C echo with c.pipe(c), which runs inside
# netcore); via-*: the C, Python and Node.js echoes with --via-handler, which write() from
# the data callback, so every byte takes the path through the handler.
#
# Needs perf (Debian: linux-perf) and root or kernel.perf_event_paranoid <= 1.
set -euo pipefail
cd "$(dirname "$0")/../.."
load=pingpong seconds=5 build=build-bench actor=pipe-c
while [ $# -gt 0 ]; do
  case $1 in
    pingpong | pipelined | bulk | churn) load=$1 ;;
    --seconds) seconds=$2; shift ;;
    --build-dir) build=$2; shift ;;
    --actor) actor=$2; shift ;;
    *) echo "usage: $0 [pingpong|pipelined|bulk|churn] [--seconds T] [--build-dir DIR] [--actor A]" >&2; exit 2 ;;
  esac
  shift
done
command -v perf >/dev/null || { echo "profile.sh: perf is not installed" >&2; exit 1; }
[ -x "$build/netcore/netcore" ] || NC_BUILD_DIR=$build bash scripts/build.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

NETCORE=$build/netcore/netcore C_ACTOR=$build/actors/echo
PY_ACTOR=actors/python/echo.py NODE_ACTOR=actors/node/echo.js
case $actor in
  pipe-c) kind=netcore-c ;;
  via-c) kind=netcore-c-via ;;
  pipe-python) kind=netcore-python ;;
  via-python) kind=netcore-python-via ;;
  pipe-node) kind=netcore-node ;;
  via-node) kind=netcore-node-via ;;
  *) echo "profile.sh: unknown actor $actor" >&2; exit 2 ;;
esac
BENCH_TMP=$(mktemp -d /tmp/nc-profile.XXXX)
trap 'rm -rf "$BENCH_TMP"' EXIT
# shellcheck source=lib.sh
. tests/bench/lib.sh
bench_start $kind || { echo "profile.sh: $SRV_ERR" >&2; exit 1; }
trap 'bench_stop "${SRV_PIDS[@]}"; rm -rf "$BENCH_TMP"' EXIT

case $load in
  pingpong) args=(--conns 100 --depth 1 --size 64) ;;
  pipelined) args=(--conns 100 --depth 16 --size 64) ;;
  bulk) args=(--conns 10 --depth 4 --size 65536) ;;
  churn) args=(--churn --conns 8 --size 64) ;;
esac
out=$BENCH_TMP/out
perf stat -e raw_syscalls:sys_enter --per-thread -p "$SRV_MAIN,$SRV_AUX" -o "$out.stat" &
stat_pid=$!
perf record -q -g -e cpu-clock -F 2000 -p "$SRV_MAIN" -o "$out.daemon" >/dev/null 2>&1 &
rec1=$!
perf record -q -g -e cpu-clock -F 2000 -p "$SRV_AUX" -o "$out.actor" >/dev/null 2>&1 &
rec2=$!
# threads PID...: one line per thread: "process/comm:tid utime+stime voluntary nonvoluntary".
threads() {
  local pid t
  for pid in "$@"; do
    for t in /proc/"$pid"/task/*; do
      local f vcs nvcs
      f=$(cut -d')' -f2 "$t/stat" 2>/dev/null) || continue
      read -ra f <<<"$f"
      vcs=$(sed -n 's/^voluntary_ctxt_switches:\s*//p' "$t/status")
      nvcs=$(sed -n 's/^nonvoluntary_ctxt_switches:\s*//p' "$t/status")
      printf '%s/%s:%s %s %s %s\n' "$pid" "$(cat "$t/comm")" "${t##*/}" $((f[11] + f[12])) "$vcs" "$nvcs"
    done
  done
}
sleep 0.5
threads "$SRV_MAIN" "$SRV_AUX" >"$out.threads0"
d0=$(bench_cpu_ticks "$SRV_MAIN") a0=$(bench_cpu_ticks "$SRV_AUX")
# shellcheck disable=SC2086
"$build/tests/bench/loadgen" $SRV_ADDR "${args[@]}" --seconds "$seconds" --json >"$out.json"
d1=$(bench_cpu_ticks "$SRV_MAIN") a1=$(bench_cpu_ticks "$SRV_AUX")
threads "$SRV_MAIN" "$SRV_AUX" >"$out.threads1"
kill -INT "$stat_pid" "$rec1" "$rec2"
wait "$stat_pid" "$rec1" "$rec2" 2>/dev/null || true

ops=$(sed -n 's/.*"count":\([0-9]*\).*/\1/p' "$out.json")
echo "load: $load, ${seconds}s: $(cat "$out.json")"
tck=$(getconf CLK_TCK)
awk -v d=$((d1 - d0)) -v a=$((a1 - a0)) -v t="$tck" -v ops="$ops" 'BEGIN {
  printf "CPU per operation (us, perf running): daemon %.2f, actor %.2f, both %.2f\n",
    d / t * 1e6 / ops, a / t * 1e6 / ops, (d + a) / t * 1e6 / ops }'
echo
echo "per operation, by thread (pid/name:tid; d = daemon $SRV_MAIN, a = actor $SRV_AUX): CPU us, voluntary and involuntary context switches"
awk -v ops="$ops" -v t="$tck" 'NR == FNR { c[$1] = $2; v[$1] = $3; n[$1] = $4; next }
  ($1 in c) && ($2 - c[$1] > 0 || $3 - v[$1] > 0) {
    printf "  %-28s cpu %7.2f  vcs %6.3f  ivcs %6.3f\n", $1, ($2 - c[$1]) / t * 1e6 / ops,
      ($3 - v[$1]) / ops, ($4 - n[$1]) / ops }' "$out.threads0" "$out.threads1"
echo
echo "system calls per operation ($ops operations), by thread:"
awk -v ops="$ops" '/raw_syscalls:sys_enter/ { gsub(",", "", $2); if ($2 > 0) printf "  %-24s %8.2f\n", $1, $2 / ops; t += $2 }
  END { printf "  %-24s %8.2f\n", "all", t / ops }' "$out.stat"
for who in daemon actor; do
  echo
  echo "$who: by thread and library (% of the process's samples)"
  perf report -i "$out.$who" --no-children --sort comm,dso --stdio 2>/dev/null |
    grep -E '^ +[0-9.]+%' | head -12 || true
  echo "$who: top symbols in user space (self time)"
  perf report -i "$out.$who" --no-children --sort sym --stdio 2>/dev/null |
    grep -E '^ +[0-9.]+% +\[\.\]' | head -20 || true
done
