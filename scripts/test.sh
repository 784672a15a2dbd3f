#!/usr/bin/env bash
# README command 2: install what is missing, build, run the whole test suite.
# NC_SANITIZE=1 builds with ASan+UBSan into build-asan/ instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [ "${NC_SANITIZE:-0}" = 1 ]; then
  export NC_BUILD_DIR=build-asan
  scripts/build.sh -DNC_SANITIZE=ON
else
  scripts/build.sh
fi
cd "${NC_BUILD_DIR:-build}"
ctest --output-on-failure -j2 --timeout 300
