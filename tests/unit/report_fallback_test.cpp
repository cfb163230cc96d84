// Partial quantization (report/fallback.h) on the bundled MobileOne with per-tensor weights,
// which flips many predictions fully quantized (models/README.md: per-tensor W8 loses ~10
// points): fallback_auto reaches the agreement target keeping few layers in float, the most
// sensitive first, and the result's plan keeps exactly those layers float.
#include <gtest/gtest.h>

#include <algorithm>

#include "repq/error.h"
#include "repq/calib/calibrators.h"
#include "repq/ir/onnx_io.h"
#include "repq/quant/plan.h"
#include "repq/report/fallback.h"
#include "repq/runtime/executor.h"
#include "support/test_util.h"

namespace repq::report {
namespace {

data::Dataset fashion(int64_t limit) {
  data::DatasetOptions o;
  o.preprocess = data::Preprocess::from_preset("none");
  o.preprocess.set("color", "grey");
  o.preprocess.set("mean", "0.2860");
  o.preprocess.set("std", "0.3530");
  o.limit = limit;
  o.threads = 2;
  return data::Dataset::open(test::source_dir() + "/models/data/fashion_mnist/calib", o);
}

quant::QuantizeOptions per_tensor() {
  quant::QuantizeOptions o;
  o.weights = quant::WeightMode::kPerTensor;
  o.collect.progress = false;
  o.collect.threads = 2;
  return o;
}

TEST(ReportFallback, MobileOnePerTensorReachesTargetWithFewLayersFloat) {
  const Model m = load_model(test::source_dir() + "/models/mobileone/mobileone.train.onnx");
  const data::Dataset ds = fashion(64);
  const FallbackResult r = fallback_auto(m, ds, per_tensor(), 0.98);
  ASSERT_FALSE(r.agreement.empty());
  EXPECT_EQ(r.samples, 64);
  EXPECT_LT(r.agreement.front(), 0.98);  // fully quantized misses it
  EXPECT_TRUE(r.reached) << r.summary();
  EXPECT_GE(r.agreement.back(), 0.98);
  EXPECT_GE(r.kept_float.size(), 1u);
  EXPECT_LE(r.kept_float.size(), 3u) << r.summary();
  EXPECT_EQ(r.agreement.size(), r.kept_float.size() + 1);
  // Kept in ranking order, the most sensitive first, each with its isolated SQNR.
  for (size_t i = 0; i < r.kept_float.size(); ++i) {
    EXPECT_EQ(r.kept_float[i].layer, r.ranking.at(i));
    if (i > 0) {
      EXPECT_LE(r.kept_float[i - 1].isolated_sqnr_db, r.kept_float[i].isolated_sqnr_db);
    }
  }
  // The final plan has none of them as a quantized layer, and the QDQ model runs.
  for (const auto& k : r.kept_float) {
    EXPECT_EQ(r.result.plan.layer(k.layer), nullptr) << k.layer;
    EXPECT_NE(r.summary().find(k.layer), std::string::npos);
  }
  Executor ex(r.result.qdq, ExecutorOptions{2});
  EXPECT_EQ(ex.output_names().size(), 1u);
}

TEST(ReportFallback, TargetAlreadyMetKeepsEverythingQuantized) {
  const Model m = load_model(test::source_dir() + "/models/mobileone/mobileone.train.onnx");
  const data::Dataset ds = fashion(16);
  const FallbackResult r = fallback_auto(m, ds, per_tensor(), 0.0);
  EXPECT_TRUE(r.reached);
  EXPECT_TRUE(r.kept_float.empty());
  EXPECT_EQ(r.agreement.size(), 1u);
  EXPECT_THROW(fallback_auto(m, ds, per_tensor(), 1.5), InputError);
}

// With nothing to keep float, fallback's plan is quantize()'s for every activation method:
// entropy calibrates before the Relu, kl drops the Relu zeros, the network input and the CFWS
// halves get min-max parameters (pipeline_points / pipeline_plan), and calib_samples matches.
TEST(ReportFallback, PlanEqualsQuantizePlanForEachMethod) {
  const Model m = load_model(test::source_dir() + "/models/mobileone/mobileone.train.onnx");
  const data::Dataset ds = fashion(8);
  for (const calib::Method method : {calib::Method::kMinMax, calib::Method::kPercentile,
                                     calib::Method::kEntropy, calib::Method::kKl}) {
    quant::QuantizeOptions o = per_tensor();
    o.weights = quant::WeightMode::kCfws;
    o.act = method;
    const FallbackResult r = fallback_auto(m, ds, o, 0.0);
    ASSERT_TRUE(r.kept_float.empty());
    const quant::QuantizeResult q = quant::quantize(m, ds, o);
    EXPECT_EQ(quant::plan_to_json(r.result.plan), quant::plan_to_json(q.plan))
        << calib::method_name(method);
  }
}

}  // namespace
}  // namespace repq::report
