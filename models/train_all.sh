#!/bin/sh
# Train every model, one after the other, niced, one thread each.
# The epochs and seeds here are the ones recorded in README.md.
# Usage: models/train_all.sh [arch:epochs ...]   (default: all of them)
set -e
cd "$(dirname "$0")"
PY=/usr/bin/python3
SPECS=${*:-"repvgg_l2:8 repvgg:8 qarepvgg:8 qarepvgg_v2:6 acdbb:5 mobileone:8"}
for spec in $SPECS; do
  arch=${spec%%:*}; epochs=${spec##*:}
  mkdir -p "$arch"
  nice -n 10 $PY train.py --arch "$arch" --epochs "$epochs" --seed 1 > "$arch/train.log" 2>&1
done
