// kl / entropy calibrators with the candidate screening split over threads: the same
// threshold (bit for bit) as one thread, on 2048-bin histograms of several shapes (fast decay
// with far outliers, sparse with empty bins, flat), kl at 128 and 256 levels.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "repq/calib/calibrators.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

calib::AbsHistogram shaped(int shape) {
  calib::AbsHistogram h;
  h.amax = 6.5;
  h.counts.assign(2048, 0);
  const auto noise = random_floats(2048, 77u + static_cast<uint32_t>(shape), 0.0f, 1.0f);
  for (size_t b = 0; b < 2048; ++b) {
    const double x = static_cast<double>(b) / 2048.0;
    double c = 0;
    if (shape == 0) c = 1e6 * std::exp(-40.0 * x) + (b > 1900 && b % 37 == 0 ? 3 : 0);  // tail + outliers
    if (shape == 1) c = b % 5 == 0 ? 5e4 * std::exp(-4.0 * x) * noise[b] : 0;           // sparse
    if (shape == 2) c = 1000 + 50 * noise[b];                                             // flat
    h.counts[b] = static_cast<uint64_t>(c);
  }
  return h;
}

TEST(CalibKlThreads, SplitScreeningGivesTheSameThreshold) {
  // 3 threads: uneven candidate ranges (the screening of 2048 bins at 128 levels is split into
  // at most 3 parts). The entropy variant at 128 levels only (TensorRT's).
  for (int shape = 0; shape < 3; ++shape) {
    const auto h = shaped(shape);
    for (int levels : {128, 256}) {
      const double kl1 = calib::kl_threshold(h, levels, 1);
      EXPECT_GT(kl1, 0.0);
      EXPECT_LE(kl1, h.amax);
      EXPECT_EQ(calib::kl_threshold(h, levels, 3), kl1) << shape << " " << levels;
    }
    EXPECT_EQ(calib::entropy_threshold(h, 128, 3), calib::entropy_threshold(h, 128, 1)) << shape;
  }
  // The screening does pick different candidates: a flat histogram keeps (almost) the whole
  // range, the fast-decaying one with a few far outliers is clipped.
  EXPECT_GT(calib::kl_threshold(shaped(2), 128, 2), 0.95 * 6.5);
  EXPECT_LT(calib::kl_threshold(shaped(0), 128, 2), 0.5 * 6.5);
}

}  // namespace
}  // namespace repq::test
