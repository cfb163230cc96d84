// --refine-act with --fallback auto, with --plan-in, and in `repq report` (the CLI side of
// QuantizeOptions::refine_act; the library side is in tests/unit/*refine*).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "repq/common/atomic_file.h"
#include "repq/quant/plan.h"
#include "support/test_util.h"

namespace repq {
namespace {

using test::run_repq;

std::string models() { return test::source_dir() + "/models"; }
std::string mobileone() { return models() + "/mobileone/mobileone.train.onnx"; }
const std::vector<std::string> kPre = {"--threads", "2", "--num-calib", "16", "--preset", "none", "--color",
                                       "grey", "--mean", "0.2860", "--std", "0.3530"};

std::vector<std::string> with_pre(std::vector<std::string> a) {
  a.insert(a.end(), kPre.begin(), kPre.end());
  return a;
}

// quantize --refine-act --fallback auto: the JSON has both objects, the refinement changed
// clips, and the plan written reproduces the model with --plan-in (also given --refine-act).
TEST(CliFallbackRefine, FallbackWithRefineWritesAPlanThatReproducesIt) {
  test::TempDir tmp;
  const std::string a = tmp.file("a.onnx"), b = tmp.file("b.onnx"), plan = tmp.file("p.json");
  const auto r = run_repq(with_pre({"quantize", mobileone(), "--calib", models() + "/data/fashion_mnist/calib",
                                    "-o", a, "--plan-out", plan, "--method", "percentile", "--weights",
                                    "per-tensor", "--refine-act", "--fallback", "auto", "--min-agreement",
                                    "0.99", "--fallback-candidates", "2", "--json"}));
  ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 3) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j["refine_act"].is_object());
  ASSERT_TRUE(j["fallback"].is_object());
  EXPECT_EQ(j["refine_act"]["samples"], 16);
  EXPECT_FALSE(j["refine_act"]["changed"].empty());
  EXPECT_GE(j["refine_act"]["trials_after_cut"].get<int>(), 1);
  // The first step's logit SQNR is the refined model's.
  EXPECT_NEAR(j["fallback"]["logit_sqnr"][0].get<double>(), j["refine_act"]["logit_sqnr_after"].get<double>(), 3.0);
  const auto p = run_repq({"quantize", mobileone(), "--plan-in", plan, "--refine-act", "-o", b});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(read_file(a), read_file(b));
}

// repq report --refine-act: the clip thresholds in the report are quantize --refine-act's.
TEST(CliFallbackRefine, ReportUsesTheRefinedClips) {
  test::TempDir tmp;
  const std::string plan = tmp.file("p.json");
  const auto q = run_repq(with_pre({"quantize", mobileone(), "--calib", models() + "/data/fashion_mnist/calib",
                                    "-o", tmp.file("q.onnx"), "--plan-out", plan, "--method", "percentile",
                                    "--refine-act", "--json"}));
  ASSERT_EQ(q.exit_code, 0) << q.err;
  const auto changed = nlohmann::json::parse(q.out)["refine_act"]["changed"];
  ASSERT_FALSE(changed.empty());
  const auto rep = run_repq(with_pre({"report", mobileone(), "--calib", models() + "/data/fashion_mnist/calib",
                                      "--method", "percentile", "--refine-act", "--format", "json"}));
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  const quant::QuantPlan p = quant::plan_from_json(read_file(plan), plan);
  int matched = 0, moved = 0;
  const auto layers = nlohmann::json::parse(rep.out)["layers"];
  for (const auto& l : layers) {
    if (!l["act_tensor"].is_string() || !l["act_threshold"].is_number()) continue;
    const quant::ActivationQuant* a = p.activation(l["act_tensor"].get<std::string>());
    ASSERT_NE(a, nullptr);
    EXPECT_DOUBLE_EQ(l["act_threshold"].get<double>(), a->threshold) << a->tensor;
    ++matched;
    for (const auto& c : changed) moved += c["tensor"] == a->tensor;
  }
  EXPECT_GT(matched, 5);
  EXPECT_GT(moved, 0);  // some layer reads a refined tensor
  const auto bad = run_repq({"report", mobileone(), "--static", "--refine-act"});
  EXPECT_EQ(bad.exit_code, 2);
}

}  // namespace
}  // namespace repq
