#!/usr/bin/python3
"""Train one small re-parameterizable net on Fashion-MNIST (CPU, one thread).

    /usr/bin/python3 models/train.py --arch repvgg --epochs 8 --seed 1

Writes <out>/checkpoint.pt (train-form state dict, not committed) and
<out>/train_log.json (settings, per-epoch loss / accuracy / time).

Weight decay:
  * every arch except repvgg_l2: ordinary L2 weight decay (SGD weight_decay)
    on every parameter;
  * repvgg_l2: RepVGG's custom L2 as in the reference training code: weight
    decay switched off for the rbr_dense / rbr_1x1 parameters, for biases and
    for parameters named 'bn', and 0.5 * wd * sum(block.custom_l2()) added to
    the loss.
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from repq_models import data, nets  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", required=True, choices=nets.ARCHS)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--wd", type=float, default=5e-4)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="output folder (default models/<arch>)")
    return p.parse_args()


def param_groups(model, arch, wd):
    if arch != "repvgg_l2":
        return [{"params": list(model.parameters()), "weight_decay": wd}]
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if "rbr_dense" in name or "rbr_1x1" in name or "bias" in name or "bn" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


@torch.no_grad()
def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], batch):
        correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / x.shape[0]


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    here = os.path.dirname(os.path.abspath(__file__))
    out = args.out or os.path.join(here, args.arch)
    os.makedirs(out, exist_ok=True)

    tr_img, tr_lab = data.load("train")
    te_img, te_lab = data.load("t10k")
    xtr, ytr = data.normalize(tr_img), torch.from_numpy(tr_lab)
    xte, yte = data.normalize(te_img), torch.from_numpy(te_lab)

    model = nets.build(args.arch)
    opt = torch.optim.SGD(param_groups(model, args.arch, args.wd), lr=args.lr, momentum=0.9)
    steps_per_epoch = math.ceil(xtr.shape[0] / args.batch)
    total = steps_per_epoch * args.epochs
    blocks = [m for _, m in model.rep_blocks()]
    log = {"arch": args.arch, "epochs": args.epochs, "seed": args.seed, "lr": args.lr,
           "wd": args.wd, "batch": args.batch, "threads": args.threads,
           "optimizer": "SGD momentum 0.9, cosine LR per step to 0",
           "weight_decay": ("custom L2 (RepVGG get_custom_L2)" if args.arch == "repvgg_l2"
                            else "ordinary L2 on all parameters"),
           "augmentation": "random horizontal flip, random shift up to 2 px",
           "normalization": {"mean": data.MEAN, "std": data.STD}, "history": []}
    step, t_start = 0, time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(xtr.shape[0], generator=gen)
        t0, loss_sum, seen = time.time(), 0.0, 0
        for i in range(0, xtr.shape[0], args.batch):
            idx = perm[i:i + args.batch]
            xb = data.augment(xtr[idx], gen)
            lr = 0.5 * args.lr * (1 + math.cos(math.pi * step / total))
            for g in opt.param_groups:
                g["lr"] = lr
            loss = F.cross_entropy(model(xb), ytr[idx])
            total_loss = loss
            if args.arch == "repvgg_l2":
                total_loss = loss + 0.5 * args.wd * sum(b.custom_l2() for b in blocks)
            opt.zero_grad()
            total_loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.item() * idx.numel()
            seen += idx.numel()
        acc = evaluate(model, xte, yte)
        rec = {"epoch": epoch + 1, "train_loss": round(loss_sum / seen, 4),
               "test_acc": acc, "seconds": round(time.time() - t0, 1)}
        log["history"].append(rec)
        print(json.dumps(rec), flush=True)
    log["train_seconds"] = round(time.time() - t_start, 1)
    log["test_acc"] = log["history"][-1]["test_acc"]
    torch.save(model.state_dict(), os.path.join(out, "checkpoint.pt"))
    with open(os.path.join(out, "train_log.json"), "w") as f:
        json.dump(log, f, indent=1)
    print("done", out, log["test_acc"], f"{log['train_seconds']} s", flush=True)


if __name__ == "__main__":
    main()
