// Kernels of HessianAccumulator (gptq_hessian_kernels.h); the summation order they implement
// is defined at the top of gptq_hessian.cpp. AVX2 + FMA and the portable code give the same bits.
#include "gptq_hessian_kernels.h"

#include <algorithm>
#include <cmath>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define REPQ_GPTQ_AVX2 1
#endif

namespace repq::quant::hessian {

namespace {

constexpr int64_t kChunk = 256;

// The chunk's last products (p .. end, fewer than 8) into lane 0, as defined above.
inline float tail_into_lane0(float l0, const float* a, const float* b, int64_t p, int64_t end) {
  if (end - p >= 4) {
    for (int t = 0; t < 4; ++t) l0 = l0 + rounded_product(a[p + t], b[p + t]);
    p += 4;
  }
  for (; p < end; ++p) l0 = std::fma(a[p], b[p], l0);
  return l0;
}

inline float combine_lanes(const float* l) {
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

// out[r][c] = the chunk sum of rows a[r], b[c] over [p0, end).
template <int RI, int RJ>
__attribute__((always_inline)) inline void block_chunk(const float* const* a, const float* const* b, int64_t p0, int64_t end,
                 float (&out)[RI][RJ]) {
#if defined(REPQ_GPTQ_AVX2)
  // The accumulators are written out once after the loop (GCC otherwise stored them on the
  // stack in every iteration).
  const int64_t groups = (end - p0) / 8;
  alignas(32) float lanes[RI][RJ][8];
  {
    __m256 acc[RI][RJ];
#pragma GCC unroll 16
    for (int r = 0; r < RI; ++r)
#pragma GCC unroll 16
      for (int c = 0; c < RJ; ++c) acc[r][c] = _mm256_setzero_ps();
    const float* pa[RI];
    const float* pb[RJ];
#pragma GCC unroll 16
    for (int r = 0; r < RI; ++r) pa[r] = a[r] + p0;
#pragma GCC unroll 16
    for (int c = 0; c < RJ; ++c) pb[c] = b[c] + p0;
    for (int64_t m = 0; m < groups; ++m) {
      __m256 va[RI];
#pragma GCC unroll 16
      for (int r = 0; r < RI; ++r) va[r] = _mm256_loadu_ps(pa[r] + 8 * m);
#pragma GCC unroll 16
      for (int c = 0; c < RJ; ++c) {
        const __m256 vb = _mm256_loadu_ps(pb[c] + 8 * m);
#pragma GCC unroll 16
        for (int r = 0; r < RI; ++r) acc[r][c] = _mm256_fmadd_ps(va[r], vb, acc[r][c]);
      }
    }
    if constexpr (RJ == 4) {
      // Four columns at once: lane 0 of the four accumulators as one vector for the tail
      // (each lane gets the scalar operations: rounded products added, then fma), then the
      // lanes combined by a horizontal-add tree whose order is exactly combine_lanes':
      // hadd pairs (l0+l1, l2+l3, ...), hadd again ((l0+l1)+(l2+l3), ...), low + high half.
      const int64_t p = p0 + 8 * groups;
      for (int r = 0; r < RI; ++r) {
        if (p < end) {
          const __m128 u01 = _mm_unpacklo_ps(_mm256_castps256_ps128(acc[r][0]), _mm256_castps256_ps128(acc[r][1]));
          const __m128 u23 = _mm_unpacklo_ps(_mm256_castps256_ps128(acc[r][2]), _mm256_castps256_ps128(acc[r][3]));
          __m128 l0 = _mm_movelh_ps(u01, u23);
          int64_t q = p;
          if (end - q >= 4)
            for (int t = 0; t < 4; ++t, ++q) {
              __m128 prod = _mm_mul_ps(_mm_set1_ps(a[r][q]), _mm_setr_ps(b[0][q], b[1][q], b[2][q], b[3][q]));
              __asm__("" : "+x"(prod));  // a rounded product, never contracted into the add
              l0 = _mm_add_ps(l0, prod);
            }
          for (; q < end; ++q)
            l0 = _mm_fmadd_ps(_mm_set1_ps(a[r][q]), _mm_setr_ps(b[0][q], b[1][q], b[2][q], b[3][q]), l0);
          acc[r][0] = _mm256_blend_ps(acc[r][0], _mm256_castps128_ps256(_mm_shuffle_ps(l0, l0, 0x00)), 1);
          acc[r][1] = _mm256_blend_ps(acc[r][1], _mm256_castps128_ps256(_mm_shuffle_ps(l0, l0, 0x55)), 1);
          acc[r][2] = _mm256_blend_ps(acc[r][2], _mm256_castps128_ps256(_mm_shuffle_ps(l0, l0, 0xAA)), 1);
          acc[r][3] = _mm256_blend_ps(acc[r][3], _mm256_castps128_ps256(_mm_shuffle_ps(l0, l0, 0xFF)), 1);
        }
        const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(acc[r][0], acc[r][1]), _mm256_hadd_ps(acc[r][2], acc[r][3]));
        alignas(16) float sums[4];
        _mm_store_ps(sums, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
        for (int c = 0; c < RJ; ++c) out[r][c] = sums[c];
      }
      return;
    }
#pragma GCC unroll 16
    for (int r = 0; r < RI; ++r)
#pragma GCC unroll 16
      for (int c = 0; c < RJ; ++c) _mm256_store_ps(lanes[r][c], acc[r][c]);
  }
  const int64_t p = p0 + 8 * groups;
  for (int r = 0; r < RI; ++r)
    for (int c = 0; c < RJ; ++c) {
      if (p < end) lanes[r][c][0] = tail_into_lane0(lanes[r][c][0], a[r], b[c], p, end);
      out[r][c] = combine_lanes(lanes[r][c]);
    }
#else
  for (int r = 0; r < RI; ++r)
    for (int c = 0; c < RJ; ++c) {
      float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t p = p0;
      for (; p + 8 <= end; p += 8)
        for (int t = 0; t < 8; ++t) l[t] = std::fma(a[r][p + t], b[c][p + t], l[t]);
      l[0] = tail_into_lane0(l[0], a[r], b[c], p, end);
      out[r][c] = combine_lanes(l);
    }
#endif
}

}  // namespace

// row_sums (declared in the header): sum x of rows, per chunk of 256 patches the
// same eight-lane order as an H entry with b = 1 (l_t += a[p], the tail added in order into l_0,
// the lanes combined as for H), chunk sums in order into the double. Eight rows at a time:
// eight independent chains of vector adds.
namespace {

// sum x of n <= 8 rows (row r at rows[r]) into sx[r].
void row_sums8(const float* const* rows, int n, int64_t P, double* sx) {
  for (int64_t p0 = 0; p0 < P; p0 += kChunk) {
    const int64_t end = std::min(P, p0 + kChunk);
    const int64_t full = p0 + (end - p0) / 8 * 8;
    alignas(32) float l[8][8] = {};
#if defined(REPQ_GPTQ_AVX2)
    __m256 acc[8];
    for (int r = 0; r < 8; ++r) acc[r] = _mm256_setzero_ps();
    if (n == 8) {
      for (int64_t p = p0; p < full; p += 8)
        for (int r = 0; r < 8; ++r) acc[r] = _mm256_add_ps(acc[r], _mm256_loadu_ps(rows[r] + p));
    } else {
      for (int64_t p = p0; p < full; p += 8)
        for (int r = 0; r < n; ++r) acc[r] = _mm256_add_ps(acc[r], _mm256_loadu_ps(rows[r] + p));
    }
    for (int r = 0; r < n; ++r) _mm256_store_ps(l[r], acc[r]);
#else
    for (int r = 0; r < n; ++r)
      for (int64_t p = p0; p < full; p += 8)
        for (int t = 0; t < 8; ++t) l[r][t] += rows[r][p + t];
#endif
    for (int r = 0; r < n; ++r) {
      for (int64_t p = full; p < end; ++p) l[r][0] += rows[r][p];
      sx[r] += static_cast<double>(combine_lanes(l[r]));
    }
  }
}

}  // namespace

void row_sums(const float* rows, int64_t ld, int64_t P, int64_t i0, int64_t i1, double* sx) {
  for (int64_t r0 = i0; r0 < i1; r0 += 8) {
    const int n = static_cast<int>(std::min<int64_t>(8, i1 - r0));
    const float* ptr[8];
    for (int r = 0; r < n; ++r) ptr[r] = rows + (r0 + r) * ld;
    row_sums8(ptr, n, P, sx + r0);
  }
}

namespace {

// Rows [i0, i0 + RI) of H (the upper triangle, j >= i) for one sample's patch matrix: row i at
// rows + i * ld, P patches.
template <int RI, int RJ>
void rows_block(const float* rows, int64_t ld, int64_t K, int64_t P, int64_t i0, double* h) {
  const float* a[RI];
  for (int r = 0; r < RI; ++r) a[r] = rows + std::min(i0 + r, K - 1) * ld;
  for (int64_t j0 = i0 - i0 % RJ; j0 < K; j0 += RJ) {
    const float* b[RJ];
    for (int c = 0; c < RJ; ++c) b[c] = rows + std::min(j0 + c, K - 1) * ld;
    double acc[RI][RJ] = {};
    float out[RI][RJ];
    for (int64_t p0 = 0; p0 < P; p0 += kChunk) {
      block_chunk<RI, RJ>(a, b, p0, std::min(P, p0 + kChunk), out);
      for (int r = 0; r < RI; ++r)
        for (int c = 0; c < RJ; ++c) acc[r][c] += static_cast<double>(out[r][c]);
    }
    for (int r = 0; r < RI; ++r)
      for (int c = 0; c < RJ; ++c) {
        const int64_t i = i0 + r, j = j0 + c;
        if (i < K && j < K && j >= i) h[i * K + j] += acc[r][c];
      }
  }
}

}  // namespace

void upper_rows(const float* rows, int64_t ld, int64_t K, int64_t P, int64_t i0, double* h) {
  if (K % 4 == 0)
    rows_block<kRows, 4>(rows, ld, K, P, i0, h);
  else
    rows_block<kRows, 3>(rows, ld, K, P, i0, h);
}

namespace {

// small_upper for a column block width RJ (K % RJ == 0 or the last block clamped as in
// rows_block): chunk-outer, every block of the chunk while its rows are in L1.
template <int RJ>
void small_upper_impl(const float* const* rows, int64_t K, int64_t P, double* h) {
  double acc[kSmallK * kSmallK];
  std::fill(acc, acc + K * K, 0.0);
  float out[kRows][RJ];
  for (int64_t p0 = 0; p0 < P; p0 += kChunk) {
    const int64_t end = std::min(P, p0 + kChunk);
    for (int64_t i0 = 0; i0 < K; i0 += kRows) {
      const float* a[kRows];
      for (int r = 0; r < kRows; ++r) a[r] = rows[std::min(i0 + r, K - 1)];
      for (int64_t j0 = i0 - i0 % RJ; j0 < K; j0 += RJ) {
        const float* b[RJ];
        for (int c = 0; c < RJ; ++c) b[c] = rows[std::min(j0 + c, K - 1)];
        block_chunk<kRows, RJ>(a, b, p0, end, out);
        for (int r = 0; r < kRows; ++r)
          for (int c = 0; c < RJ; ++c)
            if (i0 + r < K && j0 + c < K) acc[(i0 + r) * K + j0 + c] += static_cast<double>(out[r][c]);
      }
    }
  }
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = i; j < K; ++j) h[i * K + j] += acc[i * K + j];
}

}  // namespace

void small_upper(const float* const* rows, int64_t K, int64_t P, double* h, double* sx) {
  for (int64_t i0 = 0; i0 < K; i0 += 8) row_sums8(rows + i0, static_cast<int>(std::min<int64_t>(8, K - i0)), P, sx + i0);
  if (K % 4 == 0)
    small_upper_impl<4>(rows, K, P, h);
  else
    small_upper_impl<3>(rows, K, P, h);
}

}  // namespace repq::quant::hessian
