#!/usr/bin/env bash
# Install every dependency (runc and podman included), build, and run all tests
# (unit + integration) with CTest. Run as root on Debian 12:
#   bash scripts/test.sh
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC/build}

bash "$SRC/scripts/deps.sh" --all
cmake -S "$SRC" -B "$BUILD_DIR"
cmake --build "$BUILD_DIR" -j"$(nproc)"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j2
