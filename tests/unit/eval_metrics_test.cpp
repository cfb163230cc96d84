#include <gtest/gtest.h>

#include <cmath>

#include "repq/error.h"
#include "repq/eval/metrics.h"

namespace repq {
namespace {

TEST(EvalMetrics, SqnrKnownValues) {
  const float x[] = {3.0f, 4.0f};
  const float y[] = {3.0f, 4.5f};  // signal 25, noise 0.25 -> 20 dB
  EXPECT_NEAR(sqnr_db(x, y, 2), 20.0, 1e-9);
  EXPECT_EQ(sqnr_db(x, x, 2), kMaxSqnrDb);
  const float z[] = {0.0f, 0.0f};
  EXPECT_EQ(sqnr_db(z, x, 2), -kMaxSqnrDb);
}

TEST(EvalMetrics, CosineKnownValues) {
  const float a[] = {1.0f, 0.0f}, b[] = {0.0f, 2.0f}, c[] = {2.0f, 0.0f}, d[] = {-1.0f, 0.0f};
  EXPECT_NEAR(cosine_similarity(a, b, 2), 0.0, 1e-12);
  EXPECT_NEAR(cosine_similarity(a, c, 2), 1.0, 1e-12);
  EXPECT_NEAR(cosine_similarity(a, d, 2), -1.0, 1e-12);
}

TEST(EvalMetrics, TopKOrderAndTies) {
  const Tensor t = Tensor::from_vector<float>({2, 4}, {0.1f, 0.9f, 0.5f, 0.9f, 4, 3, 2, 1});
  EXPECT_EQ(top_k(t, 0, 3), (std::vector<int64_t>{1, 3, 2}));  // tie: lower index first
  EXPECT_EQ(top_k(t, 1, 10), (std::vector<int64_t>{0, 1, 2, 3}));
}

TEST(EvalMetrics, AccuracyCountsTop1Top5AndSkipsUnlabelled) {
  // 6 classes; row 0 correct at top-1, row 1 correct at rank 5, row 2 wrong, row 3 unlabelled.
  const Tensor t = Tensor::from_vector<float>(
      {4, 6}, {9, 1, 1, 1, 1, 1,  6, 5, 4, 3, 2, 1,  1, 2, 3, 4, 5, 6,  1, 1, 1, 1, 1, 1});
  AccuracyMeter m;
  m.add(t, {0, 4, 0, -1});
  EXPECT_EQ(m.count(), 3);
  EXPECT_NEAR(m.top1(), 1.0 / 3, 1e-12);
  EXPECT_NEAR(m.top5(), 2.0 / 3, 1e-12);
  EXPECT_THROW(m.add(t, {0, 1}), InternalError);
  EXPECT_THROW(m.add(t, {0, 1, 2, 6}), InputError);
}

TEST(EvalMetrics, AgreementAndSqnr) {
  const Tensor ref = Tensor::from_vector<float>({2, 2}, {3, 4, 1, 0});
  const Tensor q = Tensor::from_vector<float>({2, 2}, {3, 4.5f, 0, 1});
  AgreementMeter m;
  m.add(ref, q);
  EXPECT_EQ(m.count(), 2);
  EXPECT_NEAR(m.top1_agreement(), 0.5, 1e-12);  // row 0 agrees (class 1), row 1 does not
  // row 0: 20 dB; row 1: signal 1, noise 2 -> -3.0103 dB
  EXPECT_NEAR(m.mean_sqnr_db(), (20.0 + 10 * std::log10(0.5)) / 2, 1e-9);
  EXPECT_NEAR(m.max_abs_diff(), 1.0, 1e-12);
  EXPECT_THROW(m.add(ref, Tensor::from_vector<float>({1, 2}, {1, 2})), InputError);
}

}  // namespace
}  // namespace repq
