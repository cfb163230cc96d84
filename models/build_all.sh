#!/bin/sh
# Rebuild everything in models/: bundled images, the six trained models
# (niced, one thread, one training at a time), their ONNX exports, references
# and meta.json, then print the README tables.
set -e
cd "$(dirname "$0")"
PY=/usr/bin/python3
$PY make_data.py
./train_all.sh
for name in repvgg_l2 repvgg qarepvgg qarepvgg_v2 acdbb mobileone; do
  nice -n 10 $PY export.py --name "$name"
done
$PY summarize.py
$PY diagnose.py
