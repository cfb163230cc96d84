// Helpers shared by the quantization tests (export, quant points, ORT QDQ and exactness): named
// models from ONNX text, the small conv/Add/Concat/Gemm net they all use, an independent min-max
// plan, and row slices of a batch.
#pragma once

#include <cstdint>
#include <string>

#include "repq/data/dataset.h"
#include "repq/ir/graph.h"
#include "repq/quant/quantize.h"

namespace repq::test {

// Parses ONNX text (the `<ir_version: 8, opset_import: ...>` header is added) and names every
// node after its first output (nodes of ONNX text have no names; plans and reports need them).
Model named_model(const std::string& graph_text, int opset = 13);

// conv+relu, a two-conv Add with Relu, Concat, MaxPool, GlobalAveragePool, Flatten, Gemm on a
// [batch,3,8,8] input (`batch` is a number or a symbolic name); `c` channels in the convs.
std::string small_quant_net(const std::string& batch, int c = 4);

// A min-max plan made here, independently of build_plan: activation ranges observed by the
// float executor on `x` (shared scales take the union), uint8 asymmetric (ort) or int8
// symmetric (tensorrt), scales at least 1e-8; weights per channel max|w| / 127 along the
// layer's weight axis ("per-channel").
quant::QuantPlan minmax_plan(const Model& m, const quant::QuantPoints& pts, const Tensor& x,
                             quant::Target target = quant::Target::kOrt);

// The first `limit` images of the bundled Fashion-MNIST calibration folder
// (models/data/fashion_mnist/calib) with the models' preprocessing (grey, /255, mean 0.2860,
// std 0.3530), read with 2 threads.
data::Dataset fashion_calib(int64_t limit);

// Rows [from, from + n) of a float32 batch.
Tensor batch_rows(const Tensor& x, int64_t from, int64_t n);

}  // namespace repq::test
