// float_sim_model (report/compute.h): the QDQ model as float ops. A Q -> DQ pair is replaced by
// one FakeQuantizeLinear node, whose values are checked by hand (ties to even, clamping to the
// int8 / uint8 range with a zero point), and on the bundled MobileOne the whole model's outputs
// equal, bit for bit, the executor's own float path of the QDQ model (exact_qdq off); the
// report's cumulative measure is unchanged with ReportOptions::exact within rounding.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "repq/data/npy.h"
#include "repq/ir/onnx_io.h"
#include "repq/report/compute.h"
#include "repq/runtime/executor.h"
#include "support/quant_test_util.h"
#include "support/test_util.h"

namespace repq::report {
namespace {

const char* kPair = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[6] x) => (float[6] y, float[6] u)
<float s = {0.1}, int8 z = {3}, float su = {0.5}>
{
  q = QuantizeLinear (x, s, z)
  y = DequantizeLinear (q, s, z)
  qu = QuantizeLinear (x, su)
  u = DequantizeLinear (qu, su)
})";

TEST(ReportSim, QuantizePairByHand) {
  const Model m = float_sim_model(test::parse_onnx_text(kPair));
  for (const Node& n : m.graph.nodes) {
    EXPECT_NE(n.op_type, "QuantizeLinear");
    EXPECT_NE(n.op_type, "DequantizeLinear");
  }
  Executor ex(m, ExecutorOptions{1});
  // x / 0.1 = 0.5 (tie -> 0), 1.5 (tie -> 2), -2.5 (tie -> -2), 200 (clamped to 127 - 3 = 124),
  // -200 (clamped to -128 - 3 = -131), 0.26 -> 3 (x / 0.1 = 2.6 in float).
  const auto out = ex.run({{"x", Tensor::from_vector<float>({6}, {0.05f, 0.15f, -0.25f, 20.0f, -20.0f, 0.26f})}});
  const Tensor& y = out.at("y");
  const float s = 0.1f;
  const std::vector<float> want = {0 * s, 2 * s, -2 * s, 124 * s, -131 * s, 3 * s};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(y.data<float>()[i], want[i]) << i;
  // uint8, no zero point: x / 0.5 = 0.1 -> 0, 0.3 -> 0, -0.5 -> 0 (clamped at 0), 40 -> 40,
  // -40 -> 0, 0.52 -> 1.
  const std::vector<float> want_u = {0, 0, 0, 20.0f, 0, 0.5f};
  for (size_t i = 0; i < want_u.size(); ++i) EXPECT_EQ(out.at("u").data<float>()[i], want_u[i]) << i;
  // The QDQ model itself agrees.
  Executor qdq(test::parse_onnx_text(kPair), ExecutorOptions{1});
  const auto ref = qdq.run({{"x", Tensor::from_vector<float>({6}, {0.05f, 0.15f, -0.25f, 20.0f, -20.0f, 0.26f})}});
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(ref.at("y").data<float>()[i], want[i]) << i;
    EXPECT_EQ(ref.at("u").data<float>()[i], want_u[i]) << i;
  }
}

// The input statistics of measure() (histogram of |x|, max |x| per channel), by hand: runs of
// one bin (the interleaved counters), NaN (not counted), +-inf (last bin), values past amax.
TEST(ReportSim, InputHistogramByHand) {
  const char* conv = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N,2,3,3] x) => (float[N,1,3,3] y)
<float[1,2,1,1] w = {1, 1}>
{
  y = Conv <kernel_shape = [1,1]> (x, w)
})";
  Model m = test::parse_onnx_text(conv);
  m.graph.nodes.at(0).name = "conv";
  quant::QuantPlan p;
  quant::ActivationQuant a;
  a.tensor = a.calibrated_on = "x";
  a.min = -2.0, a.max = 1.0, a.threshold = 2.0;  // amax 2
  a.scale = 2.0f / 127.0f, a.zero_point = 0, a.dtype = DType::kInt8;
  p.activations.push_back(a);
  quant::LayerQuant l;
  l.node = "conv", l.op = "Conv", l.input = "x", l.weight = "w", l.output = "y";
  l.encoding = "per-tensor";
  l.scales = {1.0f / 127.0f};
  p.layers.push_back(l);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  // channel 0: seven zeros, 1.0 (bin 1024 of 2048 over [0, 2]), -0.5 (bin 512);
  // channel 1: NaN, -inf, 5 (past amax: last bin), 0.25 three times (bin 256), three zeros.
  const std::vector<float> x = {0, 0, 0, 0, 0, 0, 0, 1.0f, -0.5f,
                                nan, -inf, 5.0f, 0.25f, 0.25f, 0.25f, 0, 0, 0};
  test::TempDir tmp;
  data::write_npy(tmp.file("x.npy"), Tensor::from_vector<float>({1, 2, 3, 3}, x));
  const data::Dataset ds = data::Dataset::open(tmp.file("x.npy"));
  quant::QuantizeResult q;
  q.fused = m;
  q.plan = p;
  ReportOptions ro;
  ro.cumulative = false;
  ro.threads = 1;
  const auto rows = row_specs(q.fused, q.plan);
  const MeasureResult r = measure(q, rows, ds, ro);
  const std::vector<uint64_t>& h = r.hist.at(0);
  ASSERT_EQ(h.size(), static_cast<size_t>(kFineBins));
  EXPECT_EQ(h[0], 10u);
  EXPECT_EQ(h[256], 3u);
  EXPECT_EQ(h[512], 1u);
  EXPECT_EQ(h[1024], 1u);
  EXPECT_EQ(h[kFineBins - 1], 2u);  // -inf and 5
  uint64_t total = 0;
  for (uint64_t c : h) total += c;
  EXPECT_EQ(total, 17u);  // the NaN is not counted
  ASSERT_EQ(r.in_channel_absmax.at(0).size(), 2u);
  EXPECT_EQ(r.in_channel_absmax[0][0], 1.0);
  EXPECT_EQ(r.in_channel_absmax[0][1], inf);
}

TEST(ReportSim, MobileOneEqualsTheFloatPathOfTheQdqModel) {
  const Model m = load_model(test::source_dir() + "/models/mobileone/mobileone.train.onnx");
  const data::Dataset ds = test::fashion_calib(8);
  quant::QuantizeOptions o;
  o.act = calib::Method::kPercentile;
  o.collect.progress = false;
  o.collect.threads = 2;
  const quant::QuantizeResult q = quant::quantize(m, ds, o);
  const Model sim = float_sim_model(q.qdq);
  size_t dq = 0, quant_ops = 0;
  for (const Node& n : q.qdq.graph.nodes) dq += n.op_type == "DequantizeLinear";
  for (const Node& n : sim.graph.nodes)
    quant_ops += n.op_type == "DequantizeLinear" || n.op_type == "QuantizeLinear";
  ASSERT_GT(dq, 10u);
  EXPECT_EQ(quant_ops, 0u);
  ExecutorOptions slow{2};
  slow.exact_qdq = false;
  Executor a(q.qdq, slow), b(sim, ExecutorOptions{2});
  data::BatchReader reader(ds, 8);
  const auto batch = reader.next();
  ASSERT_TRUE(batch);
  const Tensor ya = a.run({{a.input_names().at(0), batch->input}}).at(a.output_names().at(0));
  const Tensor yb = b.run({{b.input_names().at(0), batch->input}}).at(b.output_names().at(0));
  ASSERT_EQ(ya.numel(), yb.numel());
  EXPECT_EQ(std::memcmp(ya.raw(), yb.raw(), ya.nbytes()), 0);

  // The report's cumulative measures: the same with the exact integer kernels, up to the odd
  // integer sum that rounds to another level.
  ReportOptions ro;
  ro.threads = 2;
  ro.isolated = false;
  const std::vector<RowSpec> rows = row_specs(q.fused, q.plan);
  const MeasureResult fast = measure(q, rows, ds, ro);
  ro.exact = true;
  const MeasureResult exact = measure(q, rows, ds, ro);
  ASSERT_EQ(fast.cumulative.size(), rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    ASSERT_GT(exact.cumulative[r].count, 0u) << rows[r].name;
    EXPECT_EQ(fast.cumulative[r].count, exact.cumulative[r].count) << rows[r].name;
    EXPECT_NEAR(fast.cumulative[r].sqnr_db(), exact.cumulative[r].sqnr_db(), 0.5) << rows[r].name;
  }
  EXPECT_NEAR(fast.summary.output_sqnr, exact.summary.output_sqnr, 0.5);
}

}  // namespace
}  // namespace repq::report
