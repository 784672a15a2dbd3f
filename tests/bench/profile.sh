#!/usr/bin/env bash
# Where netcore + the C echo actor spend their time under one load: starts them (the
# build in build-bench/, as run.sh builds it), runs the load generator, and meanwhile
#  - counts system calls per process and thread (perf stat, raw_syscalls:sys_enter),
#  - samples call stacks of the daemon and the actor (perf record -g, cpu-clock),
# then prints requests done, syscalls per request and the top symbols of each process.
#
#   tests/bench/profile.sh [pingpong|pipelined|bulk|churn] [--seconds T] [--build-dir DIR]
#
# Needs perf (Debian: linux-perf) and root or kernel.perf_event_paranoid <= 1.
set -euo pipefail
cd "$(dirname "$0")/../.."
load=pingpong seconds=5 build=build-bench
while [ $# -gt 0 ]; do
  case $1 in
    pingpong | pipelined | bulk | churn) load=$1 ;;
    --seconds) seconds=$2; shift ;;
    --build-dir) build=$2; shift ;;
    *) echo "usage: $0 [pingpong|pipelined|bulk|churn] [--seconds T] [--build-dir DIR]" >&2; exit 2 ;;
  esac
  shift
done
command -v perf >/dev/null || { echo "profile.sh: perf is not installed" >&2; exit 1; }
[ -x "$build/netcore/netcore" ] || NC_BUILD_DIR=$build bash scripts/build.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

NETCORE=$build/netcore/netcore C_ACTOR=$build/actors/echo
BENCH_TMP=$(mktemp -d /tmp/nc-profile.XXXX)
trap 'rm -rf "$BENCH_TMP"' EXIT
# shellcheck source=lib.sh
. tests/bench/lib.sh
bench_start netcore-c || { echo "profile.sh: $SRV_ERR" >&2; exit 1; }
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
sleep 0.5
d0=$(bench_cpu_ticks "$SRV_MAIN") a0=$(bench_cpu_ticks "$SRV_AUX")
# shellcheck disable=SC2086
"$build/tests/bench/loadgen" $SRV_ADDR "${args[@]}" --seconds "$seconds" --json >"$out.json"
d1=$(bench_cpu_ticks "$SRV_MAIN") a1=$(bench_cpu_ticks "$SRV_AUX")
kill -INT "$stat_pid" "$rec1" "$rec2"
wait "$stat_pid" "$rec1" "$rec2" 2>/dev/null || true

ops=$(sed -n 's/.*"count":\([0-9]*\).*/\1/p' "$out.json")
echo "load: $load, ${seconds}s: $(cat "$out.json")"
tck=$(getconf CLK_TCK)
awk -v d=$((d1 - d0)) -v a=$((a1 - a0)) -v t="$tck" -v ops="$ops" 'BEGIN {
  printf "CPU per operation (us, perf running): daemon %.2f, actor %.2f, both %.2f\n",
    d / t * 1e6 / ops, a / t * 1e6 / ops, (d + a) / t * 1e6 / ops }'
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
