#!/usr/bin/env bash
# engine.sh: a Docker engine and a debian:12 base image for the docker tests.
#
#   eval "$(tests/docker/engine.sh start CACHE_DIR)"   # prints export lines; exit 3 = no engine
#   tests/docker/engine.sh stop                        # stops the engine only if start began it
#
# start uses the machine's engine when `docker info` answers (DOCKER_HOST or the
# default socket); else it reuses or starts a private dockerd (no iptables, no
# default bridge: host networking and user-defined networks work) whose state lives
# in $NC_DOCKER_STATE (default /tmp/ncdocker-$UID). Where debian:12 is missing and
# cannot be pulled, it is made with debootstrap --variant=minbase from the mirror of
# this machine's own apt sources; the tarball is cached in CACHE_DIR so reruns are
# fast. Progress goes to stderr, the export lines to stdout.
set -euo pipefail

state=${NC_DOCKER_STATE:-/tmp/ncdocker-$(id -u)}
sock=$state/docker.sock
pidfile=$state/dockerd.pid
log() { echo "engine.sh: $*" >&2; }

engine_up() { timeout 10 docker info >/dev/null 2>&1; }

# The first Debian archive (not the security one) of /etc/apt/sources.list*,
# one-line or deb822 format.
apt_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk '
      /^[ \t]*#/ { next }
      /^deb[ \t]/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }
      /^URIs:/ { for (i = 2; i <= NF; i++) print $i }' "$f"
  done | grep -v -e security -e nodesource -e google | grep '/debian/\?$' | head -n1
}

start_private() {
  mkdir -p "$state/data" "$state/exec"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && DOCKER_HOST=unix://$sock engine_up; then
    log "reusing the private engine at $sock"
    return 0
  fi
  command -v dockerd >/dev/null || return 1
  log "starting a private dockerd ($state)"
  rm -f "$sock" "$pidfile"
  setsid dockerd --iptables=false --ip6tables=false --bridge=none \
    --data-root "$state/data" --exec-root "$state/exec" --pidfile "$pidfile" \
    -H "unix://$sock" >"$state/dockerd.log" 2>&1 </dev/null &
  echo $! >"$state/started-by-us"
  for _ in $(seq 1 150); do
    DOCKER_HOST=unix://$sock engine_up && return 0
    kill -0 "$(cat "$state/started-by-us")" 2>/dev/null || break
    sleep 0.2
  done
  log "dockerd did not come up; its log:"; tail -n 20 "$state/dockerd.log" >&2 || true
  return 1
}

base_image() {
  local cache=$1
  docker image inspect debian:12 >/dev/null 2>&1 && return 0
  if timeout 60 docker pull -q debian:12 >/dev/null 2>&1; then return 0; fi
  local tarball=$cache/debian-12-minbase.tar
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || { log "no debian:12 and no debootstrap"; return 1; }
    local mirror; mirror=$(apt_mirror)
    [ -n "$mirror" ] || { log "no Debian mirror in /etc/apt/sources.list*"; return 1; }
    local root=$cache/debian-12-root
    rm -rf "$root"; mkdir -p "$cache"
    log "debootstrap --variant=minbase bookworm from $mirror"
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
      { tail -n 20 "$cache/debootstrap.log" >&2; return 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . >"$tarball.tmp" && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  log "importing $tarball as debian:12"
  docker import - debian:12 <"$tarball" >/dev/null
}

case "${1:-}" in
start)
  cache=${2:?usage: engine.sh start CACHE_DIR}
  command -v docker >/dev/null || { log "no docker client"; exit 3; }
  if [ -z "${DOCKER_HOST:-}" ] && engine_up; then
    log "using the machine's engine"
  elif [ -n "${DOCKER_HOST:-}" ] && engine_up; then
    log "using DOCKER_HOST=$DOCKER_HOST"
  else
    start_private || exit 3
    export DOCKER_HOST=unix://$sock
  fi
  base_image "$cache" || exit 1
  [ -n "${DOCKER_HOST:-}" ] && echo "export DOCKER_HOST=$DOCKER_HOST"
  exit 0
  ;;
stop)
  if [ -f "$state/started-by-us" ]; then
    pid=$(cat "$state/started-by-us")
    rm -f "$state/started-by-us"
    if kill -0 "$pid" 2>/dev/null; then
      log "stopping the private dockerd (pid $pid)"
      kill "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  ;;
*)
  echo "usage: engine.sh start CACHE_DIR | stop" >&2
  exit 2
  ;;
esac
