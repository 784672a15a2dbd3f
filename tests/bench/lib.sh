# Sourced by run.sh and smoke.sh: start one echo server of the benchmark, wait for its
# "listening on" line, stop it. Every process started here is a child of the calling shell,
# remembered by pid and stopped by pid only (TERM, then KILL after 5 s).
#
# Inputs (set by the caller): BENCH_TMP (a private temp dir), and the paths that exist of
# UV_ECHO, NODE_ECHO, NETCORE, C_ACTOR, PY_ACTOR, NODE_ACTOR. BENCH_UNIX=1 listens on a
# UNIX path instead of 127.0.0.1:0.
# Outputs of bench_start: SRV_PIDS (all pids, actor first), SRV_NAMES (their names),
# SRV_LOGS (their stderr files), SRV_MAIN (the process whose RSS is the server's: the
# netcore daemon alone, or node, or uv_echo), SRV_AUX (the actor's pid for netcore rows,
# else empty), SRV_ADDR (loadgen address arguments), SRV_ERR (why not).

bench_log() { printf '%s\n' "$*" >&2; }

# bench_wait_file PATH PID SECONDS: until PATH exists as a socket, or PID died.
bench_wait_file() {
  local i
  for ((i = 0; i < $3 * 20; i++)); do
    [ -S "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# bench_wait_line FILE PID SECONDS: until FILE has the "listening on" line, or PID died.
bench_wait_line() {
  local i
  for ((i = 0; i < $3 * 20; i++)); do
    grep -q ' listening on {' "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# bench_stop PID...: TERM each, give it 5 s, then KILL; reaps them.
bench_stop() {
  local pid i
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
  done
  return 0
}

# bench_missing KIND: prints what is missing for a server kind, nothing if all is there.
bench_missing() {
  local need=()
  case $1 in
    libuv) need=("$UV_ECHO") ;;
    node) need=("$NODE_ECHO") ;;
    netcore-c) need=("$NETCORE" "$C_ACTOR") ;;
    netcore-python) need=("$NETCORE" "$PY_ACTOR") ;;
    netcore-node) need=("$NETCORE" "$NODE_ACTOR") ;;
  esac
  local f out=()
  for f in "${need[@]}"; do [ -n "$f" ] && [ -e "$f" ] || out+=("${f:-?}"); done
  case $1 in node | netcore-node) command -v node >/dev/null || out+=(node) ;; esac
  [ ${#out[@]} -eq 0 ] || printf '%s' "${out[*]}"
}

# bench_start KIND: starts the server; 0 and SRV_* set, or non-zero and SRV_ERR set.
bench_start() {
  local kind=$1 dir actor_pid nc_pid
  SRV_PIDS=() SRV_NAMES=() SRV_LOGS=() SRV_MAIN="" SRV_AUX="" SRV_ADDR="" SRV_ERR=""
  dir=$(mktemp -d "$BENCH_TMP/$kind.XXXX")
  local addr=(--port 0 --host 127.0.0.1)
  [ "${BENCH_UNIX:-0}" = 1 ] && addr=(--path "$dir/echo.sock")
  local actor=()
  case $kind in
    libuv) actor=("$UV_ECHO") ;;
    node) actor=(node "$NODE_ECHO") ;;
    netcore-c) actor=("$C_ACTOR") ;;
    netcore-python) actor=(/usr/bin/python3 "$PY_ACTOR") ;;
    netcore-node) actor=(node "$NODE_ACTOR") ;;
    *) SRV_ERR="unknown server $kind"; return 1 ;;
  esac
  if [[ $kind == netcore-* ]]; then
    "$NETCORE" --bind "ipc://$dir/nc.sock" --log-level warn >"$dir/netcore.out" 2>"$dir/netcore.err" &
    nc_pid=$!
    SRV_PIDS=("$nc_pid") SRV_NAMES=(netcore) SRV_LOGS=("$dir/netcore.err")
    if ! bench_wait_file "$dir/nc.sock" "$nc_pid" 10; then
      SRV_ERR="netcore did not bind: $(tail -c 300 "$dir/netcore.err" | tr '\n' ' ')"
      bench_stop "$nc_pid"
      return 1
    fi
    actor+=(--endpoint "ipc://$dir/nc.sock")
  fi
  "${actor[@]}" "${addr[@]}" >"$dir/server.out" 2>"$dir/server.err" &
  actor_pid=$!
  SRV_PIDS=("$actor_pid" "${SRV_PIDS[@]}")
  SRV_NAMES=("${actor[0]##*/}${actor[1]:+ ${actor[1]##*/}}" "${SRV_NAMES[@]}")
  SRV_LOGS=("$dir/server.err" "${SRV_LOGS[@]}")
  if ! bench_wait_line "$dir/server.out" "$actor_pid" 20; then
    SRV_ERR="$kind did not listen: $(tail -c 300 "$dir/server.err" | tr '\n' ' ')"
    bench_stop "${SRV_PIDS[@]}"
    return 1
  fi
  if [[ $kind == netcore-* ]]; then
    SRV_MAIN=$nc_pid SRV_AUX=$actor_pid
  else
    SRV_MAIN=$actor_pid
  fi
  local line port
  line=$(grep -m1 ' listening on {' "$dir/server.out")
  if [ "${BENCH_UNIX:-0}" = 1 ]; then
    SRV_ADDR="--path $dir/echo.sock"
  else
    port=$(printf '%s' "$line" | sed -n 's/.*"port":\([0-9]*\).*/\1/p')
    if [ -z "$port" ]; then
      SRV_ERR="$kind: no port in: $line"
      bench_stop "${SRV_PIDS[@]}"
      return 1
    fi
    SRV_ADDR="--host 127.0.0.1 --port $port"
  fi
  return 0
}

# bench_cpu_ticks PID...: user+system clock ticks used so far by these processes.
bench_cpu_ticks() {
  local pid sum=0 f
  for pid in "$@"; do
    f=$(cut -d')' -f2 "/proc/$pid/stat" 2>/dev/null) || continue
    read -ra f <<<"$f"
    sum=$((sum + f[11] + f[12])) # fields 14 and 15 (utime, stime) of proc(5)
  done
  printf '%s' "$sum"
}

# bench_machine_ticks: "BUSY SOFTIRQ": clock ticks the whole machine (all cpus, proc(5))
# spent in processes and interrupts, and of those in softirq, where loopback TCP is
# processed without being charged to any process.
bench_machine_ticks() {
  local f
  read -ra f </proc/stat
  printf '%s %s' $((f[1] + f[2] + f[3] + f[6] + f[7] + f[8])) $((f[7]))
}

# bench_dead: prints "NAME exited with status N: <stderr tail>" for each server process that
# is gone (and reaps it); prints nothing while all live.
bench_dead() {
  local i rc
  for i in "${!SRV_PIDS[@]}"; do
    kill -0 "${SRV_PIDS[$i]}" 2>/dev/null && continue
    wait "${SRV_PIDS[$i]}" 2>/dev/null
    rc=$?
    printf '%s exited with status %s%s: %s; ' "${SRV_NAMES[$i]}" "$rc" \
      "$([ "$rc" -gt 128 ] && echo " (signal $((rc - 128)))")" \
      "$(tail -c 300 "${SRV_LOGS[$i]}" 2>/dev/null | tr '\n"\\' '   ')"
  done
}

# bench_wait_quiet MAX_S PCT: waits (up to MAX_S seconds) until the machine was less than
# PCT % of one core busy over half a second, so a load does not start while other work
# (another build, another test suite) holds the cpus. Prints the last busy % measured;
# non-zero if the machine never got quiet.
bench_wait_quiet() {
  local max=$1 pct=$2 tck a b busy start=$SECONDS
  tck=$(getconf CLK_TCK)
  while :; do
    read -r a _ <<<"$(bench_machine_ticks)"
    sleep 0.5
    read -r b _ <<<"$(bench_machine_ticks)"
    busy=$(((b - a) * 200 / tck))
    if [ "$busy" -lt "$pct" ] || [ $((SECONDS - start)) -ge "$max" ]; then
      printf '%s' "$busy"
      [ "$busy" -lt "$pct" ]
      return
    fi
  done
}
