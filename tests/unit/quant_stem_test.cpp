// QuantizeOptions::float_stem (--float-stem): on target ort a Conv fed by a graph input with at
// most 4 input channels stays float, its input gets no Q/DQ, the next layer's input does; every
// other conv, and every conv on target tensorrt or without the option, is quantized as before.
#include <gtest/gtest.h>

#include <algorithm>

#include "repq/quant/quantize.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

using quant::QuantizeOptions;
using quant::QuantPoints;
using quant::Target;

Model named(const std::string& text) {
  Model m = parse_onnx_text("<ir_version: 8, opset_import: [\"\" : 13]>\n" + text);
  for (auto& n : m.graph.nodes) n.name = n.outputs.at(0);
  return m;
}

// A 3-channel stem conv + Relu, then a 4->4 conv.
const char* kStemNet = R"(
g (float[1,3,8,8] x) => (float[1,4,8,8] y)
<float[4,3,3,3] w1, float[4] b1, float[4,4,3,3] w2, float[4] b2>
{
  c1 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w1, b1)
  r1 = Relu (c1)
  y = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (r1, w2, b2)
})";

std::vector<std::string> layer_names(const QuantPoints& q) {
  std::vector<std::string> v;
  for (const auto& l : q.layers) v.push_back(l.node);
  return v;
}
bool has_point(const QuantPoints& q, const std::string& t) {
  return std::any_of(q.activations.begin(), q.activations.end(), [&](auto& p) { return p.tensor == t; });
}

TEST(QuantStem, QuantizedByDefault) {
  const Model m = named(kStemNet);
  const QuantPoints q = quant::find_quant_points(m, QuantizeOptions{});
  EXPECT_EQ(layer_names(q), (std::vector<std::string>{"c1", "y"}));
  EXPECT_TRUE(has_point(q, "x"));
  EXPECT_TRUE(q.float_nodes.empty());
}

TEST(QuantStem, FloatStemKeepsTheThreeChannelConvFloat) {
  const Model m = named(kStemNet);
  QuantizeOptions o;
  o.float_stem = true;
  const QuantPoints q = quant::find_quant_points(m, o);
  EXPECT_EQ(layer_names(q), (std::vector<std::string>{"y"}));
  EXPECT_FALSE(has_point(q, "x"));   // nothing quantized reads the graph input
  EXPECT_TRUE(has_point(q, "r1"));   // the next conv's input
  EXPECT_FALSE(has_point(q, "c1"));  // the Relu is not absorbed into a float conv
  ASSERT_EQ(q.float_nodes.size(), 1u);
  EXPECT_EQ(q.float_nodes[0].node, "c1");
  EXPECT_NE(q.float_nodes[0].reason.find("3 input channels"), std::string::npos) << q.float_nodes[0].reason;
  // Plans re-split CFWS by the word "exclude" in a reason: this one must not contain it.
  EXPECT_EQ(q.float_nodes[0].reason.find("exclude"), std::string::npos);
}

TEST(QuantStem, TensorRtTargetIgnoresFloatStem) {
  const Model m = named(kStemNet);
  QuantizeOptions o;
  o.float_stem = true;
  o.target = Target::kTensorRT;
  EXPECT_EQ(layer_names(quant::find_quant_points(m, o)), (std::vector<std::string>{"c1", "y"}));
}

TEST(QuantStem, FiveInputChannelsOrAnInnerConvStayQuantized) {
  QuantizeOptions o;
  o.float_stem = true;
  // 5 input channels: over the limit.
  const Model five = named(R"(
g (float[1,5,8,8] x) => (float[1,4,8,8] y)
<float[4,5,3,3] w1, float[4] b1>
{ y = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w1, b1) })");
  EXPECT_EQ(layer_names(quant::find_quant_points(five, o)), (std::vector<std::string>{"y"}));
  // 4 input channels fed by the graph input: a stem; a 4-channel conv inside the net is not.
  const Model four = named(R"(
g (float[1,4,8,8] x) => (float[1,4,8,8] y)
<float[4,4,1,1] w1, float[4,4,1,1] w2>
{ c1 = Conv <kernel_shape = [1,1]> (x, w1)  y = Conv <kernel_shape = [1,1]> (c1, w2) })");
  EXPECT_EQ(layer_names(quant::find_quant_points(four, o)), (std::vector<std::string>{"y"}));
  // Grouped: 2 groups of 2 weight channels read 4 input channels.
  const Model grouped = named(R"(
g (float[1,4,8,8] x) => (float[1,4,8,8] y)
<float[4,2,1,1] w1, float[4,4,1,1] w2>
{ c1 = Conv <kernel_shape = [1,1], group = 2> (x, w1)  y = Conv <kernel_shape = [1,1]> (c1, w2) })");
  EXPECT_EQ(layer_names(quant::find_quant_points(grouped, o)), (std::vector<std::string>{"y"}));
}

}  // namespace
}  // namespace repq::test
