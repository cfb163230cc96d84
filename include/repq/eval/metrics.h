// Accuracy and agreement measures over batches of classifier outputs.
#pragma once

#include <cstdint>
#include <vector>

#include "repq/ir/tensor.h"

namespace repq {

// SQNR in dB of `approx` against `ref`: 10 log10(sum ref^2 / sum (ref - approx)^2).
// Identical inputs give kMaxSqnrDb (a finite cap, so means and JSON stay finite).
constexpr double kMaxSqnrDb = 200.0;
double sqnr_db(const float* ref, const float* approx, size_t n);
double cosine_similarity(const float* a, const float* b, size_t n);

// Indices of the k largest values of row `row` of a [N, C] (or [N, C, 1, 1]) tensor, largest
// first; ties go to the lower index.
std::vector<int64_t> top_k(const Tensor& logits, int64_t row, int k);

// Top-1 / top-5 accuracy over labelled samples (label < 0: unlabelled, not counted).
class AccuracyMeter {
 public:
  void add(const Tensor& logits, const std::vector<int64_t>& labels);
  int64_t count() const { return count_; }
  double top1() const { return count_ ? static_cast<double>(top1_) / count_ : 0.0; }
  double top5() const { return count_ ? static_cast<double>(top5_) / count_ : 0.0; }

 private:
  int64_t count_ = 0, top1_ = 0, top5_ = 0;
};

// Top-1 agreement and output SQNR of a model against a reference on the same inputs.
class AgreementMeter {
 public:
  void add(const Tensor& ref_logits, const Tensor& logits);
  int64_t count() const { return count_; }
  double top1_agreement() const { return count_ ? static_cast<double>(agree_) / count_ : 0.0; }
  // Mean over samples of the per-sample SQNR (each capped at kMaxSqnrDb).
  double mean_sqnr_db() const { return count_ ? sqnr_sum_ / count_ : 0.0; }
  double max_abs_diff() const { return max_abs_; }

 private:
  int64_t count_ = 0, agree_ = 0;
  double sqnr_sum_ = 0.0, max_abs_ = 0.0;
};

}  // namespace repq
