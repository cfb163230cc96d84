#!/usr/bin/env bash
# Speed of `repq report` against `repq quantize` on MobileOne-S0 with 32 calibration photos
# (issue 6 target: report < 3x quantize). Wall time of each command (best of N runs), same
# method and threads; prints both and the ratio.
#
# Usage: bench/report_time.sh [build-dir] [method] [threads] [runs]
#   defaults: build/release, cfws, 2 threads, 3 runs (the fastest run of each is used).
# Needs ../shared (MobileOne-S0 weights and the ImageNet photos).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
method=${2:-cfws}
threads=${3:-2}
runs=${4:-3}
shared=${REPQ_SHARED_DIR:-../shared}
if [ ! -f "$build/build.ninja" ]; then cmake --preset release -B "$build" >/dev/null; fi
nice cmake --build "$build" -j2 --target repq_cli repq-make-mobileone >/dev/null
model="$build/models/mobileone_s0.onnx"
if [ ! -f "$model" ]; then
  mkdir -p "$build/models"
  "$build/bin/repq-make-mobileone" "$shared/models/mobileone_s0" "$model" >/dev/null
fi
calib="$shared/data/imagenet_sample/images"
out=build/bench/report_time
mkdir -p "$out"
common=(--calib "$calib" --num-calib 32 --preset imagenet --method "$method" --threads "$threads")
now() { date +%s.%N; }
best_q=""; best_r=""
for i in $(seq "$runs"); do
  t0=$(now)
  "$build/bin/repq" quantize "$model" "${common[@]}" -o "$out/mobileone_s0.int8.onnx" >/dev/null
  t1=$(now)
  "$build/bin/repq" report "$model" "${common[@]}" --format json -o "$out/report.json" >/dev/null
  t2=$(now)
  q=$(echo "$t1 - $t0" | bc -l); r=$(echo "$t2 - $t1" | bc -l)
  echo "run $i: quantize $(printf %.2f "$q") s, report $(printf %.2f "$r") s" >&2
  if [ -z "$best_q" ] || [ "$(echo "$q < $best_q" | bc -l)" = 1 ]; then best_q=$q; fi
  if [ -z "$best_r" ] || [ "$(echo "$r < $best_r" | bc -l)" = 1 ]; then best_r=$r; fi
done
echo "MobileOne-S0, 32 photos, --method $method, $threads threads (best of $runs runs)"
echo "| repq quantize | repq report | report / quantize |"
echo "|---|---|---|"
printf "| %.2f s | %.2f s | %.2fx |\n" "$best_q" "$best_r" "$(echo "$best_r / $best_q" | bc -l)"
