#!/usr/bin/env bash
# Where `repq quantize` spends its time on MobileOne-S0 with 32 calibration photos: the forward
# passes of calibration (two passes: range, then histograms) against everything else (loading,
# fusion and its checks, CFWS split, statistics (histograms; with gptq also H = sum x x^T, summed
# during the second pass), calibrators, plan, GPTQ rounding, QDQ export, writing). Target: the
# rest under 50% of the forward time.
#
# Usage: bench/quantize_time.sh [build-dir] [method] [threads] [runs]
#   defaults: build/release, cfws, 2 threads, 3 runs.
#   REPQ_BIN=path/to/repq: time that binary instead of the build dir's; with REPQ_BIN_OLD=... as
#   well, the runs alternate old, new, old, new, ... (a shared machine's load hits both alike).
# Prints the best run (least total wall time) and the median, wall and CPU (user + sys of the
# process) time, and rest / forward of every run, and the best run's stages from `-v` (the
# statistics include GPTQ's H, which `gptq statistics` also shows on its own). Needs ../shared
# (MobileOne-S0 weights, photos).
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
/usr/bin/python3 - "$out" "$runs" "$method" "$threads" "$model" "$shared/data/imagenet_sample/images" \
  "${REPQ_BIN:-$build/bin/repq}" "${REPQ_BIN_OLD:-}" <<'PY'
import json, os, re, subprocess, sys, time
out, runs, method, threads, model, images, new, old = sys.argv[1:9]
runs = int(runs)
bins = [("old", old), ("new", new)] if old else [("", new)]
results = {name: [] for name, _ in bins}
for i in range(runs):
    for name, exe in bins:
        before = os.times()
        t0 = time.monotonic()
        r = subprocess.run([exe, "-v", "quantize", model, "--calib", images, "--num-calib", "32",
                            "--preset", "imagenet", "--method", method, "--threads", threads,
                            "-o", f"{out}/mobileone_s0.int8.onnx", "--json"],
                           check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wall = time.monotonic() - t0
        after = os.times()
        s = json.loads(r.stdout)["seconds"]
        s["cpu"] = (after.children_user - before.children_user) + (after.children_system - before.children_system)
        s["wall"] = wall
        # The stages of `-v` (wall seconds): "quantize: calibration X s: forward passes F s,
        # statistics S s, the rest (reading and decoding ...) D s", "quantize: plan X s", ...
        stages = {}
        for line in r.stderr.splitlines():
            m = re.match(r"repq: debug: quantize: (.+?) ([0-9.]+) s(: forward passes [0-9.]+ s, statistics ([0-9.]+) s, the rest .*? ([0-9.]+) s)?$", line)
            if not m:
                continue
            if m.group(3):
                stages["statistics"] = float(m.group(4))
                stages["decoding"] = float(m.group(5))
            elif m.group(1) not in ("calibration",):
                stages[m.group(1)] = float(m.group(2))
        s["stages"] = stages
        results[name].append(s)
print(f"repq quantize MobileOne-S0, 32 photos, --method {method}, {threads} threads, {runs} runs"
      + (" (alternating old / new binaries)" if old else ""))
print("| binary | run | forward passes | everything else | total | process wall | process CPU | rest / forward |")
print("|---|---|---|---|---|---|---|---|")
for name, _ in bins:
    rs = sorted(results[name], key=lambda s: s["total"])
    for label, s in (("best", rs[0]), ("median", rs[len(rs) // 2])):
        print(f"| {name or 'repq'} | {label} | {s['forward']:.2f} s | {s['rest']:.2f} s | {s['total']:.2f} s "
              f"| {s['wall']:.2f} s | {s['cpu']:.2f} s | {100 * s['rest'] / s['forward']:.0f}% |")
    best = rs[0]["stages"]
    print(f"{name or 'repq'} best run, stages (wall s): " +
          ", ".join(f"{k} {v:.3f}" for k, v in best.items() if v >= 0.0005))
    ratios = sorted(100 * r["rest"] / r["forward"] for r in rs)
    print(f"rest / forward of every {name or ''} run: ".replace("  ", " ") + ", ".join(f"{x:.0f}%" for x in ratios))
PY
