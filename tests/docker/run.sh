#!/usr/bin/env bash
# run.sh CACHE_DIR: the docker test. Builds every image (netcore, C, Python and
# JavaScript actors), checks `docker run -p 8124:8124 IMAGE` serves the seed's echo and
# that docker stop ends it with exit 0, brings up docker/compose.yaml, checks the
# three echoes with real clients (check.py echo), then stops the stack with data in
# flight (check.py drain): every byte arrives, then a clean EOF, and every container
# exits 0; then the same for the CURVE variant (compose.curve.yaml, keys and policy
# from curve-keys.sh: all three echoes over tcp with CURVE). The handler images must
# hold the libraries as installed packages (pip, npm pack). Uses the machine's engine, else a private one (engine.sh); skips (exit 77,
# loudly) only when no engine can start at all. Cleans up its containers, networks,
# volumes, images and the engine it started (NC_DOCKER_KEEP_ENGINE=1 keeps the engine).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${1:?usage: run.sh CACHE_DIR}
mkdir -p "$cache"
run=nct$$$(date +%s | tail -c 5)
tag=$run
log() { echo "docker test: $*"; }

set +e
exports=$("$here/engine.sh" start "$cache")
rc=$?
set -e
if [ $rc -eq 3 ]; then
  echo "************************************************************"
  echo "SKIPPED: no Docker engine could be started on this machine"
  echo "************************************************************"
  exit 77
fi
[ $rc -eq 0 ] || { log "engine.sh failed (status $rc)"; exit 1; }
eval "$exports"
if command -v docker-compose >/dev/null; then compose_cmd=(docker-compose)
else compose_cmd=(docker compose); fi
compose=("${compose_cmd[@]}" -p "$run" -f "$root/docker/compose.yaml")
export NETCORE_TAG=$tag

cleanup() {
  set +e
  docker rm -f "$run-single" >/dev/null 2>&1
  docker network rm "$run-net" >/dev/null 2>&1
  "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1
  [ -z "${curve:-}" ] || "${curve[@]}" down -v --remove-orphans >/dev/null 2>&1
  [ -z "${keys:-}" ] || rm -rf "$keys"
  for i in netcore netcore-actor-c netcore-actor-python netcore-actor-node; do
    docker rmi "$i:$tag" >/dev/null 2>&1
  done
  [ "${NC_DOCKER_KEEP_ENGINE:-0}" = 1 ] || "$here/engine.sh" stop
}
trap cleanup EXIT

# This machine's extra CAs (a TLS-inspecting egress proxy) for npm in node.Dockerfile.
extra_ca=$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)
build() { # tag dockerfile [target]
  local t0=$SECONDS
  docker build -q --network host --build-arg EXTRA_CA_CERTS="$extra_ca" \
    -f "$root/docker/$2" ${3:+--target "$3"} -t "$1:$tag" "$root" >/dev/null
  log "built $1:$tag in $((SECONDS - t0)) s"
}
build netcore Dockerfile netcore
build netcore-actor-c Dockerfile actor-c
build netcore-actor-python python.Dockerfile
build netcore-actor-node node.Dockerfile

# The image alone, as a user runs it: netcore + the seed's echo, stopped by docker stop.
# (A user-defined network: a private engine here has no default bridge.)
docker network create "$run-net" >/dev/null
docker run -d --name "$run-single" --network "$run-net" -p 127.0.0.1:8124:8124 "netcore:$tag" >/dev/null
for _ in $(seq 1 100); do
  [ "$(docker inspect -f '{{.State.Health.Status}}' "$run-single")" = healthy ] && break
  docker exec "$run-single" netcore --ping >/dev/null 2>&1 && break
  sleep 0.2
done
user=$(docker exec "$run-single" id -u)
[ "$user" != 0 ] || { log "FAIL: the netcore image runs as root"; exit 1; }
for _ in $(seq 1 50); do
  /usr/bin/python3 "$here/check.py" echo 8124 >/dev/null 2>&1 && break; sleep 0.2
done
/usr/bin/python3 "$here/check.py" echo 8124
# An upgrade in place: SIGUSR2 (forwarded by tini, then netcore-start) makes netcore
# start its own binary with --takeover; the container lives on under the new netcore
# (netcore-start follows it), twice in a row, and the connections carry on.
upgrade="$here/upgrade.sh"
/usr/bin/python3 "$here/check.py" keep 8124 -- "$upgrade" "$run-single" 1
/usr/bin/python3 "$here/check.py" keep 8124 -- "$upgrade" "$run-single" 2
[ "$(docker inspect -f '{{.State.Running}}' "$run-single")" = true ] ||
  { log "FAIL: the container stopped after an upgrade in place"; docker logs "$run-single"; exit 1; }
/usr/bin/python3 "$here/check.py" echo 8124
log "docker run: two upgrades in place (kill -s USR2): the container and its connections carried on"
/usr/bin/python3 "$here/check.py" drain 8124 -- docker stop -t 20 "$run-single"
status=$(docker inspect -f '{{.State.ExitCode}}' "$run-single")
[ "$status" = 0 ] || { log "FAIL: docker stop: exit status $status"; docker logs "$run-single"; exit 1; }
log "docker run: echo served, docker stop drained and exited 0 (uid $user)"
docker rm "$run-single" >/dev/null

# A compose stack (compose.yaml, or with compose.curve.yaml): up, the three echoes, a
# stop with data in flight; every container exits 0, netcore drained.
stack() { # what project compose-args...
  local what=$1 project=$2; shift 2
  local c=("$@")
  "${c[@]}" up -d --no-build
  local ready=0
  for _ in $(seq 1 150); do
    if /usr/bin/python3 "$here/check.py" echo 8124 8125 8126 >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.2
  done
  [ $ready = 1 ] || { "${c[@]}" ps; "${c[@]}" logs --tail 20; }
  /usr/bin/python3 "$here/check.py" echo 8124 8125 8126
  /usr/bin/python3 "$here/check.py" drain 8124 8125 8126 -- "${c[@]}" stop -t 20
  local bad=0 ids id name status
  ids=$(docker ps -aq --filter "label=com.docker.compose.project=$project")
  [ "$(echo "$ids" | wc -w)" = 4 ] || { log "FAIL: $what: expected 4 containers: $ids"; exit 1; }
  for id in $ids; do
    read -r name status < <(docker inspect -f '{{.Name}} {{.State.ExitCode}}' "$id")
    log "$what: $name exited $status"
    [ "$status" = 0 ] || bad=1
  done
  if [ $bad = 1 ]; then "${c[@]}" logs --tail 30; exit 1; fi
  "${c[@]}" logs netcore >"$cache/$what-netcore.log" 2>&1
  grep -q "shutting down" "$cache/$what-netcore.log" || { log "FAIL: $what: netcore never saw SIGTERM"; exit 1; }
  if grep -q "not flushed" "$cache/$what-netcore.log"; then log "FAIL: $what: netcore did not drain"; exit 1; fi
}

# The library in each handler image is the installed package, not a copy of the source.
loc=$(docker run --rm --entrypoint /opt/netcore/venv/bin/python "netcore-actor-python:$tag" \
  -c 'import netcore_net, os; print(os.path.dirname(netcore_net.__file__))')
case $loc in /opt/netcore/venv/lib/python3*/site-packages/netcore_net) ;;
  *) log "FAIL: the Python image imports netcore_net from $loc"; exit 1;; esac
loc=$(docker run --rm --entrypoint /usr/bin/node "netcore-actor-node:$tag" \
  -p "require.resolve('netcore-net') + ' ' + require('netcore-net/package.json').version")
case $loc in "/opt/netcore/node_modules/netcore-net/lib/index.js "*) ;;
  *) log "FAIL: the JavaScript image resolves netcore-net to $loc"; exit 1;; esac
log "handler images: netcore_net from pip in the venv, netcore-net from the npm tarball"

# The compose stack over the ipc volume (the default).
stack compose "$run" "${compose[@]}"
log "compose: three echoes served; stop drained; every container exited 0"

# The CURVE variant: keys and policy from curve-keys.sh, all three echoes over tcp.
keys=$cache/keys-$run
NETCORE_IMAGE=netcore:$tag "$root/docker/curve-keys.sh" "$keys" >/dev/null
export NETCORE_KEYS=$keys
curve=("${compose_cmd[@]}" -p "${run}c" -f "$root/docker/compose.yaml" -f "$root/docker/compose.curve.yaml"
       --env-file "$keys/env")
stack curve "${run}c" "${curve[@]}"
for h in echo-c echo-python echo-node; do
  grep -q "principal=key:$h\b" "$cache/curve-netcore.log" ||
    { log "FAIL: curve: no CURVE handler key:$h in netcore's log"; tail -n 30 "$cache/curve-netcore.log"; exit 1; }
done
log "compose curve: three echoes over CURVE with the policy; stop drained; every container exited 0"
