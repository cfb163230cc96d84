#!/usr/bin/python3
"""Where do the outliers of the fused weights come from?  Per model, print:

* the largest BN factor t = gamma / sqrt(var + eps) of ANY BatchNorm inside a
  re-parameterizable block (identity BN or a conv branch's BN), and where;
* the largest |W| of each fused layer and the per-channel max |W| ratio
  (largest channel max over median channel max);
* the input channels of each block that are exactly zero on all 256
  calibration images (dead after the previous ReLU).

    /usr/bin/python3 models/diagnose.py [--dir DIR --name ARCH]

Reads <dir>/checkpoint.pt (defaults: every models/<name>/).
"""
import argparse
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from repq_models import data, nets  # noqa: E402
from repq_models.blocks import bn_factor  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


@torch.no_grad()
def diagnose(name, folder, x):
    model = nets.build(name)
    model.load_state_dict(torch.load(os.path.join(folder, "checkpoint.pt")))
    model.eval()
    dead, hooks = {}, []
    for bname, blk in model.rep_blocks():
        def hook(mod, inp, bname=bname):
            z = (inp[0] == 0).all(dim=3).all(dim=2).all(dim=0)
            dead[bname] = z.nonzero().flatten().tolist()
        hooks.append(blk.register_forward_pre_hook(hook))
    model(x)
    for h in hooks:
        h.remove()
    best = (0.0, "")
    for bname, blk in model.rep_blocks():
        for mname, m in blk.named_modules():
            if isinstance(m, nn.BatchNorm2d):
                t = bn_factor(m).abs().max().item()
                if t > best[0]:
                    best = (t, f"{bname}.{mname}")
    fused = nets.to_deploy(model)
    print(f"## {name}")
    print(f"largest BN factor in any branch: {best[0]:.1f} ({best[1]})")
    for bname, blk in fused.rep_blocks():
        w = blk.reparam.weight
        ch = w.abs().reshape(w.shape[0], -1).amax(1)
        note = f", dead input channels {dead[bname]}" if dead.get(bname) else ""
        print(f"  {bname:12s} max|W| {ch.max().item():7.2f}  "
              f"max/median channel {(ch.max() / ch.median()).item():6.1f}{note}")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir")
    p.add_argument("--name", choices=nets.ARCHS)
    args = p.parse_args()
    torch.set_num_threads(1)
    images, _ = data.load("t10k")
    x = data.normalize(images[0:256])  # the bundled calibration images
    if args.dir:
        diagnose(args.name, args.dir, x)
        return
    for name in nets.ARCHS:
        folder = os.path.join(HERE, name)
        if os.path.exists(os.path.join(folder, "checkpoint.pt")):
            diagnose(name, folder, x)


if __name__ == "__main__":
    main()
