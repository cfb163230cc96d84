// Diagnosis (report/compute.h: block_infos, diagnose): identity-BN factors on hand-built
// blocks and on the bundled trained models, the causes and advice for each threshold, the
// ranking, and MobileOne's dead-stem-channel outlier found in a real report.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "repq/ir/onnx_io.h"
#include "repq/report/compute.h"
#include "support/quant_test_util.h"
#include "support/test_util.h"

namespace repq::report {
namespace {

std::string models() { return test::source_dir() + "/models/"; }

bool has(const std::vector<std::string>& v, const std::string& needle) {
  return std::any_of(v.begin(), v.end(), [&](const std::string& s) { return s.find(needle) != std::string::npos; });
}

// RepVGG block, eval export: identity BN with gamma {1, 2, 0.5, 3}, var {1, 1e-4, 4, 0.01}.
// Factors gamma / sqrt(var + 1e-5): 1.0, 190.7, 0.25, 29.98.
const char* kRepVGG = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1,4,6,6] x) => (float[1,4,6,6] z)
<float[4,4,3,3] w3, float[4] b3, float[4,4,1,1] w1, float[4] b1,
 float[4] s = {1, 2, 0.5, 3}, float[4] bb = {0, 0, 0, 0}, float[4] mu = {0, 0, 0, 0},
 float[4] v = {1, 0.0001, 4, 0.01}>
{
  c3 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3, b3)
  c1 = Conv <kernel_shape = [1,1]> (x, w1, b1)
  a = Add (c3, c1)
  id = BatchNormalization (x, s, bb, mu, v)
  y = Add (a, id)
  z = Relu (y)
})";

// QARepVGG: bare identity, one BN after the sum (factor 2 / sqrt(0.25 + 1e-5) ~ 4).
const char* kQARepVGG = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1,4,6,6] x) => (float[1,4,6,6] z)
<float[4,4,3,3] w3, float[4] b3, float[4,4,1,1] w1,
 float[4] s = {2, 1, 1, 1}, float[4] bb = {0, 0, 0, 0}, float[4] mu = {0, 0, 0, 0},
 float[4] v = {0.25, 1, 1, 1}>
{
  c3 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3, b3)
  c1 = Conv <kernel_shape = [1,1]> (x, w1)
  a = Add (c3, c1)
  y0 = Add (a, x)
  y = BatchNormalization (y0, s, bb, mu, v)
  z = Relu (y)
})";

TEST(ReportDiagnose, IdentityBnFactorOfHandBuiltRepVGGBlock) {
  const auto b = block_infos(test::parse_onnx_text(kRepVGG));
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b.begin()->second.kind, "RepVGG");
  EXPECT_NEAR(b.begin()->second.identity_bn_factor, 2.0 / std::sqrt(1e-4 + 1e-5), 1e-3);
  EXPECT_NEAR(b.begin()->second.any_bn_factor, 2.0 / std::sqrt(1e-4 + 1e-5), 1e-3);
  const auto q = block_infos(test::parse_onnx_text(kQARepVGG));
  ASSERT_EQ(q.size(), 1u);
  EXPECT_TRUE(std::isnan(q.begin()->second.identity_bn_factor));  // no BN on the block input
  EXPECT_NEAR(q.begin()->second.any_bn_factor, 2.0 / std::sqrt(0.25 + 1e-5), 1e-4);
}

TEST(ReportDiagnose, IdentityBnFactorsOfTheBundledModels) {
  // models/README.md: repvgg_l2 stage1.1 1.12, stage2.1 0.62, stage2.2 0.83, stage2.3 0.56;
  // qarepvgg has no identity BN; mobileone's largest skip-BN factor is 1.52 (stage2.3.1).
  std::vector<double> f;
  for (const auto& [conv, b] : block_infos(load_model(models() + "repvgg_l2/repvgg_l2.train.onnx")))
    if (!std::isnan(b.identity_bn_factor)) f.push_back(b.identity_bn_factor);
  std::sort(f.begin(), f.end());
  ASSERT_EQ(f.size(), 4u);
  EXPECT_NEAR(f[0], 0.56, 0.006);
  EXPECT_NEAR(f[1], 0.62, 0.006);
  EXPECT_NEAR(f[2], 0.83, 0.006);
  EXPECT_NEAR(f[3], 1.12, 0.006);
  const auto qa = block_infos(load_model(models() + "qarepvgg/qarepvgg.train.onnx"));
  EXPECT_EQ(qa.size(), 8u);
  for (const auto& [conv, b] : qa) EXPECT_TRUE(std::isnan(b.identity_bn_factor)) << conv;
  double mo = 0;
  for (const auto& [conv, b] : block_infos(load_model(models() + "mobileone/mobileone.train.onnx")))
    if (!std::isnan(b.identity_bn_factor)) mo = std::max(mo, b.identity_bn_factor);
  EXPECT_NEAR(mo, 1.516, 0.002);
  // The PRESERVE export shows the branch BNs: the scale-branch BN on the dead stem channel.
  double any = 0;
  for (const auto& [conv, b] : block_infos(load_model(models() + "mobileone/mobileone.preserve.onnx")))
    if (!std::isnan(b.any_bn_factor)) any = std::max(any, b.any_bn_factor);
  EXPECT_NEAR(any, 122.7, 0.1);
  // A deploy-form model has no blocks: factors unknown.
  EXPECT_TRUE(block_infos(load_model(models() + "repvgg_l2/repvgg_l2.deploy.onnx")).empty());
}

LayerRow healthy(const std::string& name) {
  LayerRow r;
  r.name = name;
  r.kernel = {3, 3};
  r.encoding = "per-channel";
  r.identity_bn_factor = r.any_bn_factor = kNaN;
  r.centre_surround = 2;
  r.channel_outlier = 2;
  r.w_sqnr_per_tensor = 38, r.w_sqnr_per_channel = 40, r.w_sqnr_cfws = 41;
  r.act_min = 0, r.act_max = 10, r.act_threshold = 10, r.act_clipped = 0, r.act_p9999 = 9;
  r.out_sqnr_isolated = 35;
  return r;
}

TEST(ReportDiagnose, EachCauseAtItsThreshold) {
  Report rep;
  rep.act_method = "minmax";
  rep.layers.push_back(healthy("ok"));
  LayerRow bn = healthy("bn");
  bn.identity_bn_factor = 121;
  LayerRow centre = healthy("centre");
  centre.centre_surround = 9;
  LayerRow clip = healthy("clip");
  clip.act_threshold = 2, clip.act_clipped = 0.01;
  LayerRow wide = healthy("wide");
  wide.act_max = 227, wide.act_threshold = 227, wide.act_p9999 = 13.7;
  LayerRow pt = healthy("pt");
  pt.encoding = "per-tensor", pt.w_sqnr_per_tensor = 20, pt.channel_outlier = 71, pt.dead_input_channels = 1;
  LayerRow low = healthy("low");
  low.out_sqnr_isolated = 12;
  for (auto* r : {&bn, &centre, &clip, &wide, &pt, &low}) rep.layers.push_back(*r);
  diagnose(rep);
  const auto& L = rep.layers;
  EXPECT_TRUE(L[0].causes.empty());
  EXPECT_TRUE(L[0].advice.empty());
  EXPECT_TRUE(has(L[1].causes, "identity-BN outlier (factor 121)"));
  EXPECT_TRUE(has(L[1].advice, "--weights cfws"));
  EXPECT_TRUE(has(L[2].causes, "dominant centre tap (centre/surround 9)"));
  EXPECT_TRUE(has(L[3].causes, "clipped activations"));
  EXPECT_TRUE(has(L[3].advice, "--act mse"));
  EXPECT_TRUE(has(L[4].causes, "wide activation range"));
  EXPECT_TRUE(has(L[4].advice, "--act percentile"));
  EXPECT_TRUE(has(L[5].causes, "per-tensor weights lose 20 dB"));
  EXPECT_TRUE(has(L[5].causes, "71x the median channel; 1 dead input channel"));
  EXPECT_TRUE(has(L[5].advice, "--weights per-channel"));
  EXPECT_TRUE(has(L[6].causes, "no single cause"));
  EXPECT_TRUE(has(L[6].advice, "--exclude low"));
  // Just under every threshold: nothing.
  LayerRow edge = healthy("edge");
  edge.identity_bn_factor = 9.9, edge.centre_surround = 7.9, edge.act_clipped = 9e-4;
  edge.out_sqnr_isolated = 20.1;
  Report r2;
  r2.layers = {edge};
  diagnose(r2);
  EXPECT_TRUE(r2.layers[0].causes.empty()) << r2.layers[0].causes.front();
  // Worst first by isolated SQNR.
  ASSERT_EQ(rep.worst.size(), 7u);
  EXPECT_EQ(rep.worst.front(), 6);
}

// MobileOne (train form), per-tensor weights: the stem's dead channel 15 makes a depthwise
// weight of 60.2 (71x the median channel, models/README.md); the report finds the dead
// input channel, names the cause and advises per-channel weights; it ranks that layer worst.
TEST(ReportDiagnose, MobileOneDeadStemChannelIsFoundAndDiagnosed) {
  const Model m = load_model(models() + "mobileone/mobileone.train.onnx");
  const data::Dataset ds = test::fashion_calib(32);
  quant::QuantizeOptions o;
  o.weights = quant::WeightMode::kPerTensor;
  o.collect.progress = false;
  o.collect.threads = 2;
  ReportOptions ro;
  ro.threads = 2;
  const Report r = make_report(m, o, &ds, nullptr, ro);
  ASSERT_FALSE(r.layers.empty());
  const auto it = std::max_element(r.layers.begin(), r.layers.end(),
                                   [](const LayerRow& a, const LayerRow& b) { return a.channel_outlier < b.channel_outlier; });
  EXPECT_GT(it->channel_outlier, 30);
  EXPECT_GE(it->dead_input_channels, 1);
  EXPECT_EQ(it->groups, it->out_channels);  // depthwise
  EXPECT_NEAR(it->weight_max, 60.2, 0.1);
  EXPECT_TRUE(has(it->causes, "dead input channel")) << (it->causes.empty() ? "" : it->causes.front());
  EXPECT_TRUE(has(it->advice, "--weights per-channel"));
  EXPECT_EQ(r.worst.front(), it->index);
  EXPECT_LT(it->out_sqnr_isolated, 20);
  EXPECT_EQ(r.summary.samples, 32);
}

}  // namespace
}  // namespace repq::report
