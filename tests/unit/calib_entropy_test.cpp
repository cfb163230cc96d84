// The entropy (TensorRT) and kl (improved, safe) calibrators: known thresholds, the divergence
// of single candidates against a plain long-double reference written from the definitions,
// the full argmin against the reference, and numerical safety (empty bins, 1e12 counts).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
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

// The definitions, literally: P = first i bins, outliers added to bin i-1; level of bin j is
// floor(j*L/i); Q_j = (level's original sum) / (its non-empty bins) on non-empty bins, where
// non-empty means the original count (entropy) or P (kl); both normalized; sum p ln(p/q).
long double reference_divergence(const std::vector<uint64_t>& bins, int i, int levels, bool kl) {
  std::vector<long double> p(static_cast<size_t>(i)), q(static_cast<size_t>(i), 0);
  long double outliers = 0;
  for (size_t j = static_cast<size_t>(i); j < bins.size(); ++j) outliers += bins[j];
  for (int j = 0; j < i; ++j) p[j] = bins[j];
  p[i - 1] += outliers;
  std::vector<long double> sum(levels, 0);
  std::vector<int> nonzero(levels, 0);
  for (int j = 0; j < i; ++j) {
    const int l = static_cast<int>((static_cast<int64_t>(j) * levels) / i);
    sum[l] += bins[j];
    nonzero[l] += kl ? p[j] > 0 : bins[j] > 0;
  }
  for (int j = 0; j < i; ++j) {
    const int l = static_cast<int>((static_cast<int64_t>(j) * levels) / i);
    const bool counted = kl ? p[j] > 0 : bins[j] > 0;
    if (counted) q[j] = sum[l] / nonzero[l];
  }
  long double sp = 0, sq = 0;
  for (int j = 0; j < i; ++j) {
    sp += p[j];
    sq += q[j];
  }
  long double d = 0;
  for (int j = 0; j < i; ++j) {
    if (p[j] == 0) continue;
    if (q[j] == 0) return std::numeric_limits<long double>::infinity();
    d += (p[j] / sp) * std::log((p[j] / sp) / (q[j] / sq));
  }
  return d;
}

// The reference's choice: smallest divergence, the largest i on ties, T = i * w.
double reference_threshold(const AbsHistogram& h, int levels, bool kl) {
  const int nb = static_cast<int>(h.counts.size());
  long double best = std::numeric_limits<long double>::infinity();
  int best_i = nb;
  for (int i = levels; i <= nb; ++i) {
    const long double d = reference_divergence(h.counts, i, levels, kl);
    if (d <= best) {
      best = d;
      best_i = i;
    }
  }
  return best_i * h.amax / nb;
}

// Mass concentrated near 0 (decaying) with a long sparse tail out to the last bin.
std::vector<uint64_t> spike_and_tail(size_t bins, double scale) {
  std::vector<uint64_t> c(bins, 0);
  for (size_t j = 0; j < bins / 10; ++j) c[j] = static_cast<uint64_t>(std::llround(scale * std::exp(-double(j) / 8.0))) + 1;
  c[bins * 3 / 10] = 2;
  c[bins * 6 / 10] = 1;
  c[bins - 1] = 1;
  return c;
}

TEST(CalibEntropy, AllMassInTheFirst64BinsGivesTheFirstCandidate) {
  // Bins 0..63 hold increasing counts, the rest is empty: at i = 128 every level is one bin
  // and Q = P (KL 0); every larger i merges unequal neighbours (KL > 0). T = 128 w.
  std::vector<uint64_t> c(2048, 0);
  for (size_t j = 0; j < 64; ++j) c[j] = 1000 + 37 * j;
  const AbsHistogram h = make_hist(2048.0, c);
  EXPECT_EQ(calib::entropy_divergence(h, 128), 0.0);
  EXPECT_GT(calib::entropy_divergence(h, 129), 0.0);
  EXPECT_DOUBLE_EQ(calib::entropy_threshold(h), 128.0);
  EXPECT_DOUBLE_EQ(calib::kl_threshold(h), 128.0);
}

TEST(CalibEntropy, UniformHistogramKeepsTheWholeRange) {
  // Any i < 2048 folds outliers into bin i-1 (KL > 0); i = 2048 merges equal bins (KL 0).
  const AbsHistogram h = make_hist(5.0, std::vector<uint64_t>(2048, 100));
  EXPECT_EQ(calib::entropy_divergence(h, 2048), 0.0);
  EXPECT_GT(calib::entropy_divergence(h, 2047), 0.0);
  EXPECT_DOUBLE_EQ(calib::entropy_threshold(h), 5.0);
  EXPECT_DOUBLE_EQ(calib::kl_threshold(h), 5.0);
}

TEST(CalibEntropy, SpikeWithSparseTailClipsFarBelowTheMaximum) {
  const AbsHistogram h = make_hist(2048.0, spike_and_tail(2048, 1e6));
  const double t = calib::entropy_threshold(h);
  EXPECT_LT(t, 2048.0 / 2);
  EXPECT_GE(t, 128.0);
  const double k = calib::kl_threshold(h);
  EXPECT_LT(k, 2048.0 / 2);
  // The kl variant may stop in an empty bin (entropy cannot: KL would be infinite there).
  EXPECT_EQ(h.counts[static_cast<size_t>(t) - 1] > 0 || t == 2048.0, true);
}

TEST(CalibEntropy, DivergenceOfCandidatesMatchesTheReference) {
  const AbsHistogram h = make_hist(2048.0, spike_and_tail(2048, 1e6));
  for (int i : {128, 129, 200, 204, 205, 206, 300, 615, 616, 1229, 2047, 2048}) {
    for (bool kl : {false, true}) {
      const long double ref = reference_divergence(h.counts, i, 128, kl);
      const double got = kl ? calib::kl_divergence(h, i) : calib::entropy_divergence(h, i);
      if (std::isinf(ref)) {
        EXPECT_TRUE(std::isinf(got) && got > 0) << "i " << i << " kl " << kl;
      } else {
        EXPECT_NEAR(got, static_cast<double>(ref), 1e-12 + 1e-9 * static_cast<double>(ref)) << "i " << i << " kl " << kl;
      }
    }
  }
  // Bin 615 is empty and outliers fold into it: TensorRT's KL is infinite; kl's is finite,
  // its top level (bins 612..615) holds in-range values (bin 614).
  ASSERT_EQ(h.counts[615], 0u);
  ASSERT_GT(h.counts[614], 0u);
  EXPECT_TRUE(std::isinf(calib::entropy_divergence(h, 616)));
  EXPECT_TRUE(std::isfinite(calib::kl_divergence(h, 616)));
  // Bin 205 is empty and alone in the top level of i = 206: both reject it.
  EXPECT_TRUE(std::isinf(calib::kl_divergence(h, 206)));
}

TEST(CalibEntropy, ThresholdIsTheReferenceArgmin) {
  // 512 bins keep the long-double reference scan quick.
  for (double scale : {1e3, 1e6}) {
    const AbsHistogram h = make_hist(3.0, spike_and_tail(512, scale));
    EXPECT_DOUBLE_EQ(calib::entropy_threshold(h), reference_threshold(h, 128, false)) << scale;
    EXPECT_DOUBLE_EQ(calib::kl_threshold(h), reference_threshold(h, 128, true)) << scale;
    EXPECT_DOUBLE_EQ(calib::kl_threshold(h, 256), reference_threshold(h, 256, true)) << scale;
  }
}

TEST(CalibKl, HugeCountsStayAccurate) {
  std::vector<uint64_t> c(2048, 0);
  for (size_t j = 0; j < 300; ++j) c[j] = 1000000000000ull * (j % 5 + 1);
  c[1000] = 3;
  c[2047] = 1;
  const AbsHistogram h = make_hist(1.0, c);
  for (int i : {128, 300, 301, 1001, 1002, 2048}) {
    const long double ref = reference_divergence(c, i, 128, true);
    const double got = calib::kl_divergence(h, i);
    ASSERT_TRUE(std::isfinite(got)) << i;
    EXPECT_NEAR(got, static_cast<double>(ref), 1e-12 + 1e-9 * static_cast<double>(ref)) << i;
  }
  const double t = calib::kl_threshold(h);
  EXPECT_GT(t, 0.0);
  EXPECT_LE(t, 1.0);
}

TEST(CalibKl, EmptyBinsNeverGiveNaNOrNegativeDivergence) {
  // 20 scattered non-empty bins among 2048.
  std::vector<uint64_t> c(2048, 0);
  for (size_t k = 0; k < 20; ++k) c[(k * 97 + 5) % 2048] = k + 1;
  const AbsHistogram h = make_hist(4.0, c);
  int finite = 0;
  for (int i = 128; i <= 2048; ++i) {
    const double d = calib::kl_divergence(h, i);
    ASSERT_FALSE(std::isnan(d)) << i;
    ASSERT_GE(d, -1e-12) << i;
    if (std::isinf(d)) {
      // Only when the top level [ceil(127 i / 128), i) holds no in-range value.
      const int64_t lo = (127 * static_cast<int64_t>(i) + 127) / 128;
      uint64_t in_level = 0;
      for (int64_t j = lo; j < i; ++j) in_level += c[static_cast<size_t>(j)];
      EXPECT_EQ(in_level, 0u) << i;
    } else {
      ++finite;
    }
  }
  EXPECT_GT(finite, 100);
  const double t = calib::kl_threshold(h);
  EXPECT_TRUE(t > 0 && t <= 4.0);
}

TEST(CalibKl, SingleNonEmptyBin) {
  std::vector<uint64_t> c(2048, 0);
  c[700] = 1000000000000ull;
  const AbsHistogram h = make_hist(2.0, c);
  // Folded or not, P is one bin and Q puts all its mass there: D = 0 for every i >= 701; below,
  // the top level is empty of in-range values and the candidate is rejected.
  EXPECT_EQ(calib::kl_divergence(h, 701), 0.0);
  EXPECT_EQ(calib::kl_divergence(h, 2048), 0.0);
  EXPECT_TRUE(std::isinf(calib::kl_divergence(h, 128)));
  EXPECT_DOUBLE_EQ(calib::kl_threshold(h), 2.0);  // the largest i on ties
  EXPECT_DOUBLE_EQ(calib::entropy_threshold(h), 2.0);
}

TEST(CalibKl, LevelsFollowTheTensorSign) {
  calib::TensorStats s;
  s.name = "relu_out";
  s.min = 0;
  s.max = 3;
  s.hist = make_hist(3.0, spike_and_tail(2048, 1e5));
  calib::CalibParams p;  // levels 127: signed, 128 target levels
  EXPECT_EQ(calib::choose_threshold(s, calib::Method::kKl, p), calib::kl_threshold(s.hist, 128));
  p.levels = 255;  // non-negative: 256 target levels
  EXPECT_EQ(calib::choose_threshold(s, calib::Method::kKl, p), calib::kl_threshold(s.hist, 256));
  // entropy is always TensorRT's 128.
  EXPECT_EQ(calib::choose_threshold(s, calib::Method::kEntropy, p), calib::entropy_threshold(s.hist, 128));
}

}  // namespace
}  // namespace repq::test
