#!/usr/bin/env bash
# Where `repq quantize` spends its time on MobileOne-S0 with 32 calibration photos: the forward
# passes of calibration (two passes: range, then histograms) against everything else (loading,
# fusion and its checks, CFWS split, calibrators, plan, QDQ export, writing). Target: the rest
# under 50% of the forward time.
#
# Usage: bench/quantize_time.sh [build-dir] [method] [threads] [runs]
#   defaults: build/release, cfws, 2 threads, 3 runs (the median run by total time is printed).
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
  cmake --build "$build" --target repq_cli repq-make-mobileone >/dev/null
fi
model="$build/models/mobileone_s0.onnx"
if [ ! -f "$model" ]; then
  mkdir -p "$build/models"
  "$build/bin/repq-make-mobileone" "$shared/models/mobileone_s0" "$model" >/dev/null
fi
out=build/bench/quantize_time
mkdir -p "$out"
for i in $(seq "$runs"); do
  "$build/bin/repq" quantize "$model" --calib "$shared/data/imagenet_sample/images" --num-calib 32 \
    --preset imagenet --method "$method" --threads "$threads" -o "$out/mobileone_s0.int8.onnx" \
    --json > "$out/run$i.json"
done
/usr/bin/python3 - "$out" "$runs" "$method" "$threads" <<'PY'
import json, sys
out, runs, method, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rs = sorted((json.load(open(f"{out}/run{i}.json"))["seconds"] for i in range(1, runs + 1)),
            key=lambda s: s["total"])
s = rs[len(rs) // 2]
print(f"repq quantize MobileOne-S0, 32 photos, --method {method}, {threads} threads "
      f"(median of {runs} runs by total time)")
print(f"| forward passes | everything else | total | rest / forward |")
print(f"|---|---|---|---|")
print(f"| {s['forward']:.2f} s | {s['rest']:.2f} s | {s['total']:.2f} s | {100 * s['rest'] / s['forward']:.0f}% |")
ratios = sorted(100 * r["rest"] / r["forward"] for r in rs)
print("rest / forward of every run: " + ", ".join(f"{x:.0f}%" for x in ratios))
PY
