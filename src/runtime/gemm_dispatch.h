// The AVX-512 build of the GEMM (gemm_avx512.cpp), chosen at run time by gemm.cpp.
#pragma once

#include <cstdint>

namespace repq::runtime {

// True when the CPU (and OS) support the AVX-512 subsets the AVX-512 build uses.
bool sgemm_avx512_available();
// Same contract as sgemm() in gemm.h; m, n, k > 0.
void sgemm_avx512(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc);

}  // namespace repq::runtime
