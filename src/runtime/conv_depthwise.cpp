// Depthwise convolution of one plane: an AVX2 kernel for 3x3 (stride 1 and 2), a generic loop
// for other kernels, strides and dilations.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "runtime/conv_depthwise.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace repq::runtime {

// out[ox] for ox in [lo, hi) reads input column ox * stride + offset, which is inside [0, w).
void valid_range(const WindowAxis& a, int64_t tap, int64_t& lo, int64_t& hi) {
  const int64_t off = tap * a.dilation - a.pad_begin;  // input index = ox * stride + off
  // smallest ox with ox*stride + off >= 0
  lo = off >= 0 ? 0 : (-off + a.stride - 1) / a.stride;
  // largest ox with ox*stride + off <= in-1
  const int64_t top = a.in - 1 - off;
  hi = top < 0 ? 0 : top / a.stride + 1;
  lo = std::min(lo, a.out);
  hi = std::clamp(hi, lo, a.out);
}

namespace {

constexpr int64_t kLanes = 8;
int64_t round_up_lanes(int64_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

// out[i] = bias + sum over the 3 rows r of w[r][0] * a_r[i] + w[r][1] * b_r[i] + w[r][2] * c_r[i],
// as fused multiply-adds in that order, for i in [0, round_up_lanes(n)): the caller makes
// that many elements readable and writable.
inline void taps3x3(const float* const a[3], const float* const b[3], const float* const c[3],
                    const float* w, float bias, float* out, int64_t n) {
  int64_t i = 0;
#if defined(__AVX2__) && defined(__FMA__)
  const __m256 vb = _mm256_set1_ps(bias);
  __m256 vw[9];
  for (int k = 0; k < 9; ++k) vw[k] = _mm256_set1_ps(w[k]);
  // Two vectors per step: independent chains keep both FMA units busy.
  for (; i + 2 * kLanes <= round_up_lanes(n); i += 2 * kLanes) {
    __m256 acc0 = vb, acc1 = vb;
    for (int r = 0; r < 3; ++r) {
      acc0 = _mm256_fmadd_ps(vw[3 * r], _mm256_loadu_ps(a[r] + i), acc0);
      acc1 = _mm256_fmadd_ps(vw[3 * r], _mm256_loadu_ps(a[r] + i + kLanes), acc1);
      acc0 = _mm256_fmadd_ps(vw[3 * r + 1], _mm256_loadu_ps(b[r] + i), acc0);
      acc1 = _mm256_fmadd_ps(vw[3 * r + 1], _mm256_loadu_ps(b[r] + i + kLanes), acc1);
      acc0 = _mm256_fmadd_ps(vw[3 * r + 2], _mm256_loadu_ps(c[r] + i), acc0);
      acc1 = _mm256_fmadd_ps(vw[3 * r + 2], _mm256_loadu_ps(c[r] + i + kLanes), acc1);
    }
    _mm256_storeu_ps(out + i, acc0);
    _mm256_storeu_ps(out + i + kLanes, acc1);
  }
  for (; i < n; i += kLanes) {
    __m256 acc = vb;
    for (int r = 0; r < 3; ++r) {
      acc = _mm256_fmadd_ps(vw[3 * r], _mm256_loadu_ps(a[r] + i), acc);
      acc = _mm256_fmadd_ps(vw[3 * r + 1], _mm256_loadu_ps(b[r] + i), acc);
      acc = _mm256_fmadd_ps(vw[3 * r + 2], _mm256_loadu_ps(c[r] + i), acc);
    }
    _mm256_storeu_ps(out + i, acc);
  }
#endif
  for (; i < n; ++i) {
    float acc = bias;
    for (int r = 0; r < 3; ++r) {
      acc = std::fma(w[3 * r], a[r][i], acc);
      acc = std::fma(w[3 * r + 1], b[r][i], acc);
      acc = std::fma(w[3 * r + 2], c[r][i], acc);
    }
    out[i] = acc;
  }
}

// Depthwise 3x3, stride 1 or 2, dilation 1. The plane is first copied into a zero-padded
// buffer, so every output takes the same 9 taps in the same order. Stride 1 then runs over the
// padded plane as one flat row (outputs in the 2 padding columns of each row are computed and
// dropped).
template <int S>
void depthwise_plane_3x3(const float* in, const float* w, float bias, float* out,
                         const WindowAxis& ah, const WindowAxis& aw) {
  const int64_t ph = (ah.out - 1) * S + 3, pw = (aw.out - 1) * S + 3;
  thread_local std::vector<float> padded, tmp;
  // Slack past the end for the flat row's overrun (2 rows + 2 + a vector).
  padded.assign(static_cast<size_t>(ph * pw + 2 * pw + 2 * kLanes), 0.0f);
  for (int64_t y = 0; y < ph; ++y) {
    const int64_t iy = y - ah.pad_begin;
    if (iy < 0 || iy >= ah.in) continue;
    const int64_t x0 = std::max<int64_t>(0, aw.pad_begin);
    const int64_t x1 = std::min<int64_t>(pw, aw.in + aw.pad_begin);
    if (x1 > x0)
      std::memcpy(padded.data() + y * pw + x0, in + iy * aw.in + (x0 - aw.pad_begin),
                  static_cast<size_t>(x1 - x0) * sizeof(float));
  }
  if constexpr (S == 1) {
    const int64_t n = ah.out * pw;  // flat outputs, pw per row
    tmp.resize(static_cast<size_t>(round_up_lanes(n)));
    const float* p = padded.data();
    const float* a[3] = {p, p + pw, p + 2 * pw};
    const float* b[3] = {a[0] + 1, a[1] + 1, a[2] + 1};
    const float* c[3] = {a[0] + 2, a[1] + 2, a[2] + 2};
    taps3x3(a, b, c, w, bias, tmp.data(), n);
    for (int64_t oy = 0; oy < ah.out; ++oy)
      std::memcpy(out + oy * aw.out, tmp.data() + oy * pw,
                  static_cast<size_t>(aw.out) * sizeof(float));
  } else {
    // Stride 2: the stride-1 outputs of the even rows, of which every other one is kept (the
    // same 9 taps in the same order as a strided loop, but contiguous loads).
    const int64_t n = pw - 2;
    tmp.resize(static_cast<size_t>(round_up_lanes(n)));
    for (int64_t oy = 0; oy < ah.out; ++oy) {
      const float* p = padded.data() + 2 * oy * pw;
      const float* a[3] = {p, p + pw, p + 2 * pw};
      const float* b[3] = {a[0] + 1, a[1] + 1, a[2] + 1};
      const float* c[3] = {a[0] + 2, a[1] + 2, a[2] + 2};
      taps3x3(a, b, c, w, bias, tmp.data(), n);
      float* o = out + oy * aw.out;
      for (int64_t ox = 0; ox < aw.out; ++ox) o[ox] = tmp[static_cast<size_t>(2 * ox)];
    }
  }
}

// Any kernel size, stride and dilation: accumulates tap by tap over whole output rows.
void depthwise_plane_generic(const float* in, const float* w, float bias, float* out,
                             const WindowAxis& ah, const WindowAxis& aw) {
  std::vector<int64_t> lo(aw.kernel), hi(aw.kernel);
  for (int64_t kx = 0; kx < aw.kernel; ++kx) valid_range(aw, kx, lo[kx], hi[kx]);
  for (int64_t oy = 0; oy < ah.out; ++oy) {
    float* orow = out + oy * aw.out;
    std::fill(orow, orow + aw.out, bias);
    for (int64_t ky = 0; ky < ah.kernel; ++ky) {
      const int64_t iy = oy * ah.stride - ah.pad_begin + ky * ah.dilation;
      if (iy < 0 || iy >= ah.in) continue;
      const float* irow = in + iy * aw.in;
      for (int64_t kx = 0; kx < aw.kernel; ++kx) {
        const float wv = w[ky * aw.kernel + kx];
        const int64_t off = kx * aw.dilation - aw.pad_begin;
        for (int64_t ox = lo[kx]; ox < hi[kx]; ++ox) orow[ox] += wv * irow[ox * aw.stride + off];
      }
    }
  }
}

}  // namespace

void depthwise_plane(const float* in, const float* w, float bias, float* out,
                     const WindowAxis& ah, const WindowAxis& aw) {
  const bool k3 = ah.kernel == 3 && aw.kernel == 3 && ah.dilation == 1 && aw.dilation == 1;
  if (k3 && ah.stride == 1 && aw.stride == 1)
    return depthwise_plane_3x3<1>(in, w, bias, out, ah, aw);
  if (k3 && ah.stride == 2 && aw.stride == 2)
    return depthwise_plane_3x3<2>(in, w, bias, out, ah, aw);
  depthwise_plane_generic(in, w, bias, out, ah, aw);
}

}  // namespace repq::runtime
