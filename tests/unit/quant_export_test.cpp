// export_qdq: layout of the QDQ graph, exact int8 weights and int32 biases, names, opset,
// determinism, partial exports and plan/model mismatches.
#include <gtest/gtest.h>

#include <cmath>

#include "repq/error.h"
#include "repq/ir/graph_utils.h"
#include "repq/ir/onnx_io.h"
#include "repq/quant/quantize.h"
#include "repq/runtime/executor.h"
#include "support/quant_test_util.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

using quant::ActivationQuant;
using quant::ExportOptions;
using quant::QuantPlan;
using quant::Target;

const std::string kNet = small_quant_net("2");

Tensor input(const Shape& s, uint32_t seed) {
  return Tensor::from_vector<float>(s, random_floats(size_t(shape_numel(s)), seed));
}

const Node* producer(const Model& m, const std::string& v) {
  for (const auto& n : m.graph.nodes)
    for (const auto& o : n.outputs)
      if (o == v) return &n;
  return nullptr;
}

TEST(QuantExport, LayoutOfTheQdqGraph) {
  const Model m = named_model(kNet);
  const auto pts = quant::find_quant_points(m, {});
  const QuantPlan plan = minmax_plan(m, pts, input({2, 3, 8, 8}, 1));
  const Model q = quant::export_qdq(m, plan);
  validate_graph(q.graph);
  const auto ops = op_histogram(q.graph);
  EXPECT_EQ(ops.count("Relu"), 0u) << "both Relus are absorbed by uint8 QuantizeLinear with zero point 0";
  EXPECT_EQ(ops.at("Conv"), 3u);
  EXPECT_EQ(ops.at("QuantizeLinear"), 9u);  // one per quant point
  // 9 activations + 4 weights + 3 biases (c3 has none).
  EXPECT_EQ(ops.at("DequantizeLinear"), 16u);
  // Each quantized tensor keeps its name on the DequantizeLinear output.
  for (const auto& a : plan.activations) {
    if (a.tensor == "x") continue;  // a graph input keeps its name; consumers read x/dequantized
    const Node* dq = producer(q, a.tensor);
    ASSERT_NE(dq, nullptr) << a.tensor;
    EXPECT_EQ(dq->op_type, "DequantizeLinear") << a.tensor;
  }
  // The pre-Relu conv output keeps its name; the Add's raw output gets a fresh one.
  EXPECT_EQ(producer(q, "c1")->op_type, "Conv");
  EXPECT_EQ(producer(q, "c2")->op_type, "DequantizeLinear");
  EXPECT_EQ(producer(q, "s")->op_type, "Add");
  // Weights: the float initializer is gone, a DequantizeLinear with axis 0 produces its name.
  EXPECT_FALSE(q.graph.has_initializer("w1"));
  const Node* dqw = producer(q, "w1");
  ASSERT_NE(dqw, nullptr);
  EXPECT_EQ(dqw->attr_int("axis", -1), 0);
  EXPECT_EQ(q.graph.initializer(dqw->inputs[0])->dtype(), DType::kInt8);
  const Node* gemm = producer(q, "y");
  EXPECT_EQ(gemm->op_type, "Gemm") << "the logits stay float";
  EXPECT_EQ(gemm->attr_float("beta", -1), 1.0f);
  EXPECT_EQ(q.graph.outputs.at(0).name, "y");
  EXPECT_EQ(q.opset(), 13);
}

TEST(QuantExport, WeightsAndBiasExactly) {
  const Model m = named_model(kNet);
  const auto pts = quant::find_quant_points(m, {});
  const QuantPlan plan = minmax_plan(m, pts, input({2, 3, 8, 8}, 2));
  const Model q = quant::export_qdq(m, plan);
  const auto* c2 = plan.layer("c2");
  const auto* in = plan.activation("r1");
  ASSERT_TRUE(c2 && in);
  // int8 weight = round half to even (w / s[o]), within [-127, 127].
  const Tensor& w = *m.graph.initializer("w2");
  const Tensor& wq = *q.graph.initializer(producer(q, "w2")->inputs[0]);
  for (int64_t i = 0; i < w.numel(); ++i) {
    const float want = std::nearbyint(w.data<float>()[i] / c2->scales[size_t(i / 36)]);
    ASSERT_EQ(wq.data<int8_t>()[i], static_cast<int8_t>(want)) << i;
  }
  // Bias: int32, scale exactly float(s_input * s_weight[o]), per axis 0.
  const Node* dqb = producer(q, "b2");
  ASSERT_NE(dqb, nullptr);
  EXPECT_EQ(dqb->attr_int("axis", -1), 0);
  const Tensor& bq = *q.graph.initializer(dqb->inputs[0]);
  const Tensor& bs = *q.graph.initializer(dqb->inputs[1]);
  ASSERT_EQ(bq.dtype(), DType::kInt32);
  const Tensor& b = *m.graph.initializer("b2");
  for (int64_t o = 0; o < 4; ++o) {
    const float s = in->scale * c2->scales[size_t(o)];
    EXPECT_EQ(bs.data<float>()[o], s) << "bit-exact bias scale, channel " << o;
    EXPECT_EQ(bq.data<int32_t>()[o], static_cast<int32_t>(std::nearbyint(double(b.data<float>()[o]) / s)));
  }
}

// One 1x1 conv computed by hand: Q/DQ of the input, int8 weights, int32 bias, Q/DQ of the
// Relu output, all with values chosen so every step is exact.
TEST(QuantExport, HandComputedConv) {
  Model m = named_model(R"(
g (float[1,1,1,3] x) => (float[1,2,1,3] y)
<float[2,1,1,1] w = {0.5, -0.25}, float[2] b = {0.1, 0.3}>
{
  c = Conv (x, w, b)
  y = Relu (c)
})");
  const auto pts = quant::find_quant_points(m, {});
  QuantPlan plan;
  plan.model_digest = quant::model_digest(m);
  ActivationQuant ax;
  ax.tensor = ax.calibrated_on = "x";
  ax.scale = 0.25f;
  ax.zero_point = 128;
  ActivationQuant ay = ax;
  ay.tensor = ay.calibrated_on = "y";
  ay.scale = 0.125f;
  ay.zero_point = 0;
  ay.non_negative = true;
  plan.activations = {ax, ay};
  plan.layers = pts.layers;
  plan.layers[0].scales = {0.5f / 127, 0.25f / 127};
  const Model q = quant::export_qdq(m, plan);
  EXPECT_EQ(op_histogram(q.graph).count("Relu"), 0u);
  // x = [0.3, -1.1, 40]: Q -> 129 (1.2 rounds to 1), 124 (-4.4 -> -4), 255 (saturated).
  // DQ -> 0.25, -1.0, 31.75. Weights: 0.5 -> 127 * (0.5/127), exact; bias int32:
  // 0.1 / (0.25 * 0.5/127) = 101.6 -> 102 and 0.3 / (0.25 * 0.25/127) = 609.6 -> 610.
  const double s0 = 0.25 * (0.5f / 127), s1 = 0.25 * (0.25f / 127);
  const double b0 = 102 * s0, b1 = 610 * s1;
  const double xs[3] = {0.25, -1.0, 31.75};
  Executor ex(q, {1});
  const auto out = ex.run({{"x", Tensor::from_vector<float>({1, 1, 1, 3}, {0.3f, -1.1f, 40.0f})}});
  const auto got = out.at("y").span<float>();
  for (int i = 0; i < 3; ++i) {
    // Conv output, then Q with scale 1/8, zero point 0 (the Relu), saturating at 255.
    const double c0 = 0.5 * xs[i] + b0, c1 = -0.25 * xs[i] + b1;
    const double y0 = std::clamp(std::nearbyint(c0 / 0.125), 0.0, 255.0) * 0.125;
    const double y1 = std::clamp(std::nearbyint(c1 / 0.125), 0.0, 255.0) * 0.125;
    EXPECT_NEAR(got[size_t(i)], y0, 1e-6) << i;
    EXPECT_NEAR(got[size_t(3 + i)], y1, 1e-6) << i;
  }
  // The same by hand: e.g. 0.5 * 31.75 + 0.1004 = 15.975 -> 127.8 -> 128 -> 16.
  const std::vector<float> want = {0.25f, 0.0f, 16.0f, 0.25f, 0.5f, 0.0f};
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(got[i], want[i]) << i;
}

double sqnr_db(std::span<const float> ref, std::span<const float> got) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += double(ref[i]) * ref[i];
    den += (double(ref[i]) - got[i]) * (double(ref[i]) - got[i]);
  }
  return 10 * std::log10(num / std::max(den, 1e-30));
}

TEST(QuantExport, DeterministicAndCloseToFloat) {
  const Model m = named_model(kNet);
  const auto pts = quant::find_quant_points(m, {});
  const Tensor x = input({2, 3, 8, 8}, 3);
  const QuantPlan plan = minmax_plan(m, pts, x);
  const std::string a = serialize_model(quant::export_qdq(m, plan));
  const std::string b = serialize_model(quant::export_qdq(m, plan));
  EXPECT_EQ(a, b) << "same model and plan -> byte-identical file";
  Executor fe(m, {1}), qe(quant::export_qdq(m, plan), {1});
  const Tensor yf = fe.run({{"x", x}}).at("y");
  const Tensor yq = qe.run({{"x", x}}).at("y");
  const double db = sqnr_db(yf.span<float>(), yq.span<float>());
  std::printf("hand-made net, INT8 QDQ (repq executor) vs float: SQNR %.1f dB\n", db);
  EXPECT_GT(db, 20.0);
}

TEST(QuantExport, TensorRTKeepsReluAndUsesInt8) {
  const Model m = named_model(kNet);
  quant::QuantizeOptions o;
  o.target = Target::kTensorRT;
  const auto pts = quant::find_quant_points(m, o);
  const QuantPlan plan = minmax_plan(m, pts, input({2, 3, 8, 8}, 4), Target::kTensorRT);
  const Model q = quant::export_qdq(m, plan);
  validate_graph(q.graph);
  EXPECT_EQ(op_histogram(q.graph).at("Relu"), 2u) << "int8 zero point 0 does not clamp at 0";
  for (const auto& n : q.graph.nodes)
    if (n.op_type == "QuantizeLinear") {
      const Tensor& zp = *q.graph.initializer(n.inputs[2]);
      EXPECT_EQ(zp.dtype(), DType::kInt8);
      EXPECT_EQ(zp.data<int8_t>()[0], 0);
    }
}

TEST(QuantExport, OnlyLayersAndWeightsOnly) {
  const Model m = named_model(kNet);
  const auto pts = quant::find_quant_points(m, {});
  const QuantPlan plan = minmax_plan(m, pts, input({2, 3, 8, 8}, 5));
  ExportOptions eo;
  eo.only_layers = {"c2"};
  const Model q = quant::export_qdq(m, plan, eo);
  validate_graph(q.graph);
  EXPECT_TRUE(q.graph.has_initializer("w1")) << "c1 keeps float weights";
  EXPECT_FALSE(q.graph.has_initializer("w2"));
  EXPECT_EQ(op_histogram(q.graph).at("QuantizeLinear"), 9u) << "activation Q/DQ stay";
  EXPECT_EQ(op_histogram(q.graph).at("DequantizeLinear"), 9u + 2u);  // + w2, b2

  eo.only_layers.clear();
  eo.quantize_activations = false;
  const Model w = quant::export_qdq(m, plan, eo);
  validate_graph(w.graph);
  const auto ops = op_histogram(w.graph);
  EXPECT_EQ(ops.count("QuantizeLinear"), 0u);
  EXPECT_EQ(ops.at("DequantizeLinear"), 4u) << "weights only; biases stay float";
  EXPECT_EQ(ops.at("Relu"), 2u);
  EXPECT_TRUE(w.graph.has_initializer("b1"));

  eo.only_layers = {"nope"};
  EXPECT_THROW(quant::export_qdq(m, plan, eo), InputError);
}

std::string error_of(const Model& m, const QuantPlan& p) {
  try {
    quant::export_qdq(m, p);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(QuantExport, PlanModelMismatchesAreInputErrors) {
  const Model m = named_model(kNet);
  const auto pts = quant::find_quant_points(m, {});
  const QuantPlan good = minmax_plan(m, pts, input({2, 3, 8, 8}, 6));
  auto has = [](const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos ? ::testing::AssertionSuccess()
                                             : ::testing::AssertionFailure() << s;
  };
  QuantPlan p = good;
  p.model_digest = "0123";
  EXPECT_TRUE(has(error_of(m, p), "made for another model"));
  p = good;
  p.activations[1].tensor = "missing";
  EXPECT_TRUE(has(error_of(m, p), "'missing' is not a value of the model"));
  p = good;
  p.layers[1].scales.pop_back();
  EXPECT_TRUE(has(error_of(m, p), "3 weight scales for 4 output channels"));
  p = good;
  p.layers[3].weight_axis = 1;
  EXPECT_TRUE(has(error_of(m, p), "weight axis 1"));
  p = good;
  p.layers[0].node = "conv_typo";
  EXPECT_TRUE(has(error_of(m, p), "'conv_typo' is not a node"));
  p = good;
  p.activations[0].scale = 0;
  EXPECT_TRUE(has(error_of(m, p), "not a positive finite number"));
  p = good;
  p.activations[0].zero_point = 300;
  EXPECT_TRUE(has(error_of(m, p), "zero point 300"));
}

TEST(QuantExport, OldOpsetIsRaisedTo13) {
  // Squeeze-11 takes its axes as an attribute, Squeeze-13 as an input: the converter rewrites it.
  const Model m = named_model(R"(
g (float[1,2,4,4] x) => (float[3] y)
<float[3,2,4,4] w>
{
  c = Conv (x, w)
  y = Squeeze <axes = [0, 2, 3]> (c)
})", 11);
  const auto pts = quant::find_quant_points(m, {});
  const Tensor x = input({1, 2, 4, 4}, 7);
  const QuantPlan plan = minmax_plan(m, pts, x);
  const Model q = quant::export_qdq(m, plan);
  EXPECT_EQ(q.opset(), 13);
  validate_graph(q.graph);
  Executor fe(m, {1}), qe(q, {1});
  const auto yf = fe.run({{"x", x}}).at("y"), yq = qe.run({{"x", x}}).at("y");
  ASSERT_EQ(yq.shape(), (Shape{3}));
  EXPECT_GT(sqnr_db(yf.span<float>(), yq.span<float>()), 25.0);
}

TEST(QuantExport, SharedWeightGetsItsOwnDequantizeLinear) {
  const Model m = named_model(R"(
g (float[1,2,4,4] x) => (float[1,2,4,4] y)
<float[2,2,1,1] w>
{
  a = Conv (x, w)
  y = Conv (a, w)
})");
  const auto pts = quant::find_quant_points(m, {});
  const Model q = quant::export_qdq(m, minmax_plan(m, pts, input({1, 2, 4, 4}, 8)));
  validate_graph(q.graph);
  EXPECT_FALSE(q.graph.has_initializer("w")) << "no float copy left behind";
  EXPECT_EQ(op_histogram(q.graph).at("DequantizeLinear"), 3u + 2u);
}

}  // namespace
}  // namespace repq::test
