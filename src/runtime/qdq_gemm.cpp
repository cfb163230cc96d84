// Gemm(DequantizeLinear(a_q), DequantizeLinear(b_q), DequantizeLinear(int32 c)) with a float
// output (no QuantizeLinear after it) run as ONNX Runtime's QGemm does:
//   acc[m][n] = c_q[n] + sum_k (a_q - zp_a) * (b_q - zp_b[n])   (exact int32),
//   y[m][n] = float(acc) * ((alpha * s_a) * s_b[n])            (float).
// QGemm adds the bias integers as they are (it does not read the bias DQ's scale).
#include <algorithm>
#include <vector>

#include "repq/error.h"
#include "runtime/qdq_kernels.h"
#include "runtime/thread_pool.h"

namespace repq::runtime {
namespace {

struct QdqGemm {
  bool trans_a = false;
  int64_t n = 0, k = 0;
  int32_t zpa = 0;
  DType a_type = DType::kUInt8;
  std::vector<int32_t> b;      // (b_q - zp_b[n]), [N x K]
  std::vector<int32_t> bias;   // [N] (zeros without bias)
  std::vector<float> scale;    // (alpha * s_a) * s_b[n], [N]
};

template <class A>
void run_typed(const QdqGemm& q, const Tensor& a, int64_t m, Tensor& y, ThreadPool& pool) {
  const A* ad = a.data<A>();
  float* yd = y.mutable_data<float>();
  pool.run(m, [&](int64_t row) {
    std::vector<int32_t> x(static_cast<size_t>(q.k));
    for (int64_t i = 0; i < q.k; ++i)
      x[i] = static_cast<int32_t>(q.trans_a ? ad[i * m + row] : ad[row * q.k + i]) - q.zpa;
    for (int64_t j = 0; j < q.n; ++j) {
      const int32_t* w = q.b.data() + j * q.k;
      int64_t acc = q.bias[j];  // MLAS sums in int32 (wrapping): the same value mod 2^32
      for (int64_t i = 0; i < q.k; ++i) acc += x[i] * w[i];
      yd[row * q.n + j] = static_cast<float>(static_cast<int32_t>(acc)) * q.scale[j];
    }
  });
}

void run_qdq_gemm(const QdqGemm& q, KernelCall& call) {
  const Tensor& a = call.input(0);
  if (a.dtype() != q.a_type)
    throw InputError("quantized Gemm input is " + dtype_name(a.dtype()) + "; expected " +
                     dtype_name(q.a_type));
  if (a.rank() != 2 || a.dim(q.trans_a ? 0 : 1) != q.k)
    throw InputError("Gemm input A has shape " + shape_str(a.shape()) + "; expected " +
                     std::to_string(q.k) + " columns" + (q.trans_a ? " after transposing" : ""));
  const int64_t m = a.dim(q.trans_a ? 1 : 0);
  Tensor y = call.alloc(DType::kFloat32, {m, q.n});
  if (y.numel() > 0) {
    if (q.a_type == DType::kUInt8) run_typed<uint8_t>(q, a, m, y, call.pool());
    else run_typed<int8_t>(q, a, m, y, call.pool());
  }
  call.set_output(0, std::move(y));
}

}  // namespace

// ORT's selector (GemmNodeGroupSelector): every input from a DQ, A int8 only with B int8, bias
// int32 with beta 1. QGemm needs a scalar A scale/zero point and a B scale of 1 or N values.
Kernel make_qdq_gemm(const Node& dq_a, const Node& dq_b, const Node* dq_c, const Node& gemm,
                     const ConstantFn& constant) {
  auto in = [&](const Node& n, size_t i) -> const Tensor* {
    return i < n.inputs.size() && !n.inputs[i].empty() ? constant(n.inputs[i]) : nullptr;
  };
  auto has = [](const Node& n, size_t i) { return i < n.inputs.size() && !n.inputs[i].empty(); };
  QdqGemm q;
  float sa = 0;
  if (!scalar_qparams(dq_a, constant, sa, q.zpa, q.a_type)) return {};
  if (has(gemm, 2) && !dq_c) return {};
  const float alpha = gemm.attr_float("alpha", 1.0f), beta = gemm.attr_float("beta", 1.0f);
  if (dq_c && beta != 1.0f) return {};
  q.trans_a = gemm.attr_int("transA", 0) != 0;
  const bool trans_b = gemm.attr_int("transB", 0) != 0;

  const Tensor* b = in(dq_b, 0);
  const Tensor* bs = in(dq_b, 1);
  const Tensor* bz = in(dq_b, 2);
  if (!b || !is_int8_type(b->dtype()) || b->rank() != 2 || !bs || bs->dtype() != DType::kFloat32 ||
      (has(dq_b, 2) && !bz))
    return {};
  if (q.a_type == DType::kInt8 && b->dtype() != DType::kInt8) return {};
  q.n = b->dim(trans_b ? 0 : 1);
  q.k = b->dim(trans_b ? 1 : 0);
  const bool per_col = bs->numel() != 1;
  if (per_col) {
    int64_t axis = dq_b.attr_int("axis", 1);
    if (axis < 0) axis += 2;
    if (bs->rank() != 1 || bs->numel() != q.n || axis != (trans_b ? 0 : 1)) return {};
  }
  if (bz && (bz->numel() != bs->numel() || bz->dtype() != b->dtype())) return {};
  q.b.resize(static_cast<size_t>(q.n * q.k));
  q.scale.resize(static_cast<size_t>(q.n));
  for (int64_t j = 0; j < q.n; ++j) {
    const int64_t c = per_col ? j : 0;
    const float s = bs->data<float>()[c];
    if (!(s > 0.0f) || !std::isfinite(s)) return {};
    q.scale[j] = alpha * sa * s;
    const int64_t z = bz ? int_elem(*bz, c) : 0;
    for (int64_t i = 0; i < q.k; ++i)
      q.b[j * q.k + i] = static_cast<int32_t>(int_elem(*b, trans_b ? j * q.k + i : i * q.n + j) - z);
  }
  q.bias.assign(static_cast<size_t>(q.n), 0);
  if (dq_c) {
    const Tensor* c = in(*dq_c, 0);
    const Tensor* cz = in(*dq_c, 2);
    if (!c || c->dtype() != DType::kInt32 || (has(*dq_c, 2) && !cz)) return {};
    if (cz && (cz->dtype() != DType::kInt32 ||
               std::any_of(cz->data<int32_t>(), cz->data<int32_t>() + cz->numel(),
                           [](int32_t v) { return v != 0; })))
      return {};
    const bool row = c->rank() == 1 || (c->rank() == 2 && c->dim(0) == 1);
    if (c->numel() == 1) std::fill(q.bias.begin(), q.bias.end(), c->data<int32_t>()[0]);
    else if (row && c->numel() == q.n) std::copy_n(c->data<int32_t>(), q.n, q.bias.begin());
    else return {};
  }
  return [q = std::move(q)](KernelCall& call) { run_qdq_gemm(q, call); };
}

}  // namespace repq::runtime
