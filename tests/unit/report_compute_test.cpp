// Report computations (report/compute.h) with known answers: the isolated output error and
// the activation error of a one-conv model computed by hand, SQNR/cosine accumulation,
// weight columns, CFWS rows, and the whole report on the bundled models.
#include <gtest/gtest.h>

#include <cmath>

#include "repq/data/npy.h"
#include "repq/error.h"
#include "repq/eval/metrics.h"
#include "repq/ir/onnx_io.h"
#include "repq/report/compute.h"
#include "support/quant_test_util.h"
#include "support/test_util.h"

namespace repq::report {
namespace {

const char* kOneConv = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N,1,2,2] x) => (float[N,2,2,2] y)
<float[2,1,1,1] w = {0.3, -0.07}, float[2] b = {0.1, 0.05}>
{
  y = Conv <kernel_shape = [1,1]> (x, w, b)
})";

Model one_conv() {
  Model m = test::parse_onnx_text(kOneConv);
  m.graph.nodes.at(0).name = "conv";
  return m;
}

quant::QuantPlan one_conv_plan() {
  quant::QuantPlan p;
  quant::ActivationQuant a;
  a.tensor = a.calibrated_on = "x";
  a.min = -0.5, a.max = 1.0, a.threshold = 1.0;
  a.scale = 0.1f, a.zero_point = 0, a.dtype = DType::kInt8;
  p.activations.push_back(a);
  quant::LayerQuant l;
  l.node = "conv", l.op = "Conv", l.input = "x", l.weight = "w", l.bias = "b", l.output = "y";
  l.encoding = "per-tensor";
  l.scales = {0.3f / 127.0f};
  p.layers.push_back(l);
  return p;
}

data::Dataset npy_dataset(const test::TempDir& tmp, const std::vector<float>& x) {
  data::write_npy(tmp.file("x.npy"), Tensor::from_vector<float>({1, 1, 2, 2}, x));
  return data::Dataset::open(tmp.file("x.npy"));
}

TEST(ReportCompute, IsolatedAndActivationErrorsOfOneConvByHand) {
  test::TempDir tmp;
  const std::vector<double> x = {0.04, 0.26, -0.5, 1.0};
  const data::Dataset ds = npy_dataset(tmp, {0.04f, 0.26f, -0.5f, 1.0f});
  quant::QuantizeResult q;
  q.fused = one_conv();
  q.plan = one_conv_plan();
  const auto rows = row_specs(q.fused, q.plan);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].name, "conv");
  EXPECT_EQ(rows[0].output, "y");
  ReportOptions ro;
  ro.cumulative = false;
  ro.threads = 1;
  const MeasureResult m = measure(q, rows, ds, ro);

  // By hand: scale 0.1 int8 input -> {0 (0.4 rounds to even 0), 0.3, -0.5, 1.0}; weight scale
  // s = 0.3/127: w^ = {127 s, -30 s} (-0.07/s = -29.63); bias scale 0.1 s: b^ = {423, 212} * 0.1 s.
  const std::vector<double> xq = {0.0, 0.3, -0.5, 1.0};
  const double s = static_cast<double>(0.3f / 127.0f);
  const double sb = static_cast<double>(0.1f) * s;
  const double w[2] = {0.3, -0.07}, b[2] = {0.1, 0.05};
  const double wq[2] = {127 * s, -30 * s}, bq[2] = {423 * sb, 212 * sb};
  double ref2 = 0, err2 = 0, dot = 0, q2 = 0;
  for (int c = 0; c < 2; ++c)
    for (int i = 0; i < 4; ++i) {
      const double y = w[c] * x[i] + b[c], yq = wq[c] * xq[i] + bq[c];
      ref2 += y * y, err2 += (y - yq) * (y - yq), dot += y * yq, q2 += yq * yq;
    }
  EXPECT_NEAR(m.isolated[0].sqnr_db(), 10 * std::log10(ref2 / err2), 1e-3);
  EXPECT_NEAR(m.isolated[0].cosine(), dot / std::sqrt(ref2 * q2), 1e-6);  // float partial sums
  // Activation: sum x^2 = 1.3192, error only on the first two values: 0.04^2 * 2.
  EXPECT_NEAR(m.activation[0].sqnr_db(), 10 * std::log10(1.3192 / 0.0032), 1e-3);
  EXPECT_TRUE(std::isnan(m.cumulative[0].sqnr_db()));
  // Histogram of |x| over [0, 1]: 1.0 in the last bin, 0.5 in the middle.
  EXPECT_EQ(m.hist[0][kFineBins - 1], 1u);
  EXPECT_EQ(m.hist[0][kFineBins / 2], 1u);
  ASSERT_EQ(m.in_channel_absmax[0].size(), 1u);
  EXPECT_DOUBLE_EQ(m.in_channel_absmax[0][0], 1.0);
  EXPECT_EQ(m.summary.samples, 1);
}

TEST(ReportCompute, WeightColumnsOfOneConv) {
  const Model m = one_conv();
  const quant::QuantPlan p = one_conv_plan();
  const auto rows = row_specs(m, p);
  LayerRow row;
  fill_weight_columns(m, rows.at(0), row);
  EXPECT_EQ(row.op, "Conv");
  EXPECT_EQ(row.kernel, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(row.out_channels, 2);
  EXPECT_EQ(row.in_channels, 1);
  EXPECT_EQ(row.encoding, "per-tensor");
  EXPECT_FLOAT_EQ(row.weight_min, -0.07f);
  EXPECT_FLOAT_EQ(row.weight_max, 0.3f);
  // Per tensor only -0.07 has an error (-30 s); per channel both are exact.
  const double s = 0.3 / 127, e = -0.07 + 30 * s;
  EXPECT_NEAR(row.w_sqnr_per_tensor, 10 * std::log10((0.09 + 0.0049) / (e * e)), 0.01);
  EXPECT_GT(row.w_sqnr_per_channel, 100);
  EXPECT_TRUE(std::isnan(row.w_sqnr_cfws));
  EXPECT_TRUE(std::isnan(row.centre_surround));
  EXPECT_NEAR(row.channel_outlier, 0.3 / ((0.3 + 0.07) / 2), 1e-5);  // median of 2: their mean
}

TEST(ReportCompute, FakeQuantRoundsHalfToEvenAndClamps) {
  quant::ActivationQuant u8;
  u8.scale = 0.5f, u8.zero_point = 10, u8.dtype = DType::kUInt8;
  EXPECT_FLOAT_EQ(fake_quant(0.25f, u8), 0.0f);    // 0.5 -> 0 (even)
  EXPECT_FLOAT_EQ(fake_quant(0.75f, u8), 1.0f);    // 1.5 -> 2
  EXPECT_FLOAT_EQ(fake_quant(-100.0f, u8), -5.0f); // clamped at q = 0
  EXPECT_FLOAT_EQ(fake_quant(1000.0f, u8), 122.5f);  // clamped at q = 255
  const Tensor w = Tensor::from_vector<float>({2, 2}, {1.0f, 0.26f, -2.0f, 0.5f});
  const Tensor q = fake_quant_weight(w, {1.0f / 127, 2.0f / 127}, 0);
  EXPECT_FLOAT_EQ(q.data<float>()[1], 33.0f / 127);  // 0.26 * 127 = 33.02
  EXPECT_FLOAT_EQ(q.data<float>()[3], 2.0f * 32 / 127);  // 0.5 / (2/127) = 31.75 -> 32
  const Tensor q1 = fake_quant_weight(w, {2.0f / 127, 1.0f / 127}, 1);  // along axis 1
  EXPECT_FLOAT_EQ(q1.data<float>()[0], 2.0f * 64 / 127);  // 63.5 -> 64 (even)
}

TEST(ReportCompute, ErrorSumsMatchTheDefinitions) {
  ErrorSums e;
  EXPECT_TRUE(std::isnan(e.sqnr_db()));
  const float a[3] = {1, 2, 2}, b[3] = {1, 2, 1};
  e.add(a, b, 3);
  EXPECT_NEAR(e.sqnr_db(), 10 * std::log10(9.0), 1e-12);
  EXPECT_NEAR(e.cosine(), 7.0 / std::sqrt(9.0 * 6.0), 1e-12);
  ErrorSums same;
  same.add(a, a, 3);
  EXPECT_EQ(same.sqnr_db(), kMaxSqnrDb);
}

// A CFWS-split conv is one row: the original name, the kernel added back, output the Add.
TEST(ReportCompute, CfwsHalvesAreOneRow) {
  Model m = test::parse_onnx_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N,2,5,5] x) => (float[N,2,5,5] z)
<float[2,2,3,3] w, float[2] b>
{
  y = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w, b)
  z = Relu (y)
})");
  m.graph.nodes[0].name = "c";
  Tensor w = *m.graph.initializer("w");
  w.mutable_data<float>()[4] = 40.0f;  // a dominant centre tap
  m.graph.set_initializer("w", w);
  const Tensor w0 = w;
  quant::apply_cfws(m, quant::WeightMode::kCfws);
  quant::QuantPlan p;
  for (const auto& n : m.graph.nodes) {
    if (n.op_type != "Conv") continue;
    quant::LayerQuant l;
    l.node = n.name, l.op = "Conv", l.input = "x", l.weight = n.inputs[1], l.output = n.outputs[0];
    l.bias = n.inputs.size() > 2 ? n.inputs[2] : "";
    l.cfws_of = "c";
    l.encoding = n.name.find("coarse") != std::string::npos ? "cfws-coarse" : "cfws-fine";
    p.layers.push_back(l);
  }
  ASSERT_EQ(p.layers.size(), 2u);
  const auto rows = row_specs(m, p);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].name, "c");
  EXPECT_EQ(rows[0].output, "z");       // Add, then the Relu that only it feeds
  EXPECT_EQ(rows[0].nodes.size(), 4u);  // two halves, Add, Relu
  EXPECT_EQ(rows[0].parts[0]->encoding, "cfws-coarse");
  LayerRow row;
  fill_weight_columns(m, rows[0], row);
  EXPECT_EQ(row.encoding, "cfws");
  EXPECT_EQ(row.kernel, (std::vector<int64_t>{3, 3}));
  const quant::WeightErrors e = quant::weight_errors(w0);
  EXPECT_NEAR(row.weight_max, e.max, 1e-5);
  EXPECT_NEAR(row.centre_surround, e.centre_surround, 1e-3 * e.centre_surround);
  EXPECT_NEAR(row.w_sqnr_per_channel, e.sqnr_per_channel_db, 0.05);
}

}  // namespace
}  // namespace repq::report

namespace repq::report {
namespace {

// Through the real pipeline: with one layer whose output is the graph output, the cumulative
// error and the model output SQNR are the same measure; the isolated one has no output
// requantization, so it is at least as good.
TEST(ReportCompute, OneConvReportThroughThePipeline) {
  test::TempDir tmp;
  const std::vector<float> x = test::random_floats(4 * 4, 3);
  data::write_npy(tmp.file("x.npy"), Tensor::from_vector<float>({4, 1, 2, 2}, x));
  const data::Dataset ds = data::Dataset::open(tmp.file("x.npy"));
  quant::QuantizeOptions o;
  o.weights = quant::WeightMode::kPerTensor;
  o.collect.progress = false;
  o.collect.threads = 1;
  ReportOptions ro;
  ro.threads = 1;
  const Report r = make_report(one_conv(), o, &ds, nullptr, ro);
  ASSERT_EQ(r.layers.size(), 1u);
  const LayerRow& l = r.layers[0];
  EXPECT_EQ(l.name, "conv");
  EXPECT_EQ(r.summary.samples, 4);
  EXPECT_NEAR(r.summary.output_sqnr, l.out_sqnr_cumulative, 1e-6);
  EXPECT_GE(l.out_sqnr_isolated + 1e-6, l.out_sqnr_cumulative);
  EXPECT_GT(l.out_sqnr_cumulative, 20);
  EXPECT_DOUBLE_EQ(r.summary.top1_agreement, r.summary.top1_agreement);  // not NaN
  EXPECT_TRUE(std::isnan(l.identity_bn_factor));  // nothing folded
  EXPECT_EQ(r.worst, (std::vector<int>{0}));
}

// --static: weight columns only, no data; ranked by the chosen encoding's weight SQNR.
TEST(ReportCompute, StaticReportOfBundledRepVGG) {
  const Model m = load_model(test::source_dir() + "/models/repvgg_l2/repvgg_l2.train.onnx");
  quant::QuantizeOptions o;
  o.weights = quant::WeightMode::kPerTensor;
  const Report r = make_static_report(m, o, ReportOptions{});
  EXPECT_TRUE(r.static_only);
  ASSERT_EQ(r.layers.size(), 9u);  // 8 fused blocks + the Gemm
  int with_factor = 0;
  for (const LayerRow& l : r.layers) {
    EXPECT_EQ(l.encoding, "per-tensor") << l.name;
    EXPECT_TRUE(std::isnan(l.out_sqnr_isolated));
    EXPECT_EQ(l.dead_input_channels, -1);
    with_factor += std::isnan(l.identity_bn_factor) ? 0 : 1;
  }
  EXPECT_EQ(with_factor, 4);
  ASSERT_EQ(r.worst.size(), 9u);
  for (size_t i = 1; i < r.worst.size(); ++i)
    EXPECT_LE(r.layers[static_cast<size_t>(r.worst[i - 1])].w_sqnr_per_tensor,
              r.layers[static_cast<size_t>(r.worst[i])].w_sqnr_per_tensor);
  // CFWS: the split convs are still one row each, encoded "cfws".
  o.weights = quant::WeightMode::kCfws;
  const Report c = make_static_report(m, o, ReportOptions{});
  ASSERT_EQ(c.layers.size(), 9u);
  EXPECT_EQ(c.layers[0].encoding, "cfws");
  EXPECT_NEAR(c.layers[0].w_sqnr_per_channel, r.layers[0].w_sqnr_per_channel, 0.05);
}

}  // namespace
}  // namespace repq::report

namespace repq::report {
namespace {

// --plan-in: a stored plan gives the same report as calibrating again (same data).
TEST(ReportCompute, StoredPlanGivesTheSameReport) {
  const Model m = load_model(test::source_dir() + "/models/repvgg_l2/repvgg_l2.train.onnx");
  const data::Dataset ds = test::fashion_calib(16);
  quant::QuantizeOptions o;
  o.collect.progress = false;
  o.collect.threads = 2;
  const quant::QuantizeResult q = quant::quantize(m, ds, o);
  ReportOptions ro;
  ro.threads = 2;
  const Report fresh = make_report(m, o, &ds, nullptr, ro);
  ro.plan = &q.plan;
  const Report stored = make_report(m, o, nullptr, &ds, ro);
  EXPECT_THROW(make_report(m, o, nullptr, nullptr, ReportOptions{}), InputError);
  ASSERT_EQ(fresh.layers.size(), 9u);
  ASSERT_EQ(stored.layers.size(), fresh.layers.size());
  for (size_t i = 0; i < fresh.layers.size(); ++i) {
    EXPECT_EQ(stored.layers[i].name, fresh.layers[i].name);
    EXPECT_DOUBLE_EQ(stored.layers[i].out_sqnr_isolated, fresh.layers[i].out_sqnr_isolated);
    EXPECT_DOUBLE_EQ(stored.layers[i].out_sqnr_cumulative, fresh.layers[i].out_sqnr_cumulative);
    EXPECT_DOUBLE_EQ(stored.layers[i].act_threshold, fresh.layers[i].act_threshold);
    // Every layer of this healthy model quantizes well.
    EXPECT_GT(fresh.layers[i].out_sqnr_isolated, 25) << fresh.layers[i].name;
  }
  EXPECT_DOUBLE_EQ(stored.summary.output_sqnr, fresh.summary.output_sqnr);
  EXPECT_GE(fresh.summary.top1_agreement, 0.9);
}

}  // namespace
}  // namespace repq::report
