#!/bin/sh
# curve-keys.sh [DIR]: key pairs for the CURVE variant of the compose stack, made with
# `netcore keygen` in the netcore image (DIR defaults to docker/keys, never committed):
# DIR/netcore.key, DIR/echo-c.key, DIR/allow (the handler keys netcore lets in) and
# DIR/env (NETCORE_SERVER_KEY=... for `docker compose --env-file`). The files belong
# to uid 10001, the user of every image.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)/keys
dir=${1:-$dir}
image=${NETCORE_IMAGE:-netcore:${NETCORE_TAG:-latest}}
mkdir -p "$dir"
for k in netcore echo-c; do
  docker run --rm --user 0 -v "$dir:/keys" --entrypoint /bin/sh "$image" -c \
    "netcore keygen /keys/$k.key >/dev/null && chown 10001:10001 /keys/$k.key"
done
pub() { grep public "$dir/$1.key" | cut -d'"' -f2; }
echo "echo-c $(pub echo-c)" >"$dir/allow"
echo "NETCORE_SERVER_KEY=$(pub netcore)" >"$dir/env"
echo "keys in $dir; netcore's public key: $(pub netcore)"
