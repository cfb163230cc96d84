#!/usr/bin/python3
"""Print the markdown tables of models/README.md from every models/<name>/meta.json.

    /usr/bin/python3 models/summarize.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ORDER = ("repvgg", "repvgg_l2", "qarepvgg", "qarepvgg_v2", "mobileone", "acdbb")


def pct(x):
    return f"{100 * x:.2f}"


def main():
    metas = []
    for name in ORDER:
        path = os.path.join(HERE, name, "meta.json")
        if os.path.exists(path):
            with open(path) as f:
                metas.append(json.load(f))

    print("| model | command | epochs | seed | train time | test acc train form | "
          "test acc deploy form | max abs logit diff | params train / deploy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m in metas:
        a = m["accuracy"]
        print(f"| {m['name']} | `train.py --arch {m['arch']} --epochs {m['epochs']} "
              f"--seed {m['seed']}` | {m['epochs']} | {m['seed']} | "
              f"{m['train_seconds'] / 60:.1f} min | {pct(a['test10k_train_form'])} | "
              f"{pct(a['test10k_deploy_form'])} | {a['train_deploy_max_abs_logit_diff']:.1e} | "
              f"{m['params_train_form']} / {m['params_deploy_form']} |")
    print()
    print("| model | float | W8 per-tensor | W8 per-channel | W8A8 per-tensor | "
          "W8A8 per-channel | largest identity-BN factor (block) |")
    print("|---|---|---|---|---|---|---|")
    for m in metas:
        q = m["ptq"]["accuracy"]
        f = m["identity_bn_max_factor"]
        worst = max(f.items(), key=lambda kv: kv[1]) if f else None
        ident = f"{worst[1]:.2f} ({worst[0]})" if worst else "none (no identity BN)"
        print(f"| {m['name']} | {pct(q['float'])} | {pct(q['w8_per_tensor'])} | "
              f"{pct(q['w8_per_channel'])} | {pct(q['w8a8_per_tensor'])} | "
              f"{pct(q['w8a8_per_channel'])} | {ident} |")
    print()
    print("| model | identity-BN factor max per block |")
    print("|---|---|")
    for m in metas:
        f = m["identity_bn_max_factor"]
        if f:
            print(f"| {m['name']} | " + ", ".join(f"{k} {v:.2f}" for k, v in f.items()) + " |")
    print()
    print("| model | train.onnx | preserve.onnx | deploy.onnx | ops (train form) |")
    print("|---|---|---|---|---|")
    total = 0
    for m in metas:
        fs = m["files"]
        sizes = [fs[k]["bytes"] for k in ("train", "preserve", "deploy")]
        total += sum(sizes)
        ops = ", ".join(f"{k} {v}" for k, v in fs["train"]["ops"].items())
        print(f"| {m['name']} | " + " | ".join(f"{s / 1024:.0f} KiB" for s in sizes)
              + f" | {ops} |")
    print(f"\nONNX total: {total / 1024 / 1024:.2f} MiB")


if __name__ == "__main__":
    main()
