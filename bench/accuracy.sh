#!/usr/bin/env bash
# The README accuracy table: float top-1, and for each `repq quantize --method` (minmax,
# percentile, mse, entropy, kl, cfws, gptq, gptq@--refine-act) the INT8 top-1 and the top-1 agreement with float, in
# repq's own simulation and under ONNX Runtime (level extended, 2 threads), with PyTorch's FX PTQ
# (bench/pytorch_ptq.py) beside them as the peer.
#   MobileOne-S0 (../shared): calibrate on 32 photos of the first half of the 500 ImageNet photos
#   (sorted by file name), evaluate on the second half (250).
#   The Fashion-MNIST models of models/ (train forms): calibrate on the first 32 images of
#   models/data/fashion_mnist/calib, evaluate on .../eval (512).
#
# Usage: bench/accuracy.sh [build-dir] [accuracy_run.py options: --models a,b --methods m,n
#        --no-ort --no-pytorch --weights-only -o results.json]
# A method may carry extra quantize flags after '@': percentile@--weights=gptq@--gptq-act-order.
# Prints the markdown table on stdout, progress on stderr. Work files in build/bench/accuracy.
# Takes 20-40 minutes on 2 shared cores (most of it MobileOne-S0: 250 photos per method, and
# ~5 minutes of gptq@--refine-act).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/release
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then build=$1; shift; fi
if [ ! -f "$build/build.ninja" ]; then cmake --preset release -B "$build" >/dev/null; fi
cmake --build "$build" --target repq_cli repq-make-mobileone repq-dump-inputs >/dev/null
exec /usr/bin/python3 bench/accuracy_run.py --build "$build" "$@"
