// Internals of fallback_auto (fallback.cpp): the partial-model pipeline with cached statistics
// (Stepper) and the scores of a partial model against float on the calibration samples.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "repq/calib/collector.h"
#include "repq/data/dataset.h"
#include "repq/ir/graph.h"
#include "repq/quant/gptq.h"
#include "repq/quant/quantize.h"
#include "repq/report/compute.h"
#include "repq/report/fallback.h"

namespace repq::report::detail {

// How close a partial model is to float on the calibration samples.
struct Score {
  int64_t agree = 0;   // samples whose top-1 class is the float model's
  int64_t strict = 0;  // of those, the ones keeping margin >= ratio * float margin
  int64_t count = 0;
  double sqnr = -1e300;  // logits against float, pooled over every value (dB)
  double kl = 0;         // mean over samples of KL(softmax(float) || softmax(quantized)), nats
  double margin = 0;     // mean over samples of min(q margin, float margin) (logit units)
  double agreement() const { return count ? static_cast<double>(agree) / static_cast<double>(count) : 0.0; }
  double strict_agreement() const {
    return count ? static_cast<double>(strict) / static_cast<double>(count) : 0.0;
  }
  // The criterion's value, larger is better (kAgreement: the agreement count).
  double value(FallbackCriterion c) const;
  bool better_than(const Score& o, FallbackCriterion c) const;
};

// Accumulates a Score batch by batch: `ref` the float logits, `q` the partial model's
// ([N, C] or [N, C, 1, 1], float). The float margin of a sample is f[c] - max_{j != c} f[j]
// with c = argmax f (ties: the lower index, as AgreementMeter); the quantized margin is
// q[c] - max_{j != c} q[j].
class ScoreSums {
 public:
  explicit ScoreSums(double margin_ratio) : ratio_(margin_ratio) {}
  void add(const Tensor& ref, const Tensor& q);
  Score score() const;

 private:
  double ratio_;
  Score s_;
  ErrorSums err_;  // the logits, pooled
  double kl_sum_ = 0, margin_sum_ = 0;
};

// quantize()'s pipeline for a list of exclusions, with the calibration statistics (and for
// weights = gptq the float-input H of every layer, which no exclusion changes) collected once.
class Stepper {
 public:
  Stepper(const Model& model, const data::Dataset& calib, const quant::QuantizeOptions& o);
  quant::QuantizeResult run(const std::vector<std::string>& exclude);
  // --refine-act: refines r (run()'s result for `exclude`) in place (plan, qdq, refine) and
  // from then on every run() carries the refined clips into its plan (carry_refined_clips).
  void refine(quant::QuantizeResult& r, const std::vector<std::string>& exclude);
  const quant::QuantPlan* refined() const { return have_refined_ ? &refined_ : nullptr; }
  // Scores `qdq` against the float model on the calibration samples. exact: the exact integer
  // simulation (what ONNX Runtime computes); else float_sim_model() of it (several times
  // faster; differs only where sums round differently).
  Score score(const Model& qdq, bool exact, double margin_ratio);

 private:
  template <class F>
  void for_batches(F&& f);

  const data::Dataset& calib_;
  quant::QuantizeOptions o_;
  Model base_;
  std::string fuse_summary_;
  std::map<std::string, calib::TensorStats> stats_;
  std::map<std::string, quant::LayerHessian> hessians_;  // gptq: float inputs, every layer
  bool have_hessians_ = false;
  // gptq: per layer, the scales before rounding and the layer after apply_gptq.
  std::map<std::string, std::pair<std::vector<float>, quant::LayerQuant>> gptq_done_;
  quant::QuantPlan refined_;     // --refine-act: the refined plan of the first run
  bool have_refined_ = false;
  int64_t samples_ = 0;         // per collection pass (the same data every step)
  std::vector<Tensor> ref_;     // float logits per batch
  std::vector<Tensor> inputs_;  // the batches, when they fit
  bool cached_ = false;
};

}  // namespace repq::report::detail
