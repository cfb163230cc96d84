#!/usr/bin/env bash
# The main job on the bundled example: a RepVGG trained by models/train.py on Fashion-MNIST
# (train form, as PyTorch exports it) and 512 bundled evaluation images.
# Run scripts/setup.sh first (the README's first command does both).
set -euo pipefail
cd "$(dirname "$0")/.."

cmake --preset release >/dev/null
cmake --build --preset release --target repq_cli
repq=build/release/bin/repq

name=repvgg_l2
model=models/$name/$name.train.onnx
deploy=models/$name/$name.deploy.onnx
data=models/data/fashion_mnist
# The models take one greyscale 28x28 channel, normalized with Fashion-MNIST's mean and std.
pp=(--preset none --color grey --mean 0.2860 --std 0.3530)

echo
echo "== repq info $model"
"$repq" info "$model"

out=build/demo
mkdir -p "$out"
echo
echo "== repq fuse: fold every branch (each fold checked numerically)"
"$repq" fuse "$model" -o "$out/$name.fused.onnx"

echo
echo "== repq eval: repq's fused model against the train form, on $data/eval"
"$repq" eval "$out/$name.fused.onnx" --data "$data/eval" --labels "$data/eval/labels.csv" \
  "${pp[@]}" --ref "$model"

echo
echo "== repq eval: PyTorch's own fused (deploy) form, for comparison"
"$repq" eval "$deploy" --data "$data/eval" --labels "$data/eval/labels.csv" "${pp[@]}"
