#!/usr/bin/env bash
# Speed of repq's float executor against ONNX Runtime (onnxruntime-node, graph optimization
# level "all") on Apple's MobileOne-S0, measured in the same run, same threads.
# Usage: bench/executor_vs_ort.sh [build-dir] [threads] [runs]
# Needs ../shared (the weights) and scripts/setup.sh (onnxruntime-node in tools/ort).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
threads=${2:-2}
runs=${3:-30}
shared=${REPQ_SHARED_DIR:-../shared}
cmake --build "$build" --target repq-bench-executor repq-make-mobileone >/dev/null
model="$build/models/mobileone_s0.onnx"
[ -f "$model" ] || "$build/bin/repq-make-mobileone" "$shared/models/mobileone_s0" "$model" >/dev/null
field() { sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p"; }
printf "MobileOne-S0, %s threads, median of %s runs, ms per image\n\n" "$threads" "$runs"
printf "| batch | repq | ONNX Runtime | repq / ORT |\n|---|---|---|---|\n"
for batch in 1 32; do
  r=$("$build/bin/repq-bench-executor" "$model" --batch "$batch" --threads "$threads" --runs "$runs" | field median_ms_per_item)
  o=$(node tools/ort/ort_run.js "$model" --threads "$threads" --bench "$runs" --batch "$batch" --no-spin | field median_ms_per_item)
  printf "| %s | %.2f | %.2f | %.2fx |\n" "$batch" "$r" "$o" "$(awk -v a="$r" -v b="$o" 'BEGIN { print a / b }')"
done
