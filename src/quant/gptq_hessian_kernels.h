// The arithmetic kernels of HessianAccumulator (gptq_hessian.cpp): one sample's patch
// matrix -> the upper triangle of H and sum x, in the fixed summation order defined at the
// top of gptq_hessian.cpp. Internal to src/quant.
#pragma once

#include <cstdint>

namespace repq::quant::hessian {

// a * b rounded to float, never contracted into a following add.
inline float rounded_product(float a, float b) {
  float p = a * b;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __asm__("" : "+x"(p));
#else
  volatile float v = p;
  p = v;
#endif
  return p;
}

// sum x of patch rows [i0, i1) (row i at rows + i * ld, P patches) added to sx[i].
void row_sums(const float* rows, int64_t ld, int64_t P, int64_t i0, int64_t i1, double* sx);

// Rows [i0, i0 + 3) of H's upper triangle (j >= i; K x K, row-major at h) for one sample's
// patch matrix (K rows of P patches, row i at rows + i * ld), added to h.
void upper_rows(const float* rows, int64_t ld, int64_t K, int64_t P, int64_t i0, double* h);

// The whole upper triangle and sum x of a small patch matrix (K <= kSmallK rows of P patches,
// row i at rows[i]), added to h and sx: the same sums as upper_rows over every row block and
// row_sums, computed chunk by chunk so that the chunk's rows stay in L1 (depthwise: K = 9).
constexpr int64_t kSmallK = 32;
void small_upper(const float* const* rows, int64_t K, int64_t P, double* h, double* sx);

constexpr int kRows = 3;  // H rows per upper_rows call (register block 3 x 4, or 3 x 3)

}  // namespace repq::quant::hessian
