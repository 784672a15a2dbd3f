#!/bin/sh
# Container default: netcore plus the seed's echo actor listening on all addresses.
set -e
netcore --bind ipc:///tmp/netcore.sock &
exec echo --host 0.0.0.0 --port "${PORT:-8124}" --endpoint ipc:///tmp/netcore.sock
