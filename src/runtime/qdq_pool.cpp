// DequantizeLinear(x_q) -> GlobalAveragePool -> QuantizeLinear run as one kernel with ONNX
// Runtime's QLinearGlobalAveragePool arithmetic (MLAS qlgavgpool, NCHW):
//   scale = s_x / (s_y * float(H*W)), acc = sum x_q - zp_x * H*W (int32),
//   y = saturate(round_half_even(clamp(float(acc) * scale, lo - zp_y, hi - zp_y)) + zp_y).
#include <cmath>
#include <limits>

#include "repq/error.h"
#include "runtime/qdq_kernels.h"
#include "runtime/thread_pool.h"

namespace repq::runtime {
namespace {

struct QdqGap {
  float sx = 1, sy = 1;
  int32_t zpx = 0, zpy = 0;
  DType type = DType::kUInt8;
};

template <class T>
void run_typed(const QdqGap& q, const Tensor& x, Tensor& y, int64_t planes, int64_t image,
               ThreadPool& pool) {
  const float scale = q.sx / (q.sy * static_cast<float>(image));
  const int32_t bias = -q.zpx * static_cast<int32_t>(image);
  const float lo = static_cast<float>(static_cast<int32_t>(std::numeric_limits<T>::lowest()) - q.zpy);
  const float hi = static_cast<float>(static_cast<int32_t>(std::numeric_limits<T>::max()) - q.zpy);
  const T* xd = x.data<T>();
  T* yd = y.mutable_data<T>();
  pool.run(planes, [&](int64_t p) {
    int32_t acc = bias;
    const T* in = xd + p * image;
    for (int64_t i = 0; i < image; ++i) acc += static_cast<int32_t>(in[i]);
    float v = static_cast<float>(acc) * scale;
    v = v < lo ? lo : (v > hi ? hi : v);
    yd[p] = static_cast<T>(static_cast<int32_t>(std::nearbyint(v)) + q.zpy);
  });
}

void run_qdq_gap(const QdqGap& q, KernelCall& call) {
  const Tensor& x = call.input(0);
  if (x.dtype() != q.type)
    throw InputError("quantized GlobalAveragePool input is " + dtype_name(x.dtype()) +
                     "; expected " + dtype_name(q.type));
  if (x.rank() < 3)
    throw InputError("GlobalAveragePool input must have rank 3 or more, not " +
                     std::to_string(x.rank()));
  Shape out_shape = x.shape();
  int64_t image = 1;
  for (size_t d = 2; d < out_shape.size(); ++d) {
    image *= out_shape[d];
    out_shape[d] = 1;
  }
  if (image >= (int64_t{1} << 24))
    throw InputError("quantized GlobalAveragePool: " + std::to_string(image) +
                     " values per channel is more than ONNX Runtime's kernel takes (2^24)");
  Tensor y = call.alloc(q.type, out_shape);
  const int64_t planes = x.dim(0) * x.dim(1);
  if (y.numel() > 0 && image > 0) {
    if (q.type == DType::kUInt8) run_typed<uint8_t>(q, x, y, planes, image, call.pool());
    else run_typed<int8_t>(q, x, y, planes, image, call.pool());
  } else if (y.numel() > 0) {
    throw InputError("quantized GlobalAveragePool of an empty image");
  }
  call.set_output(0, std::move(y));
}

}  // namespace

// ORT's selector (UnaryNodeGroupSelector): input and output of the same 8-bit type; the
// QLinearGlobalAveragePool kernel takes scalar scales and zero points.
Kernel make_qdq_global_average_pool(const Node& dq_x, const Node& q_node,
                                    const ConstantFn& constant) {
  QdqGap q;
  DType tx{}, ty{};
  if (!scalar_qparams(dq_x, constant, q.sx, q.zpx, tx) ||
      !scalar_qparams(q_node, constant, q.sy, q.zpy, ty) || tx != ty)
    return {};
  q.type = ty;
  return [q](KernelCall& call) { run_qdq_gap(q, call); };
}

}  // namespace repq::runtime
