#!/bin/sh
# Container default: netcore plus the seed's echo actor (installed as nc-echo) on all addresses.
set -e
netcore --bind ipc:///tmp/netcore.sock &
exec nc-echo --host 0.0.0.0 --port "${PORT:-8124}" --endpoint ipc:///tmp/netcore.sock
