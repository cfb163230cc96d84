// The mse calibrator: its expected error against hand-computed integrals and against a
// brute-force numerical integration written independently here, and its choice of threshold.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "repq/calib/calibrators.h"
#include "repq/calib/histogram.h"

namespace repq::test {
namespace {

using calib::AbsHistogram;

AbsHistogram make_hist(double amax, std::vector<uint64_t> counts) {
  AbsHistogram h;
  h.amax = amax;
  h.counts = std::move(counts);
  return h;
}

// Midpoint-rule integration of (x - q(x))^2 over each bin (its mass uniform), q = the grid
// {0, s, ..., levels*s} with values above t clipped to t.
double brute_error(const AbsHistogram& h, double t, int levels, int sub = 4000) {
  const double w = h.amax / static_cast<double>(h.counts.size());
  const double s = t / levels;
  double err = 0, n = 0;
  for (size_t j = 0; j < h.counts.size(); ++j) {
    if (h.counts[j] == 0) continue;
    double acc = 0;
    for (int k = 0; k < sub; ++k) {
      const double x = (static_cast<double>(j) + (k + 0.5) / sub) * w;
      const double q = x >= t ? t : s * std::round(x / s);
      acc += (x - q) * (x - q);
    }
    err += static_cast<double>(h.counts[j]) * acc / sub;
    n += static_cast<double>(h.counts[j]);
  }
  return err / n;
}

TEST(CalibMse, ExpectedErrorOfOneUniformBinByHand) {
  const AbsHistogram h = make_hist(1.0, {10});
  // Grid {0, 1}: rounding error of U[0,1] is 2 * (1/2)^3 / 3 = 1/12.
  EXPECT_NEAR(calib::expected_sq_error(h, 1.0, 1), 1.0 / 12, 1e-15);
  // Grid {0, 1/2}: rounding on [0, 1/2] gives (1/2)^3/12 = 1/96, clipping on [1/2, 1] gives
  // (1/2)^3/3 = 4/96.
  EXPECT_NEAR(calib::expected_sq_error(h, 0.5, 1), 5.0 / 96, 1e-15);
  // Grid with 4 levels up to 1 (s = 1/4): s^2/12 (whole periods plus the half period at 0
  // and at the top sum to the same).
  EXPECT_NEAR(calib::expected_sq_error(h, 1.0, 4), 1.0 / (16 * 12), 1e-15);
}

std::vector<uint64_t> decaying_with_outliers(size_t bins) {
  std::vector<uint64_t> c(bins, 0);
  for (size_t j = 0; j < bins; ++j) c[j] = static_cast<uint64_t>(std::llround(1000 * std::exp(-double(j) / 3.0)));
  c[bins - 1] += 2;
  c[bins / 2] += 1;
  return c;
}

TEST(CalibMse, ExpectedErrorMatchesBruteForce) {
  const AbsHistogram h = make_hist(8.0, decaying_with_outliers(32));
  for (int levels : {1, 3, 7, 127}) {
    for (double t : {0.25, 1.0, 1.3, 2.75, 4.0, 7.9, 8.0}) {
      const double brute = brute_error(h, t, levels);
      EXPECT_NEAR(calib::expected_sq_error(h, t, levels), brute, 1e-6 * brute + 1e-12)
          << "levels " << levels << " t " << t;
    }
  }
}

TEST(CalibMse, ThresholdIsTheBruteForceMinimumOverBinEdges) {
  for (int levels : {3, 7, 127}) {
    for (size_t bins : {32u, 96u}) {
      const AbsHistogram h = make_hist(8.0, decaying_with_outliers(bins));
      const double w = h.amax / static_cast<double>(bins);
      double best = 1e300, second = 1e300, best_t = 0;
      for (size_t k = 0; k < bins; ++k) {
        const double t = static_cast<double>(k + 1) * w;
        const double e = brute_error(h, t, levels, 400);
        if (e < best) {
          second = best;
          best = e;
          best_t = t;
        } else if (e < second) {
          second = e;
        }
      }
      ASSERT_GT(second - best, 1e-4 * best) << "the test needs a clear minimum";
      EXPECT_DOUBLE_EQ(calib::mse_threshold(h, levels), best_t) << "levels " << levels << " bins " << bins;
    }
  }
  // Fewer levels clip harder: the outliers at the top are not worth the coarser grid.
  const AbsHistogram h = make_hist(8.0, decaying_with_outliers(96));
  EXPECT_LT(calib::mse_threshold(h, 3), calib::mse_threshold(h, 127));
  EXPECT_LT(calib::mse_threshold(h, 127), 8.0);
}

TEST(CalibMse, ChooseThresholdUsesTheLevels) {
  calib::TensorStats s;
  s.name = "t";
  s.min = 0;
  s.max = 8;
  s.hist = make_hist(8.0, decaying_with_outliers(96));
  calib::CalibParams p;
  p.levels = 3;
  EXPECT_EQ(calib::choose_threshold(s, calib::Method::kMse, p), calib::mse_threshold(s.hist, 3));
  p.levels = 255;
  EXPECT_EQ(calib::choose_threshold(s, calib::Method::kMse, p), calib::mse_threshold(s.hist, 255));
}

}  // namespace
}  // namespace repq::test
