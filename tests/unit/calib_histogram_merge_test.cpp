// Splitting the calibration statistics into parts (e.g. over threads): AbsHistogram::merge and
// TensorStats::merge_range of parts equal one pass over the whole, on
// data with zeros, values on bin edges, +-inf and NaN, for splits at any offset; the histogram
// also against a scalar reference of the documented binning.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "repq/calib/histogram.h"
#include "repq/error.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

using calib::AbsHistogram;
using calib::TensorStats;

// Random values with the awkward cases mixed in: exact zeros (both signs), values exactly on
// bin edges (b * amax / bins), amax itself, values above amax, +-inf, NaN.
std::vector<float> awkward_values(size_t n, double amax, int bins, uint32_t seed) {
  auto v = random_floats(n, seed, -static_cast<float>(amax), static_cast<float>(amax));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; i += 3) v[i] = 0.0f;
  for (size_t i = 1; i < n; i += 17) v[i] = -0.0f;
  for (size_t i = 2; i < n; i += 5)
    v[i] = static_cast<float>(static_cast<double>(i % bins) * amax / bins) * (i % 2 ? -1.0f : 1.0f);
  for (size_t i = 4; i < n; i += 101) v[i] = static_cast<float>(amax);
  for (size_t i = 7; i < n; i += 103) v[i] = static_cast<float>(3 * amax);
  for (size_t i = 8; i < n; i += 211) v[i] = i % 2 ? inf : -inf;
  for (size_t i = 9; i < n; i += 97) v[i] = nan;
  return v;
}

// The binning histogram.h documents: index = trunc(float(|v|) * float(bins / amax)), at most
// bins - 1 (+inf and values above amax in the last bin), NaN not counted.
std::vector<uint64_t> reference_counts(const std::vector<float>& v, double amax, int bins) {
  std::vector<uint64_t> c(static_cast<size_t>(bins), 0);
  const auto inv = static_cast<float>(static_cast<double>(bins) / amax);
  for (float x : v) {
    if (std::isnan(x)) continue;
    const float a = std::fabs(x) * inv;
    const size_t b = a >= static_cast<float>(bins - 1) ? static_cast<size_t>(bins - 1) : static_cast<size_t>(a);
    ++c[b];
  }
  return c;
}

TEST(CalibHistogramMerge, PartsEqualTheWholeAndTheScalarReference) {
  const double amax = 3.0;
  for (int bins : {7, 128, 2048}) {
    // Long enough for the sub-histogram path (>= 8 x bins values) in the whole and in parts.
    const auto v = awkward_values(40000, amax, bins, 5u + static_cast<uint32_t>(bins));
    AbsHistogram whole;
    whole.amax = amax;
    whole.counts.assign(static_cast<size_t>(bins), 0);
    whole.add(v.data(), static_cast<int64_t>(v.size()));
    EXPECT_EQ(whole.counts, reference_counts(v, amax, bins)) << bins;
    for (const std::vector<int64_t>& cuts :
         {std::vector<int64_t>{0, 1, 40000}, {0, 4096, 8192, 40000}, {0, 13, 9999, 20001, 40000}, {0, 40000, 40000}}) {
      AbsHistogram merged;
      merged.amax = amax;
      merged.counts.assign(static_cast<size_t>(bins), 0);
      for (size_t k = 0; k + 1 < cuts.size(); ++k) {
        AbsHistogram part;
        part.amax = amax;
        part.counts.assign(static_cast<size_t>(bins), 0);
        part.add(v.data() + cuts[k], cuts[k + 1] - cuts[k]);
        merged.merge(part);
      }
      EXPECT_EQ(merged.counts, whole.counts) << bins << " parts " << cuts.size() - 1;
    }
  }
  AbsHistogram a, b;
  a.amax = b.amax = 1.0;
  a.counts.assign(4, 0);
  b.counts.assign(5, 0);
  EXPECT_THROW(a.merge(b), InternalError);
  b.counts.assign(4, 0);
  b.amax = 2.0;
  EXPECT_THROW(a.merge(b), InternalError);
}

TEST(CalibHistogramMerge, RangePartsEqualTheWhole) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto v = awkward_values(20000, 2.0, 64, 9u);
  // Finite range only (add_range records +-inf as min/max, which is fine but not the point).
  for (float& x : v)
    if (std::isinf(x)) x = 1.5f;
  v[12345] = -7.25f;  // the minimum, in the middle of a part
  v[19999] = 9.5f;    // the maximum, last value
  for (size_t i = 100; i < 200; ++i) v[i] = nan;  // a part of NaN only
  TensorStats whole;
  whole.add_range(v.data(), static_cast<int64_t>(v.size()));
  EXPECT_EQ(whole.min, -7.25);
  EXPECT_EQ(whole.max, 9.5);
  for (const std::vector<int64_t>& cuts :
       {std::vector<int64_t>{0, 100, 200, 20000}, {0, 8, 12345, 12346, 20000}, {0, 0, 20000}}) {
    TensorStats merged;
    for (size_t k = 0; k + 1 < cuts.size(); ++k) {
      TensorStats part;
      part.add_range(v.data() + cuts[k], cuts[k + 1] - cuts[k]);
      merged.merge_range(part);
    }
    EXPECT_EQ(merged.min, whole.min);
    EXPECT_EQ(merged.max, whole.max);
    EXPECT_EQ(merged.count, whole.count);
    EXPECT_EQ(merged.zeros, whole.zeros);
    EXPECT_EQ(merged.nans, whole.nans);
  }
  // NaN-only data first, values later: min/max come from the values alone.
  TensorStats s;
  TensorStats nan_part, value_part;
  const std::vector<float> nans = {nan, nan}, values = {0.5f, -0.25f};
  nan_part.add_range(nans.data(), 2);
  value_part.add_range(values.data(), 2);
  s.merge_range(nan_part);
  s.merge_range(value_part);
  EXPECT_EQ(s.min, -0.25);
  EXPECT_EQ(s.max, 0.5);
  EXPECT_EQ(s.count, 4u);
  EXPECT_EQ(s.nans, 2u);
}

}  // namespace
}  // namespace repq::test
