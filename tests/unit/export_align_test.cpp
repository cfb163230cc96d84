// ExportOptions::align_input_channels (off by default, see quantize.h): a quantized 2-D Conv (group 1, >= 16 output
// channels, a multiple of 4) reading a quantized graph input whose channel count is not a
// multiple of 4 reads QuantizeLinear(x) -> Pad(zero point) -> DequantizeLinear instead, the
// padded channels the zero point (float 0) and their int8 weights 0, so ONNX Runtime can run it with MLAS's symmetric conv kernels.
// Checked: the graph (pads, weight shape and values, which convs qualify), that the result is
// bit-identical to the unpadded export in repq's executor and in ONNX Runtime, and that ORT
// still forms a QLinearConv for every quantized Conv.
#include <gtest/gtest.h>

#include <algorithm>

#include "repq/ir/graph_utils.h"
#include "repq/ir/onnx_io.h"
#include "repq/quant/quantize.h"
#include "repq/runtime/executor.h"
#include "support/ort_runner.h"
#include "support/quant_test_util.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

using quant::ExportOptions;

// A 3-channel stem (16 outputs) + Relu, then a 1x1 conv; `extra` adds nodes.
std::string stem_net(int stem_out, const std::string& extra_outputs = "", const std::string& extra_inits = "",
                     const std::string& extra = "") {
  const std::string s = std::to_string(stem_out);
  return "g (float[N,3,8,8] x) => (float[N,16,8,8] y" + extra_outputs + ")\n<float[" + s +
         ",3,3,3] w1, float[" + s + "] b1, float[16," + s + ",1,1] w2, float[16] b2" + extra_inits + ">\n{\n" +
         "  c1 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w1, b1)\n  r1 = Relu (c1)\n" +
         "  y = Conv <kernel_shape = [1,1]> (r1, w2, b2)\n" + extra + "}";
}

Tensor random_input(int64_t n, uint32_t seed, int64_t channels = 3) {
  return Tensor::from_vector<float>({n, channels, 8, 8},
                                    random_floats(static_cast<size_t>(n * channels * 64), seed, -2.0f, 2.0f));
}

struct Exported {
  Model padded, plain;
};

Exported export_both(const Model& m, int64_t channels = 3) {
  const auto pts = quant::find_quant_points(m, quant::QuantizeOptions{});
  const quant::QuantPlan plan = minmax_plan(m, pts, random_input(4, 7, channels));
  ExportOptions on, off;
  on.align_input_channels = true;
  off.align_input_channels = false;
  return {quant::export_qdq(m, plan, on), quant::export_qdq(m, plan, off)};
}

const Node* find_op(const Graph& g, const std::string& op) {
  const auto it = std::find_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) { return n.op_type == op; });
  return it == g.nodes.end() ? nullptr : &*it;
}

// The int8 weight initializer behind the DequantizeLinear feeding input 1 of node `name`.
const Tensor& int8_weight(const Graph& g, const std::string& name) {
  const GraphIndex idx(g);
  const Node& conv = *std::find_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) { return n.name == name; });
  const Node& dq = g.nodes.at(idx.producer.at(conv.inputs[1]));
  EXPECT_EQ(dq.op_type, "DequantizeLinear");
  return *g.initializer(dq.inputs[0]);
}

TEST(ExportAlign, ThreeChannelStemReadsAZeroPaddedInput) {
  const Model m = named_model(stem_net(16));
  const Exported e = export_both(m);
  const Graph& g = e.padded.graph;
  const Node* pad = find_op(g, "Pad");
  ASSERT_NE(pad, nullptr);
  EXPECT_EQ(g.initializer(pad->inputs[1])->to_doubles(), (std::vector<double>{0, 0, 0, 0, 0, 1, 0, 0}));
  // QuantizeLinear(x) -> Pad(8-bit, pad value the zero point) -> DequantizeLinear -> c1, with x's
  // scale and zero point (uint8, not 0 for inputs in [-2, 2]: a float 0 would be wrong).
  const GraphIndex idx(g);
  const Node& q = g.nodes.at(idx.producer.at(pad->inputs[0]));
  ASSERT_EQ(q.op_type, "QuantizeLinear");
  EXPECT_EQ(q.inputs[0], "x");
  const Node* plain_q = find_op(e.plain.graph, "QuantizeLinear");
  ASSERT_EQ(plain_q->inputs[0], "x");
  const Tensor& zp = *g.initializer(q.inputs[2]);
  EXPECT_EQ(zp.dtype(), DType::kUInt8);
  EXPECT_NE(zp.to_doubles()[0], 0.0);
  EXPECT_EQ(g.initializer(q.inputs[1])->to_doubles(), e.plain.graph.initializer(plain_q->inputs[1])->to_doubles());
  EXPECT_EQ(zp.to_doubles(), e.plain.graph.initializer(plain_q->inputs[2])->to_doubles());
  ASSERT_EQ(pad->inputs.size(), 3u);
  EXPECT_EQ(g.initializer(pad->inputs[2])->dtype(), DType::kUInt8);
  EXPECT_EQ(g.initializer(pad->inputs[2])->to_doubles(), zp.to_doubles());
  EXPECT_EQ(pad->attr_string("mode", "constant"), "constant");
  const Node& dq = g.nodes.at(idx.consumers.at(pad->outputs[0]).at(0));
  ASSERT_EQ(dq.op_type, "DequantizeLinear");
  EXPECT_EQ(g.initializer(dq.inputs[1])->to_doubles(), g.initializer(q.inputs[1])->to_doubles());
  EXPECT_EQ(g.initializer(dq.inputs[2])->to_doubles(), zp.to_doubles());
  EXPECT_EQ(idx.consumers.at(dq.outputs[0]).size(), 1u);
  EXPECT_EQ(g.nodes.at(idx.consumers.at(dq.outputs[0]).at(0)).name, "c1");
  // x is read by nothing else: no unpadded QuantizeLinear of it is left.
  EXPECT_EQ(idx.consumers.at("x").size(), 1u);
  // The weight: [16, 4, 3, 3], channels 0-2 the unpadded export's, channel 3 zero.
  const Tensor& w4 = int8_weight(g, "c1");
  const Tensor& w3 = int8_weight(e.plain.graph, "c1");
  ASSERT_EQ(w4.shape(), (Shape{16, 4, 3, 3}));
  ASSERT_EQ(w3.shape(), (Shape{16, 3, 3, 3}));
  for (int64_t o = 0; o < 16; ++o)
    for (int64_t c = 0; c < 4; ++c)
      for (int64_t k = 0; k < 9; ++k) {
        const int8_t got = w4.data<int8_t>()[(o * 4 + c) * 9 + k];
        EXPECT_EQ(got, c < 3 ? w3.data<int8_t>()[(o * 3 + c) * 9 + k] : 0) << o << " " << c << " " << k;
      }
  // The inner conv is untouched.
  EXPECT_EQ(int8_weight(g, "y").shape(), (Shape{16, 16, 1, 1}));
  // repq's executor (ORT's QLinearConv arithmetic): bit-identical outputs.
  const Tensor x = random_input(3, 11);
  const Tensor a = Executor(e.padded, {1}).run({{"x", x}}).at("y");
  const Tensor b = Executor(e.plain, {1}).run({{"x", x}}).at("y");
  ASSERT_EQ(a.shape(), b.shape());
  EXPECT_TRUE(std::equal(a.span<float>().begin(), a.span<float>().end(), b.span<float>().begin()));
  // The padded stem runs the integer kernel (as ORT's QLinearConv), not DQ -> float Conv -> Q:
  // the integer kernel uses the int32 bias as it is and ignores its DequantizeLinear's scale, the
  // float path does not. Doubling c1's bias scale changes only the float path's outputs.
  Model skewed = e.padded;
  const GraphIndex sidx(skewed.graph);
  const Node& c1 = *std::find_if(skewed.graph.nodes.begin(), skewed.graph.nodes.end(),
                                 [](const Node& n) { return n.name == "c1"; });
  const std::string bias_scale = skewed.graph.nodes.at(sidx.producer.at(c1.inputs[2])).inputs[1];
  Tensor doubled = *skewed.graph.initializer(bias_scale);
  for (float& v : doubled.mutable_span<float>()) v *= 2.0f;
  skewed.graph.set_initializer(bias_scale, doubled);
  const Tensor exact = Executor(skewed, {1}).run({{"x", x}}).at("y");
  EXPECT_TRUE(std::equal(exact.span<float>().begin(), exact.span<float>().end(), b.span<float>().begin()));
  ExecutorOptions inexact;
  inexact.threads = 1;
  inexact.exact_qdq = false;
  const Tensor fl = Executor(skewed, inexact).run({{"x", x}}).at("y");
  EXPECT_FALSE(std::equal(exact.span<float>().begin(), exact.span<float>().end(), fl.span<float>().begin()));
}

TEST(ExportAlign, ConvsThatCannotUseTheFastKernelAreNotPadded) {
  // 8 output channels (< 16): ORT's symmetric kernel would not take it anyway.
  EXPECT_EQ(find_op(export_both(named_model(stem_net(8))).padded.graph, "Pad"), nullptr);
  // 4 input channels; a grouped stem.
  const Model four = named_model(R"(
g (float[N,4,8,8] x) => (float[N,16,8,8] y)
<float[16,4,3,3] w1>
{ y = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w1) })");
  EXPECT_EQ(find_op(export_both(four, 4).padded.graph, "Pad"), nullptr);
  const Model grouped = named_model(R"(
g (float[N,6,8,8] x) => (float[N,16,8,8] y)
<float[16,3,3,3] w1>
{ y = Conv <kernel_shape = [3,3], pads = [1,1,1,1], group = 2> (x, w1) })");
  EXPECT_EQ(find_op(export_both(grouped, 6).padded.graph, "Pad"), nullptr);
  // Only the layers of ExportOptions::only_layers get quantized weights; c1 is not among them.
  const Model m = named_model(stem_net(16));
  const auto pts = quant::find_quant_points(m, quant::QuantizeOptions{});
  ExportOptions only;
  only.align_input_channels = true;
  only.only_layers = {"y"};
  EXPECT_EQ(find_op(quant::export_qdq(m, minmax_plan(m, pts, random_input(2, 3)), only).graph, "Pad"), nullptr);
}

TEST(ExportAlign, AnInputAlsoReadElsewhereKeepsItsUnpaddedQuantization) {
  // x also feeds a 4-output conv (not padded) whose result is a second graph output.
  const Model m = named_model(stem_net(16, ", float[N,4,8,8] z", ", float[4,3,1,1] w3",
                                       "  z = Conv <kernel_shape = [1,1]> (x, w3)\n"));
  const Exported e = export_both(m);
  const Graph& g = e.padded.graph;
  ASSERT_NE(find_op(g, "Pad"), nullptr);
  const GraphIndex idx(g);
  ASSERT_EQ(idx.consumers.at("x").size(), 2u);  // the Pad and the unpadded QuantizeLinear
  const Tensor x = random_input(2, 5);
  for (const std::string out : {"y", "z"}) {
    const Tensor a = Executor(e.padded, {1}).run({{"x", x}}).at(out);
    const Tensor b = Executor(e.plain, {1}).run({{"x", x}}).at(out);
    EXPECT_TRUE(std::equal(a.span<float>().begin(), a.span<float>().end(), b.span<float>().begin())) << out;
  }
}

// ORT at level "extended" (the issue's check) and "all" (the benchmarks'): both convs run as
// QLinearConv, no float Conv, and the outputs equal the unpadded model's and repq's exactly.
TEST(ExportAlign, OrtRunsThePaddedStemAsQLinearConvWithIdenticalOutputs) {
  REPQ_REQUIRE_ORT();
  const Model m = named_model(stem_net(16));
  const Exported e = export_both(m);
  TempDir tmp;
  save_model(e.padded, tmp.file("padded.onnx"));
  save_model(e.plain, tmp.file("plain.onnx"));
  const Tensor x = random_input(3, 13);
  const Tensor want = Executor(e.padded, {1}).run({{"x", x}}).at("y");
  for (const std::string level : {"extended", "all"}) {
    OrtRunOptions ro;
    ro.level = level;
    ro.threads = 2;
    ro.optimized_model_path = tmp.file("opt_" + level + ".onnx");
    const Tensor got = ort_run(tmp.file("padded.onnx"), {{"x", x}}, ro).at("y");
    ro.optimized_model_path.clear();
    const Tensor plain = ort_run(tmp.file("plain.onnx"), {{"x", x}}, ro).at("y");
    LoadOptions lo;
    lo.validate = false;
    const auto ops = op_histogram(load_model(tmp.file("opt_" + level + ".onnx"), lo).graph);
    const auto count = [&](const std::string& op) { return ops.count(op) ? ops.at(op) : size_t{0}; };
    EXPECT_EQ(count("QLinearConv") + count("com.microsoft:QLinearConv"), 2u) << level;
    EXPECT_EQ(count("Conv"), 0u) << level;
    EXPECT_EQ(count("DequantizeLinear"), 1u) << level;  // the output's
    ASSERT_EQ(got.shape(), want.shape());
    EXPECT_TRUE(std::equal(got.span<float>().begin(), got.span<float>().end(), want.span<float>().begin())) << level;
    EXPECT_TRUE(std::equal(got.span<float>().begin(), got.span<float>().end(), plain.span<float>().begin())) << level;
  }
}

}  // namespace
}  // namespace repq::test
