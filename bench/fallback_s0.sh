#!/usr/bin/env bash
# `repq quantize --fallback auto` on MobileOne-S0 (../shared): for each configuration, the
# layers kept in float, the search time (with --refine-act: the refinement's logit SQNR, clips
# changed and time; the search's seconds include it), and top-1 / agreement with float on the 250 held-out
# photos (the bench/accuracy.sh split: calibrate on the first photos of the first half of the
# 500 ImageNet photos sorted by name, `repq eval --ref` of the INT8 model in the exact
# simulation (= ONNX Runtime) on the second half).
#
# Usage: bench/fallback_s0.sh [build-dir] [CONFIG ...]
#   CONFIG = name=flags, the flags comma-separated, e.g.
#   "gptq-sqnr=--method,gptq,--fallback-criterion,sqnr". Default: the list below.
# One JSON line per configuration on stdout (also appended to build/bench/fallback_s0/results.jsonl),
# progress on stderr. Each search takes minutes on 2 shared cores.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/release
if [ $# -gt 0 ] && [ "${1#*=}" = "$1" ]; then build=$1; shift; fi
shared=${REPQ_SHARED:-../shared}
target=${TARGET:-0.99}
if [ $# -gt 0 ]; then configs=("$@"); else
  configs=(
    "gptq-none=--method,gptq"
    "gptq-agreement=--method,gptq,--fallback,auto"
    "gptq-sqnr=--method,gptq,--fallback,auto,--fallback-criterion,sqnr"
    "gptq-kl=--method,gptq,--fallback,auto,--fallback-criterion,kl"
    "gptq-margin=--method,gptq,--fallback,auto,--fallback-criterion,margin"
    "gptq-kl-c128=--method,gptq,--fallback,auto,--fallback-criterion,kl,--num-calib,128"
    "gptq-kl-m0.5=--method,gptq,--fallback,auto,--fallback-criterion,kl,--fallback-margin,0.5"
    "percentile-kl=--method,percentile,--fallback,auto,--fallback-criterion,kl"
    "gptq-sqnr-c128=--method,gptq,--fallback,auto,--fallback-criterion,sqnr,--num-calib,128"
    "refine-none=--method,gptq,--refine-act"
    "refine-agreement=--method,gptq,--refine-act,--fallback,auto"
    "refine-kl=--method,gptq,--refine-act,--fallback,auto,--fallback-criterion,kl"
    "refine-agreement-c64=--method,gptq,--refine-act,--fallback,auto,--num-calib,64"
    "refine-kl-c64=--method,gptq,--refine-act,--fallback,auto,--fallback-criterion,kl,--num-calib,64"
  )
fi
if [ ! -f "$build/build.ninja" ]; then cmake --preset release -B "$build" >/dev/null; fi
nice cmake --build "$build" -j2 --target repq_cli repq-make-mobileone >/dev/null
repq=$build/bin/repq
work=build/bench/fallback_s0
mkdir -p "$work/eval"
model=$work/mobileone_s0.onnx
[ -f "$model" ] || "$build/bin/repq-make-mobileone" "$shared/models/mobileone_s0" "$model"
data=$shared/data/imagenet_sample
# The held-out half: symlinks to the second half of the sorted photos, and its labels.
/usr/bin/python3 - "$data" "$work" <<'PY'
import os, sys
data, work = sys.argv[1], sys.argv[2]
files = sorted(os.listdir(os.path.join(data, "images")))
labels = {}
with open(os.path.join(data, "labels.tsv")) as f:
    next(f)
    for line in f:
        c = line.rstrip("\n").split("\t")
        labels[os.path.basename(c[0])] = c[1]
with open(os.path.join(work, "eval_labels.tsv"), "w") as f:
    f.write("file\tclass_index\n")
    for fn in files[len(files) // 2:]:
        link = os.path.join(work, "eval", fn)
        if not os.path.lexists(link):
            os.symlink(os.path.abspath(os.path.join(data, "images", fn)), link)
        f.write(f"{fn}\t{labels[fn]}\n")
PY
pp=(--preset imagenet --threads 2)
for cfg in "${configs[@]}"; do
  name=${cfg%%=*}
  IFS=, read -r -a flags <<<"${cfg#*=}"
  case " ${flags[*]} " in *" --num-calib "*) ;; *) flags+=(--num-calib 32) ;; esac
  q=$work/$name.int8.onnx
  echo "== $name: ${flags[*]}" >&2
  t0=$(date +%s.%N)
  set +e
  "$repq" quantize "$model" --calib "$data/images" --min-agreement "$target" -o "$q" --json \
    "${flags[@]}" "${pp[@]}" >"$work/$name.quantize.json" 2>"$work/$name.quantize.log"
  rc=$?
  set -e
  t1=$(date +%s.%N)
  "$repq" -q eval "$q" --data "$work/eval" --labels "$work/eval_labels.tsv" --ref "$model" --json \
    "${pp[@]}" >"$work/$name.eval.json"
  /usr/bin/python3 - "$name" "$work" "$rc" "$t0" "$t1" <<'PY' | tee -a "$work/results.jsonl"
import json, sys
name, work, rc, t0, t1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
q = json.load(open(f"{work}/{name}.quantize.json"))
e = json.load(open(f"{work}/{name}.eval.json"))
fb = q.get("fallback") or {}
rf = q.get("refine_act") or {}
print(json.dumps({
    "config": name, "exit": rc, "calib_samples": q["calib"]["samples"],
    "kept_float": len(fb.get("kept_float", [])), "layers": [k["layer"] for k in fb.get("kept_float", [])],
    "criterion": fb.get("criterion"), "margin_ratio": fb.get("margin_ratio"),
    "calib_agreement": fb.get("agreement"), "calib_logit_sqnr": fb.get("logit_sqnr"),
    "trials": fb.get("trials"), "search_seconds": fb.get("seconds"), "wall_seconds": round(t1 - t0, 1),
    "refine_sqnr": [rf.get("logit_sqnr_before"), rf.get("logit_sqnr_after")] if rf else None,
    "refine_changed": len(rf.get("changed", [])) if rf else None, "refine_seconds": rf.get("seconds"),
    "heldout_top1": e["top1"], "heldout_agreement": e["agreement"]["top1"],
    "heldout_sqnr_db": e["agreement"]["mean_sqnr_db"]}))
PY
done
