// Streaming statistics of one tensor: the pass-1 range (min/max/count/zeros/nans) and the
// pass-2 histogram of |x|. Both loops run over every activation value of every calibration
// sample, so they are written as simple fixed-width lane loops that GCC vectorizes (AVX2 at
// -march=x86-64-v3): 8 lanes of min/max/compare for the range, and a vectorized bin-index
// computation followed by a scatter into four interleaved sub-histograms for the histogram
// (four copies break the store-to-load dependency when many values share a bin, e.g. the
// zeros after a Relu). Counts are integers, so the result never depends on the order or on how
// the values are split into calls.
#include "repq/calib/histogram.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "repq/error.h"

namespace repq::calib {

double AbsHistogram::bin_width() const {
  return counts.empty() ? 0.0 : amax / static_cast<double>(counts.size());
}

uint64_t AbsHistogram::total() const {
  return std::accumulate(counts.begin(), counts.end(), uint64_t{0});
}

double AbsHistogram::edge(size_t b) const { return static_cast<double>(b + 1) * bin_width(); }

namespace {

constexpr int64_t kChunk = 4096;  // values whose bin indices are computed at once

// Bin index of every value of v[0, n) (n <= kChunk): min(|v| * inv, bins - 1), NaN -> bins
// (a trash bin that is dropped).
void bin_indices(const float* v, int64_t n, float inv, uint32_t bins, int32_t* idx) {
  const float lim = static_cast<float>(bins - 1);
  const float trash = static_cast<float>(bins);
  for (int64_t k = 0; k < n; ++k) {
    const float x = v[k];
    float a = std::fabs(x) * inv;
    a = a < lim ? a : lim;     // +inf and values above amax: last bin; NaN compares false
    a = x == x ? a : trash;    // NaN: trash bin
    idx[k] = static_cast<int32_t>(a);
  }
}

}  // namespace

void AbsHistogram::add(const float* v, int64_t n) {
  const size_t nbins = counts.size();
  if (nbins == 0) throw InternalError("AbsHistogram::add: the histogram has no bins");
  if (nbins > (1u << 24)) throw InternalError("AbsHistogram::add: too many bins");
  if (n <= 0) return;
  const auto bins = static_cast<uint32_t>(nbins);
  if (!(amax > 0) || !std::isfinite(amax)) {
    uint64_t valid = 0;
    for (int64_t k = 0; k < n; ++k) valid += v[k] == v[k];
    counts.back() += valid;
    return;
  }
  const auto inv = static_cast<float>(static_cast<double>(bins) / amax);
  alignas(64) int32_t idx[kChunk];
  const size_t stride = nbins + 1;  // + trash bin
  if (n < 8 * static_cast<int64_t>(nbins)) {
    // Small tensor: scatter straight into the counts (the trash bin is checked).
    for (int64_t start = 0; start < n; start += kChunk) {
      const int64_t m = std::min(kChunk, n - start);
      bin_indices(v + start, m, inv, bins, idx);
      for (int64_t k = 0; k < m; ++k)
        if (static_cast<uint32_t>(idx[k]) < bins) ++counts[static_cast<size_t>(idx[k])];
    }
    return;
  }
  // Four interleaved sub-histograms of 32-bit counts, flushed before they could overflow.
  thread_local std::vector<uint32_t> sub;
  sub.assign(4 * stride, 0);
  constexpr int64_t kFlushEvery = int64_t{1} << 30;  // per sub-histogram < 2^32
  auto flush = [&] {
    for (size_t b = 0; b < nbins; ++b) {
      counts[b] += uint64_t{sub[b]} + sub[stride + b] + sub[2 * stride + b] + sub[3 * stride + b];
    }
    std::fill(sub.begin(), sub.end(), 0u);
  };
  uint32_t* s0 = sub.data();
  uint32_t* s1 = s0 + stride;
  uint32_t* s2 = s1 + stride;
  uint32_t* s3 = s2 + stride;
  int64_t since_flush = 0;
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t m = std::min(kChunk, n - start);
    bin_indices(v + start, m, inv, bins, idx);
    int64_t k = 0;
    for (; k + 4 <= m; k += 4) {
      ++s0[idx[k]];
      ++s1[idx[k + 1]];
      ++s2[idx[k + 2]];
      ++s3[idx[k + 3]];
    }
    for (; k < m; ++k) ++s0[idx[k]];
    since_flush += m;
    if (since_flush >= kFlushEvery) {
      flush();
      since_flush = 0;
    }
  }
  flush();
}

void AbsHistogram::merge(const AbsHistogram& part) {
  if (part.counts.size() != counts.size() || part.amax != amax)
    throw InternalError("AbsHistogram::merge: histograms of different ranges or bin counts");
  for (size_t b = 0; b < counts.size(); ++b) counts[b] += part.counts[b];
}

double TensorStats::amax() const { return std::max(std::fabs(min), std::fabs(max)); }

void TensorStats::add_range(const float* v, int64_t n) {
  if (n <= 0) return;
  // 8 lanes in GCC/Clang vector types: one vcmpps/vblendvps per operation on AVX2 (SSE
  // pairs without it). lo = x < lo ? x : lo ignores NaN (the comparison is false).
  using V8f = float __attribute__((vector_size(32)));
  using V8i = int32_t __attribute__((vector_size(32)));
  constexpr float kInf = std::numeric_limits<float>::infinity();
  V8f lo = {kInf, kInf, kInf, kInf, kInf, kInf, kInf, kInf};
  V8f hi = -lo;
  uint64_t zeros_seen = 0, nans_seen = 0;
  constexpr int64_t kBlock = int64_t{1} << 24;  // int32 lane counters flushed per block
  const int64_t whole = n - n % 8;
  for (int64_t start = 0; start < whole; start += kBlock) {
    const int64_t end = std::min(whole, start + kBlock);
    V8i z = {}, nn = {};
    for (int64_t i = start; i < end; i += 8) {
      V8f x;
      std::memcpy(&x, v + i, sizeof x);
      lo = x < lo ? x : lo;
      hi = x > hi ? x : hi;
      z -= x == 0.0f;  // a true comparison is -1
      nn -= x != x;
    }
    for (int j = 0; j < 8; ++j) {
      zeros_seen += static_cast<uint64_t>(z[j]);
      nans_seen += static_cast<uint64_t>(nn[j]);
    }
  }
  float bl = kInf, bh = -kInf;
  for (int j = 0; j < 8; ++j) {
    bl = lo[j] < bl ? lo[j] : bl;
    bh = hi[j] > bh ? hi[j] : bh;
  }
  for (int64_t i = whole; i < n; ++i) {
    const float x = v[i];
    bl = x < bl ? x : bl;
    bh = x > bh ? x : bh;
    zeros_seen += x == 0.0f;
    nans_seen += x != x;
  }
  const bool had_values = count > nans;  // a non-NaN value was seen before
  count += static_cast<uint64_t>(n);
  zeros += zeros_seen;
  nans += nans_seen;
  if (bl > bh) return;  // only NaN in this call
  if (had_values) {
    min = std::min(min, static_cast<double>(bl));
    max = std::max(max, static_cast<double>(bh));
  } else {
    min = bl;
    max = bh;
  }
}

void TensorStats::merge_range(const TensorStats& part) {
  const bool had_values = count > nans;
  const bool part_values = part.count > part.nans;
  count += part.count;
  zeros += part.zeros;
  nans += part.nans;
  if (!part_values) return;
  if (had_values) {
    min = std::min(min, part.min);
    max = std::max(max, part.max);
  } else {
    min = part.min;
    max = part.max;
  }
}

}  // namespace repq::calib
