// Logit refinement of activation clips (quant/refine.h): the clip -> scale / zero point rule
// by hand, and the greedy ladder on a tiny net whose best move is known (a clip at 0.3 of the
// range of uniform data: every x1.25 step up lowers the clipping error (1 - c)^3 / 3).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "repq/data/npy.h"
#include "repq/ir/onnx_io.h"
#include "repq/quant/quantize.h"
#include "repq/quant/refine.h"
#include "support/quant_test_util.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

TEST(CalibRefine, SetActivationClipByHand) {
  quant::ActivationQuant a;
  a.non_negative = true;
  a.min = 0, a.max = 9;
  quant::set_activation_clip(a, 2.55, quant::Target::kOrt);
  EXPECT_FLOAT_EQ(a.scale, 0.01f);
  EXPECT_EQ(a.zero_point, 0);
  EXPECT_DOUBLE_EQ(a.threshold, 2.55);

  quant::ActivationQuant b;  // asymmetric: range [max(min, -t), min(max, t)] with 0 inside
  b.min = -1, b.max = 3;
  quant::set_activation_clip(b, 2, quant::Target::kOrt);  // [-1, 2]: scale 3/255, zp 85
  EXPECT_FLOAT_EQ(b.scale, 3.0f / 255.0f);
  EXPECT_EQ(b.zero_point, 85);
  // [-0.5, 0.5]: the float32 scale 1/255 is 0.0039215689 > 1/255, so 0.5 / scale is
  // 127.49999... and the zero point 127 (not 128).
  quant::set_activation_clip(b, 0.5, quant::Target::kOrt);
  EXPECT_FLOAT_EQ(b.scale, 1.0f / 255.0f);
  EXPECT_EQ(b.zero_point, 127);

  quant::ActivationQuant c;  // tensorrt: int8 [-t, t]
  c.min = -5, c.max = 1;
  quant::set_activation_clip(c, 1.27, quant::Target::kTensorRT);
  EXPECT_FLOAT_EQ(c.scale, 0.01f);
  EXPECT_EQ(c.zero_point, 0);
}

// x -> Conv 1x1 (w 1) -> Relu -> r -> Conv 1x1 (w 1) -> y on 8 samples of 8x8 values spread
// evenly over [0, 1).
TEST(CalibRefine, LadderRaisesATooTightClip) {
  Model m = named_model(R"(g (float[N,1,8,8] x) => (float[N,1,8,8] y)
<float[1,1,1,1] w1 = {1}, float[1] b1 = {0}, float[1,1,1,1] w2 = {1}, float[1] b2 = {0}>
{
  c1 = Conv <kernel_shape = [1,1]> (x, w1, b1)
  r = Relu (c1)
  y = Conv <kernel_shape = [1,1]> (r, w2, b2)
})");
  TempDir dir;
  for (int k = 0; k < 8; ++k) {
    std::vector<float> v(64);
    for (int i = 0; i < 64; ++i) v[size_t(i)] = float(((k * 64 + i) * 37) % 512) / 512.0f;
    data::write_npy(dir.file("s" + std::to_string(k) + ".npy"), Tensor::from_vector<float>({1, 8, 8}, v));
  }
  data::DatasetOptions dopt;
  dopt.threads = 1;
  const auto ds = data::Dataset::open(dir.path().string(), dopt);
  quant::QuantizeOptions o;
  o.act = calib::Method::kMinMax;
  o.collect.threads = 1;
  o.collect.batch = 3;  // batches of 3, 3, 2
  o.collect.progress = false;
  quant::QuantizeResult r = quant::quantize(m, ds, o);
  const quant::ActivationQuant* ra = r.plan.activation("r");
  ASSERT_NE(ra, nullptr);
  EXPECT_DOUBLE_EQ(ra->max, 511.0 / 512.0);
  const double t0 = 0.3 * ra->max;
  for (auto& a : r.plan.activations)
    if (a.tensor == "r") quant::set_activation_clip(a, t0, o.target);

  quant::QuantPlan plan = r.plan;
  const quant::RefineResult rf = quant::refine_activation_clips(r.fused, plan, ds, o);
  // y (at its min-max clip: x0.8 clips, x1.25 is capped at its max): 1 trial, unchanged.
  // r: x0.8 is worse (1 trial), then x1.25 three times, each better (3 trials). x: an input.
  ASSERT_EQ(rf.steps.size(), 1u);
  EXPECT_EQ(rf.steps[0].tensor, "r");
  EXPECT_DOUBLE_EQ(rf.steps[0].threshold_before, t0);
  EXPECT_DOUBLE_EQ(rf.steps[0].threshold_after, t0 * 1.25 * 1.25 * 1.25);
  EXPECT_DOUBLE_EQ(plan.activation("r")->threshold, t0 * 1.25 * 1.25 * 1.25);
  EXPECT_FLOAT_EQ(plan.activation("r")->scale, static_cast<float>(t0 * 1.25 * 1.25 * 1.25 / 255));
  EXPECT_EQ(rf.trials, 1 + 1 + 4);
  EXPECT_GT(rf.sqnr_after, rf.sqnr_before + 3);
  EXPECT_DOUBLE_EQ(rf.sqnr_after, rf.steps[0].sqnr_db);
  // The same SQNR when measured again on the refined plan, and the same result with other
  // batches and threads (deterministic).
  quant::QuantizeOptions o2 = o;
  o2.collect.batch = 8;
  o2.collect.threads = 2;
  quant::QuantPlan plan2 = r.plan;
  const quant::RefineResult rf2 = quant::refine_activation_clips(r.fused, plan2, ds, o2);
  EXPECT_DOUBLE_EQ(plan2.activation("r")->threshold, plan.activation("r")->threshold);
  EXPECT_NEAR(rf2.sqnr_after, rf.sqnr_after, 1e-9);
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// `repq quantize --refine-act` on the bundled MobileOne (8 Fashion-MNIST images): the JSON
// reports a logit SQNR that did not fall, the plan reproduces the refined model byte for byte,
// and the option is refused with --plan-in.
TEST(CalibRefine, CliRefineActPlanRoundTrip) {
  TempDir dir;
  const std::string models = source_dir() + "/models";
  const std::string a = dir.file("a.onnx"), b = dir.file("b.onnx"), plan = dir.file("plan.json");
  const std::vector<std::string> pre = {"--preset", "none", "--color", "grey", "--mean", "0.2860",
                                        "--std", "0.3530", "--threads", "2"};
  std::vector<std::string> args = {"quantize", models + "/mobileone/mobileone.train.onnx", "--calib",
                                   models + "/data/fashion_mnist/calib", "--num-calib", "8",
                                   "--method", "percentile", "--refine-act", "--json", "--plan-out",
                                   plan, "-o", a};
  args.insert(args.end(), pre.begin(), pre.end());
  const CommandResult r = run_repq(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j["refine_act"].is_object());
  EXPECT_GE(j["refine_act"]["logit_sqnr_after"].get<double>(), j["refine_act"]["logit_sqnr_before"].get<double>());
  EXPECT_GE(j["refine_act"]["trials"].get<int>(), 1);
  EXPECT_FALSE(j["refine_act"]["changed"].empty());  // 3 of the 16 clips (measured)
  const quant::QuantPlan p = quant::plan_from_json(slurp(plan), plan);
  for (const auto& c : j["refine_act"]["changed"]) {
    const quant::ActivationQuant* q = p.activation(c["tensor"].get<std::string>());
    ASSERT_NE(q, nullptr);
    EXPECT_DOUBLE_EQ(q->threshold, c["threshold_after"].get<double>());
  }
  const CommandResult r2 = run_repq({"quantize", models + "/mobileone/mobileone.train.onnx", "--plan-in",
                                     plan, "-o", b});
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_EQ(slurp(a), slurp(b));
  // With --refine-act and --plan-in: the plan's clips as they are (no search, said so), the
  // same model, and --plan-out writes the same plan again.
  const std::string c = dir.file("c.onnx"), plan2 = dir.file("plan2.json");
  const CommandResult r3 = run_repq({"quantize", models + "/mobileone/mobileone.train.onnx", "--plan-in",
                                     plan, "--refine-act", "-o", c, "--plan-out", plan2});
  ASSERT_EQ(r3.exit_code, 0) << r3.err;
  EXPECT_NE(r3.err.find("no search"), std::string::npos) << r3.err;
  EXPECT_EQ(slurp(a), slurp(c));
  EXPECT_EQ(slurp(plan), slurp(plan2));
}

// quantize() with refine_act: the search runs inside (QuantizeResult::refine), and a clip it
// moved gets its clipped fraction recomputed from the calibration histogram. r = Relu(x) holds
// the 512 values j / 512 (j = 0..511, once each); the 50th percentile clips about half of them.
// r feeds a Gemm through a Flatten (f shares r's scale; the Gemm's output stays float), so
// raising r's clip only helps: the search does, and the plan's fraction (r's and f's) is the
// hand count of the values beyond the quantized range (255.5 steps of the scale), within one
// histogram bin's share (1 / 512).
TEST(CalibRefine, QuantizeRefinesAndRecountsClipped) {
  std::string w = "";
  for (int i = 0; i < 64; ++i) w += std::string(i ? ", " : "") + "1, " + std::to_string(i % 7 - 3);
  Model m = named_model(R"(g (float[N,1,8,8] x) => (float[N,2] y)
<float[1,1,1,1] w1 = {1}, float[1] b1 = {0}, float[64,2] w2 = {)" + w + R"(}, float[2] b2 = {0, 0}>
{
  c1 = Conv <kernel_shape = [1,1]> (x, w1, b1)
  r = Relu (c1)
  f = Flatten (r)
  y = Gemm (f, w2, b2)
})");
  TempDir dir;
  for (int k = 0; k < 8; ++k) {
    std::vector<float> v(64);
    for (int i = 0; i < 64; ++i) v[size_t(i)] = float(((k * 64 + i) * 37) % 512) / 512.0f;
    data::write_npy(dir.file("s" + std::to_string(k) + ".npy"), Tensor::from_vector<float>({1, 8, 8}, v));
  }
  data::DatasetOptions dopt;
  dopt.threads = 1;
  const auto ds = data::Dataset::open(dir.path().string(), dopt);
  quant::QuantizeOptions o;
  o.act = calib::Method::kPercentile;
  o.percentile = 50;
  o.collect.threads = 1;
  o.collect.batch = 4;
  o.collect.progress = false;
  const quant::QuantizeResult plain = quant::quantize(m, ds, o);
  EXPECT_FALSE(plain.refine.ran);
  o.refine_act = true;
  const quant::QuantizeResult r = quant::quantize(m, ds, o);
  ASSERT_TRUE(r.refine.ran);
  EXPECT_EQ(r.refine.samples, 8);
  const auto count_beyond = [](const quant::ActivationQuant& a) {
    int n = 0;
    for (int j = 0; j < 512; ++j) n += j / 512.0 > (255.5 - a.zero_point) * static_cast<double>(a.scale);
    return n / 512.0;
  };
  for (const char* t : {"r", "f"}) {
    const quant::ActivationQuant* before = plain.plan.activation(t);
    const quant::ActivationQuant* after = r.plan.activation(t);
    ASSERT_NE(before, nullptr) << t;
    ASSERT_NE(after, nullptr) << t;
    ASSERT_GT(after->threshold, before->threshold * 1.2) << t;  // moved up
    EXPECT_GT(count_beyond(*before), 0.4) << t;
    EXPECT_NEAR(before->clipped, count_beyond(*before), 1.0 / 512) << t;  // the calibrator's
    EXPECT_LT(after->clipped, before->clipped - 0.1) << t;
    EXPECT_NEAR(after->clipped, count_beyond(*after), 1.0 / 512) << t;
  }
  EXPECT_EQ(r.plan.activation("f")->shared_with, "r");
  ASSERT_EQ(r.refine.steps.size(), 1u);
  EXPECT_EQ(r.refine.steps[0].tensor, "r");
  // The written model is the refined plan's.
  EXPECT_EQ(serialize_model(r.qdq), serialize_model(quant::export_qdq(r.fused, r.plan)));
}

}  // namespace
}  // namespace repq::test
