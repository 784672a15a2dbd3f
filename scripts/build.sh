#!/usr/bin/env bash
# Configures and builds into build/ (or $NC_BUILD_DIR). Extra arguments go to cmake,
# e.g. scripts/build.sh -DNC_SANITIZE=ON. NC_TARGETS="netcore echo" builds only those.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${NC_BUILD_DIR:-build}
cmake -S . -B "$dir" -DNC_WERROR=ON "$@" >/dev/null
targets=()
for t in ${NC_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$dir" -j"$(nproc)" "${targets[@]}"
