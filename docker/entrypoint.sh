#!/bin/sh
# Container default: netcore plus the seed's echo actor (installed as nc-echo) on all addresses.
# Both use the default endpoint (root: ipc:///run/netcore/netcore.sock, in a directory
# netcore makes 0700); a root handler in another container shares it by mounting /run/netcore.
set -e
netcore &
exec nc-echo --host 0.0.0.0 --port "${PORT:-8124}"
