// Activation clip refinement on the logits (`repq quantize --refine-act`): a greedy search
// over each activation tensor's clip that maximizes the logit SQNR of the exact QDQ
// simulation against the float model on the calibration samples. docs/calibration.md,
// "Logit refinement (--refine-act)", has the exact definition.
#pragma once

#include <string>
#include <vector>

#include "repq/data/dataset.h"
#include "repq/quant/quantize.h"

namespace repq::quant {

struct RefineOptions {
  int max_steps = 3;          // ladder steps per tensor and direction (x0.8 down, x1.25 up)
  double min_gain_db = 0.01;  // a step is kept only when the logit SQNR rises by more
  // The search holds its samples in memory: at most this many (the first of the calibration
  // samples; 256 224x224 RGB images are 154 MB).
  int64_t max_samples = 256;
};

struct RefineStep {
  std::string tensor;
  double threshold_before = 0, threshold_after = 0;
  double sqnr_db = 0;  // logit SQNR after this change
};

struct RefineResult {
  double sqnr_before = 0, sqnr_after = 0;  // mean per-sample logit SQNR, dB
  int trials = 0;                          // QDQ models simulated (the start included)
  std::vector<RefineStep> steps;           // the tensors whose clip changed, in search order
  double seconds = 0;
};

// Sets `a`'s clip to the threshold t (|x| <= t kept) and its scale / zero point as build_plan
// would for a calibrator threshold t: uint8 [0, t] for a non-negative tensor, uint8
// [min(max(min, -t), 0), max(min(max, t), 0)] otherwise (zero point rounded half to even),
// int8 [-t, t] for target tensorrt.
void set_activation_clip(ActivationQuant& a, double t, Target target);

// The mean per-sample SQNR (dB) of the first graph output of export_qdq(fused, plan), run with
// the exact integer simulation on `batches`, against `ref` (the float outputs).
double plan_logit_sqnr(const Model& fused, const QuantPlan& plan, const std::vector<Tensor>& batches,
                       const std::vector<Tensor>& ref, int threads);

// Refines `plan` in place (greedy coordinate descent, last tensors first), on the first
// o.collect.num_samples samples of `calib` (all when 0; at most ro.max_samples), batches of
// o.collect.batch. Skips the
// graph inputs, CFWS halves' outputs and tensors that share another's scale (those follow
// their leader). Deterministic.
RefineResult refine_activation_clips(const Model& fused, QuantPlan& plan, const data::Dataset& calib,
                                     const QuantizeOptions& o, const RefineOptions& ro = {});

}  // namespace repq::quant
