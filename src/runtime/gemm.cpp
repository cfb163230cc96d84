#include "runtime/gemm.h"

#include <algorithm>

#define EIGEN_DONT_PARALLELIZE
#include <Eigen/Core>

namespace repq::runtime {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;
using MutMap = Eigen::Map<RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;

template <class A, class B>
void product(const A& a, const B& b, float alpha, float beta, MutMap& c) {
  if (beta == 0.0f) {
    if (alpha == 1.0f) {
      c.noalias() = a * b;
    } else {
      c.noalias() = alpha * (a * b);
    }
  } else {
    if (beta != 1.0f) c *= beta;
    if (alpha == 1.0f) {
      c.noalias() += a * b;
    } else {
      c.noalias() += alpha * (a * b);
    }
  }
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  MutMap cm(c, m, n, Eigen::OuterStride<>(ldc));
  if (k <= 0) {
    if (beta == 0.0f) {
      cm.setZero();
    } else {
      cm *= beta;
    }
    return;
  }
  const ConstMap am(a, trans_a ? k : m, trans_a ? m : k, Eigen::OuterStride<>(lda));
  const ConstMap bm(b, trans_b ? n : k, trans_b ? k : n, Eigen::OuterStride<>(ldb));
  if (!trans_a && !trans_b) {
    product(am, bm, alpha, beta, cm);
  } else if (trans_a && !trans_b) {
    product(am.transpose(), bm, alpha, beta, cm);
  } else if (!trans_a && trans_b) {
    product(am, bm.transpose(), alpha, beta, cm);
  } else {
    product(am.transpose(), bm.transpose(), alpha, beta, cm);
  }
}

GemmSplit plan_gemm_split(int64_t m, int64_t n, int64_t k) {
  GemmSplit s;
  const int64_t macs = m * n * k;
  // About 1M multiply-adds per task at least; packing costs stay small next to that.
  int64_t parts = std::clamp<int64_t>(macs >> 20, 1, 8);
  // Each task packs the operand that is not split in full: split the larger one.
  s.by_rows = m * k > k * n;
  const int64_t extent = s.by_rows ? m : n;
  parts = std::min(parts, std::max<int64_t>(1, extent / 16));
  s.parts = parts;
  return s;
}

}  // namespace repq::runtime
