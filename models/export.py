#!/usr/bin/python3
"""Export a trained model in three ONNX forms, with references and measurements.

    /usr/bin/python3 models/export.py --name repvgg

Reads models/<name>/checkpoint.pt (from train.py) and writes into models/<name>/:

  <name>.train.onnx     eval export, do_constant_folding=True: conv+BN folded
                        into Conv with bias; identity BNs stay BatchNormalization
  <name>.preserve.onnx  TrainingMode.PRESERVE with the model in eval():
                        Conv (no bias) -> BatchNormalization pairs
  <name>.deploy.onnx    the model fused in PyTorch (switch_to_deploy), eval export
  ref_input.npy         the first 32 test images, float32 NCHW, normalized
  ref_logits.npy        train-form PyTorch logits on ref_input
  meta.json             accuracies, checks, PTQ measurements, identity-BN factors

All exports: opset 13, input 'input' [batch, 1, 28, 28], output 'logits'
[batch, 10], dynamic batch.  Each file passes onnx.checker (full_check) and
strict shape inference, and is run by a small NumPy interpreter to compare it
with PyTorch.
"""
import os
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # noqa: E402  (before numpy / torch load BLAS)

import argparse
import collections
import json
import sys
import time

import numpy as np
import onnx
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from repq_models import data, nets, onnx_numpy, ptq  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CALIB = slice(0, 256)      # test images written to data/fashion_mnist/calib
EVAL = slice(256, 768)     # test images written to data/fashion_mnist/eval
REF = slice(0, 32)


def export(model, path, preserve):
    tmp = path + ".tmp.onnx"
    kwargs = {}
    if preserve:
        kwargs["training"] = torch.onnx.TrainingMode.PRESERVE
    torch.onnx.export(model.eval(), torch.zeros(1, 1, 28, 28), tmp, opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=True, **kwargs)
    m = onnx.load(tmp)
    onnx.checker.check_model(m, full_check=True)
    onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
    os.replace(tmp, path)
    return m


@torch.no_grad()
def logits(model, x, batch=1000):
    model.eval()
    return torch.cat([model(x[i:i + batch]) for i in range(0, x.shape[0], batch)])


def onnx_logits(m, x, batch=500):
    return np.concatenate([onnx_numpy.run(m, {"input": x[i:i + batch]})[0]
                           for i in range(0, x.shape[0], batch)])


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, choices=nets.ARCHS)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dir", default=None, help="model folder (default models/<name>)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = args.dir or os.path.join(HERE, args.name)
    with open(os.path.join(out, "train_log.json")) as f:
        log = json.load(f)
    model = nets.build(log["arch"])
    model.load_state_dict(torch.load(os.path.join(out, "checkpoint.pt")))
    model.eval()
    deploy = nets.to_deploy(model)

    te_img, te_lab = data.load("t10k")
    xte, yte = data.normalize(te_img), torch.from_numpy(te_lab)
    lt, ld = logits(model, xte), logits(deploy, xte)
    acc_train = (lt.argmax(1) == yte).float().mean().item()
    acc_deploy = (ld.argmax(1) == yte).float().mean().item()
    agree = (lt.argmax(1) == ld.argmax(1)).float().mean().item()
    fuse_diff = (lt - ld).abs().max().item()
    print(f"{args.name}: train form {acc_train:.4f}, deploy form {acc_deploy:.4f}, "
          f"agreement {agree:.4f}, max |dlogit| {fuse_diff:.2e}", flush=True)

    ref_x = xte[REF].numpy().astype(np.float32)
    ref_y = lt[REF].numpy().astype(np.float32)
    np.save(os.path.join(out, "ref_input.npy"), ref_x)
    np.save(os.path.join(out, "ref_logits.npy"), ref_y)

    files, checks = {}, {}
    x_eval = xte[EVAL].numpy()
    y_eval = te_lab[EVAL]
    for form, src, preserve in (("train", model, False), ("preserve", model, True),
                                ("deploy", deploy, False)):
        path = os.path.join(out, f"{args.name}.{form}.onnx")
        m = export(src, path, preserve)
        ops = collections.Counter(n.op_type for n in m.graph.node)
        t0 = time.time()
        y_ref = onnx_logits(m, ref_x)
        y_ev = onnx_logits(m, x_eval)
        torch_ev = (lt if form != "deploy" else ld)[EVAL].numpy()
        checks[form] = {
            "onnx_checker_full": "ok", "strict_shape_inference": "ok",
            "numpy_max_abs_diff_vs_ref_logits": float(np.abs(y_ref - ref_y).max()),
            "numpy_max_abs_diff_vs_pytorch_same_form_eval512":
                float(np.abs(y_ev - torch_ev).max()),
            "numpy_eval512_acc": float((y_ev.argmax(1) == y_eval).mean()),
        }
        files[form] = {"file": os.path.basename(path), "bytes": os.path.getsize(path),
                       "ops": dict(sorted(ops.items()))}
        print(form, json.dumps(checks[form]), f"{time.time() - t0:.1f}s", flush=True)

    id_factors = {n: round(f, 3) for n, m_ in model.rep_blocks()
                  if (f := m_.identity_bn_factor()) is not None}
    ptq_res = ptq.measure(deploy, xte[CALIB], xte, yte)
    print("ptq", json.dumps(ptq_res), flush=True)
    print("identity BN max factor per block", json.dumps(id_factors), flush=True)

    meta = {
        "name": args.name, "arch": log["arch"], "seed": log["seed"], "epochs": log["epochs"],
        "train_command": f"/usr/bin/python3 models/train.py --arch {log['arch']} "
                         f"--epochs {log['epochs']} --seed {log['seed']}",
        "train_seconds": log["train_seconds"], "optimizer": log["optimizer"],
        "lr": log["lr"], "wd": log["wd"], "batch": log["batch"],
        "weight_decay": log["weight_decay"], "augmentation": log["augmentation"],
        "input": {"name": "input", "shape": ["batch", 1, 28, 28], "dtype": "float32",
                  "preprocess": "x = (pixel / 255 - mean) / std",
                  "mean": data.MEAN, "std": data.STD},
        "output": {"name": "logits", "shape": ["batch", 10], "classes": list(data.CLASSES)},
        "opset": 13,
        "widths": list(nets.WIDTHS), "depths": list(nets.DEPTHS), "strides": list(nets.STRIDES),
        "params_train_form": sum(p.numel() for p in model.parameters()),
        "params_deploy_form": sum(p.numel() for p in deploy.parameters()),
        "accuracy": {"test10k_train_form": acc_train, "test10k_deploy_form": acc_deploy,
                     "train_deploy_top1_agreement": agree,
                     "train_deploy_max_abs_logit_diff": fuse_diff},
        "ref": {"input": "ref_input.npy", "logits": "ref_logits.npy",
                "images": "test split indices 0..31", "logits_from": "train form, PyTorch"},
        "files": files, "checks": checks,
        "ptq": {"method": "deploy form; weights symmetric int8 [-127,127] max-abs per tensor "
                          "or per output channel; activations (every Conv/Linear input) "
                          "symmetric int8 per tensor, min-max over the 256 calib images "
                          "(test indices 0..255); accuracy on the 10000 test images",
                "accuracy": ptq_res, "fused_weights": ptq.weight_report(deploy)},
        "identity_bn_max_factor": id_factors,
    }
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("wrote", out, flush=True)


if __name__ == "__main__":
    main()
