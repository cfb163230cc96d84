// DequantizeLinear(x_q) -> Conv(DQ(int8 w), DQ(int32 bias)) -> QuantizeLinear run as one kernel
// with ONNX Runtime's QLinearConv arithmetic: exact integer accumulation of
// (x_q - zp_x) * (w_q - zp_w[o]) (padding contributes the input zero point, i.e. nothing),
// + bias_q, then y = saturate(round_half_even(float(acc) * M[o]) + zp_y) with
// M[o] = (s_x * s_w[o]) / s_y computed in float as ORT's ComputeOutputScale does.
// Integer-valued float GEMM is used when every partial sum provably stays below 2^24
// (bounded per output channel at preparation); otherwise a direct int32 loop.
#include <cmath>
#include <limits>
#include <vector>

#include "runtime/conv_common.h"
#include "runtime/gemm.h"
#include "runtime/kernel.h"
#include "runtime/qdq_kernels.h"
#include "runtime/thread_pool.h"

namespace repq::runtime {
namespace {

struct QdqConv {
  int64_t group = 1;
  std::string auto_pad;
  std::vector<int64_t> kernel_shape, strides, dilations, pads;
  Shape w_shape;
  int64_t k = 0;                 // weights per output channel
  std::vector<float> wf;         // w_q - zp_w[o], [M x K]
  std::vector<int32_t> wi;       // the same as int32
  std::vector<int32_t> bias;     // bias_q - zp_b (0 without bias)
  std::vector<float> mult;       // (s_x * s_w[o]) / s_y
  int32_t zp_x = 0, zp_y = 0;
  DType y_type = DType::kUInt8;
  bool use_gemm = true;
};

bool is_int8(DType t) { return t == DType::kUInt8 || t == DType::kInt8; }

int64_t elem_int(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kUInt8: return t.data<uint8_t>()[i];
    case DType::kInt8: return t.data<int8_t>()[i];
    case DType::kInt32: return t.data<int32_t>()[i];
    default: return 0;
  }
}

// A per-tensor (scale, zero point) pair of constants: false when not of that form.
bool per_tensor(const Tensor* scale, const Tensor* zp, float& s, int32_t& z) {
  if (!scale || scale->dtype() != DType::kFloat32 || scale->numel() != 1 || scale->rank() > 1)
    return false;
  if (zp && (zp->numel() != 1 || !is_int8(zp->dtype()))) return false;
  s = scale->data<float>()[0];
  z = zp ? static_cast<int32_t>(elem_int(*zp, 0)) : 0;
  return s > 0.0f && std::isfinite(s);
}

template <class Y>
void requantize(const QdqConv& q, int64_t o, const int32_t* acc, int64_t n, Y* y) {
  const float lo = static_cast<float>(std::numeric_limits<Y>::lowest() - q.zp_y);
  const float hi = static_cast<float>(std::numeric_limits<Y>::max() - q.zp_y);
  const float m = q.mult[o];
  for (int64_t i = 0; i < n; ++i) {
    float v = static_cast<float>(acc[i]) * m;
    v = v < lo ? lo : (v > hi ? hi : v);
    y[i] = static_cast<Y>(static_cast<int32_t>(std::nearbyint(v)) + q.zp_y);
  }
}

template <class X, class Y>
void run_typed(const QdqConv& q, const Tensor& x, const ConvGeometry& g, Tensor& yt,
               ThreadPool& pool) {
  const WindowAxis &ah = g.h, &aw = g.w;
  const int64_t cin_g = g.in_channels / q.group, cout_g = g.out_channels / q.group;
  const int64_t in_plane = ah.in * aw.in, p_out = ah.out * aw.out;
  const X* xd = x.data<X>();
  Y* yd = yt.mutable_data<Y>();
  const int64_t xn = g.in_channels * in_plane;
  std::vector<int32_t> xc(static_cast<size_t>(g.batch * xn));
  for (size_t i = 0; i < xc.size(); ++i) xc[i] = static_cast<int32_t>(xd[i]) - q.zp_x;

  if (q.use_gemm && cin_g > 1) {
    pool.run(g.batch * q.group, [&](int64_t task) {
      const int64_t n = task / q.group, gi = task % q.group;
      const int32_t* in = xc.data() + n * xn + gi * cin_g * in_plane;
      std::vector<float> col(static_cast<size_t>(q.k * p_out));
      for (int64_t c = 0; c < cin_g; ++c)
        for (int64_t ky = 0; ky < ah.kernel; ++ky)
          for (int64_t kx = 0; kx < aw.kernel; ++kx) {
            float* dst = col.data() + ((c * ah.kernel + ky) * aw.kernel + kx) * p_out;
            for (int64_t oy = 0; oy < ah.out; ++oy) {
              const int64_t iy = oy * ah.stride - ah.pad_begin + ky * ah.dilation;
              for (int64_t ox = 0; ox < aw.out; ++ox) {
                const int64_t ix = ox * aw.stride - aw.pad_begin + kx * aw.dilation;
                const bool in_range = iy >= 0 && iy < ah.in && ix >= 0 && ix < aw.in;
                dst[oy * aw.out + ox] =
                    in_range ? static_cast<float>(in[c * in_plane + iy * aw.in + ix]) : 0.0f;
              }
            }
          }
      std::vector<float> out(static_cast<size_t>(cout_g * p_out));
      sgemm(false, false, cout_g, p_out, q.k, 1.0f, q.wf.data() + gi * cout_g * q.k, q.k,
            col.data(), p_out, 0.0f, out.data(), p_out);
      std::vector<int32_t> acc(static_cast<size_t>(p_out));
      for (int64_t oc = 0; oc < cout_g; ++oc) {
        const int64_t o = gi * cout_g + oc;
        for (int64_t p = 0; p < p_out; ++p)
          acc[p] = static_cast<int32_t>(out[oc * p_out + p]) + q.bias[o];
        requantize(q, o, acc.data(), p_out, yd + (n * g.out_channels + o) * p_out);
      }
    });
    return;
  }
  // Direct int32 accumulation: one task per image and output channel.
  pool.run(g.batch * g.out_channels, [&](int64_t task) {
    const int64_t n = task / g.out_channels, o = task % g.out_channels, gi = o / cout_g;
    const int32_t* in = xc.data() + n * xn + gi * cin_g * in_plane;
    std::vector<int32_t> acc(static_cast<size_t>(p_out), q.bias[o]);
    const int32_t* w = q.wi.data() + o * q.k;
    for (int64_t c = 0; c < cin_g; ++c)
      for (int64_t ky = 0; ky < ah.kernel; ++ky)
        for (int64_t kx = 0; kx < aw.kernel; ++kx) {
          const int32_t wv = w[(c * ah.kernel + ky) * aw.kernel + kx];
          if (wv == 0) continue;
          for (int64_t oy = 0; oy < ah.out; ++oy) {
            const int64_t iy = oy * ah.stride - ah.pad_begin + ky * ah.dilation;
            if (iy < 0 || iy >= ah.in) continue;
            const int32_t* row = in + c * in_plane + iy * aw.in;
            int32_t* a = acc.data() + oy * aw.out;
            for (int64_t ox = 0; ox < aw.out; ++ox) {
              const int64_t ix = ox * aw.stride - aw.pad_begin + kx * aw.dilation;
              if (ix >= 0 && ix < aw.in) a[ox] += wv * row[ix];
            }
          }
        }
    requantize(q, o, acc.data(), p_out, yd + (n * g.out_channels + o) * p_out);
  });
}

void run_qdq_conv(const QdqConv& q, KernelCall& call) {
  const Tensor& x = call.input(0);
  if (!is_int8(x.dtype()))
    throw InputError("quantized conv input is " + dtype_name(x.dtype()) + "; expected uint8 or int8");
  const ConvGeometry g = conv_geometry(x.shape(), q.w_shape, q.group, q.kernel_shape, q.strides,
                                       q.dilations, q.pads, q.auto_pad);
  Tensor y = call.alloc(q.y_type, g.out_shape);
  if (y.numel() > 0) {
    const bool xu = x.dtype() == DType::kUInt8, yu = q.y_type == DType::kUInt8;
    if (xu && yu) run_typed<uint8_t, uint8_t>(q, x, g, y, call.pool());
    else if (xu) run_typed<uint8_t, int8_t>(q, x, g, y, call.pool());
    else if (yu) run_typed<int8_t, uint8_t>(q, x, g, y, call.pool());
    else run_typed<int8_t, int8_t>(q, x, g, y, call.pool());
  }
  call.set_output(0, std::move(y));
}

}  // namespace

// The fused kernel for DQ(x) -> Conv -> Q, or an empty Kernel when the constants do not have
// the integer form (the executor then runs the nodes one by one). `x_type` is the element
// type of x_q (uint8/int8). dq_w / dq_b: the DequantizeLinear nodes of w and bias (dq_b null
// without bias).
Kernel make_qdq_conv(const Node& dq_x, const Node& conv, const Node* dq_w, const Node* dq_b,
                     const Node& q_node,
                     const std::function<const Tensor*(const std::string&)>& constant) {
  auto in = [&](const Node& n, size_t i) -> const Tensor* {
    return i < n.inputs.size() && !n.inputs[i].empty() ? constant(n.inputs[i]) : nullptr;
  };
  auto has = [](const Node& n, size_t i) { return i < n.inputs.size() && !n.inputs[i].empty(); };
  QdqConv q;
  float sx = 0, sy = 0;
  if (!per_tensor(in(dq_x, 1), in(dq_x, 2), sx, q.zp_x) || (has(dq_x, 2) && !in(dq_x, 2)))
    return {};
  if (!per_tensor(in(q_node, 1), in(q_node, 2), sy, q.zp_y) || (has(q_node, 2) && !in(q_node, 2)))
    return {};
  q.y_type = in(q_node, 2) ? in(q_node, 2)->dtype() : DType::kUInt8;
  // Weights: an int8/uint8 initializer, per tensor or per output channel (axis 0).
  if (!dq_w) return {};
  const Tensor* w = in(*dq_w, 0);
  const Tensor* ws = in(*dq_w, 1);
  const Tensor* wz = in(*dq_w, 2);
  if (!w || !is_int8(w->dtype()) || w->rank() < 3 || !ws || ws->dtype() != DType::kFloat32 ||
      (has(*dq_w, 2) && !wz))
    return {};
  const int64_t m_out = w->dim(0);
  const bool per_channel = ws->numel() != 1;
  if (per_channel) {
    const int64_t axis = dq_w->attr_int("axis", 1);
    if (ws->rank() != 1 || ws->numel() != m_out || (axis != 0 && axis != -static_cast<int64_t>(w->rank())))
      return {};
  }
  if (wz && (wz->numel() != ws->numel() || wz->dtype() != w->dtype())) return {};
  q.k = w->numel() / std::max<int64_t>(m_out, 1);
  q.w_shape = w->shape();
  q.wf.resize(static_cast<size_t>(w->numel()));
  q.wi.resize(q.wf.size());
  q.mult.resize(static_cast<size_t>(m_out));
  const int32_t xmax = std::max(std::abs(0 - q.zp_x), std::abs(255 - q.zp_x)) + 128;
  for (int64_t o = 0; o < m_out; ++o) {
    const int64_t c = per_channel ? o : 0;
    const float s = ws->data<float>()[c];
    if (!(s > 0.0f) || !std::isfinite(s)) return {};
    q.mult[o] = sx * s / sy;
    const int64_t z = wz ? elem_int(*wz, c) : 0;
    int64_t bound = 0;
    for (int64_t i = o * q.k; i < (o + 1) * q.k; ++i) {
      q.wi[i] = static_cast<int32_t>(elem_int(*w, i) - z);
      q.wf[i] = static_cast<float>(q.wi[i]);
      bound += std::abs(q.wi[i]);
    }
    if (bound * xmax >= (int64_t{1} << 24)) q.use_gemm = false;
  }
  q.bias.assign(static_cast<size_t>(m_out), 0);
  if (dq_b) {
    const Tensor* b = in(*dq_b, 0);
    const Tensor* bz = in(*dq_b, 2);
    if (!b || b->dtype() != DType::kInt32 || b->numel() != m_out || (has(*dq_b, 2) && !bz)) return {};
    if (bz && bz->numel() != 1 && bz->numel() != m_out) return {};
    for (int64_t o = 0; o < m_out; ++o)
      q.bias[o] = static_cast<int32_t>(elem_int(*b, o) - (bz ? elem_int(*bz, bz->numel() == 1 ? 0 : o) : 0));
  }
  q.group = conv.attr_int("group", 1);
  q.auto_pad = conv.attr_string("auto_pad", "NOTSET");
  q.kernel_shape = conv.attr_ints("kernel_shape");
  q.strides = conv.attr_ints("strides");
  q.dilations = conv.attr_ints("dilations");
  q.pads = conv.attr_ints("pads");
  if (q.group < 1 || m_out % q.group != 0) return {};
  return [q = std::move(q)](KernelCall& call) { run_qdq_conv(q, call); };
}

}  // namespace repq::runtime
