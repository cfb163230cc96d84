// The kernel factories, one per op type (or family), registered in kernel_registry.cpp.
#pragma once

#include "runtime/kernel.h"

namespace repq::runtime {

// conv.cpp, conv_transpose.cpp
Kernel make_conv(const NodeContext& ctx);
Kernel make_conv_transpose(const NodeContext& ctx);
// pool.cpp
Kernel make_max_pool(const NodeContext& ctx);
Kernel make_average_pool(const NodeContext& ctx);
Kernel make_global_average_pool(const NodeContext& ctx);
Kernel make_global_max_pool(const NodeContext& ctx);
// normalization.cpp
Kernel make_batch_normalization(const NodeContext& ctx);
// activation.cpp
Kernel make_relu(const NodeContext& ctx);
Kernel make_leaky_relu(const NodeContext& ctx);
Kernel make_clip(const NodeContext& ctx);
Kernel make_sigmoid(const NodeContext& ctx);
Kernel make_hard_sigmoid(const NodeContext& ctx);
Kernel make_hard_swish(const NodeContext& ctx);
// binary.cpp
Kernel make_add(const NodeContext& ctx);
Kernel make_sub(const NodeContext& ctx);
Kernel make_mul(const NodeContext& ctx);
Kernel make_div(const NodeContext& ctx);
// matmul.cpp
Kernel make_gemm(const NodeContext& ctx);
Kernel make_matmul(const NodeContext& ctx);
// softmax.cpp, reduce.cpp
Kernel make_softmax(const NodeContext& ctx);
Kernel make_reduce_mean(const NodeContext& ctx);
// shape_ops.cpp
Kernel make_identity(const NodeContext& ctx);
Kernel make_dropout(const NodeContext& ctx);
Kernel make_reshape(const NodeContext& ctx);
Kernel make_flatten(const NodeContext& ctx);
Kernel make_squeeze(const NodeContext& ctx);
Kernel make_unsqueeze(const NodeContext& ctx);
Kernel make_shape(const NodeContext& ctx);
// constant_ops.cpp
Kernel make_constant(const NodeContext& ctx);
Kernel make_constant_of_shape(const NodeContext& ctx);
Kernel make_cast(const NodeContext& ctx);
// data_movement.cpp
Kernel make_transpose(const NodeContext& ctx);
Kernel make_concat(const NodeContext& ctx);
Kernel make_split(const NodeContext& ctx);
Kernel make_slice(const NodeContext& ctx);
Kernel make_gather(const NodeContext& ctx);
// pad.cpp, resize.cpp
Kernel make_pad(const NodeContext& ctx);
Kernel make_resize(const NodeContext& ctx);
// quantize_linear.cpp
Kernel make_quantize_linear(const NodeContext& ctx);
Kernel make_dequantize_linear(const NodeContext& ctx);
// fake_quant.cpp (repq-internal op, not ONNX: QuantizeLinear + DequantizeLinear in one pass)
Kernel make_fake_quantize_linear(const NodeContext& ctx);

}  // namespace repq::runtime
