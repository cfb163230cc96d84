#!/usr/bin/env bash
# Speed of `repq report` against `repq quantize` on MobileOne-S0 with 32 calibration photos
# (issue 6 target: report < 3x quantize). Wall time and CPU time (user + sys) of each command,
# best of N runs each, same method and threads; prints both and the ratios. On a shared, loaded
# machine the CPU ratio is the steadier one.
#
# Usage: bench/report_time.sh [build-dir] [method] [threads] [runs]
#   defaults: build/release, cfws, 2 threads, 3 runs (the fastest run of each is used).
#   NO_BUILD=1 uses the build dir's binaries as they are.
# Needs ../shared (MobileOne-S0 weights and the ImageNet photos).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
method=${2:-cfws}
threads=${3:-2}
runs=${4:-3}
shared=${REPQ_SHARED_DIR:-../shared}
if [ -z "${NO_BUILD:-}" ]; then  # NO_BUILD=1: use the build dir's binaries as they are
  if [ ! -f "$build/build.ninja" ]; then cmake --preset release -B "$build" >/dev/null; fi
  nice cmake --build "$build" -j2 --target repq_cli repq-make-mobileone >/dev/null
fi
model="$build/models/mobileone_s0.onnx"
if [ ! -f "$model" ]; then
  mkdir -p "$build/models"
  "$build/bin/repq-make-mobileone" "$shared/models/mobileone_s0" "$model" >/dev/null
fi
calib="$shared/data/imagenet_sample/images"
out=build/bench/report_time
mkdir -p "$out"
common=(--calib "$calib" --num-calib 32 --preset imagenet --method "$method" --threads "$threads")
best_q=""; best_r=""; cpu_q=""; cpu_r=""
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }
for i in $(seq "$runs"); do
  /usr/bin/time -f "%e %U %S" -o "$out/q.time" \
    "$build/bin/repq" quantize "$model" "${common[@]}" -o "$out/mobileone_s0.int8.onnx" >/dev/null
  /usr/bin/time -f "%e %U %S" -o "$out/r.time" \
    "$build/bin/repq" report "$model" "${common[@]}" --format json -o "$out/report.json" >/dev/null
  read -r qw qu qs < "$out/q.time"; read -r rw ru rs < "$out/r.time"
  qc=$(echo "$qu + $qs" | bc -l); rc=$(echo "$ru + $rs" | bc -l)
  echo "run $i: quantize ${qw} s wall ${qc} s CPU, report ${rw} s wall ${rc} s CPU" >&2
  best_q=$(min "$best_q" "$qw"); best_r=$(min "$best_r" "$rw")
  cpu_q=$(min "$cpu_q" "$qc"); cpu_r=$(min "$cpu_r" "$rc")
done
echo "MobileOne-S0, 32 photos, --method $method, $threads threads (best of $runs runs)"
echo "| | repq quantize | repq report | report / quantize |"
echo "|---|---|---|---|"
printf "| wall | %.2f s | %.2f s | %.2fx |\n" "$best_q" "$best_r" "$(echo "$best_r / $best_q" | bc -l)"
printf "| CPU (user + sys) | %.2f s | %.2f s | %.2fx |\n" "$cpu_q" "$cpu_r" "$(echo "$cpu_r / $cpu_q" | bc -l)"
