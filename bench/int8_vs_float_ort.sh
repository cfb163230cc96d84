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
# REPEATS=N (default 3): float and INT8 runs alternate N times, the best median of each counts.
# NO_BUILD=1: use the build dir's binaries as they are (e.g. while another build runs there).
# `-- --float-stem` measures the model with its <= 4-channel stem conv kept float.
# For numbers on a shared machine use bench/ort_cpu_time.js (CPU time per run, models
# interleaved in one process); this script prints its CPU-time table too (CPU_TABLE=0: off).
# PROFILE=1: also ORT's profiler breakdown per op class at batch 1 and 32 (bench/ort_profile.js).
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
repeats=${REPEATS:-3}
shared=${REPQ_SHARED_DIR:-../shared}
model=${args[3]:-}
calib=${args[4]:-$shared/data/imagenet_sample/images}

[ -n "${NO_BUILD:-}" ] || cmake --build "$build" --target repq_cli repq-make-mobileone >/dev/null
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
# Wall time: float and INT8 alternate $repeats times; the best median of each is kept (other
# jobs sharing the cores only ever slow a run down). CPU time (user + sys of the ORT process, all
# threads) is printed too: when the machine is shared it says more than wall time. It is the
# difference between a run of $runs passes and one of 1 pass (load, warm-up), per image.
bench() { node tools/ort/ort_run.js "$1" --threads "$threads" --bench "$runs" --batch "$2" --no-spin | field median_ms_per_item; }
cpu_s() {  # CPU seconds of one ort_run.js --bench $2 at batch $3
  local TIMEFORMAT='%U %S'
  { time node tools/ort/ort_run.js "$1" --threads "$threads" --bench "$2" --batch "$3" --no-spin >/dev/null; } 2>&1 |
    tail -1 | awk '{ print $1 + $2 }'
}
cpu_ms() { awk -v a="$(cpu_s "$1" 1 "$2")" -v b="$(cpu_s "$1" "$runs" "$2")" -v n="$runs" -v k="$2" 'BEGIN { print (b - a) * 1000 / (n - 1) / k }'; }
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b < a) ? b : a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
printf "%s: float vs INT8 (repq quantize %s, %.1f s) under ONNX Runtime, %s threads, wall: best of %s medians of %s runs; ms per image\n\n" \
  "$(basename "$model")" "${qflags[*]:-defaults}" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$threads" "$repeats" "$runs"
printf "Wall and CPU-difference columns are only meaningful on an idle machine (on a shared one see the\nsecond, interleaved table).\n\n"
printf "| batch | float wall | INT8 wall | float / INT8 | float CPU | INT8 CPU | float / INT8 (CPU) |\n|---|---|---|---|---|---|---|\n"
for batch in 1 32; do
  f=""; q=""
  for _ in $(seq "$repeats"); do
    f=$(best "$f" "$(bench "$model" "$batch")")
    q=$(best "$q" "$(bench "$int8" "$batch")")
  done
  fc=$(cpu_ms "$model" "$batch"); qc=$(cpu_ms "$int8" "$batch")
  printf "| %s | %.3f | %.3f | %s | %.3f | %.3f | %s |\n" "$batch" "$f" "$q" "$(ratio "$f" "$q")" "$fc" "$qc" "$(ratio "$fc" "$qc")"
done
if [ "${CPU_TABLE:-1}" != 0 ]; then
  printf "\nCPU time per image (ms) of one session.run, the models interleaved in one process, %s threads,\n" "$threads"
  printf "graph optimization level all, workers not spinning (bench/ort_cpu_time.js); min over the runs (median)\n"
  printf "| batch | float | INT8 | float / INT8 |\n|---|---|---|---|\n"
  for batch in 1 8 32; do
    node bench/ort_cpu_time.js --threads "$threads" --batch "$batch" --runs "$([ "$batch" = 1 ] && echo 300 || echo $((480 / batch)))" \
      "$model" "$int8" | /usr/bin/python3 -c '
import json, sys
f, q = [json.loads(l) for l in sys.stdin]
print("| %d | %.3f (%.3f) | %.3f (%.3f) | %.2fx (%.2fx) |" % (f["batch"], f["cpu_min_ms"], f["cpu_median_ms"],
      q["cpu_min_ms"], q["cpu_median_ms"], f["cpu_min_ms"] / q["cpu_min_ms"], f["cpu_median_ms"] / q["cpu_median_ms"]))'
  done
fi
if [ "${PROFILE:-0}" != 0 ]; then
  for batch in 1 32; do
    node bench/ort_profile.js --threads "$threads" --batch "$batch" --runs "$([ "$batch" = 1 ] && echo 100 || echo 8)" \
      "$model" "$int8"
  done
fi
uptime
