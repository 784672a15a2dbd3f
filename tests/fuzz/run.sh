#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS]: builds the fuzzers with clang (ASan + UBSan +
# libFuzzer coverage) into $NC_FUZZ_BUILD_DIR (default build-fuzz/), replays
# the corpus in tests/fuzz/corpus/, runs each libFuzzer harness for SECONDS
# (default 20), then the protocol fuzzer against the live netcore for SECONDS.
# Exits non-zero on any crash, sanitizer report, stall or failed check; what
# caused it is in $NC_FUZZ_BUILD_DIR/artifacts/.
#
# Knobs (environment):
#   NCF_MAX_NESTING  non-zero: the dispatch and live fuzzers skip inputs that
#                    common/pbwalk refuses for nesting batches too deep (default
#                    0 = no cap: netcore's wire walk refuses nesting before
#                    protobuf-c recurses, issue 9 item 1)
#   NCF_LIBNC_MAX_NESTING  the same for libnc's event decoder (default 0: libnc
#                    walks every event with common/pbwalk before protobuf-c)
#   NCF_JOBS         parallel libFuzzer jobs per harness (default 1)
#   NCF_ONLY         run only these parts: "cmd_decode dispatch event_decode live"
#   NCF_LIVE_SEED    seed of the live fuzzer (default: random, printed)
# Hours instead of seconds: tests/fuzz/run.sh 3600 (README, "Fuzzing").
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
secs=${1:-20}
bdir=${NC_FUZZ_BUILD_DIR:-build-fuzz}
case $bdir in /*) ;; *) bdir=$root/$bdir ;; esac
export NCF_MAX_NESTING=${NCF_MAX_NESTING:-0}
libnc_cap=${NCF_LIBNC_MAX_NESTING:-0}
only=${NCF_ONLY:-cmd_decode dispatch event_decode live}
jobs=${NCF_JOBS:-1}

die() { echo "fuzz: FAIL: $*" >&2; exit 1; }

# clang that can link -fsanitize=fuzzer; install it (Debian) if it cannot.
can_fuzz() {
  local t
  t=$(mktemp -d) || return 1
  echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' >"$t/t.c"
  clang -fsanitize=fuzzer,address,undefined "$t/t.c" -o "$t/t" >/dev/null 2>&1
  local rc=$?
  rm -rf "$t"
  return $rc
}
if ! command -v clang >/dev/null || ! can_fuzz; then
  echo "fuzz: clang with libFuzzer missing; installing clang-14 libclang-rt-14-dev"
  scripts/install-deps.sh --fuzz || die "cannot install clang-14 and libclang-rt-14-dev"
  command -v clang >/dev/null || export PATH=/usr/lib/llvm-14/bin:$PATH
  can_fuzz || die "clang cannot link -fsanitize=fuzzer even after installing libclang-rt-14-dev"
fi

echo "fuzz: building into $bdir"
art=$bdir/artifacts
mkdir -p "$art"
CC=clang cmake -S . -B "$bdir" -DNC_FUZZ=ON -DNC_SANITIZE=ON -DNC_WERROR=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" >"$art/cmake.log" 2>&1 \
  || { cat "$art/cmake.log"; die "cmake"; }
cmake --build "$bdir" -j"$(nproc)" --target netcore fuzz_cmd_decode fuzz_dispatch fuzz_event_decode \
  >"$art/build.log" 2>&1 || { tail -50 "$art/build.log"; die "build"; }
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=()
summary=()

# harness name, max_len
run_harness() {
  local name=$1 maxlen=$2 bin=$bdir/tests/fuzz/fuzz_$1 seeds=$root/tests/fuzz/corpus/$1
  local work=$bdir/corpus/$1 log=$art/$1.log
  mkdir -p "$work"
  # Replay: every seed once, whole (a regression suite; no length limit).
  local rcap=$NCF_MAX_NESTING
  [ "$1" = event_decode ] && rcap=$libnc_cap
  if ! NCF_MAX_NESTING=$rcap "$bin" -runs=0 -artifact_prefix="$art/$1-replay-" "$seeds" >"$art/$1.replay.log" 2>&1; then
    tail -40 "$art/$1.replay.log"
    failed+=("$1 (replaying the corpus)")
    return
  fi
  echo "fuzz: $1 for ${secs}s (corpus $(ls "$seeds" | wc -l) seeds)"
  local par=()
  [ "$jobs" -gt 1 ] && par=(-jobs="$jobs" -workers="$jobs")
  rm -f "$art"/fuzz-*.log
  # From $art: with -jobs, libFuzzer writes each job's log (fuzz-N.log) into the cwd.
  local cap=$NCF_MAX_NESTING
  [ "$1" = event_decode ] && cap=$libnc_cap
  if (cd "$art" && NCF_MAX_NESTING=$cap "$bin" -max_total_time="$secs" -max_len="$maxlen" -timeout=20 \
       -print_final_stats=1 "${par[@]}" -artifact_prefix="$art/$1-" \
       -dict="$root/tests/fuzz/netcore.dict" "$work" "$seeds") >"$log" 2>&1; then
    local execs rate
    cat "$art"/fuzz-*.log >>"$log" 2>/dev/null
    rm -f "$art"/fuzz-*.log
    execs=$(grep -h 'stat::number_of_executed_units' "$log" | awk '{s+=$2} END {print s+0}')
    rate=$(grep -h 'stat::average_exec_per_sec' "$log" | awk '{s+=$2} END {print s+0}')
    summary+=("$(printf '%-13s %10s execs  %7s exec/s  corpus %s' "$1" "$execs" "$rate" \
      "$(ls "$work" | wc -l)")")
  else
    cat "$art"/fuzz-*.log >>"$log" 2>/dev/null
    grep -E -A30 'ERROR: (Address|Leak|libFuzzer)|runtime error|fuzz_dispatch:|==ERROR' "$log" | head -60
    failed+=("$1 (see $log; input: $(ls "$art"/"$1"-* 2>/dev/null | head -1))")
  fi
}

# The live fuzzer's handlers connect to ports their listeners once had and to
# localhost (::1, then 127.0.0.1): on the shared loopback those reach other
# tests' listeners (test_policy accepted such a stranger instead of netcore's
# connect). In a network namespace of its own (a private loopback) it
# reaches nobody else. Without one (no unshare, no rights) it shares the host's.
isolated() {
  local ns=(unshare -n)
  [ "$(id -u)" -eq 0 ] || ns=(unshare -rn)
  if "${ns[@]}" ip link set lo up 2>/dev/null; then
    "${ns[@]}" sh -c 'ip link set lo up && exec "$@"' isolated "$@"
  else
    echo "live: no network namespace of its own (unshare -n failed): sharing the loopback"
    "$@"
  fi
}

for part in $only; do
  case $part in
  cmd_decode) run_harness cmd_decode 4096 ;;
  event_decode) run_harness event_decode 4096 ;;
  dispatch) run_harness dispatch 2048 ;;
  live)
    echo "fuzz: live protocol fuzzer for ${secs}s"
    if isolated /usr/bin/python3 tests/fuzz/live_fuzz.py --netcore "$bdir/netcore/netcore" --seconds "$secs" \
         --artifacts "$art" ${NCF_LIVE_SEED:+--seed "$NCF_LIVE_SEED"} >"$art/live.log" 2>&1; then
      summary+=("$(tail -1 "$art/live.log")")
    else
      tail -40 "$art/live.log"
      failed+=("live (see $art/live.log)")
    fi
    ;;
  *) die "unknown part '$part' in NCF_ONLY" ;;
  esac
done

# For information while libnc's cap is on: does its uncapped decoder still
# overflow on the 4,400-deep seed (netcore's is replayed uncapped above)?
if [ "$libnc_cap" != 0 ]; then
  for h in event_decode; do
    seed=$root/tests/fuzz/corpus/$h/batch-nested-4400
    [ -f "$seed" ] && [ -x "$bdir/tests/fuzz/fuzz_$h" ] || continue
    if (NCF_MAX_NESTING=0 "$bdir/tests/fuzz/fuzz_$h" "$seed" >"$art/$h.nesting.log" 2>&1) 2>/dev/null; then
      summary+=("$h: the 4,400-deep seed decodes without a crash now: NCF_LIBNC_MAX_NESTING=0 can be the default")
    else
      summary+=("$h: known (libnc, like issue 9 item 1): uncapped, the 4,400-deep seed still crashes ($(grep -o 'AddressSanitizer: [a-z-]*' "$art/$h.nesting.log" | head -1))")
    fi
  done
fi

echo "fuzz: summary (nesting cap ${NCF_MAX_NESTING}, libnc ${libnc_cap})"
for s in "${summary[@]}"; do echo "  $s"; done
if [ ${#failed[@]} -gt 0 ]; then
  for f in "${failed[@]}"; do echo "fuzz: FAIL: $f" >&2; done
  exit 1
fi
echo "fuzz: OK"
