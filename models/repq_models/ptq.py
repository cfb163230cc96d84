"""A deliberately simple PTQ baseline, measured in PyTorch on the deploy form.

* weights: symmetric int8, zero point 0, range [-127, 127], scale
  max|W| / 127, per tensor or per output channel; round half to even
  (torch.round); biases stay float.  Every Conv and the final Linear.
* activations (optional): the input of every Conv and of the Linear, and so
  the network input too, fake-quantized symmetric int8 per tensor, range
  [-128, 127], scale max|x| / 127 from min-max over the calibration images.

This is the "standard PTQ" that RepVGG is known to fail; repq's own methods
are measured against it.
"""
import copy

import torch
import torch.nn as nn


def quant_weight(w, per_channel):
    if per_channel:
        amax = w.detach().abs().reshape(w.shape[0], -1).amax(1)
        amax = amax.reshape(-1, *([1] * (w.dim() - 1)))
    else:
        amax = w.detach().abs().amax()
    scale = amax.clamp(min=1e-12) / 127.0
    return torch.clamp(torch.round(w / scale), -127, 127) * scale


def sqnr_db(x, xq):
    err = ((x - xq) ** 2).sum().item()
    sig = (x ** 2).sum().item()
    return float("inf") if err == 0 else 10.0 * torch.log10(torch.tensor(sig / err)).item()


def _layers(model):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@torch.no_grad()
def accuracy(model, x, y, batch=1000):
    model.eval()
    hit = 0
    for i in range(0, x.shape[0], batch):
        hit += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return hit / x.shape[0]


@torch.no_grad()
def quantize_weights(deploy_model, per_channel):
    q = copy.deepcopy(deploy_model).eval()
    for _, m in _layers(q):
        m.weight.copy_(quant_weight(m.weight, per_channel))
    return q


@torch.no_grad()
def calibrate_minmax(model, calib_x):
    """max |input| of every Conv / Linear over the calibration images."""
    amax, hooks = {}, []
    for name, m in _layers(model):
        def hook(mod, inp, name=name):
            v = inp[0].abs().amax().item()
            amax[name] = max(amax.get(name, 0.0), v)
        hooks.append(m.register_forward_pre_hook(hook))
    model.eval()
    for i in range(0, calib_x.shape[0], 256):
        model(calib_x[i:i + 256])
    for h in hooks:
        h.remove()
    return amax


def add_act_quant(model, amax):
    for name, m in _layers(model):
        scale = max(amax[name], 1e-12) / 127.0

        def hook(mod, inp, scale=scale):
            return (torch.clamp(torch.round(inp[0] / scale), -128, 127) * scale,)
        m.register_forward_pre_hook(hook)
    return model


def measure(deploy_model, calib_x, test_x, test_y):
    """Accuracy of float, W8 (per tensor / channel), W8A8 (per tensor / channel)."""
    res = {"float": accuracy(deploy_model, test_x, test_y)}
    amax = calibrate_minmax(deploy_model, calib_x)
    for pc, tag in ((False, "per_tensor"), (True, "per_channel")):
        wq = quantize_weights(deploy_model, pc)
        res[f"w8_{tag}"] = accuracy(wq, test_x, test_y)
        res[f"w8a8_{tag}"] = accuracy(add_act_quant(wq, amax), test_x, test_y)
    return res


@torch.no_grad()
def weight_report(deploy_model):
    """Per fused layer: max |W|, weight SQNR per tensor and per channel."""
    rows = []
    for name, m in _layers(deploy_model):
        w = m.weight
        rows.append({"layer": name, "shape": list(w.shape),
                     "max_abs": round(w.abs().max().item(), 4),
                     "sqnr_db_per_tensor": round(sqnr_db(w, quant_weight(w, False)), 2),
                     "sqnr_db_per_channel": round(sqnr_db(w, quant_weight(w, True)), 2)})
    return rows
