#!/usr/bin/python3
"""Runs the README accuracy table (called by bench/accuracy.sh; see there for usage).

For each model: float top-1 (repq's executor), then for each `repq quantize --method` the INT8
top-1 and the top-1 agreement with float, both in repq's own simulation (`repq eval` of the QDQ
model, --ref the float model) and under ONNX Runtime (tools/ort/ort_eval.js, level extended,
2 threads, --ref the float model under ORT, on the same preprocessed tensors dumped by
repq-dump-inputs); plus PyTorch's FX PTQ (bench/pytorch_ptq.py) as the peer when it exists.

Splits: MobileOne-S0 (../shared) calibrates on the first 32 of the 500 ImageNet photos sorted by
file name (all in the first half) and evaluates on the second half (250); the Fashion-MNIST
models of models/ calibrate on the first 32 of models/data/fashion_mnist/calib and evaluate on
.../eval (512). Prints a markdown table; -o also writes all numbers as JSON.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# gptq@--refine-act: the gptq preset with the logit clip refinement (docs/calibration.md); on
# MobileOne-S0 it adds ~5 minutes (one exact simulation of the 32 photos per trial).
METHODS = ["minmax", "percentile", "mse", "entropy", "kl", "cfws", "gptq", "gptq@--refine-act"]
FMNIST_PP = ["--preset", "none", "--color", "grey", "--mean", "0.2860", "--std", "0.3530"]
IMAGENET_PP = ["--preset", "imagenet"]


def strip_activation_qdq(src, dst):
    """Weights-only variant of a QDQ model: every activation QuantizeLinear -> DequantizeLinear
    pair is removed (a uint8 pair with zero point 0 becomes the Relu it absorbed), the weights'
    DequantizeLinear (int8 initializers, GPTQ values included) stay."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(src)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    rename, keep, extra = {}, [], []
    for n in g.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in producer and producer[n.input[0]].op_type == "QuantizeLinear":
            q = producer[n.input[0]]
            zp = inits.get(q.input[2]) if len(q.input) > 2 else None
            relu = zp is not None and zp.data_type == onnx.TensorProto.UINT8 and int(numpy_helper.to_array(zp)) == 0
            if relu:
                extra.append((n.output[0], q.input[0]))
            else:
                rename[n.output[0]] = q.input[0]
            continue
        if n.op_type == "QuantizeLinear" and not (n.input[0] in inits):
            continue
        keep.append(n)
    nodes = list(keep)
    for out, src_name in extra:  # Relu nodes replace the absorbing pairs
        nodes.append(onnx.helper.make_node("Relu", [src_name], [out], name=out + "/Relu"))

    def resolve(v):
        while v in rename:
            v = rename[v]
        return v
    for n in nodes:
        for i, v in enumerate(n.input):
            n.input[i] = resolve(v)
    for o in g.output:
        if o.name in rename:  # keep the graph output name
            nodes.append(onnx.helper.make_node("Identity", [resolve(o.name)], [o.name]))
    # topological order
    have = {i.name for i in g.input} | set(inits)
    ordered, pending = [], nodes
    while pending:
        rest = []
        for n in pending:
            if all((not v) or v in have for v in n.input):
                ordered.append(n)
                have.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise RuntimeError("strip_activation_qdq: cycle or missing input")
        pending = rest
    del g.node[:]
    g.node.extend(ordered)
    onnx.save(m, dst)


def run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}\n  failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
    return p.stdout


def run_json(cmd):
    return json.loads(run(cmd))


class Bench:
    def __init__(self, args):
        self.a = args
        self.repq = os.path.join(args.build, "bin", "repq")
        self.dump = os.path.join(args.build, "bin", "repq-dump-inputs")
        self.ort_eval = os.path.join(ROOT, "tools", "ort", "ort_eval.js")
        self.ort = args.ort and os.path.isdir(os.path.join(ROOT, "tools", "ort", "node_modules", "onnxruntime-node"))
        self.out = args.work
        os.makedirs(self.out, exist_ok=True)

    def log(self, msg):
        print(msg, file=sys.stderr, flush=True)

    def model_rows(self, m):
        """m: dict name, float, calib, eval, labels, pp, ptq (args for pytorch_ptq.py)."""
        name, work = m["name"], os.path.join(self.out, m["name"])
        os.makedirs(work, exist_ok=True)
        common = ["--threads", str(self.a.threads)] + m["pp"]
        ev = run_json([self.repq, "-q", "eval", m["float"], "--data", m["eval"], "--labels", m["labels"],
                       "--json"] + common)
        res = {"model": name, "float_top1": ev["top1"], "eval_samples": ev["samples"], "methods": {}}
        x = y = None
        if self.ort:
            x, y = os.path.join(work, "eval_x.npy"), os.path.join(work, "eval_y.npy")
            run([self.dump, m["eval"], "-o", x, "--labels", m["labels"], "--labels-out", y,
                 "--threads", str(self.a.threads)] + m["pp"])
        for method in self.a.methods:
            # "percentile@--weights=gptq@--gptq-bias-correction": a preset plus extra flags
            preset, *extra = method.split("@")
            tag = method.replace("@--", "+").replace("=", "-").replace("@", "+")
            q = os.path.join(work, f"{name}.{tag}.int8.onnx")
            t0 = time.time()
            qs = run_json([self.repq, "quantize", m["float"], "--calib", m["calib"], "--num-calib", "32",
                           "--method", preset, "-o", q, "--json"] + extra + common)
            t_quant = time.time() - t0
            if self.a.weights_only:
                wq = os.path.join(work, f"{name}.{tag}.weights-only.onnx")
                strip_activation_qdq(q, wq)
                q = wq
            sim = run_json([self.repq, "-q", "eval", q, "--data", m["eval"], "--labels", m["labels"],
                            "--ref", m["float"], "--json"] + common)
            r = {"sim_top1": sim["top1"], "sim_agreement": sim["agreement"]["top1"],
                 "sim_sqnr_db": sim["agreement"]["mean_sqnr_db"], "quantize_seconds": round(t_quant, 2),
                 "cfws_split": sum(1 for c in qs["cfws"] if c["applied"]), "layers": qs["layers_quantized"]}
            if self.ort:
                o = run_json(["node", self.ort_eval, q, "--inputs", x, "--labels", y, "--ref", m["float"],
                              "--threads", "2", "--level", "extended"])
                r["ort_top1"] = o["top1"]
                r["ort_agreement"] = o["reference"]["agreement"]
                r["ort_float_top1"] = o["reference"]["top1"]
            res["methods"][method] = r
            self.log(f"  {name} {method}: {json.dumps(r)}")
        if self.a.pytorch and m.get("ptq") is not None and os.path.exists(os.path.join(ROOT, "bench", "pytorch_ptq.py")):
            try:
                env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
                res["pytorch"] = json.loads(run(["/usr/bin/python3", os.path.join(ROOT, "bench", "pytorch_ptq.py")]
                                                + m["ptq"], env=env))
            except (RuntimeError, json.JSONDecodeError) as e:
                self.log(f"  {name}: PyTorch peer failed: {e}")
        return res


def fmt(v):
    return "-" if v is None else f"{100 * v:.1f}"


def table(results, methods):
    lines = ["| model | float top-1 | method | INT8 top-1 (repq) | agreement (repq) | INT8 top-1 (ORT) | agreement (ORT) |",
             "|---|---|---|---|---|---|---|"]
    for res in results:
        first = True
        best = max(methods, key=lambda k: res["methods"][k]["sim_agreement"]) if res["methods"] else None
        for k in methods:
            r = res["methods"][k]
            label = f"**{k}**" if k == best else k
            lines.append(f"| {res['model'] if first else ''} | {fmt(res['float_top1']) if first else ''} | {label} | "
                         f"{fmt(r['sim_top1'])} | {fmt(r['sim_agreement'])} | {fmt(r.get('ort_top1'))} | "
                         f"{fmt(r.get('ort_agreement'))} |")
            first = False
        if "pytorch" in res:
            p = res["pytorch"]
            lines.append(f"| | | PyTorch FX PTQ ({p.get('qconfig_mapping', '?')}) | {fmt(p['int8_top1'])} | "
                         f"{fmt(p['top1_agreement'])} | | |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "bench", "accuracy"))
    ap.add_argument("--shared", default=os.environ.get("REPQ_SHARED_DIR", os.path.join(ROOT, "..", "shared")))
    ap.add_argument("--models", default="mobileone_s0,repvgg_l2,repvgg,qarepvgg,qarepvgg_v2,mobileone,acdbb")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-ort", dest="ort", action="store_false")
    ap.add_argument("--no-pytorch", dest="pytorch", action="store_false")
    ap.add_argument("--weights-only", action="store_true",
                    help="evaluate with the activation Q/DQ pairs removed (int8 weights only)")
    ap.add_argument("-o", "--output")
    a = ap.parse_args()
    a.methods = [m for m in a.methods.split(",") if m]
    b = Bench(a)
    if not b.ort:
        b.log("ONNX Runtime columns skipped (--no-ort, or tools/ort/node_modules missing)")
    fm = os.path.join(ROOT, "models", "data", "fashion_mnist")
    results = []
    for name in [n for n in a.models.split(",") if n]:
        if name == "mobileone_s0":
            if not os.path.isdir(os.path.join(a.shared, "models", "mobileone_s0")):
                b.log("MobileOne-S0: ../shared absent, skipped")
                continue
            model = os.path.join(a.build, "models", "mobileone_s0.onnx")
            if not os.path.exists(model):
                os.makedirs(os.path.dirname(model), exist_ok=True)
                run([os.path.join(a.build, "bin", "repq-make-mobileone"),
                     os.path.join(a.shared, "models", "mobileone_s0"), model])
            data = os.path.join(a.shared, "data", "imagenet_sample")
            files = sorted(os.listdir(os.path.join(data, "images")))
            labels = {}
            with open(os.path.join(data, "labels.tsv")) as f:
                next(f)
                for line in f:
                    cols = line.rstrip("\n").split("\t")
                    labels[os.path.basename(cols[0])] = cols[1]
            ev = os.path.join(a.work, "mobileone_s0", "eval")  # symlinks: the second half only
            os.makedirs(ev, exist_ok=True)
            with open(os.path.join(a.work, "mobileone_s0", "eval_labels.tsv"), "w") as f:
                f.write("file\tclass_index\n")
                for fn in files[len(files) // 2:]:
                    link = os.path.join(ev, fn)
                    if not os.path.lexists(link):
                        os.symlink(os.path.abspath(os.path.join(data, "images", fn)), link)
                    f.write(f"{fn}\t{labels[fn]}\n")
            b.log(f"== MobileOne-S0 ({len(files) - len(files) // 2} eval photos)")
            results.append(b.model_rows({
                "name": "MobileOne-S0", "float": model, "calib": os.path.join(data, "images"), "eval": ev,
                "labels": os.path.join(a.work, "mobileone_s0", "eval_labels.tsv"), "pp": IMAGENET_PP,
                "ptq": ["--model", model, "--imagenet", data]}))
        else:
            train = os.path.join(ROOT, "models", name, f"{name}.train.onnx")
            if not os.path.exists(train):
                b.log(f"{name}: no {train}, skipped")
                continue
            deploy = os.path.join(ROOT, "models", name, f"{name}.deploy.onnx")
            b.log(f"== {name}")
            results.append(b.model_rows({
                "name": name, "float": train, "calib": os.path.join(fm, "calib"), "eval": os.path.join(fm, "eval"),
                "labels": os.path.join(fm, "eval", "labels.csv"), "pp": FMNIST_PP,
                "ptq": ["--model", deploy, "--fmnist", fm] if os.path.exists(deploy) else None}))
    print(table(results, a.methods))
    if a.output:
        with open(a.output, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
