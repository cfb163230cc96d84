// The executor's exact integer kernels for the QDQ groups ONNX Runtime turns into integer ops
// (src/runtime/qdq_*.cpp), and the helpers they share. Each factory returns an empty Kernel when
// the group's constants do not have the form ORT's kernel needs; the executor then runs the
// nodes one by one in float.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>

#include "runtime/kernel.h"

namespace repq::runtime {

using ConstantFn = std::function<const Tensor*(const std::string&)>;

inline bool is_int8_type(DType t) { return t == DType::kUInt8 || t == DType::kInt8; }

// Element i of a uint8/int8/int32 tensor as an integer (0 for other types).
inline int64_t int_elem(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kUInt8: return t.data<uint8_t>()[i];
    case DType::kInt8: return t.data<int8_t>()[i];
    case DType::kInt32: return t.data<int32_t>()[i];
    default: return 0;
  }
}

// The constant scale and zero point of a QuantizeLinear / DequantizeLinear node when both are
// scalars (or 1-element) of the integer form: positive finite float scale, 8-bit zero point
// (absent: 0, type uint8). `type` receives the zero point's type. False otherwise.
inline bool scalar_qparams(const Node& n, const ConstantFn& constant, float& scale, int32_t& zp,
                           DType& type) {
  auto in = [&](size_t i) -> const Tensor* {
    return i < n.inputs.size() && !n.inputs[i].empty() ? constant(n.inputs[i]) : nullptr;
  };
  const bool has_zp = n.inputs.size() > 2 && !n.inputs[2].empty();
  const Tensor* s = in(1);
  const Tensor* z = in(2);
  if (!s || s->dtype() != DType::kFloat32 || s->numel() != 1 || s->rank() > 1) return false;
  if (has_zp && (!z || z->numel() != 1 || z->rank() > 1 || !is_int8_type(z->dtype()))) return false;
  scale = s->data<float>()[0];
  zp = z ? static_cast<int32_t>(int_elem(*z, 0)) : 0;
  type = z ? z->dtype() : DType::kUInt8;
  return scale > 0.0f && std::isfinite(scale);
}

// qdq_conv.cpp: DQ(x) -> Conv(DQ(w), DQ(bias)) -> Q as QLinearConv.
Kernel make_qdq_conv(const Node& dq_x, const Node& conv, const Node* dq_w, const Node* dq_b,
                     const Node& q_node, const ConstantFn& constant);
// qdq_add.cpp: DQ(a), DQ(b) -> Add -> Q as QLinearAdd (inputs a_q, b_q).
Kernel make_qdq_add(const Node& dq_a, const Node& dq_b, const Node& q_node,
                    const ConstantFn& constant);
// qdq_pool.cpp: DQ(x) -> GlobalAveragePool -> Q as QLinearGlobalAveragePool (input x_q).
Kernel make_qdq_global_average_pool(const Node& dq_x, const Node& q_node,
                                    const ConstantFn& constant);
// qdq_gemm.cpp: Gemm(DQ(a), DQ(b), DQ(int32 c)) with a float output as QGemm (input a_q).
Kernel make_qdq_gemm(const Node& dq_a, const Node& dq_b, const Node* dq_c, const Node& gemm,
                     const ConstantFn& constant);

}  // namespace repq::runtime
