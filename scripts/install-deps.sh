#!/usr/bin/env bash
# Installs what netcore needs on Debian 12 that is not there yet (non-interactive),
# and the npm packages of the Node.js client library. Safe to run again.
# --fuzz: only what tests/fuzz/run.sh needs on top (clang and its libFuzzer /
# sanitizer runtimes), nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake pkg-config libuv1-dev libzmq3-dev libprotobuf-c-dev
      protobuf-c-compiler libcmocka-dev protobuf-compiler python3-zmq python3-protobuf
      nodejs npm netcat-openbsd socat valgrind procps
      python3-venv python3-setuptools python3-wheel python3-mypy help2man dpkg-dev file
      docker.io docker-compose debootstrap tini systemd prometheus
      redis-tools redis-server iproute2)
if [ "${1:-}" = --fuzz ]; then
  pkgs=(clang-14 libclang-rt-14-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A Node.js that came with the machine (not from Debian) is fine as it is.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
# An engine and compose that came with the machine (docker-ce, compose v2) are fine too.
if command -v dockerd >/dev/null; then missing=("${missing[@]/docker.io}"); fi
if command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1; then
  missing=("${missing[@]/docker-compose}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "${1:-}" != --fuzz ] && [ -f client/node/package.json ]; then
  (cd client/node && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi)
fi
