// Single-precision matrix products on row-major data (Eigen underneath). Single-threaded:
// callers split the work into tasks themselves, in a way that depends on the shapes only, so
// that results do not depend on the number of threads.
#pragma once

#include <cstdint>

namespace repq::runtime {

// C[m x n] = alpha * op(A) * op(B) + beta * C, row-major with leading dimensions lda/ldb/ldc.
// op(A) is A[m x k], or A[k x m] transposed when trans_a; likewise op(B) is [k x n] or
// B[n x k] transposed. beta == 0 ignores C's previous contents (NaN included).
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc);

// The AVX-512 build of sgemm is used when the CPU supports it, unless the environment sets
// REPQ_NO_AVX512 (results then match an AVX2-only machine). Tests switch it here.
bool gemm_uses_avx512();
void set_gemm_avx512_for_testing(bool allow);

// How a per-image product [m x k] * [k x n] is split into tasks: along rows or columns,
// into `parts` ranges. Depends only on the shape.
struct GemmSplit {
  bool by_rows = false;
  int64_t parts = 1;
};
GemmSplit plan_gemm_split(int64_t m, int64_t n, int64_t k);

}  // namespace repq::runtime
