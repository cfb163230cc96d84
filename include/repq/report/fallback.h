// Partial quantization (`repq quantize --fallback auto --min-agreement X`): quantize, measure
// the top-1 agreement with the float model on the calibration samples, and keep layers in
// float one at a time until the agreement reaches the target or no layer is left.
//
// The search is greedy with re-measurement: at each step every candidate layer (the
// `candidates` most sensitive alone, by isolated output SQNR, and the `candidates` that helped
// most the last time they were tried) is tried in float on top of the layers already kept float; the partial model runs on the calibration
// samples with the exact integer simulation (ExecutorOptions::exact_qdq, what ONNX Runtime
// computes) and the candidate that gives the best score is kept. The score is the number of
// samples whose top-1 class is the float model's, ties broken by the SQNR of the logits against
// float (continuous, so a step that flips no sample still moves towards the target); or, with
// FallbackSearch::criterion, a continuous measure alone (logit SQNR, mean KL of the softmax,
// mean float top-1 margin in the quantized logits). The stop rule stays the agreement target;
// FallbackSearch::margin_ratio makes it stricter (a sample counts only when the quantized
// logits keep the float top-1 with at least that fraction of the float margin).
//
// With weights = gptq each partial plan gets GPTQ's rounding as in quantize(), with the H of
// the float model's layer inputs collected once (no exclusion changes them); with
// gptq.quantized_inputs the trials use the float-input H and the final model is quantized
// afresh. Either way the result equals `repq quantize --exclude` of the layers kept.
//
// The calibration statistics are collected once and reused at every trial (excluding a layer
// only changes the plan); a tensor a trial needs and no earlier one did is collected then. With
// CFWS a layer kept float is no longer split, which changes the float values downstream by
// rounding: the final result is then quantized afresh with the chosen exclusions, so it equals
// `repq quantize --exclude` of those layers.
//
// With o.refine_act the clips are refined once, on the first (fully quantized) model, and every
// partial plan - the result's too - is `quantize --exclude <kept>`'s plan without refinement
// whose activations take the refined clips where the refined plan quantizes them the same way
// (quant::carry_refined_clips); result.refine is that refinement's outcome. It is not
// `quantize --refine-act --exclude <kept>`, which would refine again for the partial model
// (docs/report.md, "Partial quantization").
#pragma once

#include <string>
#include <vector>

#include "repq/data/dataset.h"
#include "repq/ir/graph.h"
#include "repq/quant/quantize.h"

namespace repq::report {

// What chooses the move at each step (the stop rule is always the agreement target).
enum class FallbackCriterion {
  kAgreement,  // samples agreeing with float, ties broken by the logit SQNR (the default)
  kSqnr,       // SQNR of the logits against float, pooled over the samples (dB)
  kKl,         // mean KL(softmax(float) || softmax(quantized)) (smaller is better)
  kMargin,     // mean over samples of min(quantized margin, float margin) of the float top-1
};
// "agreement", "sqnr", "kl", "margin"; parse throws InputError for another name.
const char* criterion_name(FallbackCriterion c);
FallbackCriterion parse_criterion(const std::string& name);

struct FallbackSearch {
  // Layers tried per step: this many by isolated output SQNR plus this many by their gain the
  // last time they were tried (the union). <= 0: every remaining layer at every step.
  int candidates = 6;
  // Upper bound on the layers kept float (< 0: no bound).
  int max_float = -1;
  FallbackCriterion criterion = FallbackCriterion::kAgreement;
  // Stricter stop rule: a sample counts towards the target only when its quantized logits
  // keep the float top-1 class with a margin (its logit minus the largest other) of at least
  // margin_ratio times the float margin. 0: top-1 agreement. In [0, 1].
  double margin_ratio = 0;
};

struct FallbackLayer {
  std::string layer;          // node name given to --exclude (the original Conv for CFWS halves)
  double isolated_sqnr_db;    // its isolated output SQNR in the fully quantized model
  double agreement_after;     // top-1 agreement once it (and the ones before) are float
  double agreement_before = 0;
  double logit_sqnr_before = 0, logit_sqnr_after = 0;  // model output SQNR vs float (dB)
  int tried = 0;              // candidates measured at this step
  int step = 0;               // index into FallbackResult::agreement after its step
  std::string with;           // the other layer kept float in the same step (its input's
                              // producer or consumer: the activation between them is float)
  // "isolated output SQNR 12.3 dB; in float: agreement 0.8750 -> 0.9375, logit SQNR 18.2 ->
  // 21.0 dB (+2.8 dB), best of 8 tried"
  std::string reason() const;
};

struct FallbackResult {
  quant::QuantizeResult result;        // the final quantization (plan.float_nodes lists them)
  std::vector<FallbackLayer> kept_float;  // in the order they were excluded
  std::vector<double> agreement;       // per step; [0] = nothing kept float
  std::vector<double> logit_sqnr;      // per step, model output SQNR against float (dB)
  std::vector<double> kl;              // per step, mean KL of the softmax against float (nats)
  std::vector<double> margin_agreement;  // per step, the samples keeping margin_ratio (== agreement
                                         // when margin_ratio = 0): the stop rule's measure
  FallbackCriterion criterion = FallbackCriterion::kAgreement;
  double margin_ratio = 0;
  std::vector<std::string> ranking;    // the layers tried at the first step, by the score
                                       // each gave, best first (empty when reached at once)
  double min_agreement = 0;
  bool reached = false;                // margin_agreement.back() >= min_agreement
  int64_t samples = 0;                 // calibration samples the agreement is measured on
  int64_t trials = 0;                  // partial models measured
  double seconds = 0;                  // wall time of the whole search
  // One-sided 95 % lower confidence bound (Clopper-Pearson) on the agreement of unseen samples
  // from the last step's agreement on `samples` (32 of 32 -> 0.911). Optimistic: the search
  // picked the moves on these same samples.
  double agreement_lower95() const;
  // A few lines for the CLI: the steps, the layers kept in float and why.
  std::string summary() const;
};

// `o.exclude` entries given by the user stay excluded. Throws InputError for bad inputs, or
// when min_agreement is outside [0, 1].
// The p with P(X >= k) = alpha for X ~ Binomial(n, p) (0 when k = 0): the one-sided lower
// confidence bound of a proportion k / n at level 1 - alpha.
double binomial_lower_bound(int64_t k, int64_t n, double alpha);

FallbackResult fallback_auto(const Model& model, const data::Dataset& calib,
                             quant::QuantizeOptions o, double min_agreement,
                             const FallbackSearch& search = {});

}  // namespace repq::report
