#!/usr/bin/python3
"""The PyTorch peer for repq's accuracy table: PyTorch's own post-training quantization.

A float deploy-form ONNX model (a chain of Conv / Relu / GlobalAveragePool / Flatten / Gemm,
as repq fuse and models/export.py write it) is rebuilt as a torch module from the ONNX
initializers, then quantized with torch.ao.quantization FX mode: prepare_fx, calibration,
convert_fx. The qconfig mapping is PyTorch's `fbgemm` default (HistogramObserver activations
with reduce_range, i.e. 7-bit; per-channel symmetric int8 weights), run on the `onednn` engine
because Debian's PyTorch 1.13 has no FBGEMM (see ../shared/BASELINES.md). `--mapping onednn`
gives the onednn defaults (8-bit activations) instead.

Prints (and with -o writes) JSON: float top-1, int8 top-1, top-1 agreement int8 vs float.

Data, three ways:
  --imagenet DIR   MobileOne-S0's split: the 500 photos of DIR/images sorted by file name;
                   calibrate on the first --num-calib (32) images of the first half (250),
                   evaluate on the second half (250). Labels from DIR/labels.tsv.
                   Preprocessing as ../shared/BASELINES.md: PIL, RGB, bilinear resize of the
                   short side to 256 (long side round(256 * long / short), ties to even), centre
                   crop 224 at offset (size - 224) // 2, /255, ImageNet mean/std.
  --fmnist DIR     the bundled Fashion-MNIST sample: calibrate on the first --num-calib (32)
                   images of DIR/calib (sorted), evaluate on DIR/eval (512); labels.csv in each;
                   grey, (pixel / 255 - 0.2860) / 0.3530.
  --calib X.npy --eval Y.npy --labels L   preprocessed float32 NCHW samples; L is a .npy of
                   ints or a text file with one class index a line.

Calibration runs as one batch of the calibration samples (--calib-batch 0, the default) or in
batches of --calib-batch: PyTorch 1.13's HistogramObserver truncates its range to integers
(pytorch issue 83672), so the result depends on the batching.

Measured (2026-11-29, this machine, PyTorch 1.13.0a0 Debian, onednn engine, calibration as one
batch of 32; top-1 % / agreement with float %):
  MobileOne-S0, 250 photos (second half): float 78.0; fbgemm mapping 63.6 / 66.0 (calibrated one
    image at a time: 67.6 / 72.4); onednn mapping 71.6 / 84.0.
  Fashion-MNIST eval (512), fbgemm mapping: repvgg 92.8 -> 93.0 / 98.6, repvgg_l2 93.2 -> 92.8 /
    99.0, qarepvgg 92.6 -> 91.6 / 96.3, qarepvgg_v2 92.2 -> 91.8 / 98.2, acdbb 93.4 -> 93.4 /
    99.4, mobileone 90.8 -> 91.6 / 98.4.
The rebuilt torch modules reproduce models/*/ref_logits.npy within 1e-6 relative.

Run with /usr/bin/python3 (Debian's python3-torch 1.13 and python3-onnx); set
OMP_WAIT_POLICY=PASSIVE when another job shares the cores. Not part of the build or tests.
Example:
  /usr/bin/python3 bench/pytorch_ptq.py --model build/release/models/mobileone_s0.onnx \\
      --imagenet ../shared/data/imagenet_sample -o build/bench/ptq_mobileone_s0.json
"""
import argparse
import csv
import json
import os
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn as nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530


# ---- the ONNX deploy model as a torch module ----
def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _conv(node, inits):
    a = _attrs(node)
    w = inits[node.input[1]]
    b = inits[node.input[2]] if len(node.input) > 2 and node.input[2] else None
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise SystemExit(f"{node.name}: auto_pad is not supported")
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:]:
        raise SystemExit(f"{node.name}: asymmetric pads {pads} are not supported")
    groups = int(a.get("group", 1))
    conv = nn.Conv2d(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]),
                     stride=tuple(a.get("strides", [1, 1])), padding=tuple(pads[:2]),
                     dilation=tuple(a.get("dilations", [1, 1])), groups=groups, bias=b is not None)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w))
        if b is not None:
            conv.bias.copy_(torch.from_numpy(b))
    return conv


def _gemm(node, inits):
    a = _attrs(node)
    if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
        raise SystemExit(f"{node.name}: Gemm with alpha/beta != 1 or transA is not supported")
    w = inits[node.input[1]]
    if not a.get("transB", 0):
        w = w.T
    b = inits[node.input[2]] if len(node.input) > 2 and node.input[2] else None
    lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
        if b is not None:
            lin.bias.copy_(torch.from_numpy(b))
    return lin


def torch_from_onnx(path):
    """nn.Sequential equivalent of a chain-shaped deploy ONNX model."""
    model = onnx.load(path)
    g = model.graph
    inits = {t.name: numpy_helper.to_array(t).astype(np.float32) for t in g.initializer}
    x = [i.name for i in g.input if i.name not in inits][0]
    layers = []
    for node in g.node:
        data_inputs = [i for i in node.input if i and i not in inits]
        if data_inputs != [x]:
            raise SystemExit(f"{path}: node {node.name} ({node.op_type}) does not continue the "
                             "chain; only Conv/Relu/GlobalAveragePool/Flatten/Gemm chains are supported")
        if node.op_type == "Conv":
            layers.append(_conv(node, inits))
        elif node.op_type == "Relu":
            layers.append(nn.ReLU())
        elif node.op_type == "GlobalAveragePool":
            layers.append(nn.AdaptiveAvgPool2d(1))
        elif node.op_type == "Flatten":
            layers.append(nn.Flatten(int(_attrs(node).get("axis", 1))))
        elif node.op_type == "Gemm":
            layers.append(_gemm(node, inits))
        else:
            raise SystemExit(f"{path}: unsupported op {node.op_type} ({node.name})")
        x = node.output[0]
    return nn.Sequential(*layers).eval()


# ---- data ----
def _imagenet_sample(path):
    from PIL import Image
    img = Image.open(path).convert("RGB")
    w, h = img.size
    if w <= h:
        nw, nh = 256, round(256 * h / w)
    else:
        nw, nh = round(256 * w / h), 256
    img = img.resize((nw, nh), Image.BILINEAR)
    x0, y0 = (nw - 224) // 2, (nh - 224) // 2
    img = img.crop((x0, y0, x0 + 224, y0 + 224))
    a = np.asarray(img, dtype=np.float32) / 255.0
    a = (a - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return a.transpose(2, 0, 1)


def load_imagenet(root, num_calib):
    labels = {}
    with open(os.path.join(root, "labels.tsv")) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            labels[os.path.basename(row["file"])] = int(row["class_index"])
    files = sorted(os.listdir(os.path.join(root, "images")))
    half = len(files) // 2
    calib_files, eval_files = files[:half][:num_calib], files[half:]
    load = lambda fs: np.stack([_imagenet_sample(os.path.join(root, "images", f)) for f in fs])
    return load(calib_files), load(eval_files), np.array([labels[f] for f in eval_files])


def _fmnist_folder(folder, limit=None):
    from PIL import Image
    with open(os.path.join(folder, "labels.csv")) as f:
        rows = sorted((r["file"], int(r["class_index"])) for r in csv.DictReader(f))
    rows = rows[:limit] if limit else rows
    x = np.stack([np.asarray(Image.open(os.path.join(folder, name)).convert("L"), np.float32)
                  for name, _ in rows])
    x = ((x / 255.0 - FMNIST_MEAN) / FMNIST_STD)[:, None, :, :].astype(np.float32)
    return x, np.array([c for _, c in rows])


def load_fmnist(root, num_calib):
    calib, _ = _fmnist_folder(os.path.join(root, "calib"), num_calib)
    ev, labels = _fmnist_folder(os.path.join(root, "eval"))
    return calib, ev, labels


def load_npy(calib, ev, labels):
    lab = np.load(labels) if labels.endswith(".npy") else np.loadtxt(labels, dtype=np.int64)
    return np.load(calib).astype(np.float32), np.load(ev).astype(np.float32), lab.astype(np.int64)


# ---- PTQ ----
@torch.no_grad()
def predict(model, x, batch=50):
    return torch.cat([model(torch.from_numpy(x[i:i + batch])).argmax(1)
                      for i in range(0, len(x), batch)]).numpy()


@torch.no_grad()
def ptq(fmodel, calib, mapping, calib_batch):
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.backends.quantized.engine = "onednn"
    example = (torch.from_numpy(calib[:1]),)
    prepared = prepare_fx(fmodel, get_default_qconfig_mapping(mapping), example)
    step = calib_batch if calib_batch > 0 else len(calib)
    for i in range(0, len(calib), step):
        prepared(torch.from_numpy(calib[i:i + step]))
    return convert_fx(prepared)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="float deploy-form ONNX model")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--imagenet", help="../shared/data/imagenet_sample (MobileOne-S0 split)")
    src.add_argument("--fmnist", help="models/data/fashion_mnist")
    src.add_argument("--calib", help="preprocessed calibration samples (.npy, float32 NCHW)")
    ap.add_argument("--eval", help="preprocessed evaluation samples (.npy) with --calib")
    ap.add_argument("--labels", help="evaluation labels (.npy or one index a line) with --calib")
    ap.add_argument("--num-calib", type=int, default=32)
    ap.add_argument("--calib-batch", type=int, default=0, help="0: one batch (default)")
    ap.add_argument("--mapping", default="fbgemm", choices=["fbgemm", "onednn", "x86"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-o", "--output", help="write the JSON here too")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if args.imagenet:
        calib, ev, labels = load_imagenet(args.imagenet, args.num_calib)
    elif args.fmnist:
        calib, ev, labels = load_fmnist(args.fmnist, args.num_calib)
    else:
        if not (args.eval and args.labels):
            ap.error("--calib needs --eval and --labels")
        calib, ev, labels = load_npy(args.calib, args.eval, args.labels)
        calib = calib[:args.num_calib]

    fmodel = torch_from_onnx(args.model)
    f_pred = predict(fmodel, ev)
    t0 = time.perf_counter()
    qmodel = ptq(fmodel, calib, args.mapping, args.calib_batch)
    ptq_s = time.perf_counter() - t0
    q_pred = predict(qmodel, ev)
    result = {
        "schema": "repq.bench.pytorch_ptq/1",
        "model": args.model,
        "torch": torch.__version__,
        "engine": "onednn",
        "qconfig_mapping": args.mapping,
        "calib_samples": int(len(calib)),
        "calib_batch": int(args.calib_batch if args.calib_batch > 0 else len(calib)),
        "eval_samples": int(len(ev)),
        "float_top1": float((f_pred == labels).mean()),
        "int8_top1": float((q_pred == labels).mean()),
        "top1_agreement": float((q_pred == f_pred).mean()),
        "ptq_seconds": round(ptq_s, 3),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
