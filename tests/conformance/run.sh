#!/usr/bin/env bash
# The conformance suite against any echo handler, in one command:
#   bash tests/conformance/run.sh [RUNNER-OPTIONS...] -- ECHO-COMMAND...
# e.g. bash tests/conformance/run.sh -- /usr/bin/python3 actors/python/echo.py
#      bash tests/conformance/run.sh --only greeting --label rust -- ./target/release/echo
# Uses $NETCORE_BIN, else build/netcore/netcore (built with scripts/build.sh if missing);
# the Stats scenario asks `netcore status --json` unless --stats-cmd=... is given.
# RUNNER-OPTIONS go to conformance.py (--label, --only, --keep, ...; README.md beside this).
# Exit status: conformance.py's (0 when every scenario passed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
opts=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do opts+=("$1"); shift; done
if [ $# -lt 2 ]; then
  echo "usage: $0 [RUNNER-OPTIONS...] -- ECHO-COMMAND..." >&2
  exit 2
fi
shift
netcore=${NETCORE_BIN:-$root/build/netcore/netcore}
if [ ! -x "$netcore" ]; then
  echo "run.sh: $netcore missing: building it (scripts/build.sh)" >&2
  NC_TARGETS=netcore "$root/scripts/build.sh" >&2
fi
stats=("--stats-cmd=$netcore status --json")
for o in "${opts[@]}"; do
  case $o in --stats-cmd=*) stats=() ;; esac
done
exec /usr/bin/python3 "$here/conformance.py" --netcore "$netcore" "${stats[@]}" "${opts[@]}" -- "$@"
