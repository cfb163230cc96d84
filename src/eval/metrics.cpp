#include "repq/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "repq/error.h"

namespace repq {

double sqnr_db(const float* ref, const float* approx, size_t n) {
  double sig = 0.0, noise = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double r = ref[i], d = r - approx[i];
    sig += r * r;
    noise += d * d;
  }
  if (noise == 0.0) return kMaxSqnrDb;
  if (sig == 0.0) return -kMaxSqnrDb;
  return std::min(kMaxSqnrDb, 10.0 * std::log10(sig / noise));
}

double cosine_similarity(const float* a, const float* b, size_t n) {
  double ab = 0.0, aa = 0.0, bb = 0.0;
  for (size_t i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  if (aa == 0.0 && bb == 0.0) return 1.0;
  if (aa == 0.0 || bb == 0.0) return 0.0;
  return ab / std::sqrt(aa * bb);
}

namespace {
// Rows and columns of a classifier output: [N, C] or [N, C, 1, ...].
std::pair<int64_t, int64_t> rows_cols(const Tensor& t) {
  if (t.rank() < 2 || t.dtype() != DType::kFloat32)
    throw InputError("classifier output must be float32 [N, classes], got " +
                     dtype_name(t.dtype()) + shape_str(t.shape()));
  const int64_t n = t.dim(0);
  return {n, n ? t.numel() / n : 0};
}
}  // namespace

std::vector<int64_t> top_k(const Tensor& logits, int64_t row, int k) {
  const auto [n, c] = rows_cols(logits);
  if (row < 0 || row >= n) throw InternalError("top_k: row out of range");
  const float* p = logits.data<float>() + row * c;
  std::vector<int64_t> idx(static_cast<size_t>(c));
  std::iota(idx.begin(), idx.end(), 0);
  const auto kk = static_cast<size_t>(std::min<int64_t>(k, c));
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(kk), idx.end(),
                    [p](int64_t a, int64_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
  idx.resize(kk);
  return idx;
}

void AccuracyMeter::add(const Tensor& logits, const std::vector<int64_t>& labels) {
  const auto [n, c] = rows_cols(logits);
  if (static_cast<size_t>(n) != labels.size())
    throw InternalError("AccuracyMeter: batch and labels differ in size");
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = labels[static_cast<size_t>(i)];
    if (label < 0) continue;
    if (label >= c)
      throw InputError("label " + std::to_string(label) + " is out of range for a model with " +
                       std::to_string(c) + " outputs");
    const auto top = top_k(logits, i, 5);
    ++count_;
    if (top[0] == label) ++top1_;
    if (std::find(top.begin(), top.end(), label) != top.end()) ++top5_;
  }
}

void AgreementMeter::add(const Tensor& ref_logits, const Tensor& logits) {
  const auto [n, c] = rows_cols(ref_logits);
  if (logits.shape() != ref_logits.shape())
    throw InputError("the reference model's output " + shape_str(ref_logits.shape()) +
                     " and the model's output " + shape_str(logits.shape()) + " differ in shape");
  const float* r = ref_logits.data<float>();
  const float* q = logits.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    ++count_;
    if (top_k(ref_logits, i, 1)[0] == top_k(logits, i, 1)[0]) ++agree_;
    sqnr_sum_ += sqnr_db(r + i * c, q + i * c, static_cast<size_t>(c));
    for (int64_t j = 0; j < c; ++j)
      max_abs_ = std::max(max_abs_, static_cast<double>(std::fabs(r[i * c + j] - q[i * c + j])));
  }
}

}  // namespace repq
