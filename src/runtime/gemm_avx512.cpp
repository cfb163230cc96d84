// The GEMM of gemm.h built for AVX-512, used when the CPU has it (the library itself targets
// x86-64-v3, i.e. AVX2). Eigen is compiled here under its own namespace so that none of its
// inline code can be confused with the AVX2 instantiations elsewhere in the program.
#include "runtime/gemm_dispatch.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)

// Standard headers first, outside the AVX-512 region: their inline functions stay AVX2.
#include <algorithm>
#include <array>
#include <cassert>
#include <climits>
#include <cmath>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iosfwd>
#include <limits>
#include <new>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>
#include <immintrin.h>

// GCC 12 reports a false -Wmaybe-uninitialized inside its own avx512fintrin.h
// (_mm512_undefined_ps) when Eigen's AVX-512 transposes are inlined; at -O1 (the asan
// preset) it reports it as -Wuninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"  // the same, at -O1 (the asan preset)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512cd,avx512vl,avx512dq,avx512bw,avx2,fma,f16c")
// g++ does not update the feature macros for a target pragma; Eigen picks its packet size
// from them, so state what the pragma enabled.
#ifndef __AVX512F__
#define REPQ_DEFINED_AVX512_MACROS
#define __AVX512F__ 1
#define __AVX512CD__ 1
#define __AVX512VL__ 1
#define __AVX512DQ__ 1
#define __AVX512BW__ 1
#endif
#define Eigen RepqEigenAvx512
#define EIGEN_DONT_PARALLELIZE
#include <Eigen/Core>

namespace repq::runtime {

#include "runtime/gemm_eigen_body.inc"

bool sgemm_avx512_available() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512cd");
}

void sgemm_avx512(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc) {
  eigen_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace repq::runtime

#undef Eigen
#pragma GCC pop_options

#else

namespace repq::runtime {
bool sgemm_avx512_available() { return false; }
void sgemm_avx512(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                  const float*, int64_t, float, float*, int64_t) {}
}  // namespace repq::runtime

#endif
