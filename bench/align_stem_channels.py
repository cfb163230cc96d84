#!/usr/bin/env python3
"""Pads the stem of a QDQ model written by `repq quantize` to a multiple of 4 input channels,
as export_qdq does with ExportOptions::align_input_channels (src/quant/export_qdq.cpp), for
benchmarking while the CLI's exports do not turn that option on.

A Conv (group 1, 2-D, >= 16 output channels, a multiple of 4) whose input is
graph input -> QuantizeLinear -> DequantizeLinear, with C % 4 != 0 input channels, gets
Pad(graph input, channels + p, 0) -> QuantizeLinear -> DequantizeLinear (same scale and zero
point) as its input and p zero channels in its int8 weight. ONNX Runtime then runs it with MLAS's
symmetric int8 conv kernel (ConvSym needs input channels % 4 == 0) instead of im2col + a generic
int8 GEMM. Exact: the padded channels quantize to the zero point and meet zero weights.

Usage: bench/align_stem_channels.py IN.onnx OUT.onnx   (prints what it padded)
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def main():
    src, dst = sys.argv[1], sys.argv[2]
    m = onnx.load(src)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    graph_inputs = {i.name for i in g.input} - set(inits)
    new_nodes = []
    padded = []
    for n in list(g.node):
        if n.op_type != "Conv" or n.domain not in ("", "ai.onnx"):
            continue
        group = next((a.i for a in n.attribute if a.name == "group"), 1)
        dq_x = producer.get(n.input[0])
        dq_w = producer.get(n.input[1])
        if group != 1 or dq_x is None or dq_w is None or dq_x.op_type != "DequantizeLinear":
            continue
        q_x = producer.get(dq_x.input[0])
        if q_x is None or q_x.op_type != "QuantizeLinear" or q_x.input[0] not in graph_inputs:
            continue
        if dq_w.op_type != "DequantizeLinear" or dq_w.input[0] not in inits:
            continue
        w = numpy_helper.to_array(inits[dq_w.input[0]])
        if w.ndim != 4 or w.dtype != np.int8 or w.shape[0] < 16 or w.shape[0] % 4:
            continue
        p = (4 - w.shape[1] % 4) % 4
        if p == 0 or len(consumers.get(dq_w.output[0], [])) != 1:
            continue
        x = q_x.input[0]
        pads = x + "/channel_pads"
        g.initializer.append(numpy_helper.from_array(np.array([0, 0, 0, 0, 0, p, 0, 0], np.int64), pads))
        xp = x + "/channels_padded"
        new_nodes.append((q_x, [
            helper.make_node("Pad", [x, pads], [xp], name=xp + "/Pad"),
            helper.make_node("QuantizeLinear", [xp, q_x.input[1], q_x.input[2]], [xp + "/quantized"],
                             name=xp + "/QuantizeLinear"),
            helper.make_node("DequantizeLinear", [xp + "/quantized", q_x.input[1], q_x.input[2]],
                             [xp + "/dequantized"], name=xp + "/dequantized/DequantizeLinear"),
        ]))
        n.input[0] = xp + "/dequantized"
        w4 = np.zeros((w.shape[0], w.shape[1] + p) + w.shape[2:], np.int8)
        w4[:, : w.shape[1]] = w
        inits[dq_w.input[0]].CopyFrom(numpy_helper.from_array(w4, dq_w.input[0]))
        padded.append("%s: %d -> %d input channels" % (n.name, w.shape[1], w.shape[1] + p))
    for q_x, nodes in new_nodes:
        at = list(g.node).index(q_x)
        for k, nd in enumerate(nodes):
            g.node.insert(at + 1 + k, nd)
    # Drop a QuantizeLinear -> DequantizeLinear of a graph input that nothing reads any more.
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    for n in [n for n in g.node if n.op_type == "DequantizeLinear" and n.output[0] not in used]:
        g.node.remove(n)
        used = {i for nd in g.node for i in nd.input} | {o.name for o in g.output}
    for n in [n for n in g.node if n.op_type == "QuantizeLinear" and n.output[0] not in used]:
        g.node.remove(n)
    onnx.checker.check_model(m)
    onnx.save(m, dst)
    print("; ".join(padded) if padded else "nothing to pad")


if __name__ == "__main__":
    main()
