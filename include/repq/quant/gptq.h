// GPTQ / OBQ weight rounding (Frantar et al. 2022) for `--weights gptq`: per layer, the
// second moment H = E[x x^T] of the layer's input patches (im2col rows, one H per conv group)
// is collected on the calibration data; the per-channel int8 scales are fixed first, then the
// columns are rounded in order and each rounding error is fed back to the not yet rounded
// columns through the upper Cholesky factor of H^-1. The result is an ordinary per-channel
// int8 weight (one QLinearConv per layer); the plan carries the chosen int8 values
// (LayerQuant::qweight) and, with bias correction, the corrected float bias. docs/quantize.md.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "repq/calib/collector.h"
#include "repq/data/dataset.h"
#include "repq/ir/graph.h"
#include "repq/quant/plan.h"

namespace repq::quant {

struct GptqOptions {
  double damp = 0.01;            // added to H's diagonal: damp * mean(diag H)
  bool act_order = false;        // round the columns in order of decreasing H diagonal
  bool clip_search = false;      // per-row scale: clip ratio minimizing (w - rtn(w))^T H (...)
  bool bias_correction = false;  // b -= (Wq - W) E[x] (layers with a bias)
  // Where the layer inputs come from: the float model (false), or the QDQ model of the plan
  // (activations quantized, the float-input GPTQ weights in every layer) (true).
  bool quantized_inputs = false;
  // apply_gptq's threads (0: all cores); layers, groups and row tiles are spread over them,
  // each computed as alone (any thread count gives the same bits).
  int threads = 0;
};

// The input statistics of one layer: per group g, H_g = sum over patches of x x^T (k x k,
// row-major, double) and sum_x = the sum of the patches; `count` patches per group.
struct LayerHessian {
  int64_t groups = 0, k = 0;
  int64_t count = 0;
  std::vector<double> h;      // groups * k * k
  std::vector<double> sum_x;  // groups * k
};

// Rounds `rows` rows of length k (w, row-major, changed in place into the error-fed weights)
// with per-row scales `scales` against one H (k x k, row-major): returns the int8 values,
// clamped to [-127, 127]. `perm` (empty or a permutation of 0..k-1) is the column order.
// Returns false (and leaves q empty) when H + damping is not positive definite even after
// raising the damping; callers fall back to round to nearest.
bool gptq_rows(std::vector<float>& w, int64_t rows, int64_t k, const std::vector<double>& h,
               const std::vector<float>& scales, const GptqOptions& o, std::vector<int8_t>& q);

// gptq_rows in two steps, for callers that spread rows over threads: gptq_factor (column
// order and the upper factor U of H^-1; false when H + damping is not positive definite) and
// gptq_round_rows on any split of the rows (each row gets the same operations as alone).
struct GptqFactor {
  int64_t k = 0;
  std::vector<int64_t> perm;  // column order
  std::vector<double> u;      // k x k, row-major
};
bool gptq_factor(const std::vector<double>& h, int64_t k, const GptqOptions& o, GptqFactor& f);
// w: rows x k (row-major; changed into the error-fed weights), scales: rows, q: rows x k.
void gptq_round_rows(const GptqFactor& f, float* w, int64_t rows, const float* scales, int8_t* q);

// Per-row scale search: for each row the scale max|w| / 127 * r for r in 1, 0.98, ..., 0.60
// whose round-to-nearest error e minimizes e^T H e (ties: the larger r).
std::vector<float> search_scales(const std::vector<float>& w, int64_t rows, int64_t k,
                                 const std::vector<double>& h);

// Layers GPTQ handles: Conv (any group; H of size (C_in / group * kh * kw)^2 at most
// kMaxGptqColumns) and Gemm with transB = 1 on a 2-D input. Empty reason: supported.
constexpr int64_t kMaxGptqColumns = 2304;
std::string gptq_unsupported_reason(const Model& fused, const LayerQuant& l);
// The same without the per-tensor check (for layers whose scales are not chosen yet).
std::string gptq_geometry_unsupported_reason(const Model& fused, const LayerQuant& l);

// Accumulates LayerHessian for the layers of `layers` that GPTQ supports (geometry only: the
// plan's scales may not exist yet; apply_gptq skips per-tensor layers itself) from the tensors
// of forward passes of `model` (an executor observer): observe() every tensor of each batch,
// batches in sample order, then finish(). `model` and `fused` as in collect_hessians. The H
// sums are spread over `threads` threads (0: all cores) by blocks of rows; every entry is
// summed by one thread in a fixed order (src/quant/gptq_hessian.cpp), so any thread count and
// batch size give the same bits. quantize() feeds it from calibration's second pass.
class HessianAccumulator {
 public:
  HessianAccumulator(const Model& model, const Model& fused, const std::vector<LayerQuant>& layers,
                     int threads);
  ~HessianAccumulator();
  HessianAccumulator(const HessianAccumulator&) = delete;
  HessianAccumulator& operator=(const HessianAccumulator&) = delete;
  void observe(const std::string& name, const Tensor& value);
  std::map<std::string, LayerHessian> finish();  // the sums, H mirrored (full matrices)
  bool empty() const;                            // no supported layer
  double seconds() const;                        // wall time spent in observe()

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One pass of `model` over the calibration data (executor observer, batches streamed; only
// the H sums are kept) collecting LayerHessian for each layer of `layers` that GPTQ supports
// in `fused` (the float model the plan refers to; geometry and weights come from it). `model`
// is `fused` itself or its QDQ export: a layer's input is the first input of `model`'s node of
// the same name. Deterministic: per-sample float sums added in sample order into doubles, on
// the calling thread (any thread count and batch size give the same bits).
std::map<std::string, LayerHessian> collect_hessians(const Model& model, const Model& fused,
                                                     const data::Dataset& dataset,
                                                     const std::vector<LayerQuant>& layers,
                                                     const calib::CollectOptions& opts);

// Replaces the weights of the plan's supported per-channel layers by GPTQ rounding (sets
// qweight, scales, weight_sqnr_db, note; with bias correction also `bias_values`). Layers
// without statistics keep round to nearest.
void apply_gptq(const Model& fused, QuantPlan& plan,
                const std::map<std::string, LayerHessian>& stats, const GptqOptions& o);

// base64 (RFC 4648, padded) of int8 values, for the plan's qweight field.
std::string base64_encode(const std::vector<int8_t>& v);
// Throws InputError("<what>: ...") for characters outside the alphabet or bad padding.
std::vector<int8_t> base64_decode(const std::string& s, const std::string& what);

}  // namespace repq::quant
