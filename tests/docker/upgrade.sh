#!/usr/bin/env bash
# upgrade.sh CONTAINER N: an upgrade in place of the netcore image's container
# (README "In Docker"): docker kill -s USR2, then waits until netcore-start says it
# follows the new netcore for the Nth time (the old one has exited 0 by then).
set -euo pipefail
c=${1:?usage: upgrade.sh CONTAINER N}
n=${2:?usage: upgrade.sh CONTAINER N}
docker kill -s USR2 "$c" >/dev/null
for _ in $(seq 1 100); do
  got=$(docker logs "$c" 2>&1 | grep -c 'took over; following it' || true)
  [ "$got" -ge "$n" ] && exit 0
  [ "$(docker inspect -f '{{.State.Running}}' "$c")" = true ] ||
    { echo "upgrade.sh: the container stopped"; docker logs --tail 20 "$c"; exit 1; }
  sleep 0.1
done
echo "upgrade.sh: no takeover within 10 s"
docker logs --tail 20 "$c"
exit 1
