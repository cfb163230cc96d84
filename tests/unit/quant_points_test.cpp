// find_quant_points: which layers are quantized, which tensors get Q/DQ, Relu absorption,
// pass-through ops sharing scales, exclusions and unsupported layers.
#include <gtest/gtest.h>

#include "repq/error.h"
#include "repq/quant/quantize.h"
#include "support/quant_test_util.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

using quant::QuantizeOptions;
using quant::QuantPoints;
using quant::Target;

// conv+relu, a two-conv Add with Relu, Concat, MaxPool, GlobalAveragePool, Flatten, Gemm.
const std::string kNet = small_quant_net("1");

std::vector<std::string> tensors(const QuantPoints& q) {
  std::vector<std::string> v;
  for (const auto& p : q.activations) v.push_back(p.tensor);
  return v;
}
const quant::QuantPoint& point(const QuantPoints& q, const std::string& t) {
  for (const auto& p : q.activations)
    if (p.tensor == t) return p;
  throw std::runtime_error("no point " + t);
}
const quant::LayerQuant& layer(const QuantPoints& q, const std::string& n) {
  for (const auto& l : q.layers)
    if (l.node == n) return l;
  throw std::runtime_error("no layer " + n);
}
std::vector<std::string> layer_names(const QuantPoints& q) {
  std::vector<std::string> v;
  for (const auto& l : q.layers) v.push_back(l.node);
  return v;
}
using Names = std::vector<std::string>;

TEST(QuantPoints, OrtTargetAbsorbsRelusAndQuantizesIntegerOps) {
  const Model m = named_model(kNet);
  const QuantPoints q = quant::find_quant_points(m, {});
  EXPECT_EQ(layer_names(q), (Names{"c1", "c2", "c3", "y"}));
  // Graph order; c1 and s are not quantized themselves: their Relu outputs are.
  EXPECT_EQ(tensors(q), (Names{"x", "r1", "c2", "c3", "r2", "cat", "p", "gp", "f"}));
  EXPECT_EQ(q.stats_tensors(), tensors(q));
  for (const auto& p : q.activations) EXPECT_EQ(p.calibrated_on, p.tensor);

  const auto& c1 = layer(q, "c1");
  EXPECT_EQ(c1.op, "Conv");
  EXPECT_EQ(c1.input, "x");
  EXPECT_EQ(c1.weight, "w1");
  EXPECT_EQ(c1.bias, "b1");
  EXPECT_EQ(c1.output, "r1");
  EXPECT_TRUE(c1.relu_fused);
  EXPECT_EQ(c1.relu_node, "r1");
  EXPECT_EQ(c1.weight_axis, 0);
  EXPECT_TRUE(point(q, "r1").non_negative);

  // c2 feeds the Add, not a Relu: its own output is quantized (QLinearConv then QLinearAdd).
  EXPECT_EQ(layer(q, "c2").output, "c2");
  EXPECT_FALSE(layer(q, "c2").relu_fused);
  EXPECT_EQ(layer(q, "c3").bias, "");
  EXPECT_FALSE(point(q, "c2").non_negative);
  // The Add's Relu is absorbed: the Add's quantized output is r2.
  EXPECT_TRUE(point(q, "r2").non_negative);
  // MaxPool and Flatten pass their input's scale through; Concat and the pool have their own.
  EXPECT_EQ(point(q, "p").shared_with, "cat");
  EXPECT_EQ(point(q, "f").shared_with, "gp");
  EXPECT_EQ(point(q, "cat").shared_with, "");
  EXPECT_EQ(point(q, "gp").shared_with, "");
  // The Gemm's result is the graph output: it stays float (QGemm with a float output).
  const auto& y = layer(q, "y");
  EXPECT_EQ(y.input, "f");
  EXPECT_EQ(y.output, "y");
  EXPECT_EQ(y.weight_axis, 0) << "transB = 1: weight [N, K], output channels on axis 0";
  EXPECT_TRUE(q.float_nodes.empty());
}

TEST(QuantPoints, TensorRTKeepsTheRelus) {
  const Model m = named_model(kNet);
  QuantizeOptions o;
  o.target = Target::kTensorRT;
  const QuantPoints q = quant::find_quant_points(m, o);
  EXPECT_EQ(tensors(q), (Names{"x", "r1", "c2", "c3", "r2", "cat", "p", "gp", "f"}));
  EXPECT_FALSE(layer(q, "c1").relu_fused);
  EXPECT_EQ(layer(q, "c1").relu_node, "");
  EXPECT_EQ(layer(q, "c1").output, "r1") << "the quantized tensor after the layer";
  EXPECT_TRUE(point(q, "r1").non_negative);
}

TEST(QuantPoints, ExcludedNodeStaysFloatAndStopsIntegerOpsBehindIt) {
  const Model m = named_model(kNet);
  QuantizeOptions o;
  o.exclude = {"c2"};
  const QuantPoints q = quant::find_quant_points(m, o);
  EXPECT_EQ(layer_names(q), (Names{"c1", "c3", "y"}));
  ASSERT_EQ(q.float_nodes.size(), 1u);
  EXPECT_EQ(q.float_nodes[0].node, "c2");
  EXPECT_EQ(q.float_nodes[0].op, "Conv");
  EXPECT_EQ(q.float_nodes[0].reason, "--exclude");
  // The Add has a float input now: it, the Concat, MaxPool and pool stay float; the Gemm's
  // input f is still quantized, on its own scale.
  EXPECT_EQ(tensors(q), (Names{"x", "r1", "c3", "f"}));
  EXPECT_EQ(point(q, "f").shared_with, "");
}

TEST(QuantPoints, ExcludedOpTypeRelu) {
  const Model m = named_model(kNet);
  QuantizeOptions o;
  o.exclude = {"Relu"};
  const QuantPoints q = quant::find_quant_points(m, o);
  EXPECT_FALSE(layer(q, "c1").relu_fused);
  EXPECT_EQ(layer(q, "c1").output, "c1");
  EXPECT_EQ(q.float_nodes.size(), 2u);
  // r1 is still the convs' input. The Add's only consumer is the excluded (float) Relu r2, so
  // the Add stays float too, and so do the Concat, MaxPool and pool behind it.
  EXPECT_EQ(tensors(q), (Names{"x", "c1", "r1", "c2", "c3", "f"}));
  EXPECT_FALSE(point(q, "r1").non_negative);
}

TEST(QuantPoints, UnknownExcludeIsAnError) {
  QuantizeOptions o;
  o.exclude = {"conv_typo"};
  try {
    quant::find_quant_points(named_model(kNet), o);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'conv_typo'"), std::string::npos) << e.what();
  }
}

TEST(QuantPoints, UnsupportedLayersAreListedWithTheReason) {
  const Model m = named_model(R"(
g (float[1,2,8] x, float[3,2,3,3] wdyn, float[1,2,6,6] z) => (float[1,3,6] a, float[1,3,4,4] b)
<float[3,2,3] w1d>
{
  a = Conv <kernel_shape = [3]> (x, w1d)
  b = Conv <kernel_shape = [3,3]> (z, wdyn)
})");
  const QuantPoints q = quant::find_quant_points(m, {});
  EXPECT_TRUE(q.layers.empty());
  EXPECT_TRUE(q.activations.empty());
  ASSERT_EQ(q.float_nodes.size(), 2u);
  EXPECT_EQ(q.float_nodes[0].node, "a");
  EXPECT_EQ(q.float_nodes[0].reason, "only 2-D convs are quantized");
  EXPECT_EQ(q.float_nodes[1].node, "b");
  EXPECT_NE(q.float_nodes[1].reason.find("constant"), std::string::npos) << q.float_nodes[1].reason;
}

TEST(QuantPoints, MatMulAndGemmWeightAxesAndFloatResults) {
  const Model m = named_model(R"(
g (float[2,8] x) => (float[2,4] y)
<float[8,6] wm, float[6,4] wg, float[4] bg>
{
  h = MatMul (x, wm)
  r = Relu (h)
  t = Gemm (r, wg, bg)
  y = Softmax <axis = 1> (t)
})");
  const QuantPoints q = quant::find_quant_points(m, {});
  EXPECT_EQ(layer_names(q), (Names{"h", "t"}));
  EXPECT_EQ(layer(q, "h").weight_axis, 1);
  EXPECT_EQ(layer(q, "h").output, "r");
  EXPECT_TRUE(layer(q, "h").relu_fused);
  EXPECT_EQ(layer(q, "t").weight_axis, 1) << "transB = 0: weight [K, N]";
  // Softmax has no integer form here: the Gemm's result stays float.
  EXPECT_EQ(layer(q, "t").output, "t");
  EXPECT_EQ(tensors(q), (Names{"x", "r"}));
}

TEST(QuantPoints, ClipFromZeroIsAbsorbedClipToSixIsNot) {
  const Model m = named_model(R"(
g (float[1,2,6,6] x) => (float[1,2,6,6] y)
<float[2,2,1,1] w1, float[2,2,1,1] w2, float[2,2,1,1] w3, float zero = {0.0}, float six = {6.0}>
{
  c1 = Conv (x, w1)
  k1 = Clip (c1, zero)
  c2 = Conv (k1, w2)
  k2 = Clip (c2, zero, six)
  y = Conv (k2, w3)
})");
  const QuantPoints q = quant::find_quant_points(m, {});
  EXPECT_TRUE(layer(q, "c1").relu_fused);
  EXPECT_EQ(layer(q, "c1").output, "k1");
  EXPECT_FALSE(layer(q, "c2").relu_fused);
  EXPECT_EQ(layer(q, "c2").output, "c2");
  // A Conv's output is always quantized (QLinearConv has an integer output), even a graph output.
  EXPECT_EQ(tensors(q), (Names{"x", "k1", "c2", "k2", "y"}));
}

TEST(QuantPoints, CfwsHalvesAreTwoLayersAndTheirAddIsQuantized) {
  // As quant::apply_cfws names them (the text syntax has no '/' in names: renamed below).
  Model m = named_model(R"(
g (float[1,2,6,6] x) => (float[1,2,6,6] y)
<float[2,2,1,1] wc, float[2,2,3,3] wf, float[2] b, float[2,2,1,1] w2>
{
  kc = Conv (x, wc)
  kf = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, wf, b)
  k = Add (kc, kf)
  r = Relu (k)
  y = Conv (r, w2)
})");
  m.graph.nodes[0].name = "k/cfws_coarse";
  m.graph.nodes[1].name = "k/cfws_fine";
  m.graph.nodes[2].name = "k/cfws_add";
  const QuantPoints q = quant::find_quant_points(m, {});
  EXPECT_EQ(layer_names(q), (Names{"k/cfws_coarse", "k/cfws_fine", "y"}));
  // Both halves read the same quantized input; the Add's inputs and its Relu output are
  // quantized: two QLinearConv and a QLinearAdd with the Relu absorbed.
  EXPECT_EQ(tensors(q), (Names{"x", "kc", "kf", "r", "y"}));
  EXPECT_TRUE(point(q, "r").non_negative);

  // Excluding the original conv's name keeps both halves (and the Add) float.
  QuantizeOptions o;
  o.exclude = {"k"};
  const QuantPoints e = quant::find_quant_points(m, o);
  EXPECT_EQ(layer_names(e), (Names{"y"}));
  EXPECT_EQ(e.float_nodes.size(), 3u);
  EXPECT_EQ(tensors(e), (Names{"r", "y"}));
}

}  // namespace
}  // namespace repq::test
