#!/usr/bin/env bash
# Speed of the INT8 QDQ model that `repq quantize` writes against the float model, both under
# ONNX Runtime (onnxruntime-node, graph optimization level "all"), in the same run, same
# threads, batch 1 and 32. Target: INT8 at least 2x faster (this CPU has AVX-512 VNNI).
#
# Usage: bench/int8_vs_float_ort.sh [build-dir] [threads] [runs] [float-model] [calib-dir] [-- quantize flags]
#   defaults: build/release, 2 threads, 30 runs, MobileOne-S0 (built from ../shared by
#   repq-make-mobileone), calibration on ../shared/data/imagenet_sample/images (the first 32
#   by file name, as the accuracy table does). Flags after -- go to `repq quantize` (e.g.
#   -- --method cfws; default: its defaults). Preprocessing flags for a non-ImageNet model go
#   there too (e.g. -- --preset none --color grey --mean 0.2860 --std 0.3530).
# Needs scripts/setup.sh (onnxruntime-node in tools/ort). Prints ms per image and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
qflags=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; qflags=("$@"); break; fi
  args+=("$1"); shift
done
build=${args[0]:-build/release}
threads=${args[1]:-2}
runs=${args[2]:-30}
shared=${REPQ_SHARED_DIR:-../shared}
model=${args[3]:-}
calib=${args[4]:-$shared/data/imagenet_sample/images}

cmake --build "$build" --target repq_cli repq-make-mobileone >/dev/null
repq="$build/bin/repq"
if [ -z "$model" ]; then
  model="$build/models/mobileone_s0.onnx"
  [ -f "$model" ] || "$build/bin/repq-make-mobileone" "$shared/models/mobileone_s0" "$model" >/dev/null
fi
out="$build/bench"
mkdir -p "$out"
int8="$out/$(basename "${model%.onnx}").int8.onnx"
t0=$(date +%s.%N)
"$repq" -q quantize "$model" --calib "$calib" --num-calib 32 -o "$int8" "${qflags[@]}"
t1=$(date +%s.%N)

field() { sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p"; }
printf "%s: float vs INT8 (repq quantize %s, %.1f s) under ONNX Runtime, %s threads, median of %s runs, ms per image\n\n" \
  "$(basename "$model")" "${qflags[*]:-defaults}" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$threads" "$runs"
printf "| batch | float | INT8 | float / INT8 |\n|---|---|---|---|\n"
for batch in 1 32; do
  f=$(node tools/ort/ort_run.js "$model" --threads "$threads" --bench "$runs" --batch "$batch" --no-spin | field median_ms_per_item)
  q=$(node tools/ort/ort_run.js "$int8" --threads "$threads" --bench "$runs" --batch "$batch" --no-spin | field median_ms_per_item)
  printf "| %s | %.3f | %.3f | %.2fx |\n" "$batch" "$f" "$q" "$(awk -v a="$f" -v b="$q" 'BEGIN { print a / b }')"
done
