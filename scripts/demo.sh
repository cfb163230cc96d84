#!/usr/bin/env bash
# The main job on the bundled example: a RepVGG trained by models/train.py on Fashion-MNIST with
# a custom L2 (train form, as PyTorch exports it), 256 calibration and 512 evaluation images.
# Folds the branches, quantizes to INT8 with CFWS, explains the per-layer error, and evaluates
# float against INT8 in repq's own simulation and under ONNX Runtime's integer kernels.
# Run scripts/setup.sh first (the README's first command does both).
set -euo pipefail
cd "$(dirname "$0")/.."

# REPQ_BUILD_DIR: an existing build tree to use instead of the release preset's.
build=${REPQ_BUILD_DIR:-build/release}
if [ ! -f "$build/build.ninja" ]; then cmake --preset release -B "$build" >/dev/null; fi
cmake --build "$build" --target repq_cli repq-dump-inputs
bin=$build/bin
repq=$bin/repq

name=repvgg_l2
model=models/$name/$name.train.onnx
data=models/data/fashion_mnist
# The models take one greyscale 28x28 channel, normalized with Fashion-MNIST's mean and std.
pp=(--preset none --color grey --mean 0.2860 --std 0.3530)
out=build/demo
mkdir -p "$out"

echo
echo "== repq info $model"
"$repq" info "$model"

echo
echo "== repq fuse: fold every branch (each fold checked numerically)"
"$repq" fuse "$model" -o "$out/$name.fused.onnx"

echo
echo "== repq quantize --method cfws: calibrate on 32 images of $data/calib, write INT8 (QDQ)"
"$repq" quantize "$model" --calib "$data/calib" --num-calib 32 "${pp[@]}" --method cfws \
  -o "$out/$name.int8.onnx" --plan-out "$out/$name.plan.json"

if "$repq" report --help >/dev/null 2>&1; then
  echo
  echo "== repq report: per-layer error and why (markdown; HTML in $out/report.html)"
  "$repq" report "$model" --calib "$data/calib" --num-calib 32 "${pp[@]}" --method cfws \
    --data "$data/eval" --labels "$data/eval/labels.csv" --format md
  "$repq" -q report "$model" --calib "$data/calib" --num-calib 32 "${pp[@]}" --method cfws \
    --data "$data/eval" --labels "$data/eval/labels.csv" --format html -o "$out/report.html"
fi

echo
echo "== repq eval: INT8 in repq's simulation against the float train form, on $data/eval"
"$repq" eval "$out/$name.int8.onnx" --data "$data/eval" --labels "$data/eval/labels.csv" \
  "${pp[@]}" --ref "$model"

if [ -d tools/ort/node_modules/onnxruntime-node ]; then
  echo
  echo "== ONNX Runtime (integer kernels, level extended): INT8 against float, same tensors"
  "$bin/repq-dump-inputs" "$data/eval" --labels "$data/eval/labels.csv" "${pp[@]}" \
    -o "$out/eval_x.npy" --labels-out "$out/eval_y.npy"
  node tools/ort/ort_eval.js "$out/$name.int8.onnx" --inputs "$out/eval_x.npy" \
    --labels "$out/eval_y.npy" --ref "$model" --optimized-model "$out/$name.int8.ort.onnx" |
    node -e '
      const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
      const pct = (v) => (100 * v).toFixed(2) + " %";
      console.log(`ONNX Runtime ${r.ort_version}, ${r.samples} images, ${r.threads} threads`);
      console.log(`  float top-1 ${pct(r.reference.top1)}   INT8 top-1 ${pct(r.top1)}   ` +
                  `top-1 agreement ${pct(r.reference.agreement)}`);'
  echo "  the graph ORT runs ($out/$name.int8.ort.onnx), by op:"
  "$repq" info "$out/$name.int8.ort.onnx" --json |
    node -e 'const h = JSON.parse(require("fs").readFileSync(0, "utf8")).op_histogram;
             console.log("   ", Object.entries(h).map(([k, v]) => `${k} ${v}`).join(", "));'
else
  echo
  echo "(ONNX Runtime not installed in tools/ort: run scripts/setup.sh for the ORT comparison)"
fi
