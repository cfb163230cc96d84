// The parameter checks QuantizeLinear, DequantizeLinear and FakeQuantizeLinear share
// (src/runtime/quantize_linear.cpp), as ONNX (opset 13) and ONNX Runtime define them.
#pragma once

#include <cstdint>

#include "repq/ir/tensor.h"

namespace repq::runtime {

// Which scale (and zero point) an element uses: index (i / inner) % channels.
struct QuantLayout {
  int64_t channels = 1, inner = 1;
};

// Per tensor: a scale of one value (a scalar or shape [1]) and a zero point of one value.
// Per axis: a 1-D scale with one value per index of `axis` of x, and a zero point of the
// scale's shape (ONNX: "shape must match y_scale"; a [1, C] zero point for a [C] scale is
// rejected, as ONNX Runtime does). Throws InputError otherwise.
QuantLayout quant_layout(const Tensor& x, const Tensor& scale, const Tensor* zp, int64_t axis);

// A float32 scale whose values are all positive and finite; throws InputError otherwise.
void check_quant_scale(const Tensor& scale);

}  // namespace repq::runtime
