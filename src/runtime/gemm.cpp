#include "runtime/gemm.h"

#include "runtime/gemm_dispatch.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>

#define EIGEN_DONT_PARALLELIZE
#include <Eigen/Core>

namespace repq::runtime {

#include "runtime/gemm_eigen_body.inc"

namespace {

std::atomic<bool>& avx512_switch() {
  static std::atomic<bool> on{sgemm_avx512_available() && std::getenv("REPQ_NO_AVX512") == nullptr};
  return on;
}

}  // namespace

bool gemm_uses_avx512() { return avx512_switch().load(std::memory_order_relaxed); }

void set_gemm_avx512_for_testing(bool allow) {
  avx512_switch().store(allow && sgemm_avx512_available());
}

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
  if (gemm_uses_avx512()) {
    sgemm_avx512(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  eigen_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

GemmSplit plan_gemm_split(int64_t m, int64_t n, int64_t k) {
  GemmSplit s;
  // Parts of about 4M multiply-adds, a power of two (so 2 or 4 threads share them evenly),
  // at most 8: each part packs the operand that is not split in full, so fewer is cheaper.
  const int64_t macs = m * n * k;
  int64_t parts = 1;
  while (parts < 8 && macs > parts * (int64_t{1} << 22)) parts *= 2;
  // Split the larger operand.
  s.by_rows = m * k > k * n;
  const int64_t extent = s.by_rows ? m : n;
  while (parts > 1 && extent / parts < 16) parts /= 2;
  s.parts = parts;
  return s;
}

}  // namespace repq::runtime
