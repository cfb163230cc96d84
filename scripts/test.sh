#!/usr/bin/env bash
# Builds repq (a CMake preset: release by default, or asan / debug) and runs the whole test
# suite with CTest. Usage: scripts/test.sh [release|asan|debug] [extra ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
shift || true
jobs="$(nproc)"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs"
ctest --preset "$preset" -j "$jobs" "$@"
