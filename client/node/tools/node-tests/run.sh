#!/bin/bash
# run.sh DIR [NETCORE_BIN]: runs every DIR/test-net-*.js (copies of Node's own
# test/parallel files; not shipped here) against this library under a fresh
# netcore, one node process each (preload.js swaps require('net')), and prints
# PASS/FAIL per file and the count. Logs: DIR/<file>.log.
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=$(cd "$1" && pwd)
bin=${2:-$here/../../../../build/netcore/netcore}
tmp=$(mktemp -d)
"$bin" --bind "ipc://$tmp/nc.sock" --log-level error &
ncpid=$!
trap 'kill $ncpid 2>/dev/null; wait $ncpid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do [ -S "$tmp/nc.sock" ] && break; sleep 0.05; done
pass=0 fail=0
for t in "$dir"/test-net-*.js; do
  if (cd "$tmp" && NETCORE_ENDPOINT="ipc://$tmp/nc.sock" timeout 60 node -r "$here/preload.js" "$t") >"$t.log" 2>&1; then
    pass=$((pass + 1)); echo "PASS $(basename "$t")"
  else
    fail=$((fail + 1)); echo "FAIL $(basename "$t")"
  fi
done
echo "$pass of $((pass + fail)) passed"
