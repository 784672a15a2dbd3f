#!/bin/sh
# curve-keys.sh [DIR]: the keys and the policy of the CURVE variant of the compose stack
# (docker/compose.curve.yaml), made with `netcore keygen` in the netcore image. DIR
# defaults to docker/keys, which is never committed (.gitignore, .dockerignore):
#   DIR/netcore.key                     netcore's key pair
#   DIR/echo-{c,python,node}.key        one key pair per handler
#   DIR/allow                           the handlers' public keys netcore lets in (--curve-allow)
#   DIR/policy                          what each may do (--policy, docs/POLICY.md): listen
#                                       on its own echo port, nothing else
#   DIR/env                             NETCORE_SERVER_KEY=... for `docker compose --env-file`
# The key files belong to uid 10001, the user of every image, mode 0600. Existing key
# pairs are kept (keygen never overwrites); allow, policy and env are rewritten.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)/keys
dir=${1:-$dir}
image=${NETCORE_IMAGE:-netcore:${NETCORE_TAG:-latest}}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
handlers="echo-c:8124 echo-python:8125 echo-node:8126"
names=netcore
for h in $handlers; do names="$names ${h%%:*}"; done
# One container makes every missing key pair.
script=""
for k in $names; do
  script="$script [ -e /keys/$k.key ] || netcore keygen /keys/$k.key >/dev/null || exit 1;"
  script="$script chown 10001:10001 /keys/$k.key && chmod 0600 /keys/$k.key || exit 1;"
done
docker run --rm --user 0 -v "$dir:/keys" --entrypoint /bin/sh "$image" -c "$script"
pub() { grep public "$dir/$1.key" | cut -d'"' -f2; }
: >"$dir/allow.tmp"
echo "# netcore's policy for the CURVE compose stack (written by docker/curve-keys.sh)" >"$dir/policy.tmp"
for h in $handlers; do
  name=${h%%:*} port=${h#*:}
  echo "$name $(pub "$name")" >>"$dir/allow.tmp"
  printf 'handler key:%s\n  listen tcp 0.0.0.0 %s\n' "$name" "$port" >>"$dir/policy.tmp"
done
mv "$dir/allow.tmp" "$dir/allow"
mv "$dir/policy.tmp" "$dir/policy"
echo "NETCORE_SERVER_KEY=$(pub netcore)" >"$dir/env"
echo "keys and policy in $dir; netcore's public key: $(pub netcore)"
