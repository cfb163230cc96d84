// Calibration statistics: the |x| histogram (binning, NaN/inf, the vectorized and the scalar
// path agree), the pass-1 range, and the percentile calibrator on hand-computed histograms.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "repq/calib/calibrators.h"
#include "repq/calib/histogram.h"
#include "repq/error.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

using calib::AbsHistogram;
using calib::TensorStats;

AbsHistogram make_hist(double amax, std::vector<uint64_t> counts) {
  AbsHistogram h;
  h.amax = amax;
  h.counts = std::move(counts);
  return h;
}

TEST(CalibHistogram, BinsAbsoluteValuesByHand) {
  AbsHistogram h = make_hist(4.0, std::vector<uint64_t>(4, 0));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  // w = 1: [0,1) [1,2) [2,3) [3,4]; above amax and -inf go to the last bin, NaN nowhere.
  const std::vector<float> v = {0.0f, 0.5f, -0.25f, 1.0f, 1.99f, -2.5f, 3.999f, 4.0f, 7.0f, nan, -inf};
  h.add(v.data(), static_cast<int64_t>(v.size()));
  EXPECT_EQ(h.counts, (std::vector<uint64_t>{3, 2, 1, 4}));
  EXPECT_EQ(h.total(), 10u);
  EXPECT_DOUBLE_EQ(h.bin_width(), 1.0);
  EXPECT_DOUBLE_EQ(h.edge(0), 1.0);
  EXPECT_DOUBLE_EQ(h.edge(3), 4.0);
}

TEST(CalibHistogram, LargeInputPathMatchesAnIndependentCount) {
  // 50000 values at bin centres (no rounding question), many of them exact zeros as after a
  // Relu, plus NaNs; enough values for the four-sub-histogram path.
  const size_t bins = 64;
  const double amax = 8.0, w = amax / bins;
  std::vector<float> v;
  std::vector<uint64_t> expect(bins, 0);
  const auto r = random_floats(50000, 11, 0.0f, 1.0f);
  for (size_t k = 0; k < r.size(); ++k) {
    if (k % 3 == 0) {
      v.push_back(0.0f);
      ++expect[0];
    } else if (k % 997 == 0) {
      v.push_back(std::numeric_limits<float>::quiet_NaN());
    } else {
      const auto b = static_cast<size_t>(r[k] * bins) % bins;
      const float centre = static_cast<float>((static_cast<double>(b) + 0.5) * w);
      v.push_back(k % 2 ? centre : -centre);
      ++expect[b];
    }
  }
  AbsHistogram big = make_hist(amax, std::vector<uint64_t>(bins, 0));
  big.add(v.data(), static_cast<int64_t>(v.size()));
  EXPECT_EQ(big.counts, expect);
  // The same values in small calls (scalar path) and split unevenly: identical counts.
  AbsHistogram small = make_hist(amax, std::vector<uint64_t>(bins, 0));
  for (size_t k = 0; k < v.size(); k += 7) small.add(v.data() + k, static_cast<int64_t>(std::min<size_t>(7, v.size() - k)));
  EXPECT_EQ(small.counts, expect);
}

TEST(CalibHistogram, ZeroRangePutsEverythingInTheLastBin) {
  AbsHistogram h = make_hist(0.0, std::vector<uint64_t>(8, 0));
  const std::vector<float> v = {0.0f, 0.0f, std::numeric_limits<float>::quiet_NaN()};
  h.add(v.data(), 3);
  EXPECT_EQ(h.counts.back(), 2u);
  EXPECT_EQ(h.total(), 2u);
}

TEST(CalibTensorStats, RangeCountZerosNans) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> v = {nan, 0.0f, -3.5f, 2.0f, 0.0f, -0.0f, 7.25f, 1.0f, nan, 0.5f, -1.0f};
  TensorStats one;
  one.add_range(v.data(), static_cast<int64_t>(v.size()));
  EXPECT_EQ(one.min, -3.5);
  EXPECT_EQ(one.max, 7.25);
  EXPECT_EQ(one.count, 11u);
  EXPECT_EQ(one.zeros, 3u);  // -0.0 == 0
  EXPECT_EQ(one.nans, 2u);
  EXPECT_EQ(one.amax(), 7.25);
  // Split in pieces (the first only NaN): the same.
  TensorStats parts;
  parts.add_range(v.data(), 1);
  EXPECT_EQ(parts.count, 1u);
  parts.add_range(v.data() + 1, 4);
  parts.add_range(v.data() + 5, 6);
  EXPECT_EQ(parts.min, one.min);
  EXPECT_EQ(parts.max, one.max);
  EXPECT_EQ(parts.count, one.count);
  EXPECT_EQ(parts.zeros, one.zeros);
  EXPECT_EQ(parts.nans, one.nans);
}

TEST(CalibTensorStats, LongInputMatchesScalarLoop) {
  auto v = random_floats(100003, 3, -5.0f, 3.0f);
  for (size_t k = 0; k < v.size(); k += 13) v[k] = 0.0f;
  v[99999] = -9.5f;  // in the 8-lane part (100000 values)
  v[100001] = 6.0f;  // in the 3-value scalar tail
  double lo = 1e9, hi = -1e9;
  uint64_t zeros = 0;
  for (float x : v) {
    lo = std::min(lo, double(x));
    hi = std::max(hi, double(x));
    zeros += x == 0.0f;
  }
  TensorStats s;
  s.add_range(v.data(), static_cast<int64_t>(v.size()));
  EXPECT_EQ(s.min, -9.5);
  EXPECT_EQ(s.max, 6.0);
  EXPECT_EQ(s.min, lo);
  EXPECT_EQ(s.max, hi);
  EXPECT_EQ(s.zeros, zeros);
  EXPECT_EQ(s.count, v.size());
}

TEST(CalibPercentile, HandComputedHistogram) {
  // w = 1; counts 50 30 10 5 0 0 3 0 0 2 (total 100). The CDF is linear inside each bin.
  const AbsHistogram h = make_hist(10.0, {50, 30, 10, 5, 0, 0, 3, 0, 0, 2});
  EXPECT_DOUBLE_EQ(calib::percentile_threshold(h, 50), 1.0);   // bin 0 full: its upper edge
  EXPECT_DOUBLE_EQ(calib::percentile_threshold(h, 25), 0.5);   // half of bin 0
  EXPECT_DOUBLE_EQ(calib::percentile_threshold(h, 85), 2.5);   // 80 below, 5 of bin 2's 10
  EXPECT_DOUBLE_EQ(calib::percentile_threshold(h, 90), 3.0);
  EXPECT_DOUBLE_EQ(calib::percentile_threshold(h, 96), 6.0 + 1.0 / 3.0);  // 95 below, 1 of 3
  EXPECT_DOUBLE_EQ(calib::percentile_threshold(h, 99), 9.5);   // empty bins skipped: 98 below
  EXPECT_DOUBLE_EQ(calib::percentile_threshold(h, 100), 10.0);
  EXPECT_THROW(calib::percentile_threshold(h, 0), InputError);
  EXPECT_THROW(calib::percentile_threshold(h, 100.5), InputError);
  EXPECT_EQ(calib::percentile_threshold(make_hist(3.0, {0, 0, 0}), 99), 0.0);
}

TEST(CalibChoose, MinMaxNamesAndZeroTensors) {
  TensorStats s;
  s.name = "t";
  s.min = -3;
  s.max = 2;
  EXPECT_EQ(calib::choose_threshold(s, calib::Method::kMinMax), 3.0);
  // No histogram for a histogram method: a bug of the caller, not the user's.
  EXPECT_THROW(calib::choose_threshold(s, calib::Method::kEntropy), InternalError);
  TensorStats zero;
  EXPECT_EQ(calib::choose_threshold(zero, calib::Method::kKl), 0.0);
  for (auto m : {calib::Method::kMinMax, calib::Method::kPercentile, calib::Method::kMse,
                 calib::Method::kEntropy, calib::Method::kKl})
    EXPECT_EQ(calib::parse_method(calib::method_name(m)), m);
  try {
    calib::parse_method("kld");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("kld"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("entropy"), std::string::npos);
  }
}

}  // namespace
}  // namespace repq::test
