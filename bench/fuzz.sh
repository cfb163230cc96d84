#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan + libFuzzer coverage: the `asan` CMake preset,
# the same tree that runs the test suite under the sanitizers) and runs each for SECONDS from its
# seed corpus in tests/fuzz/corpus/<target>. Prints the executions per target; fails on any
# crash, leak, timeout or sanitizer report (the reproducer is left in <build>/fuzz-artifacts/).
# Usage: bench/fuzz.sh SECONDS [target...]
#   targets: onnx_load fuse npy image plan (default: all, in that order)
# Environment:
#   FUZZ_BUILD_DIR   build tree (default build/asan); configured with the asan preset when it has
#                    no CMakeCache.txt yet, else used as it is (CI: the tree .ci/run just built)
#   FUZZ_BUILD_JOBS  build jobs (default 2); only the requested fuzz_* targets and repq_lib build
#   FUZZ_PARALLEL    targets fuzzed at the same time (default 1; CI uses 2 on its 2 cores)
#   FUZZ_JOBS_NICE   nice level of the build and of the fuzzers (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:?usage: bench/fuzz.sh SECONDS [target...]}"
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(onnx_load fuse npy image plan)
build="${FUZZ_BUILD_DIR:-build/asan}"
jobs="${FUZZ_BUILD_JOBS:-2}"
parallel="${FUZZ_PARALLEL:-1}"
nice_level="${FUZZ_JOBS_NICE:-10}"

start=$(date +%s)
if [ ! -f "$build/CMakeCache.txt" ]; then
  launcher=()
  if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
  cmake --preset asan -B "$build" "${launcher[@]}" >/dev/null
fi
if ! grep -q '^REPQ_FUZZ:BOOL=ON' "$build/CMakeCache.txt"; then
  echo "fuzz.sh: $build is not configured with REPQ_FUZZ=ON (use the asan preset)" >&2
  exit 2
fi
nice -n "$nice_level" cmake --build "$build" -j "$jobs" --target $(printf 'fuzz_%s ' "${targets[@]}")
echo "built in $(( $(date +%s) - start )) s"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$PWD/tests/fuzz/ubsan.supp"
mkdir -p "$build/fuzz-artifacts"

# One target: fuzz it, then print one line (and the finding's lines on failure).
fuzz_one() {
  local t="$1" work="$build/fuzz-work/$1" log="$build/fuzz_$1.log" execs
  mkdir -p "$work"
  if nice -n "$nice_level" "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=30 \
       -rss_limit_mb=2560 -print_final_stats=1 -close_fd_mask=1 \
       -artifact_prefix="$build/fuzz-artifacts/$t-" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    echo "fuzz_$t: ${execs:-?} executions in ${seconds} s, no crash"
  else
    echo "fuzz_$t: FAILED (log: $log)"
    grep -E "ERROR|runtime error|Test unit written|SUMMARY" "$log" | head -20 || true
    return 1
  fi
}

echo "== fuzzing ${targets[*]} for ${seconds} s each, ${parallel} at a time"
status=0
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$parallel" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
  fuzz_one "$t" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
exit $status
