// fallback_auto's scores (report/fallback_stepper.h) on logits with answers computed by hand,
// and the search on top of --method gptq: the result is `quantize --exclude` of the layers kept.
#include <gtest/gtest.h>

#include <cmath>

#include "report/fallback_stepper.h"
#include "repq/error.h"
#include "repq/ir/onnx_io.h"
#include "repq/quant/plan.h"
#include "repq/report/fallback.h"
#include "support/quant_test_util.h"
#include "support/test_util.h"

namespace repq::report {
namespace {

Tensor logits(const std::vector<float>& v, int64_t rows) {
  Tensor t(DType::kFloat32, Shape{rows, static_cast<int64_t>(v.size()) / rows});
  std::copy(v.begin(), v.end(), t.mutable_data<float>());
  return t;
}

// KL(softmax(f) || softmax(q)) straight from the definition.
double kl(const std::vector<double>& f, const std::vector<double>& q) {
  double zf = 0, zq = 0, s = 0;
  for (size_t i = 0; i < f.size(); ++i) zf += std::exp(f[i]), zq += std::exp(q[i]);
  for (size_t i = 0; i < f.size(); ++i) s += std::exp(f[i]) / zf * std::log((std::exp(f[i]) / zf) / (std::exp(q[i]) / zq));
  return s;
}

// Sample 0: float [1, 0, 0] (class 0, margin 1), quantized [0.5, 0, 0.2]: agrees, margin 0.3.
// Sample 1: float [0, 2, 1] (class 1, margin 1), quantized [0, 1, 1.5]: flips, margin -0.5.
TEST(ReportFallbackScore, KnownAnswers) {
  const Tensor f = logits({1, 0, 0, 0, 2, 1}, 2), q = logits({0.5F, 0, 0.2F, 0, 1, 1.5F}, 2);
  for (const double ratio : {0.0, 0.25, 0.5}) {
    detail::ScoreSums sums(ratio);
    sums.add(f, q);
    const detail::Score s = sums.score();
    EXPECT_EQ(s.count, 2);
    EXPECT_EQ(s.agree, 1);
    EXPECT_EQ(s.strict, ratio <= 0.3 ? 1 : 0) << ratio;  // 0.3 >= ratio * 1
    EXPECT_NEAR(s.margin, (0.3 - 0.5) / 2, 1e-6);
    // sum f^2 = 6, sum (f - q)^2 = 0.25 + 0.04 + 1 + 0.25 = 1.54
    EXPECT_NEAR(s.sqnr, 10 * std::log10(6 / 1.54), 1e-5);
    EXPECT_NEAR(s.kl, (kl({1, 0, 0}, {0.5, 0, 0.2}) + kl({0, 2, 1}, {0, 1, 1.5})) / 2, 1e-6);
    EXPECT_DOUBLE_EQ(s.agreement(), 0.5);
  }
  // Identical logits: no divergence, every sample keeps its whole margin.
  detail::ScoreSums same(1.0);
  same.add(f, f);
  EXPECT_EQ(same.score().strict, 2);
  EXPECT_NEAR(same.score().kl, 0, 1e-12);
  EXPECT_NEAR(same.score().margin, 1.0, 1e-12);
  // The criteria: larger is better, KL inverted; agreement breaks ties by SQNR.
  detail::Score a, b;
  a.agree = b.agree = 3;
  a.sqnr = 10, b.sqnr = 12;
  a.kl = 0.1, b.kl = 0.2;
  a.margin = 2, b.margin = 1;
  EXPECT_TRUE(b.better_than(a, FallbackCriterion::kAgreement));
  EXPECT_TRUE(b.better_than(a, FallbackCriterion::kSqnr));
  EXPECT_TRUE(a.better_than(b, FallbackCriterion::kKl));
  EXPECT_TRUE(a.better_than(b, FallbackCriterion::kMargin));
  a.agree = 4;
  EXPECT_TRUE(a.better_than(b, FallbackCriterion::kAgreement));
  EXPECT_EQ(parse_criterion("kl"), FallbackCriterion::kKl);
  EXPECT_STREQ(criterion_name(FallbackCriterion::kMargin), "margin");
  EXPECT_THROW(parse_criterion("loss"), InputError);
}

// Clopper-Pearson one-sided bound: k = n solves p^n = alpha; k = n - 1 solves
// p^n + n p^(n-1) (1 - p) = alpha.
TEST(ReportFallbackScore, BinomialLowerBound) {
  EXPECT_NEAR(binomial_lower_bound(32, 32, 0.05), std::pow(0.05, 1.0 / 32), 1e-9);  // 0.911
  const double p = binomial_lower_bound(127, 128, 0.05);
  EXPECT_NEAR(std::pow(p, 128) + 128 * std::pow(p, 127) * (1 - p), 0.05, 1e-9);
  EXPECT_GT(p, 0.96);
  EXPECT_LT(p, 0.98);
  EXPECT_EQ(binomial_lower_bound(0, 32, 0.05), 0.0);
  EXPECT_LT(binomial_lower_bound(16, 32, 0.05), 0.5);
}

quant::QuantizeOptions gptq() {
  quant::QuantizeOptions o;
  quant::apply_method_preset("gptq", o);
  o.weights = quant::WeightMode::kGptq;
  o.collect.progress = false;
  o.collect.threads = 2;
  return o;
}

// GPTQ's rounding in every trial (H of the float inputs collected once): the plan equals
// `quantize --method gptq --exclude <kept>` bit for bit, qweight values included.
TEST(ReportFallbackScore, GptqResultEqualsQuantizeWithExclude) {
  const Model m = load_model(test::source_dir() + "/models/mobileone/mobileone.train.onnx");
  const data::Dataset ds = test::fashion_calib(8);
  FallbackSearch s;
  s.candidates = 1;
  s.max_float = 2;
  s.criterion = FallbackCriterion::kSqnr;
  s.margin_ratio = 0.95;  // strict enough that fully quantized misses it (6 of 8 samples)
  quant::QuantizeOptions o = gptq();
  const FallbackResult r = fallback_auto(m, ds, o, 1.0, s);
  ASSERT_FALSE(r.kept_float.empty()) << r.summary();
  EXPECT_LT(r.margin_agreement.front(), 1.0);
  EXPECT_EQ(r.criterion, FallbackCriterion::kSqnr);
  ASSERT_EQ(r.margin_agreement.size(), r.agreement.size());
  ASSERT_EQ(r.kl.size(), r.agreement.size());
  for (size_t i = 0; i < r.agreement.size(); ++i) EXPECT_LE(r.margin_agreement[i], r.agreement[i]);
  EXPECT_EQ(r.reached, r.margin_agreement.back() >= 1.0);
  size_t with_values = 0;
  for (const auto& l : r.result.plan.layers) with_values += l.qweight.empty() ? 0 : 1;
  EXPECT_GT(with_values, 0u);
  for (const auto& k : r.kept_float) {
    o.exclude.push_back(k.layer);
    EXPECT_EQ(r.result.plan.layer(k.layer), nullptr);
  }
  const quant::QuantizeResult q = quant::quantize(m, ds, o);
  EXPECT_EQ(quant::plan_to_json(q.plan), quant::plan_to_json(r.result.plan));
  EXPECT_THROW(fallback_auto(m, ds, gptq(), 0.9, FallbackSearch{6, -1, FallbackCriterion::kKl, 1.5}),
               InputError);
}

// --gptq-inputs quantized: H depends on the other layers' quantization, so the trials use the
// float-input H and the final model is quantized afresh: still `quantize --exclude`.
TEST(ReportFallbackScore, GptqQuantizedInputsResultEqualsQuantizeWithExclude) {
  const Model m = load_model(test::source_dir() + "/models/mobileone/mobileone.train.onnx");
  const data::Dataset ds = test::fashion_calib(8);
  FallbackSearch s;
  s.candidates = 1;
  s.max_float = 1;
  s.margin_ratio = 0.95;
  quant::QuantizeOptions o = gptq();
  o.gptq.quantized_inputs = true;
  const FallbackResult r = fallback_auto(m, ds, o, 1.0, s);
  ASSERT_EQ(r.kept_float.size(), 1u) << r.summary();
  o.exclude = {r.kept_float[0].layer};
  const quant::QuantizeResult q = quant::quantize(m, ds, o);
  EXPECT_EQ(quant::plan_to_json(q.plan), quant::plan_to_json(r.result.plan));
  o.gptq.quantized_inputs = false;  // what the trials used: another rounding
  EXPECT_NE(quant::plan_to_json(quant::quantize(m, ds, o).plan), quant::plan_to_json(r.result.plan));
}

}  // namespace
}  // namespace repq::report
