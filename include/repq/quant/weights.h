// Weight quantizers for Conv / Gemm / MatMul weights: symmetric int8 ([-127, 127], zero point
// 0, round half to even), per tensor or per output channel (axis 0), and CFWS (coarse & fine
// weight splitting, ALGORITHMS.md section 3) for kxk conv kernels (k > 1). See docs/quantize.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "repq/ir/tensor.h"

namespace repq::quant {

enum class WeightMode { kPerTensor, kPerChannel, kCfws, kCfwsAuto, kGptq };
// per-tensor, per-channel, cfws, cfws-auto, gptq (per-channel scales, GPTQ rounding: gptq.h)
std::string weight_mode_name(WeightMode m);
WeightMode parse_weight_mode(std::string_view name);  // throws InputError listing valid names

// Symmetric int8 quantization of `w` (float32, axis 0 = output channels).
struct QuantizedWeight {
  std::vector<float> scales;  // 1 (per tensor) or shape[0] (per channel); never 0
  Tensor q;                   // int8, same shape as w
  Tensor dequantized() const; // float32 q * scale
};
// Throws InputError for a weight that is not float32 or holds inf / NaN.
QuantizedWeight quantize_weight(const Tensor& w, bool per_channel);

// The scale of a channel (or tensor) whose largest |w| is max_abs: max_abs / 127, or
// kZeroWeightScale when that is 0 (an all-zero channel) or below the smallest normal float.
constexpr float kZeroWeightScale = 1.1920929e-07f;  // float epsilon, PyTorch's minimum scale
float weight_scale(float max_abs);

// CFWS split of a conv kernel W[o, i, k, k] (k odd, > 1):
//   coarse: the centre taps as a 1x1 kernel [o, i, 1, 1], int8 with scale coarse_scales[o]
//           (rounded half up, as the reference code);
//   fine:   W with the centre replaced by the coarse residual, int8 per channel (fine_scales).
// coarse_dq (as a centred kxk kernel) + fine_dq is the quantized kernel; coarse_float +
// fine_float reconstructs W exactly (in float arithmetic, up to one rounding per element).
struct CfwsWeight {
  QuantizedWeight coarse;   // shape [o, i, 1, 1]; [o, 1, 1, 1] when diagonal
  QuantizedWeight fine;     // shape [o, i, k, k]
  Tensor fine_float;        // float residual kernel before quantization
  bool diagonal = false;    // identity_split: coarse holds W[o, o] (a depthwise 1x1 conv)
  Tensor reconstructed() const;  // coarse.dequantized() (centred / on the diagonal) + fine dq
};
bool cfws_applicable(const Tensor& w);  // rank 4, kh == kw, odd, > 1
CfwsWeight cfws_split(const Tensor& w, bool per_channel_coarse = true);

// The same split for the identity tap of a square pointwise conv W[c, c, 1, 1] (group 1), where
// MobileOne's folded identity branch puts its outliers (on the diagonal, up to ~450x the rest of
// the row in MobileOne-S0): coarse = the diagonal W[o, o] as a depthwise 1x1 kernel [c, 1, 1, 1]
// (per channel, rounded half up: |q| = 127 exactly), fine = W with the diagonal replaced by the
// residual, per channel. Not CFWS of the paper; docs/cfws.md measures it.
bool identity_split_applicable(const Tensor& w);  // rank 4, float32, 1x1, dim 0 == dim 1
CfwsWeight identity_split(const Tensor& w);

// Diagnostics of one weight tensor.
struct WeightErrors {
  double sqnr_per_tensor_db = 0;
  double sqnr_per_channel_db = 0;
  double sqnr_cfws_db = 0;        // NaN when CFWS does not apply
  double centre_surround = 0;     // max over o of centre_surround_per_channel (kxk, k odd > 1);
                                  // NaN otherwise
  double min = 0, max = 0;        // weight range
};
WeightErrors weight_errors(const Tensor& w);

// Per output channel o: max_i |W[o,i,c,c]| / max over i and the off-centre taps of |W[o,i,..]|
// (+infinity when the surround is all zero but the centre is not, 0 for an all-zero channel).
// Empty when CFWS does not apply to `w` (for reports).
std::vector<double> centre_surround_per_channel(const Tensor& w);

}  // namespace repq::quant
