// Activation clip refinement on the logits (`repq quantize --refine-act`, QuantizeOptions::
// refine_act): a greedy search over each activation tensor's clip that maximizes the logit SQNR
// of the exact QDQ simulation against the float model on the calibration samples.
// docs/calibration.md, "Logit refinement (--refine-act)", has the exact definition.
// RefineOptions / RefineResult are in quantize.h (quantize() runs the search).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "repq/calib/histogram.h"
#include "repq/data/dataset.h"
#include "repq/quant/quantize.h"

namespace repq::quant {

// Sets `a`'s clip to the threshold t (|x| <= t kept) and its scale / zero point as build_plan
// would for a calibrator threshold t: uint8 [0, t] for a non-negative tensor, uint8
// [min(max(min, -t), 0), max(min(max, t), 0)] otherwise (zero point rounded half to even),
// int8 [-t, t] for target tensorrt.
void set_activation_clip(ActivationQuant& a, double t, Target target);

// The fraction of the values in `s`'s histogram that saturate under `a`'s scale / zero point,
// as build_plan computes ActivationQuant::clipped: beyond the representable range widened by
// half a step on each side; a non-negative tensor's negatives are not counted; with both sides
// cut, the smaller cut (an upper bound). Bins are taken as evenly filled.
double clipped_fraction(const calib::TensorStats& s, const ActivationQuant& a);

// The mean per-sample SQNR (dB) of the first graph output of export_qdq(fused, plan), run with
// the exact integer simulation on `batches`, against `ref` (the float outputs).
double plan_logit_sqnr(const Model& fused, const QuantPlan& plan, const std::vector<Tensor>& batches,
                       const std::vector<Tensor>& ref, int threads);

// Refines `plan` in place (greedy coordinate descent, last tensors first), on the first
// o.collect.num_samples samples of `calib` (all when 0; at most ro.max_samples), batches of
// o.collect.batch. Skips the graph inputs, CFWS halves' outputs and tensors that share
// another's scale (those follow their leader). Deterministic, and the same whatever
// ro.cache_bytes. With `stats` (the calibration statistics by calibrated_on tensor, as the
// calibrator saw them), a changed tensor's `clipped` (and its followers') is recomputed from
// its histogram with clipped_fraction; without, it keeps the calibrator's value.
RefineResult refine_activation_clips(const Model& fused, QuantPlan& plan, const data::Dataset& calib,
                                     const QuantizeOptions& o, const RefineOptions& ro = {},
                                     const std::map<std::string, calib::TensorStats>* stats = nullptr);

// Gives the activations of `plan` the clips of `refined` (a refined plan of the same model with
// fewer or no layers kept float): every activation of `plan` that `refined` quantizes the same
// way (same tensor, calibrated_on, shared_with, non_negative, dtype and method) takes its
// threshold, scale, zero point and clipped fraction; the others keep their own. What
// `--fallback auto --refine-act` writes (docs/report.md). Returns the number taken.
size_t carry_refined_clips(const QuantPlan& refined, QuantPlan& plan);

}  // namespace repq::quant
