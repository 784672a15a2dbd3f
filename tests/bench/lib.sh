# Sourced by run.sh and smoke.sh: start one server of the benchmark, wait for its
# "listening on" line, stop it. Every process started here is a child of the calling shell,
# remembered by pid and stopped by pid only (TERM, then KILL after 5 s).
#
# Inputs (set by the caller, or by bench_tmp and bench_server_paths below): BENCH_TMP (a
# private temp dir), and the paths that exist of
# UV_ECHO, NODE_ECHO, NETCORE, C_ACTOR, PY_ACTOR, NODE_ACTOR, and for the proxy and redis
# kinds PROXY_ACTOR, NODE_PROXY, C_REDIS, PY_REDIS, NODE_REDIS, NODE_NET_REDIS,
# ASYNCIO_REDIS (redis-server is looked up in PATH). BENCH_UNIX=1 listens on a UNIX path
# instead of 127.0.0.1:0 (not the redis kinds: redis-benchmark runs over TCP).
# Outputs of bench_start: SRV_PIDS (all pids, actor first, a proxy's upstream last),
# SRV_CPU_PIDS (the pids whose CPU is the server's: SRV_PIDS without the upstream echo of
# a proxy, which is the same for every proxy), SRV_UPSTREAM (that upstream's pid, or
# empty), SRV_NAMES (their names), SRV_LOGS (their stderr files), SRV_MAIN (the process
# whose RSS is the server's: the netcore daemon alone, or node, or uv_echo), SRV_AUX (the
# actor's pid for netcore rows, else empty), SRV_ADDR (loadgen address arguments),
# SRV_PORT (the TCP port), SRV_ERR (why not).
#
# Kinds: the echoes libuv, node, netcore-c, netcore-python, netcore-node, their
# --via-handler variants netcore-c-via, netcore-python-via, netcore-node-via; the proxies
# netcore-proxy (netcore + actors/proxy) and node-proxy (tests/bench/node-proxy.js), both
# in front of one uv_echo; the Redis-protocol servers redis-c, redis-node, redis-python
# (actors through netcore), redis-node-net, redis-asyncio (the same logic on Node's `net`
# and asyncio) and redis-server.

bench_log() { printf '%s\n' "$*" >&2; }

# bench_server_paths BUILD_DIR SRC: the paths of every server kind below, the binaries from
# BUILD_DIR, the actors, client libraries and stand-alone scripts from the checkout SRC.
bench_server_paths() {
  local b=$1 src=$2
  NETCORE=$b/netcore/netcore C_ACTOR=$b/actors/echo PROXY_ACTOR=$b/actors/proxy C_REDIS=$b/actors/redis
  PY_ACTOR=$src/actors/python/echo.py NODE_ACTOR=$src/actors/node/echo.js
  PY_REDIS=$src/actors/python/redis.py NODE_REDIS=$src/actors/node/redis.js
  NODE_ECHO=$src/tests/bench/node-echo.js NODE_PROXY=$src/tests/bench/node-proxy.js
  NODE_NET_REDIS=$src/tests/bench/node-redis.js ASYNCIO_REDIS=$src/tests/bench/asyncio-redis.py
}

# bench_tmp NAME: BENCH_TMP, a private temp dir, and an EXIT trap that stops the servers
# bench_start started (SRV_PIDS) and removes it.
bench_tmp() {
  BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  SRV_PIDS=()
  trap '[ ${#SRV_PIDS[@]} -gt 0 ] && bench_stop "${SRV_PIDS[@]}"; rm -rf "$BENCH_TMP"' EXIT
  trap 'exit 130' INT TERM
}

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
  local need=() exe=()
  case $1 in
    libuv) need=("$UV_ECHO") ;;
    node) need=("$NODE_ECHO") exe=(node) ;;
    netcore-c | netcore-c-via) need=("$NETCORE" "$C_ACTOR") ;;
    netcore-python | netcore-python-via) need=("$NETCORE" "$PY_ACTOR") ;;
    netcore-node | netcore-node-via) need=("$NETCORE" "$NODE_ACTOR") exe=(node) ;;
    netcore-proxy) need=("$NETCORE" "${PROXY_ACTOR:-}" "$UV_ECHO") ;;
    node-proxy) need=("${NODE_PROXY:-}" "$UV_ECHO") exe=(node) ;;
    redis-c) need=("$NETCORE" "${C_REDIS:-}") exe=(redis-benchmark) ;;
    redis-python) need=("$NETCORE" "${PY_REDIS:-}") exe=(redis-benchmark) ;;
    redis-node) need=("$NETCORE" "${NODE_REDIS:-}") exe=(node redis-benchmark) ;;
    redis-node-net) need=("${NODE_NET_REDIS:-}") exe=(node redis-benchmark) ;;
    redis-asyncio) need=("${ASYNCIO_REDIS:-}") exe=(redis-benchmark) ;;
    redis-server) exe=(redis-server redis-cli redis-benchmark) ;;
  esac
  local f out=()
  for f in "${need[@]}"; do [ -n "$f" ] && [ -e "$f" ] || out+=("${f:-?}"); done
  for f in "${exe[@]}"; do command -v "$f" >/dev/null || out+=("$f"); done
  [ ${#out[@]} -eq 0 ] || printf '%s' "${out[*]}"
}

# bench_port_of FILE: the port of the first "listening on {json}" line of FILE.
bench_port_of() {
  grep -m1 ' listening on {' "$1" | sed -n 's/.*"port":\([0-9]*\).*/\1/p'
}

# bench_free_port: a TCP port of 127.0.0.1 that was free a moment ago (for redis-server,
# which cannot listen on port 0 and report it).
bench_free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# bench_start_redis_server DIR: redis-server on a free port, without persistence; waits
# for its PING. Sets SRV_* like bench_start.
bench_start_redis_server() {
  local dir=$1 try i port pid
  for try in 1 2 3; do
    port=$(bench_free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
      --logfile "$dir/redis.log" >"$dir/server.out" 2>"$dir/server.err" &
    pid=$!
    for ((i = 0; i < 200; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      if [ "$(redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null)" = PONG ]; then
        SRV_PIDS=("$pid") SRV_CPU_PIDS=("$pid") SRV_NAMES=(redis-server) SRV_LOGS=("$dir/redis.log")
        SRV_MAIN=$pid SRV_PORT=$port SRV_ADDR="--host 127.0.0.1 --port $port"
        return 0
      fi
      sleep 0.05
    done
    bench_stop "$pid"
  done
  SRV_ERR="redis-server did not answer PING: $(tail -c 300 "$dir/redis.log" 2>/dev/null | tr '\n' ' ')"
  return 1
}

# bench_start KIND: starts the server; 0 and SRV_* set, or non-zero and SRV_ERR set.
bench_start() {
  local kind=$1 dir actor_pid nc_pid up_pid="" up_port
  SRV_PIDS=() SRV_CPU_PIDS=() SRV_NAMES=() SRV_LOGS=() SRV_MAIN="" SRV_AUX="" SRV_ADDR=""
  SRV_PORT="" SRV_UPSTREAM="" SRV_ERR=""
  dir=$(mktemp -d "$BENCH_TMP/$kind.XXXX")
  local addr=(--port 0 --host 127.0.0.1)
  [ "${BENCH_UNIX:-0}" = 1 ] && [[ $kind != redis-* ]] && addr=(--path "$dir/echo.sock")
  local actor=() via_netcore=0
  case $kind in
    libuv) actor=("$UV_ECHO") ;;
    node) actor=(node "$NODE_ECHO") ;;
    netcore-c) actor=("$C_ACTOR") via_netcore=1 ;;
    netcore-python) actor=(/usr/bin/python3 "$PY_ACTOR") via_netcore=1 ;;
    netcore-node) actor=(node "$NODE_ACTOR") via_netcore=1 ;;
    netcore-c-via) actor=("$C_ACTOR" --via-handler) via_netcore=1 ;;
    netcore-python-via) actor=(/usr/bin/python3 "$PY_ACTOR" --via-handler) via_netcore=1 ;;
    netcore-node-via) actor=(node "$NODE_ACTOR" --via-handler) via_netcore=1 ;;
    netcore-proxy) actor=("$PROXY_ACTOR") via_netcore=1 ;;
    node-proxy) actor=(node "$NODE_PROXY") ;;
    redis-c) actor=("$C_REDIS") via_netcore=1 ;;
    redis-python) actor=(/usr/bin/python3 "$PY_REDIS") via_netcore=1 ;;
    redis-node) actor=(node "$NODE_REDIS") via_netcore=1 ;;
    redis-node-net) actor=(node "$NODE_NET_REDIS") ;;
    redis-asyncio) actor=(/usr/bin/python3 "$ASYNCIO_REDIS") ;;
    redis-server) bench_start_redis_server "$dir"; return ;;
    *) SRV_ERR="unknown server $kind"; return 1 ;;
  esac
  if [[ $kind == *-proxy ]]; then
    # The upstream: the single-process libuv echo, the same for both proxies.
    local up_addr=(--port 0 --host 127.0.0.1)
    [ "${BENCH_UNIX:-0}" = 1 ] && up_addr=(--path "$dir/upstream.sock")
    "$UV_ECHO" "${up_addr[@]}" >"$dir/upstream.out" 2>"$dir/upstream.err" &
    up_pid=$!
    if ! bench_wait_line "$dir/upstream.out" "$up_pid" 10; then
      SRV_ERR="the upstream echo did not listen: $(tail -c 300 "$dir/upstream.err" | tr '\n' ' ')"
      bench_stop "$up_pid"
      return 1
    fi
    if [ "${BENCH_UNIX:-0}" = 1 ]; then
      actor+=(--to-path "$dir/upstream.sock")
    else
      up_port=$(bench_port_of "$dir/upstream.out")
      actor+=(--to-port "$up_port" --to-host 127.0.0.1)
    fi
  fi
  if [ "$via_netcore" = 1 ]; then
    "$NETCORE" --bind "ipc://$dir/nc.sock" --log-level warn >"$dir/netcore.out" 2>"$dir/netcore.err" &
    nc_pid=$!
    SRV_PIDS=("$nc_pid") SRV_NAMES=(netcore) SRV_LOGS=("$dir/netcore.err")
    if ! bench_wait_file "$dir/nc.sock" "$nc_pid" 10; then
      SRV_ERR="netcore did not bind: $(tail -c 300 "$dir/netcore.err" | tr '\n' ' ')"
      bench_stop "$nc_pid" $up_pid
      return 1
    fi
    actor+=(--endpoint "ipc://$dir/nc.sock")
  fi
  "${actor[@]}" "${addr[@]}" >"$dir/server.out" 2>"$dir/server.err" &
  actor_pid=$!
  SRV_PIDS=("$actor_pid" "${SRV_PIDS[@]}")
  SRV_NAMES=("${actor[0]##*/}${actor[1]:+ ${actor[1]##*/}}" "${SRV_NAMES[@]}")
  SRV_LOGS=("$dir/server.err" "${SRV_LOGS[@]}")
  SRV_CPU_PIDS=("${SRV_PIDS[@]}")
  if [ -n "$up_pid" ]; then
    SRV_PIDS+=("$up_pid") SRV_NAMES+=(uv_echo-upstream) SRV_LOGS+=("$dir/upstream.err")
    SRV_UPSTREAM=$up_pid
  fi
  if ! bench_wait_line "$dir/server.out" "$actor_pid" 20; then
    SRV_ERR="$kind did not listen: $(tail -c 300 "$dir/server.err" | tr '\n' ' ')"
    bench_stop "${SRV_PIDS[@]}"
    return 1
  fi
  if [ "$via_netcore" = 1 ]; then
    SRV_MAIN=$nc_pid SRV_AUX=$actor_pid
  else
    SRV_MAIN=$actor_pid
  fi
  local line
  line=$(grep -m1 ' listening on {' "$dir/server.out")
  if [ "${BENCH_UNIX:-0}" = 1 ] && [[ $kind != redis-* ]]; then
    SRV_ADDR="--path $dir/echo.sock"
  else
    SRV_PORT=$(bench_port_of "$dir/server.out")
    if [ -z "$SRV_PORT" ]; then
      SRV_ERR="$kind: no port in: $line"
      bench_stop "${SRV_PIDS[@]}"
      return 1
    fi
    SRV_ADDR="--host 127.0.0.1 --port $SRV_PORT"
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
