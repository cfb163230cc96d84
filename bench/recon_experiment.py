#!/usr/bin/python3
"""Experiment: AdaRound / BRECQ / QDrop-style block reconstruction of repq's INT8 MobileOne-S0.

Measured 2026-11-30 (build/h-recon; 32 calibration photos, 250 held-out; float top-1 78.0; SQNR =
mean per-photo logit SQNR vs float as `repq eval`; repq's exact simulation and ONNX Runtime gave
identical top-1 / agreement / SQNR in every row; the machine's 2 cores were shared with other
builds, so times are wall times under load):

| variant | recon | top-1 | agreement | SQNR dB |
|---|---|---|---|---|
| W8A8 gptq (no recon) | - | 76.0 | 91.2 | 13.8 |
| W8A8 gptq --refine-act (no recon) | - | 77.2 | 94.8 | 15.9 |
| weights-only gptq (acts float) | - | 76.8 | 95.6 | 22.4 |
| W8A8 refine + recon, dense, QDrop 0.5, 1000 it, 20 s/unit cap (*) | 11.3 min | 76.8 | 93.6 | 16.4 |
| weights-only recon, dense, 300 it x 256 rows | 7.6 min | 76.8 | 95.6 | 22.8 |
| the same weights, activations quantized (refine scales) | | 78.0 | 94.8 | 15.9 |

(*) the cap left stage1-2 reconstructed (1000 iterations each) and stage3/4 + Gemm at ~40
iterations, which all rounded back to the GPTQ values: in effect stage1-2 only.

Per-layer reconstruction loss (sum over channels of the squared error vs the float layer output,
mean over pixels; GPTQ -> AdaRound):
- weights-only, 1000 iterations (the run was stopped after stage3.7 for time): stage1.3 0.040 ->
  0.036, stage2.1 0.034 -> 0.024, stage2.x -3..-12 %, stage3.1 0.085 -> 0.077, stage3.3..3.7 -5..-9 %.
  With 300 it x 256 rows: stage3.x -2..-10 %, stage4.1 14.8 -> 10.8 (-27 %), the Gemm 2.94 -> 1.00 (-66 %; 62 k of its 1.02 M ints changed: an over-fit, 32 rows).
- W8A8 (QDrop): only -1..-4 % per layer (stage2.x 0.98 -> 0.96, stage3.1 1.20 -> 1.19), and the
  W8A8 loss is dominated by the activation error the weights cannot remove: stage3.15 58,
  stage3.17 418 (the clipped outliers closing4.md found), stage4.1 105, logits 40, against 0.1-0.3
  for the weight rounding alone. The stem's loss (0.0012) has nothing to gain: AdaRound kept GPTQ.

Exactness check (step 2): the torch chain with repq's integer arithmetic (int accumulation,
float32 M = s_x s_w / s_y, round half to even) is bit-identical to `repq run` on the 250 held-out
photos (SQNR capped at 200 dB, agreement 100 %) for gptq and gptq --refine-act; the written
models reproduce the torch state bit for bit. A plain float fake-quant chain (torch conv in
float32) differs from the exact one in ~1e-5 of the activations of a single layer (+-1 LSB at
rounding ties) and yet agrees with it on only 98.0 % of the photos (22.2 / 24.1 dB): the INT8
network amplifies a single-LSB change chaotically (50 % of stage3.19's activations differ by the
end). Two equally valid INT8 simulations disagree on 5 of 250 photos.

Noise floor (step 5): float top-1/top-2 logit margins on the 250 held-out photos: 1 % of the
photos under 0.014 (0.9 % of the logit RMS), 2 % under 0.033, 5 % under 0.11, 10 % under 0.29,
median 2.46 (logit RMS median 1.52). I.i.d. Gaussian logit noise at a per-photo SQNR of
16 / 20 / 25 / 30 / 35 / 40 dB keeps the top-1 on 94.7 / 96.2 / 97.4 / 98.4 / 99.0 / 99.3 % of
the photos (200 draws). The model predicts the measured rows well: 15.9 dB -> 94.8 % measured,
22.4 dB -> 95.6 %, 30.4 dB (dense convs float, closing4.md) -> 98.0 %. So 99 % agreement on these
250 photos needs about 35 dB of logit SQNR: +19 dB over today's W8A8, +13 dB over GPTQ's
weights alone.

Conclusion: block reconstruction does not bring S0 near 99 %; the gain is far below the +2 points
that would justify a C++ implementation in repq.
- Weights-only AdaRound lowers every dense layer's error on the calibration photos by 2-27 %, yet on
  the held-out photos the weights-only logit SQNR moves only 22.4 -> 22.8 dB (agreement unchanged at
  95.6 %). W8A8 with those weights: 15.9 -> 15.9 dB, 94.8 % (top-1 77.2 -> 78.0, i.e. 2 photos).
  W8A8 QDrop reconstruction of stage1-2: +0.5 dB, agreement -1.2 (3 photos: the same size as the
  2 % self-disagreement of two exact INT8 simulations).
- Reconstruction can only act on the weights' 8-bit rounding, about 34-40 dB per layer. By the
  noise-floor model, 99 % needs about 35 dB of logit SQNR, and W8A8 is at 15.9 dB because of the
  activations: acts-only gives 14.5 dB, and the W8A8 block losses of stage3.15-4.1 (58-418) dwarf
  the rounding losses (0.1-0.3). No rounding choice removes the clipping of those uint8
  per-tensor outliers.
- What could still move it lies outside weight rounding: keeping the 2-3 outlier tensors
  (stage3.15-3.18) at more than 8 bits, per-channel activation scales (ONNX Runtime's QLinearConv
  has none), or QAT.
- Not run, for lack of time on the loaded cores: --lsq (learned activation clips, implemented),
  --group pair (dw+pw together, implemented; 0.2 s per step), 1000 iterations for every layer
  (the stopped weights-only run reached stage3.7 and cut 2x more per-layer loss than 300
  iterations did, e.g. stage3.5 -9 % vs -2.5 %), and more than 32 calibration photos (--num-calib).
- The Gemm's -66 % calibration loss that does not transfer shows the over-fitting risk of
  AdaRound on 32 photos.

Steps (everything under --work, never in the repo):
1. repq-make-mobileone -> s0.onnx (fused float); `repq quantize --method gptq [--refine-act]
   --plan-out` on the first 32 of the 500 sorted photos (the accuracy_run.py split); the
   calibration and the 250 held-out tensors dumped with repq-dump-inputs.
2. The QDQ ONNX read into a torch chain (Conv with per-channel int8 weights x scale, int32 bias x
   s_x*s_w, uint8 per-tensor activation fake-quant with the model's scales/zero points, which also
   is the absorbed Relu, GAP, Flatten, Gemm); checked against `repq run` of the QDQ model on the
   held-out photos (top-1 agreement, logit SQNR) before anything is optimized.
3. Reconstruction unit by unit in graph order: the stem conv, then each fused MobileOne block
   (depthwise 3x3 + pointwise 1x1, their Relus), then the Gemm (--group pair) or every conv alone
   (--group single). AdaRound: W = s * (base + h(V)), h = clip(1.2 sigmoid(V) - 0.1, 0, 1), warm
   started from the GPTQ int8 values (base/h chosen so that h = 0.05/0.95 reproduces GPTQ's value,
   the other choice is the neighbour towards the float weight); loss = sum over channels, mean
   over batch and pixels, of (unit output - float unit output)^2 on the post-Relu outputs (logits
   for the Gemm) + lam * sum(1 - |2h - 1|^beta), lam 0.01, no regularizer for the first 20 % of
   the iterations, then beta 20 -> 2 linearly; Adam lr 1e-3; batches of --batch photos drawn from
   the 32 calibration photos. The unit's input comes from the already reconstructed quantized
   prefix; QDrop (--qdrop p): each element of the unit input is the float-prefix value with
   probability p, and each activation fake-quant inside the unit is skipped per element with
   probability p (training only). --lsq also learns the unit's activation scales (the input
   scale of every conv in it; its consumers' int32 biases are recomputed as round(b / (s_x s_w))
   at export). Weights keep their int8 per-channel symmetric scales (exporter rules hold).
   --acts float: weights-only reconstruction (activation fake-quant off everywhere).
4. The new int8 weights (and scales / int32 biases) are written into a copy of the QDQ ONNX and
   measured with the real tools on the 250 held-out photos: `repq eval --ref float` (exact integer
   simulation) and ONNX Runtime (tools/ort/ort_eval.js, level extended, 2 threads): top-1,
   agreement, logit SQNR (ORT's from --scores-out against repq's float logits).
5. Noise floor: float top-1/top-2 logit margins on the held-out photos, and the fraction of photos
   an i.i.d. Gaussian logit noise at SQNR 16/20/25/30/35 dB flips (per-photo SQNR as repq's).

Usage: bench/recon_experiment.py [--build build/h-recon] [--work /tmp/recon] [--base gptq|gptq_refine]
       [--acts quant|float] [--group pair|single|dense] [--iters N] [--rows R] [--batch B] [--qdrop P]
       [--lsq] [--unit-seconds S] [--noise-floor] [--baseline] [--verify-only] [--no-verify] [--tag NAME]
Rows above: --base gptq --verify-only --noise-floor --baseline (and --base gptq_refine --baseline);
--group dense --iters 1000 --unit-seconds 20 --no-verify --tag w8a8_refine_dense_cap20;
--acts float --group dense --iters 300 --rows 256 --stem-iters 100 --no-verify.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from accuracy_run import IMAGENET_PP, run, run_json, strip_activation_qdq  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, file=sys.stderr, flush=True)


def attrs(n):
    return {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}


# ---------------------------------------------------------------- setup (step 1)
def setup(a):
    w = a.work
    os.makedirs(w, exist_ok=True)
    B = lambda t: os.path.join(a.build, "bin", t)  # noqa: E731
    fl = os.path.join(w, "s0.onnx")
    if not os.path.exists(fl):
        run([B("repq-make-mobileone"), os.path.join(a.shared, "models", "mobileone_s0"), fl])
    data = os.path.join(a.shared, "data", "imagenet_sample")
    images = os.path.join(data, "images")
    files = sorted(os.listdir(images))
    labels = {}
    with open(os.path.join(data, "labels.tsv")) as f:
        next(f)
        for line in f:
            cols = line.rstrip("\n").split("\t")
            labels[os.path.basename(cols[0])] = cols[1]
    ev = os.path.join(w, "eval")
    os.makedirs(ev, exist_ok=True)
    ev_labels = os.path.join(w, "eval_labels.tsv")
    with open(ev_labels, "w") as f:
        f.write("file\tclass_index\n")
        for fn in files[len(files) // 2:]:
            link = os.path.join(ev, fn)
            if not os.path.lexists(link):
                os.symlink(os.path.abspath(os.path.join(images, fn)), link)
            f.write(f"{fn}\t{labels[fn]}\n")
    common = ["--threads", "2"] + IMAGENET_PP
    for base, extra in (("gptq", []), ("gptq_refine", ["--refine-act"])):
        if base != a.base:
            continue
        q = os.path.join(w, f"s0.{base}.int8.onnx")
        if not os.path.exists(q):
            log(f"repq quantize --method gptq {' '.join(extra)}")
            run(["nice", B("repq"), "quantize", fl, "--calib", images, "--num-calib", "32", "--method", "gptq",
                 "-o", q, "--plan-out", os.path.join(w, f"{base}.plan.json"), "--json"] + extra + common)
    p = {"float": fl, "eval": ev, "eval_labels": ev_labels, "common": common, "repq": B("repq"),
         "calib_x": os.path.join(w, "calib_x.npy"), "eval_x": os.path.join(w, "eval_x.npy"),
         "eval_y": os.path.join(w, "eval_y.npy"), "eval_float": os.path.join(w, "eval_float_logits.npy")}
    if a.num_calib != 32:
        p["calib_x"] = os.path.join(w, f"calib{a.num_calib}_x.npy")
    if not os.path.exists(p["calib_x"]):  # the first N of the sorted listing, as quantize --num-calib
        run([B("repq-dump-inputs"), images, "-o", p["calib_x"], "--count", str(a.num_calib)] + common)
    if not os.path.exists(p["eval_y"]):
        run([B("repq-dump-inputs"), ev, "-o", p["eval_x"], "--labels", ev_labels, "--labels-out", p["eval_y"]]
            + common)
    if not os.path.exists(p["eval_float"]):
        run([p["repq"], "run", fl, "-i", p["eval_x"], "-o", p["eval_float"], "--threads", "2"])
    return p


# ---------------------------------------------------------------- the QDQ chain in torch (step 2)
class Chain:
    """MobileOne-S0's QDQ graph as a chain: Pad(input) -> Q/DQ -> [Conv -> Q/DQ (Relu absorbed)]*
    -> GAP -> Q/DQ -> Flatten -> Q/DQ -> Gemm."""

    def __init__(self, qdq_path, float_path):
        self.model = onnx.load(qdq_path)
        g = self.model.graph
        A = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        fa = {i.name: numpy_helper.to_array(i) for i in onnx.load(float_path).graph.initializer}
        prod = {o: n for n in g.node for o in n.output}
        users = {}
        for n in g.node:
            for i in n.input:
                users.setdefault(i, []).append(n)
        self.A = A
        self.layers = []
        self.acts = {}  # scale initializer name -> [scale, zp] (python floats), shared by Q and DQ

        def act_of(dq):  # a DequantizeLinear of an activation -> its scale name
            self.acts.setdefault(dq.input[1], [float(A[dq.input[1]]), int(A[dq.input[2]])])
            return dq.input[1]

        for n in g.node:
            if n.op_type == "Pad":
                self.pad = A[n.input[1]]
            elif n.op_type in ("Conv", "Gemm"):
                wdq, bdq, xdq = prod[n.input[1]], prod[n.input[2]], prod[n.input[0]]
                L = {"name": n.output[0], "op": n.op_type, "attrs": attrs(n),
                     "wq_name": wdq.input[0], "ws": A[wdq.input[1]].astype(np.float32),
                     "wq": A[wdq.input[0]].astype(np.float32), "bq_name": bdq.input[0], "bs_name": bdq.input[1],
                     "bias64": A[bdq.input[0]].astype(np.float64) * A[bdq.input[1]], "bq0": A[bdq.input[0]],
                     "x_act": act_of(xdq), "y_act": None}
                wf = fa[n.input[1]]
                if wf.shape != L["wq"].shape:  # the stem: zero-padded input channels
                    wf = np.concatenate([wf, np.zeros((wf.shape[0], L["wq"].shape[1] - wf.shape[1]) + wf.shape[2:],
                                                      np.float32)], axis=1)
                L["wf"] = wf.astype(np.float32)
                L["bf"] = fa[n.input[2]].astype(np.float32)
                u = users.get(n.output[0], [])
                if n.op_type == "Conv":
                    assert len(u) == 1 and u[0].op_type == "QuantizeLinear"
                    dq = users[u[0].output[0]][0]
                    L["y_act"] = act_of(dq)
                self.layers.append(L)
            elif n.op_type == "GlobalAveragePool":
                self.gap_act = act_of(users[users[n.output[0]][0].output[0]][0])
            elif n.op_type == "Flatten":
                self.flat_act = act_of(users[users[n.output[0]][0].output[0]][0])
        assert all(self.acts[k][1] == 0 for L in self.layers for k in [L["y_act"]] if k)  # Relu absorbed
        self.in_act = self.layers[0]["x_act"]
        self.convs = [L for L in self.layers if L["op"] == "Conv"]
        self.gemm = self.layers[-1]
        for L in self.layers:  # torch tensors
            L["W"] = torch.from_numpy(L["wq"] * L["ws"].reshape((-1,) + (1,) * (L["wq"].ndim - 1)))
            L["B"] = torch.from_numpy(L["bias64"].astype(np.float32))
            L["Wf"], L["Bf"] = torch.from_numpy(L["wf"]), torch.from_numpy(L["bf"])
        self.scale = {k: torch.tensor(v[0]) for k, v in self.acts.items()}

    def fq(self, x, act, on=True, drop=0.0):
        """uint8 fake-quant with STE through round (gradients to x inside the range, and to the
        scale as LSQ); drop: per-element probability of passing x through (QDrop)."""
        if not on:
            return x
        s, zp = self.scale[act], self.acts[act][1]
        xs = x / s
        q = (xs + (torch.round(xs) - xs).detach() + zp).clamp(0, 255)
        y = (q - zp) * s
        if drop > 0:
            y = torch.where(torch.rand_like(x) < drop, x, y)
        return y

    def inp(self, x, quant=True):
        x = F.pad(x, [0, 0, 0, 0, 0, int(self.pad[5])])
        return self.fq(x, self.in_act, quant)

    def conv(self, L, x, W=None, B=None, quant=True, drop=0.0):
        a = L["attrs"]
        p = a.get("pads", [0, 0, 0, 0])
        y = F.conv2d(x, L["W"] if W is None else W, L["B"] if B is None else B, stride=a.get("strides", [1, 1]),
                     padding=(p[0], p[1]), groups=a.get("group", 1))
        return self.fq(y, L["y_act"], quant, drop) if quant else torch.relu(y)

    def head_in(self, x, quant=True):
        x = self.fq(x.mean(dim=(2, 3), keepdim=True), self.gap_act, quant)
        return self.fq(x.flatten(1), self.flat_act, quant)

    def gemm_fwd(self, x, W=None, B=None):
        return x @ (self.gemm["W"] if W is None else W).T + (self.gemm["B"] if B is None else B)

    # exact integer arithmetic of repq's kernels (= ONNX Runtime's QLinearConv / QLinearGlobalAveragePool /
    # QGemm, src/runtime/qdq_*.cpp): integer accumulation (exact in float64), float32 requantization
    def ints(self, x, act):
        s, zp = self.scale[act], self.acts[act][1]
        return torch.round(x / s).double(), s, zp  # x holds dequantized values (q - zp) * s

    def bias_q(self, L):
        """The int32 bias and its scale s_x * s_w for the current input scale (repq's own when unchanged)."""
        sx = np.float32(float(self.scale[L["x_act"]]))
        if sx == np.float32(self.acts[L["x_act"]][0]):
            return L["bq0"], self.A[L["bs_name"]]
        bs = (sx * L["ws"]).astype(np.float32)
        return np.clip(np.round(L["bias64"] / bs), -2**31, 2**31 - 1).astype(np.int32), bs

    def conv_exact(self, L, x):
        a = L["attrs"]
        p = a.get("pads", [0, 0, 0, 0])
        xi, sx, _ = self.ints(x, L["x_act"])
        sy, zy = self.scale[L["y_act"]], self.acts[L["y_act"]][1]
        bq, bs = self.bias_q(L)
        bs = torch.from_numpy(np.array(bs))
        acc = F.conv2d(xi, torch.from_numpy(L["wq"]).double(), torch.from_numpy(bq).double(), stride=a.get("strides", [1, 1]),
                       padding=(p[0], p[1]), groups=a.get("group", 1))
        mult = (bs / sy.float()).float().reshape(1, -1, 1, 1)
        y = torch.round(acc.float() * mult).clamp(-zy, 255 - zy)
        return y * sy

    def forward_exact(self, x):
        x = self.inp(x)
        for L in self.convs:
            x = self.conv_exact(L, x)
        return self.head_exact(x)

    def head_exact(self, x, gemm=True):
        xi, sx, zx = self.ints(x, self.convs[-1]["y_act"])
        sy, zy = self.scale[self.gap_act], self.acts[self.gap_act][1]
        hw = x.shape[2] * x.shape[3]
        acc = xi.sum(dim=(2, 3))  # (q - zp_x) summed
        y = (torch.round((acc.float() * (sx.float() / (sy.float() * float(hw)))).clamp(-zy, 255 - zy)) * sy)
        y = self.fq(y, self.flat_act)  # Flatten between two Q/DQ pairs
        if not gemm:
            return y
        yi, sa, za = self.ints(y, self.flat_act)
        bq, _ = self.bias_q(self.gemm)
        acc = yi @ torch.from_numpy(self.gemm["wq"]).double().T + torch.from_numpy(bq).double()
        return acc.float() * (sa.float() * torch.from_numpy(self.gemm["ws"])).float()

    def float_forward(self, x):
        x = self.inp(x, False)
        for L in self.convs:
            x = self.conv(L, x, L["Wf"], L["Bf"], False)
        return self.gemm_fwd(self.head_in(x, False), self.gemm["Wf"], self.gemm["Bf"])

    def forward(self, x, quant=True):
        x = self.inp(x, quant)
        for L in self.convs:
            x = self.conv(L, x, quant=quant)
        return self.gemm_fwd(self.head_in(x, quant))

    def export(self, dst):
        """Writes the current int8 weights, activation scales and recomputed int32 biases."""
        m = onnx.ModelProto()
        m.CopyFrom(self.model)
        inits = {i.name: i for i in m.graph.initializer}
        for L in self.layers:
            inits[L["wq_name"]].CopyFrom(numpy_helper.from_array(L["wq"].astype(np.int8), L["wq_name"]))
            bq, bs = self.bias_q(L)
            inits[L["bq_name"]].CopyFrom(numpy_helper.from_array(bq, L["bq_name"]))
            inits[L["bs_name"]].CopyFrom(numpy_helper.from_array(bs, L["bs_name"]))
        for k, s in self.scale.items():
            inits[k].CopyFrom(numpy_helper.from_array(np.array(float(s), np.float32), k))
        onnx.save(m, dst)


def batched(fn, x, bs=25):
    with torch.no_grad():
        return torch.cat([fn(x[i:i + bs]) for i in range(0, len(x), bs)])


def sqnr_db(ref, q):
    ref, q = ref.astype(np.float64), q.astype(np.float64)
    return float(np.mean(np.minimum(200.0, 10 * np.log10((ref ** 2).sum(1) / np.maximum((ref - q) ** 2, 1e-300).sum(1)))))


def compare(ref, q):
    return {"agreement": float((ref.argmax(1) == q.argmax(1)).mean()), "sqnr_db": round(sqnr_db(ref, q), 2)}


# ---------------------------------------------------------------- reconstruction (step 3)
class SoftRound:
    """AdaRound variable for one layer, warm started at the GPTQ int8 values."""

    def __init__(self, L, h0):
        wf = L["wf"] / L["ws"].reshape((-1,) + (1,) * (L["wq"].ndim - 1))
        q, lo = L["wq"], np.floor(wf)
        up = q > lo  # GPTQ chose the upper neighbour (or beyond): base = q - 1, h = 1
        self.base = torch.from_numpy(np.where(up, q - 1, q).astype(np.float32))
        h = np.where(up, 1 - h0, h0)
        self.V = torch.tensor(np.log((h + 0.1) / 1.2 / (1 - (h + 0.1) / 1.2)).astype(np.float32), requires_grad=True)
        self.s = torch.from_numpy(L["ws"].reshape((-1,) + (1,) * (L["wq"].ndim - 1)))

    def h(self):
        return (torch.sigmoid(self.V) * 1.2 - 0.1).clamp(0, 1)

    def weight(self):
        return (self.base + self.h()).clamp(-127, 127) * self.s

    def reg(self, beta):
        return (1 - (2 * self.h() - 1).abs().pow(beta)).sum()

    def hard(self):
        with torch.no_grad():
            return (self.base + (self.h() >= 0.5).float()).clamp(-127, 127).numpy()


def reconstruct(ch, xc, a):
    """Block reconstruction in graph order on the calibration tensors xc (N,3,H,W)."""
    quant = a.acts == "quant"
    ln = ch.convs
    if a.group == "pair":
        units = [[ln[0]]] + [[ln[i], ln[i + 1]] for i in range(1, len(ln), 2)] + [[ch.gemm]]
    else:  # single: every conv alone; dense: the dense layers alone (stem, pointwise, Gemm), depthwise kept
        units = [[L] for L in ln] + [[ch.gemm]]
    frozen = {id(u[0]) for u in units if a.group == "dense" and u[0]["attrs"].get("group", 1) > 1}
    with torch.no_grad():
        xq, xf = ch.inp(xc, quant), ch.inp(xc, False)
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    stats, n = [], len(xc)
    for ui, unit in enumerate(units):
        t0 = time.time()
        is_gemm = unit[0]["op"] == "Gemm"
        if is_gemm:
            with torch.no_grad():
                xq, xf = ch.head_in(xq, quant), ch.head_in(xf, False)

        def fwd_float(x):
            if is_gemm:
                return ch.gemm_fwd(x, ch.gemm["Wf"], ch.gemm["Bf"])
            for L in unit:
                x = ch.conv(L, x, L["Wf"], L["Bf"], False)
            return x

        def fwd_q(x, Ws, drop, out_quant):
            if is_gemm:
                return ch.gemm_fwd(x, Ws[0])
            for j, L in enumerate(unit):
                last = j == len(unit) - 1
                x = ch.conv(L, x, Ws[j], None, quant and (not last or out_quant), 0.0 if last else drop)
            return x

        def prop(x):  # the quantized prefix, exact integer arithmetic
            for L in unit:
                x = ch.conv_exact(L, x) if quant else ch.conv(L, x, quant=False)
            return x

        with torch.no_grad():
            tgt = torch.cat([fwd_float(xf[i:i + 8]) for i in range(0, len(xf), 8)])
        if id(unit[0]) in frozen:  # kept at the GPTQ values: only propagate
            with torch.no_grad():
                xq = torch.cat([prop(xq[i:i + 8]) for i in range(0, n, 8)])
                xf = torch.cat([fwd_float(xf[i:i + 8]) for i in range(0, n, 8)])
            continue
        sr = [SoftRound(L, a.h0) for L in unit]
        params = [r.V for r in sr]
        lsq_acts = [L["y_act"] for L in unit] if (a.lsq and quant and not is_gemm) else []
        logs = {}
        for k in lsq_acts:
            logs[k] = torch.tensor(float(np.log(ch.acts[k][0])), requires_grad=True)
        opt = torch.optim.Adam(params, lr=a.lr)
        opt_s = torch.optim.Adam(list(logs.values()), lr=a.lr_scale) if logs else None

        with torch.no_grad():
            before = float((fwd_q(xq, [L["W"] for L in unit], 0.0, bool(logs)) - tgt).pow(2).sum(1).mean())
        orig = [L["wq"].copy() for L in unit]
        # a pointwise conv alone trains on random pixel rows (exact: a 1x1 conv acts per pixel); the Gemm on
        # its 32 rows; other units on random photos
        L0 = unit[0]
        rows = is_gemm or (len(unit) == 1 and L0["wq"].shape[2:] == (1, 1) and L0["attrs"].get("group", 1) == 1
                           and list(L0["attrs"].get("strides", [1, 1])) == [1, 1])
        if rows and not is_gemm:
            to_rows = lambda t: t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])  # noqa: E731
            Dq, Df, Dt = to_rows(xq), to_rows(xf), to_rows(tgt)

            def fwd_train(x, Ws, drop, out_quant):
                y = x @ Ws[0].reshape(Ws[0].shape[0], -1).T + L0["B"]
                return ch.fq(y, L0["y_act"]) if out_quant else torch.relu(y)
        else:
            Dq, Df, Dt, fwd_train = xq, xf, tgt, fwd_q
        stem = L0 is ln[0]
        bsz = a.rows if rows else (a.stem_batch if stem else a.batch)
        T = a.stem_iters if stem else a.iters
        t1 = time.time()
        it = 0
        while it < T:
            if it == 20 and a.unit_seconds > 0:  # time cap: fewer iterations (still in the warm-up phase)
                T = max(40, min(T, int(a.unit_seconds / ((time.time() - t1) / 20))))
            idx = torch.randint(len(Dq), (bsz,), generator=g) if rows else torch.randperm(len(Dq), generator=g)[:bsz]
            x = Dq[idx]
            if a.qdrop > 0 and quant:
                x = torch.where(torch.rand(x.shape, generator=g) < a.qdrop, Df[idx], x)
            for k, v in logs.items():
                ch.scale[k] = v.exp()
            y = fwd_train(x, [r.weight() for r in sr], a.qdrop if quant else 0.0, bool(logs))
            rec = (y - Dt[idx]).pow(2).sum(1).mean()
            rel = (it - 0.2 * T) / (0.8 * T)
            beta = 2 + 18 * max(0.0, 1 - rel)
            reg = a.lam * sum(r.reg(beta) for r in sr) if rel >= 0 else torch.zeros(())
            opt.zero_grad()
            if opt_s:
                opt_s.zero_grad()
            (rec + reg).backward()
            opt.step()
            if opt_s:
                opt_s.step()
            it += 1
        t_loop = time.time() - t1
        for r, L in zip(sr, unit):
            L["wq"] = r.hard()
            L["W"] = torch.from_numpy(L["wq"]) * r.s.reshape(L["W"].shape[:1] + (1,) * (L["wq"].ndim - 1))
        for k, v in logs.items():
            ch.scale[k] = v.detach().exp().clone()
        with torch.no_grad():
            after = float((fwd_q(xq, [L["W"] for L in unit], 0.0, bool(logs)) - tgt).pow(2).sum(1).mean())
            changed = sum(int((L["wq"] != o).sum()) for L, o in zip(unit, orig))
            if not is_gemm:
                xq = torch.cat([prop(xq[i:i + 8]) for i in range(0, n, 8)])
                xf = torch.cat([fwd_float(xf[i:i + 8]) for i in range(0, n, 8)])
        st = {"unit": [L["name"] for L in unit], "loss_before": before, "loss_after": after,
              "changed_vs_gptq": changed, "weights": sum(int(o.size) for o in orig),
              "iters": T, "seconds": round(time.time() - t0, 1), "loop_seconds": round(t_loop, 1),
              "scales": {k: [ch.acts[k][0], float(ch.scale[k])] for k in lsq_acts}}
        stats.append(st)
        log(f"unit {ui + 1}/{len(units)} {st['unit']}: loss {before:.4g} -> {after:.4g}, {changed}/{st['weights']} "
            f"ints changed ({st['seconds']} s, loop {st['loop_seconds']} s)"
            + (f" scales {st['scales']}" if lsq_acts else ""))
    return stats


# ---------------------------------------------------------------- measurements (steps 2, 4, 5)
def verify(ch, p, a):
    """The torch chain against `repq run` of the same QDQ model on the held-out photos."""
    x = torch.from_numpy(np.load(p["eval_x"]))
    out = os.path.join(a.work, f"repq_logits.{a.base}.npy")
    run([p["repq"], "run", ch.path, "-i", p["eval_x"], "-o", out, "--threads", "2"])
    r = np.load(out)
    t = batched(ch.forward, x).numpy()
    e = batched(ch.forward_exact, x).numpy()
    f = batched(ch.float_forward, x).numpy()
    res = {"torch_exact_vs_repq": compare(r, e), "torch_fakequant_vs_repq": compare(r, t), "torch_float_vs_repq_float": compare(np.load(p["eval_float"]), f),
           "repq_vs_float": compare(np.load(p["eval_float"]), r), "torch_vs_float": compare(np.load(p["eval_float"]), t)}
    log(f"verify {a.base}: {json.dumps(res)}")
    return res


def measure(model, p, a, tag):
    """repq eval --ref float (exact integer simulation) and ONNX Runtime on the 250 held-out photos."""
    sim = run_json([p["repq"], "-q", "eval", model, "--data", p["eval"], "--labels", p["eval_labels"],
                    "--ref", p["float"], "--json"] + p["common"])
    r = {"model": model, "repq_top1": sim["top1"], "repq_agreement": sim["agreement"]["top1"],
         "repq_sqnr_db": round(sim["agreement"]["mean_sqnr_db"], 2)}
    ort = os.path.join(ROOT, "tools", "ort", "ort_eval.js")
    if a.ort:
        so = os.path.join(a.work, f"ort_scores.{tag}.npy")
        o = run_json(["node", ort, model, "--inputs", p["eval_x"], "--labels", p["eval_y"], "--ref", p["float"],
                      "--threads", "2", "--level", "extended", "--scores-out", so])
        r.update({"ort_top1": o["top1"], "ort_agreement": o["reference"]["agreement"],
                  "ort_sqnr_db": round(sqnr_db(np.load(p["eval_float"]), np.load(so)), 2)})
    log(f"measure {tag}: {json.dumps(r)}")
    return r


def noise_floor(p):
    f = np.load(p["eval_float"]).astype(np.float64)
    s = np.sort(f, axis=1)
    margin = s[:, -1] - s[:, -2]
    rms = np.sqrt((f ** 2).mean(1))
    rel = margin / rms  # margin in units of the logit RMS
    rng = np.random.default_rng(0)
    res = {"margin_percentiles": {q: round(float(np.percentile(margin, q)), 3) for q in (1, 2, 5, 10, 25, 50)},
           "margin_over_rms_percentiles": {q: round(float(np.percentile(rel, q)), 3) for q in (1, 2, 5, 10, 25, 50)},
           "logit_rms_median": round(float(np.median(rms)), 3), "flip": {}}
    top = f.argmax(1)
    for db in (16, 20, 25, 30, 35, 40):
        sigma = rms / np.sqrt(10 ** (db / 10))  # per-photo SQNR db: noise power = signal power / 10^(db/10)
        agr = [float((np.argmax(f + rng.standard_normal(f.shape) * sigma[:, None], 1) == top).mean())
               for _ in range(200)]
        res["flip"][db] = {"agreement_mean": round(float(np.mean(agr)), 4), "flipped_mean": round(250 * (1 - float(np.mean(agr))), 2)}
    log(f"noise floor: {json.dumps(res)}")
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "h-recon"))
    ap.add_argument("--work", default="/tmp/recon")
    ap.add_argument("--shared", default=os.environ.get("REPQ_SHARED_DIR", os.path.join(ROOT, "..", "shared")))
    ap.add_argument("--base", default="gptq_refine", choices=["gptq", "gptq_refine"])
    ap.add_argument("--acts", default="quant", choices=["quant", "float"])
    ap.add_argument("--group", default="pair", choices=["pair", "single", "dense"])
    ap.add_argument("--iters", type=int, default=500)
    ap.add_argument("--batch", type=int, default=8, help="photos per step (units of several convs)")
    ap.add_argument("--rows", type=int, default=1024, help="pixel rows per step (a pointwise conv alone, the Gemm)")
    ap.add_argument("--stem-iters", type=int, default=200)
    ap.add_argument("--unit-seconds", type=float, default=0, help="cap each unit's loop at about this many seconds")
    ap.add_argument("--stem-batch", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--h0", type=float, default=0.25, help="warm start: h = h0 / 1 - h0 at GPTQ's choice")
    ap.add_argument("--lam", type=float, default=0.01)
    ap.add_argument("--qdrop", type=float, default=0.5)
    ap.add_argument("--lsq", action="store_true", help="also learn the activation scales (log-scale, Adam)")
    ap.add_argument("--lr-scale", type=float, default=1e-3)
    ap.add_argument("--num-calib", type=int, default=32)
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="1 by default: on the shared, loaded 2 cores a 2-thread torch step was 10x slower (OpenMP waits)")
    ap.add_argument("--no-ort", dest="ort", action="store_false")
    ap.add_argument("--verify-only", action="store_true")
    ap.add_argument("--measure", help="only measure this QDQ model (repq eval + ORT on the held-out photos)")
    ap.add_argument("--no-verify", dest="verify", action="store_false")
    ap.add_argument("--noise-floor", action="store_true")
    ap.add_argument("--baseline", action="store_true", help="also measure the unreconstructed QDQ model")
    ap.add_argument("--tag", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.torch_threads)
    a.ort = a.ort and os.path.isdir(os.path.join(ROOT, "tools", "ort", "node_modules", "onnxruntime-node"))
    p = setup(a)
    tag = a.tag or f"{a.base}.{a.acts}.{a.group}.i{a.iters}.r{a.rows}.qd{a.qdrop}.lr{a.lr}.h{a.h0}" + (".lsq" if a.lsq else "") \
        + (f".c{a.num_calib}" if a.num_calib != 32 else "")
    res = {"tag": tag, "args": vars(a)}
    if a.noise_floor:
        res["noise_floor"] = noise_floor(p)
    qpath = os.path.join(a.work, f"s0.{a.base}.int8.onnx")
    ch = Chain(qpath, p["float"])
    ch.path = qpath
    if a.verify:
        res["verify"] = verify(ch, p, a)
    if a.baseline:
        res["baseline"] = measure(qpath, p, a, a.base)
        wo = os.path.join(a.work, f"s0.{a.base}.weights-only.onnx")
        strip_activation_qdq(qpath, wo)
        res["baseline_weights_only"] = measure(wo, p, a, a.base + ".wo")
    if a.measure:
        res["measure"] = measure(a.measure, p, a, os.path.basename(a.measure))
    elif not a.verify_only:
        xc = torch.from_numpy(np.load(p["calib_x"]))
        t0 = time.time()
        res["units"] = reconstruct(ch, xc, a)
        res["recon_seconds"] = round(time.time() - t0, 1)
        out = os.path.join(a.work, f"s0.recon.{tag}.onnx")
        ch.export(out)
        ch2 = Chain(out, p["float"])  # the written model reproduces the torch state
        x = torch.from_numpy(np.load(p["eval_x"]))
        q = a.acts == "quant"
        f = (lambda c: c.forward_exact) if q else (lambda c: (lambda t: c.forward(t, False)))
        res["export_check"] = compare(batched(f(ch), x).numpy(), batched(f(ch2), x).numpy())
        if not q:  # the same int8 weights with the activations quantized too, then weights-only
            res["result_w8a8"] = measure(out, p, a, tag + ".w8a8")
            wo = out.replace(".onnx", ".weights-only.onnx")
            strip_activation_qdq(out, wo)
            out = wo
        res["result"] = measure(out, p, a, tag)
        res["result"]["recon_seconds"] = res["recon_seconds"]
    with open(os.path.join(a.work, f"result.{tag}.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps({k: res[k] for k in ("tag", "verify", "baseline", "baseline_weights_only", "result",
                                          "noise_floor", "export_check") if k in res}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
