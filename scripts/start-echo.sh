#!/usr/bin/env bash
# README command 1: install what is missing, build, then run netcore with the seed's
# echo example on localhost:8124 (try: nc localhost 8124). Ctrl-C stops both.
# Both find each other at NETCORE_ENDPOINT if set, else at the default endpoint
# (README "The endpoint": $XDG_RUNTIME_DIR/netcore/netcore.sock, for root
# /run/netcore/netcore.sock, else /tmp/netcore-<uid>/netcore.sock).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
NC_TARGETS="netcore echo" scripts/build.sh
build/netcore/netcore &
netcore_pid=$!
trap 'kill $echo_pid $netcore_pid 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
build/actors/echo "$@" &
echo_pid=$!
wait $echo_pid
