"""A tiny NumPy interpreter for the few ONNX ops these models export to.

Used only to check the exported files independently of PyTorch (no ONNX
Runtime in Debian 12).  Float64 internally.
"""
import numpy as np
import onnx
from onnx import numpy_helper


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pad4(x, pads, value=0.0):
    t, l, b, r = pads[0], pads[1], pads[2], pads[3]
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def _windows(x, kh, kw, sh, sw):
    v = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return v[:, :, ::sh, ::sw]  # [N, C, Ho, Wo, kh, kw]


def conv(x, w, b, a):
    g = a.get("group", 1)
    sh, sw = a.get("strides", [1, 1])
    if a.get("dilations", [1, 1]) != [1, 1]:
        raise NotImplementedError("dilated Conv")
    x = _pad4(x, a.get("pads", [0, 0, 0, 0]))
    o, cg, kh, kw = w.shape
    win = _windows(x, kh, kw, sh, sw)
    n, c, ho, wo = win.shape[:4]
    win = win.reshape(n, g, cg, ho, wo, kh, kw)
    wg = w.reshape(g, o // g, cg, kh, kw)
    if cg == 1 and o == g:  # depthwise
        y = np.einsum("nghwij,gij->nghw", win[:, :, 0], wg[:, 0, 0])
    else:
        y = np.einsum("ngchwij,gocij->ngohw", win, wg, optimize=True)
    y = y.reshape(n, o, ho, wo)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def run(model, feeds):
    env = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
    env.update({k: np.asarray(v, dtype=np.float64) for k, v in feeds.items()})
    for node in model.graph.node:
        a = _attrs(node)
        x = [env[i] if i else None for i in node.input]
        op = node.op_type
        if op == "Conv":
            y = conv(x[0], x[1], x[2] if len(x) > 2 else None, a)
        elif op == "BatchNormalization":
            s, bias, mean, var = x[1:5]
            t = s / np.sqrt(var + a.get("epsilon", 1e-5))
            y = (x[0] - mean.reshape(1, -1, 1, 1)) * t.reshape(1, -1, 1, 1) + bias.reshape(1, -1, 1, 1)
        elif op == "Add":
            y = x[0] + x[1]
        elif op == "Relu":
            y = np.maximum(x[0], 0)
        elif op == "AveragePool":
            kh, kw = a["kernel_shape"]
            sh, sw = a.get("strides", [1, 1])
            if not a.get("count_include_pad", 0) and any(a.get("pads", [0])):
                raise NotImplementedError("AveragePool count_include_pad=0 with padding")
            xp = _pad4(x[0], a.get("pads", [0, 0, 0, 0]))
            y = _windows(xp, kh, kw, sh, sw).mean(axis=(4, 5))
        elif op == "GlobalAveragePool":
            y = x[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Flatten":
            ax = a.get("axis", 1)
            y = x[0].reshape(int(np.prod(x[0].shape[:ax])), -1)
        elif op == "Gemm":
            A = x[0].T if a.get("transA", 0) else x[0]
            B = x[1].T if a.get("transB", 0) else x[1]
            y = a.get("alpha", 1.0) * A @ B
            if len(x) > 2 and x[2] is not None:
                y = y + a.get("beta", 1.0) * x[2]
        elif op == "Constant":
            y = numpy_helper.to_array(a["value"]) if isinstance(a.get("value"), onnx.TensorProto) \
                else np.asarray(onnx.helper.get_attribute_value(node.attribute[0]))
        elif op == "Pad":
            if a.get("mode", b"constant") not in (b"constant", "constant"):
                raise NotImplementedError("Pad mode " + str(a["mode"]))
            pads = [int(p) for p in x[1]]
            r = x[0].ndim
            value = float(x[2]) if len(x) > 2 and x[2] is not None else 0.0
            y = np.pad(x[0], [(pads[i], pads[i + r]) for i in range(r)], constant_values=value)
        elif op == "Identity":
            y = x[0]
        else:
            raise NotImplementedError(f"op {op}")
        env[node.output[0]] = y
    return [env[o.name] for o in model.graph.output]
