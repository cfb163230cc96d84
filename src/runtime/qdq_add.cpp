// DequantizeLinear(a_q), DequantizeLinear(b_q) -> Add -> QuantizeLinear run as one kernel with
// ONNX Runtime's QLinearAdd arithmetic (MLAS qladd, the AVX2 kernel x86-64 CPUs run; ORT's
// build contracts its float expressions into FMA, which these formulas reproduce):
//   r_a = s_a / s_c, r_b = s_b / s_c (float), fixed = float(zp_c) - fma(r_a, zp_a, r_b * zp_b),
//   c = saturate(round_half_even(fma(a_q, r_a, fma(b_q, r_b, fixed)))).
// When one input is a single value v (ORT passes it as the second operand b):
//   fixed' = fma(v_q, r_v, fixed), c = saturate(round_half_even(fma(x_q, r_x, fixed'))).
// Other broadcasts are not matched (the nodes then run in float).
#include <algorithm>
#include <cmath>
#include <limits>

#include "repq/error.h"
#include "runtime/qdq_kernels.h"
#include "runtime/thread_pool.h"

namespace repq::runtime {
namespace {

struct QdqAdd {
  float sa = 1, sb = 1, sc = 1;
  int32_t zpa = 0, zpb = 0, zpc = 0;
  DType type = DType::kUInt8;
};

// Products rounded one by one: no FMA contraction of a * b + c here.
float mul(float a, float b) {
  volatile float p = a * b;
  return p;
}

template <class T>
T saturate_round(float v) {
  const float r = std::nearbyint(v);
  const float lo = static_cast<float>(std::numeric_limits<T>::lowest());
  const float hi = static_cast<float>(std::numeric_limits<T>::max());
  return static_cast<T>(r < lo ? lo : (r > hi ? hi : r));
}

// x: the span input (n values), v: the single value or nullptr (then y: n values too).
template <class T>
void add_span(const T* x, float sx, int32_t zpx, const T* y, float sy, int32_t zpy, bool y_scalar,
              const QdqAdd& q, T* out, int64_t n) {
  const float rx = sx / q.sc, ry = sy / q.sc;
  float fixed = static_cast<float>(q.zpc) -
                std::fma(rx, static_cast<float>(zpx), mul(ry, static_cast<float>(zpy)));
  if (y_scalar) {
    fixed = std::fma(static_cast<float>(y[0]), ry, fixed);
    for (int64_t i = 0; i < n; ++i)
      out[i] = saturate_round<T>(std::fma(static_cast<float>(x[i]), rx, fixed));
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float t = std::fma(static_cast<float>(y[i]), ry, fixed);
    out[i] = saturate_round<T>(std::fma(static_cast<float>(x[i]), rx, t));
  }
}

template <class T>
void run_typed(const QdqAdd& q, const Tensor& a, const Tensor& b, Tensor& c, ThreadPool& pool) {
  const int64_t n = c.numel();
  T* out = c.mutable_data<T>();
  const T* ad = a.data<T>();
  const T* bd = b.data<T>();
  constexpr int64_t kChunk = 16384;
  const int64_t tasks = (n + kChunk - 1) / kChunk;
  pool.run(tasks, [&](int64_t t) {
    const int64_t from = t * kChunk, len = std::min(kChunk, n - from);
    if (a.numel() == b.numel()) {
      add_span(ad + from, q.sa, q.zpa, bd + from, q.sb, q.zpb, false, q, out + from, len);
    } else if (a.numel() == 1) {  // ORT: the span (b) first, the single value second
      add_span(bd + from, q.sb, q.zpb, ad, q.sa, q.zpa, true, q, out + from, len);
    } else {
      add_span(ad + from, q.sa, q.zpa, bd, q.sb, q.zpb, true, q, out + from, len);
    }
  });
}

void run_qdq_add(const QdqAdd& q, KernelCall& call) {
  const Tensor& a = call.input(0);
  const Tensor& b = call.input(1);
  if (a.dtype() != q.type || b.dtype() != q.type)
    throw InputError("quantized Add inputs are " + dtype_name(a.dtype()) + " and " +
                     dtype_name(b.dtype()) + "; expected " + dtype_name(q.type));
  const bool same = a.shape() == b.shape();
  if (!same && a.numel() != 1 && b.numel() != 1)
    throw InputError("quantized Add: shapes " + shape_str(a.shape()) + " and " +
                     shape_str(b.shape()) + " are not supported by the exact kernel");
  // Broadcast shape (one side holds a single value: every dim is the larger one).
  const Shape &sa = a.shape(), &sb = b.shape();
  Shape out_shape(std::max(sa.size(), sb.size()), 1);
  for (size_t i = 0; i < out_shape.size(); ++i) {
    const size_t r = out_shape.size() - 1 - i;
    const int64_t da = i < sa.size() ? sa[sa.size() - 1 - i] : 1;
    const int64_t db = i < sb.size() ? sb[sb.size() - 1 - i] : 1;
    out_shape[r] = da == 1 ? db : da;
  }
  Tensor c = call.alloc(q.type, out_shape);
  if (c.numel() > 0) {
    if (q.type == DType::kUInt8) run_typed<uint8_t>(q, a, b, c, call.pool());
    else run_typed<int8_t>(q, a, b, c, call.pool());
  }
  call.set_output(0, std::move(c));
}

}  // namespace

// ORT's selector (BinaryNodeGroupSelector): both inputs and the output of the same 8-bit type;
// QLinearAdd needs scalar scales and zero points (constants here, so they can be prepared).
Kernel make_qdq_add(const Node& dq_a, const Node& dq_b, const Node& q_node,
                    const ConstantFn& constant) {
  QdqAdd q;
  DType ta{}, tb{}, tc{};
  if (!scalar_qparams(dq_a, constant, q.sa, q.zpa, ta) ||
      !scalar_qparams(dq_b, constant, q.sb, q.zpb, tb) ||
      !scalar_qparams(q_node, constant, q.sc, q.zpc, tc))
    return {};
  if (ta != tb || ta != tc) return {};
  q.type = tc;
  return [q](KernelCall& call) { run_qdq_add(q, call); };
}

}  // namespace repq::runtime
