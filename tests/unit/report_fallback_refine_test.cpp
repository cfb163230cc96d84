// --fallback auto with --refine-act (report/fallback.h): the clips are refined once on the
// fully quantized model, and the written model is `quantize --exclude <kept>` (without
// refinement) whose activations take the refined plan's clips where both quantize them the same
// way (quant::carry_refined_clips). Checked here by building that model independently.
#include <gtest/gtest.h>

#include <algorithm>

#include "repq/ir/onnx_io.h"
#include "repq/quant/plan.h"
#include "repq/quant/refine.h"
#include "repq/report/fallback.h"
#include "support/quant_test_util.h"
#include "support/test_util.h"

namespace repq::report {
namespace {

TEST(ReportFallbackRefine, ResultIsExcludeWithTheRefinedClips) {
  const Model m = load_model(test::source_dir() + "/models/mobileone/mobileone.train.onnx");
  const data::Dataset ds = test::fashion_calib(16);
  quant::QuantizeOptions o;
  o.weights = quant::WeightMode::kPerTensor;  // flips predictions: layers get kept float
  o.act = calib::Method::kPercentile;
  o.collect.progress = false;
  o.collect.threads = 2;
  o.refine_act = true;
  FallbackSearch s;
  s.candidates = 2;
  s.max_float = 2;
  const FallbackResult r = fallback_auto(m, ds, o, 1.0, s);
  ASSERT_TRUE(r.result.refine.ran);
  std::vector<std::string> kept;
  for (const auto& k : r.kept_float) kept.push_back(k.layer);
  ASSERT_FALSE(kept.empty()) << r.summary();
  // The refinement is quantize --refine-act's, on the fully quantized model.
  const quant::QuantizeResult refined = quant::quantize(m, ds, o);
  EXPECT_EQ(refined.refine.sqnr_after, r.result.refine.sqnr_after);
  EXPECT_EQ(refined.refine.steps.size(), r.result.refine.steps.size());
  ASSERT_FALSE(refined.refine.steps.empty());
  // The written model: quantize --exclude <kept>, the refined clips carried over.
  quant::QuantizeOptions ex = o;
  ex.refine_act = false;
  ex.exclude = kept;
  const quant::QuantizeResult plain = quant::quantize(m, ds, ex);
  quant::QuantizeResult want = plain;
  EXPECT_GT(quant::carry_refined_clips(refined.plan, want.plan), 0u);
  EXPECT_EQ(quant::plan_to_json(want.plan), quant::plan_to_json(r.result.plan));
  EXPECT_EQ(serialize_model(quant::export_qdq(want.fused, want.plan)), serialize_model(r.result.qdq));
  // The carried clips matter: some refined tensor stays quantized with a moved clip.
  EXPECT_NE(quant::plan_to_json(plain.plan), quant::plan_to_json(r.result.plan));
  bool moved = false;
  for (const auto& st : refined.refine.steps)
    if (const quant::ActivationQuant* a = r.result.plan.activation(st.tensor))
      moved = moved || a->threshold == st.threshold_after;
  EXPECT_TRUE(moved);
  // The first step's measure is the refined model's, not the calibrator's.
  ASSERT_FALSE(r.logit_sqnr.empty());
}

// carry_refined_clips by hand: only tensors quantized the same way take the refined clip.
TEST(ReportFallbackRefine, CarryTakesOnlyMatchingTensors) {
  quant::QuantPlan refined, plan;
  quant::ActivationQuant a;
  a.tensor = "t";
  a.calibrated_on = "t";
  a.method = "percentile";
  a.threshold = 1;
  a.scale = 1.0f / 255;
  plan.activations = {a, a, a};
  plan.activations[1].tensor = plan.activations[1].calibrated_on = "u";
  plan.activations[2].tensor = plan.activations[2].calibrated_on = "v";
  refined.activations = plan.activations;
  for (auto& x : refined.activations) {
    x.threshold = 2;
    x.scale = 2.0f / 255;
    x.clipped = 0.25;
  }
  refined.activations[1].shared_with = "t";  // another group: not taken
  refined.activations.pop_back();            // v: not quantized in the refined plan
  EXPECT_EQ(quant::carry_refined_clips(refined, plan), 1u);
  EXPECT_EQ(plan.activations[0].threshold, 2);
  EXPECT_EQ(plan.activations[0].scale, 2.0f / 255);
  EXPECT_EQ(plan.activations[0].clipped, 0.25);
  EXPECT_EQ(plan.activations[1].threshold, 1);
  EXPECT_EQ(plan.activations[2].threshold, 1);
}

}  // namespace
}  // namespace repq::report
