// Weight quantizers: symmetric int8 per tensor / per output channel, and the CFWS split
// (ALGORITHMS.md sections 2, 3 and 5).
#include "repq/quant/weights.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "repq/error.h"
#include "repq/eval/metrics.h"

namespace repq::quant {

std::string weight_mode_name(WeightMode m) {
  switch (m) {
    case WeightMode::kPerTensor: return "per-tensor";
    case WeightMode::kPerChannel: return "per-channel";
    case WeightMode::kCfws: return "cfws";
    case WeightMode::kCfwsAuto: return "cfws-auto";
    case WeightMode::kGptq: return "gptq";
  }
  return "per-channel";
}

WeightMode parse_weight_mode(std::string_view name) {
  for (WeightMode m : {WeightMode::kPerTensor, WeightMode::kPerChannel, WeightMode::kCfws,
                       WeightMode::kCfwsAuto, WeightMode::kGptq})
    if (name == weight_mode_name(m)) return m;
  throw InputError("--weights: unknown weight quantizer '" + std::string(name) +
                   "' (valid: per-tensor, per-channel, cfws, cfws-auto, gptq)");
}

float weight_scale(float max_abs) {
  const float s = max_abs / 127.0f;
  // A channel of zeros (or of values so small that max/127 underflows) still needs a valid,
  // positive scale: QuantizeLinear refuses 0.
  return s >= std::numeric_limits<float>::min() ? s : kZeroWeightScale;
}

namespace {

const float* float_data(const Tensor& w, const char* what) {
  if (w.dtype() != DType::kFloat32)
    throw InputError(std::string(what) + ": weight is " + dtype_name(w.dtype()) +
                     ", expected float32");
  return w.data<float>();
}

// Output channels and elements per channel (axis 0; a scalar is one channel of one).
std::pair<int64_t, int64_t> channels(const Tensor& w) {
  const int64_t oc = w.rank() == 0 ? 1 : w.dim(0);
  return {oc, oc ? w.numel() / oc : 0};
}

float max_abs(const float* p, int64_t n) {
  float m = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(p[i]);
    if (!std::isfinite(a))
      throw InputError("weight has a non-finite value (" + std::to_string(p[i]) + ")");
    m = std::max(m, a);
  }
  return m;
}

// q = clamp(round_half_to_even(x / s), -127, 127), the arithmetic of QuantizeLinear.
int8_t quantize_value(float x, float s) {
  const float q = std::nearbyint(x / s);
  return static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f));
}

bool is_centre_kernel(const Tensor& w) {
  return w.rank() == 4 && w.dim(2) == w.dim(3) && w.dim(2) > 1 && w.dim(2) % 2 == 1;
}

}  // namespace

Tensor QuantizedWeight::dequantized() const {
  Tensor out(DType::kFloat32, q.shape());
  if (q.numel() == 0) return out;
  const int8_t* src = q.data<int8_t>();
  float* dst = out.mutable_data<float>();
  const auto [oc, per] = channels(q);
  const bool per_channel = scales.size() > 1;
  if (per_channel && static_cast<int64_t>(scales.size()) != oc)
    throw InternalError("QuantizedWeight: " + std::to_string(scales.size()) + " scales for " +
                        std::to_string(oc) + " channels");
  for (int64_t o = 0; o < oc; ++o) {
    const float s = scales[per_channel ? static_cast<size_t>(o) : 0];
    for (int64_t j = 0; j < per; ++j) dst[o * per + j] = static_cast<float>(src[o * per + j]) * s;
  }
  return out;
}

QuantizedWeight quantize_weight(const Tensor& w, bool per_channel) {
  const float* src = float_data(w, "quantize_weight");
  const auto [oc, per] = channels(w);
  QuantizedWeight r;
  r.q = Tensor(DType::kInt8, w.shape());
  int8_t* dst = r.q.mutable_data<int8_t>();
  if (!per_channel || oc == 0) {
    r.scales = {weight_scale(max_abs(src, w.numel()))};
  } else {
    r.scales.resize(static_cast<size_t>(oc));
    for (int64_t o = 0; o < oc; ++o)
      r.scales[static_cast<size_t>(o)] = weight_scale(max_abs(src + o * per, per));
  }
  for (int64_t o = 0; o < oc; ++o) {
    const float s = r.scales[per_channel ? static_cast<size_t>(o) : 0];
    for (int64_t j = 0; j < per; ++j) dst[o * per + j] = quantize_value(src[o * per + j], s);
  }
  return r;
}

bool cfws_applicable(const Tensor& w) {
  return w.dtype() == DType::kFloat32 && is_centre_kernel(w);
}

CfwsWeight cfws_split(const Tensor& w, bool per_channel_coarse) {
  const float* src = float_data(w, "cfws_split");
  if (!is_centre_kernel(w))
    throw InputError("cfws_split: kernel " + shape_str(w.shape()) +
                     " is not [o, i, k, k] with k odd and > 1");
  const int64_t oc = w.dim(0), ic = w.dim(1), k = w.dim(2), kk = k * k;
  const int64_t centre = (k / 2) * k + k / 2;
  max_abs(src, w.numel());  // refuses non-finite weights

  // 1. Centre C[o, i] and the coarse scales s_c (per output channel or per tensor).
  Tensor centre_t(DType::kFloat32, {oc, ic, 1, 1});
  float* c = centre_t.mutable_data<float>();
  for (int64_t j = 0; j < oc * ic; ++j) c[j] = src[j * kk + centre];
  CfwsWeight r;
  if (per_channel_coarse) {
    r.coarse.scales.resize(static_cast<size_t>(oc));
    for (int64_t o = 0; o < oc; ++o)
      r.coarse.scales[static_cast<size_t>(o)] = weight_scale(max_abs(c + o * ic, ic));
  } else {
    r.coarse.scales = {weight_scale(max_abs(c, oc * ic))};
  }

  // 2. Coarse centre q_c = floor(C / s_c + 0.5) (half up, as the reference code), and the
  //    fine kernel: the surround with the residual R = C - s_c * q_c at the centre.
  r.coarse.q = Tensor(DType::kInt8, {oc, ic, 1, 1});
  int8_t* qc = r.coarse.q.mutable_data<int8_t>();
  r.fine_float = Tensor(DType::kFloat32, w.shape());
  float* f = r.fine_float.mutable_data<float>();
  std::copy(src, src + w.numel(), f);
  for (int64_t o = 0; o < oc; ++o) {
    const float s = r.coarse.scales[per_channel_coarse ? static_cast<size_t>(o) : 0];
    for (int64_t i = 0; i < ic; ++i) {
      const int64_t j = o * ic + i;
      const float q = std::clamp(std::floor(c[j] / s + 0.5f), -127.0f, 127.0f);
      qc[j] = static_cast<int8_t>(q);
      f[j * kk + centre] = c[j] - q * s;
    }
  }
  // 3. The fine kernel: plain per-channel min-max.
  r.fine = quantize_weight(r.fine_float, true);
  return r;
}

bool identity_split_applicable(const Tensor& w) {
  return w.dtype() == DType::kFloat32 && w.rank() == 4 && w.dim(2) == 1 && w.dim(3) == 1 &&
         w.dim(0) == w.dim(1) && w.dim(0) > 0;
}

CfwsWeight identity_split(const Tensor& w) {
  const float* src = float_data(w, "identity_split");
  if (!identity_split_applicable(w))
    throw InputError("identity_split: kernel " + shape_str(w.shape()) + " is not [c, c, 1, 1]");
  const int64_t c = w.dim(0);
  max_abs(src, w.numel());  // refuses non-finite weights
  CfwsWeight r;
  r.diagonal = true;
  r.coarse.q = Tensor(DType::kInt8, {c, 1, 1, 1});
  r.coarse.scales.resize(static_cast<size_t>(c));
  r.fine_float = w;
  float* f = r.fine_float.mutable_data<float>();
  int8_t* qc = r.coarse.q.mutable_data<int8_t>();
  for (int64_t o = 0; o < c; ++o) {
    const float d = src[o * c + o];
    const float s = weight_scale(std::fabs(d));
    const float q = std::clamp(std::floor(d / s + 0.5f), -127.0f, 127.0f);
    r.coarse.scales[static_cast<size_t>(o)] = s;
    qc[o] = static_cast<int8_t>(q);
    f[o * c + o] = d - q * s;
  }
  r.fine = quantize_weight(r.fine_float, true);
  return r;
}

Tensor CfwsWeight::reconstructed() const {
  Tensor out = fine.dequantized();
  const Tensor cq = coarse.dequantized();
  if (diagonal) {
    const int64_t c = cq.numel();
    for (int64_t o = 0; o < c; ++o) out.mutable_data<float>()[o * c + o] += cq.data<float>()[o];
    return out;
  }
  const int64_t n = cq.numel(), kk = n ? out.numel() / n : 0;
  const int64_t k = out.rank() == 4 ? out.dim(2) : 0;
  const int64_t centre = (k / 2) * k + k / 2;
  float* dst = out.mutable_data<float>();
  const float* c = cq.data<float>();
  for (int64_t j = 0; j < n; ++j) dst[j * kk + centre] += c[j];
  return out;
}

std::vector<double> centre_surround_per_channel(const Tensor& w) {
  if (!cfws_applicable(w)) return {};
  const float* src = w.data<float>();
  const int64_t oc = w.dim(0), ic = w.dim(1), k = w.dim(2), kk = k * k;
  const int64_t centre = (k / 2) * k + k / 2;
  std::vector<double> out(static_cast<size_t>(oc));
  for (int64_t o = 0; o < oc; ++o) {
    double mc = 0.0, ms = 0.0;
    for (int64_t i = 0; i < ic; ++i)
      for (int64_t t = 0; t < kk; ++t) {
        const double a = std::fabs(static_cast<double>(src[(o * ic + i) * kk + t]));
        double& m = t == centre ? mc : ms;
        m = std::max(m, a);
      }
    out[static_cast<size_t>(o)] =
        ms > 0.0 ? mc / ms : (mc > 0.0 ? std::numeric_limits<double>::infinity() : 0.0);
  }
  return out;
}

WeightErrors weight_errors(const Tensor& w) {
  const float* src = float_data(w, "weight_errors");
  const auto n = static_cast<size_t>(w.numel());
  WeightErrors e;
  if (n) {
    const auto [mn, mx] = std::minmax_element(src, src + n);
    e.min = *mn;
    e.max = *mx;
  }
  const auto sqnr = [&](const Tensor& approx) { return sqnr_db(src, approx.data<float>(), n); };
  e.sqnr_per_tensor_db = sqnr(quantize_weight(w, false).dequantized());
  e.sqnr_per_channel_db = sqnr(quantize_weight(w, true).dequantized());
  if (cfws_applicable(w)) {
    e.sqnr_cfws_db = sqnr(cfws_split(w).reconstructed());
    const auto cs = centre_surround_per_channel(w);
    e.centre_surround = cs.empty() ? 0.0 : *std::max_element(cs.begin(), cs.end());
  } else {
    e.sqnr_cfws_db = std::numeric_limits<double>::quiet_NaN();
    e.centre_surround = std::numeric_limits<double>::quiet_NaN();
  }
  return e;
}

}  // namespace repq::quant
