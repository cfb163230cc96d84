#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan + libFuzzer) into build/fuzz and runs
# each for SECONDS, one after the other, from its seed corpus in tests/fuzz/corpus/<target>.
# Prints the executions per target; fails on any crash, leak, timeout or sanitizer report
# (the reproducer is left in build/fuzz/artifacts/).
# Usage: bench/fuzz.sh SECONDS [target...]
#   targets: onnx_load fuse npy image plan (default: all, in that order)
# Environment: FUZZ_BUILD_DIR (default build/fuzz), FUZZ_BUILD_JOBS (default 2),
#   FUZZ_CXX (default clang++), FUZZ_JOBS_NICE (default 10). Only the requested fuzz_* targets
#   and what they link (repq_lib) are built; ccache is used when installed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:?usage: bench/fuzz.sh SECONDS [target...]}"
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(onnx_load fuse npy image plan)
build="${FUZZ_BUILD_DIR:-build/fuzz}"
jobs="${FUZZ_BUILD_JOBS:-2}"
cxx="${FUZZ_CXX:-$(command -v clang++ || command -v clang++-14)}"

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
start=$(date +%s)
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "${launcher[@]}" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link" \
  -DREPQ_SANITIZE=ON -DREPQ_FUZZ=ON -DREPQ_BUILD_TESTS=OFF -DREPQ_WERROR=OFF >/dev/null
nice -n "${FUZZ_JOBS_NICE:-10}" cmake --build "$build" -j "$jobs" \
  --target $(printf 'fuzz_%s ' "${targets[@]}")
echo "built in $(( $(date +%s) - start )) s"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$PWD/tests/fuzz/ubsan.supp"
mkdir -p "$build/artifacts"
status=0
for t in "${targets[@]}"; do
  work="$build/work/$t"
  mkdir -p "$work"
  log="$build/fuzz_$t.log"
  echo "== fuzz_$t for ${seconds}s"
  if nice -n "${FUZZ_JOBS_NICE:-10}" "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2560 \
       -print_final_stats=1 -close_fd_mask=1 -artifact_prefix="$build/artifacts/$t-" \
       "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    echo "fuzz_$t: ${execs:-?} executions, no crash"
  else
    status=1
    echo "fuzz_$t: FAILED (log: $log)"
    grep -E "ERROR|runtime error|Test unit written|SUMMARY" "$log" | head -20 || true
  fi
done
exit $status
