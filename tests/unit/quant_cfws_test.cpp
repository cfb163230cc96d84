// CFWS as a graph transform (quant/cfws_pass.h): the split graph's structure, the decisions
// (which convs, why not), and the executor's proof that the split model computes the same
// function on hand-built convs (depthwise, grouped, strided, dilated, asymmetric pads) and on
// the bundled and real MobileOne models.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "repq/data/npy.h"
#include "repq/ir/graph_utils.h"
#include "repq/ir/onnx_io.h"
#include "repq/quant/cfws_pass.h"
#include "repq/runtime/executor.h"
#include "support/mobileone.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

using quant::apply_cfws;
using quant::WeightMode;

Model text_model(const std::string& graph) {
  return parse_onnx_text("<ir_version: 8, opset_import: [\"\" : 13]>\n" + graph);
}

std::map<std::string, Tensor> run_all(const Model& m, const std::map<std::string, Tensor>& in) {
  Executor ex(m, ExecutorOptions{2});
  return ex.run(in);
}

// max |a - b| / max |a| over every output: the split model against the original.
double max_rel_diff(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
  double diff = 0, ref = 0;
  for (const auto& [name, ta] : a) {
    const Tensor& tb = b.at(name);
    EXPECT_EQ(ta.shape(), tb.shape()) << name;
    const auto va = ta.span<float>(), vb = tb.span<float>();
    for (size_t i = 0; i < va.size(); ++i) {
      diff = std::max(diff, std::fabs(static_cast<double>(va[i]) - vb[i]));
      ref = std::max(ref, std::fabs(static_cast<double>(va[i])));
    }
  }
  return ref > 0 ? diff / ref : diff;
}

size_t count_op(const Model& m, const std::string& op) {
  return static_cast<size_t>(std::count_if(m.graph.nodes.begin(), m.graph.nodes.end(),
                                           [&](const Node& n) { return n.op_type == op; }));
}

const Node* find_node(const Model& m, const std::string& name) {
  for (const auto& n : m.graph.nodes)
    if (n.name == name) return &n;
  return nullptr;
}

// Depthwise (stride 1), grouped (stride 2), dilated (asymmetric pads), 5x5 and two convs the
// pass must leave alone (a 1x1 and a pad-0 3x3).
const char* kConvs = R"(
g (float[2,8,13,13] x) => (float[2,8,13,13] y_dw, float[2,8,7,7] y_gr, float[2,8,14,15] y_dil,
                           float[2,4,13,13] y_5, float[2,4,13,13] y_1, float[2,4,11,11] y_v)
<float[8,1,3,3] w_dw, float[8] b_dw, float[8,4,3,3] w_gr, float[8,8,3,3] w_dil, float[8] b_dil,
 float[4,8,5,5] w_5, float[4,8,1,1] w_1, float[4,8,3,3] w_v>
{
  y_dw = Conv <kernel_shape = [3,3], pads = [1,1,1,1], group = 8> (x, w_dw, b_dw)
  y_gr = Conv <pads = [1,1,1,1], strides = [2,2], group = 2> (x, w_gr)
  y_dil = Conv <dilations = [2,2], pads = [3,2,2,4], strides = [1,1]> (x, w_dil, b_dil)
  y_5 = Conv <kernel_shape = [5,5], pads = [2,2,2,2]> (x, w_5)
  y_1 = Conv <kernel_shape = [1,1]> (x, w_1)
  y_v = Conv <kernel_shape = [3,3]> (x, w_v)
})";

TEST(QuantCfws, SplitsEveryApplicableConvAndComputesTheSameFunction) {
  const Model orig = text_model(kConvs);
  Model m = orig;
  const auto decisions = apply_cfws(m, WeightMode::kCfws);
  ASSERT_EQ(decisions.size(), 6u);
  std::map<std::string, bool> applied;
  for (const auto& d : decisions) applied[d.node] = d.applied;
  for (const char* out : {"y_dw", "y_gr", "y_dil", "y_5"}) EXPECT_TRUE(applied[out]) << out;
  EXPECT_FALSE(applied["y_1"]);
  EXPECT_FALSE(applied["y_v"]);
  EXPECT_EQ(decisions[4].reason, "1x1 kernel");
  EXPECT_NE(decisions[5].reason.find("negative pads"), std::string::npos) << decisions[5].reason;
  EXPECT_NE(decisions[0].reason.find("--weights cfws"), std::string::npos) << decisions[0].reason;
  EXPECT_EQ(count_op(m, "Conv"), 10u);
  EXPECT_EQ(count_op(m, "Add"), 4u);
  validate_graph(m.graph);
  // The split kernels replace the originals; the unsplit ones stay.
  for (const char* w : {"w_dw", "w_gr", "w_dil", "w_5"}) EXPECT_FALSE(m.graph.has_initializer(w)) << w;
  EXPECT_TRUE(m.graph.has_initializer("w_1"));
  EXPECT_TRUE(m.graph.has_initializer("b_dw"));

  const Tensor x = Tensor::from_vector<float>({2, 8, 13, 13}, random_floats(2 * 8 * 13 * 13, 5));
  const auto a = run_all(orig, {{"x", x}}), b = run_all(m, {{"x", x}});
  ASSERT_EQ(b.size(), 6u);
  EXPECT_LT(max_rel_diff(a, b), 1e-5);
  // Each split output individually too.
  for (const char* out : {"y_dw", "y_gr", "y_dil", "y_5"})
    EXPECT_LT(max_rel_diff({{out, a.at(out)}}, {{out, b.at(out)}}), 1e-5) << out;
}

TEST(QuantCfws, SplitNodesAttributesAndNames) {
  Model m = text_model(kConvs);
  apply_cfws(m, WeightMode::kCfws);
  // Unnamed nodes are named after their output.
  const Node* coarse = find_node(m, "y_dil/cfws_coarse");
  const Node* fine = find_node(m, "y_dil/cfws_fine");
  const Node* add = find_node(m, "y_dil/cfws_add");
  ASSERT_TRUE(coarse && fine && add);
  EXPECT_EQ(coarse->inputs, (std::vector<std::string>{"x", "y_dil/cfws_coarse.weight"}));
  EXPECT_EQ(coarse->attr_ints("kernel_shape"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(coarse->attr_ints("dilations"), (std::vector<int64_t>{1, 1}));
  // pads [3,2,2,4] less dilation 2 * (3-1)/2 = 2
  EXPECT_EQ(coarse->attr_ints("pads"), (std::vector<int64_t>{1, 0, 0, 2}));
  EXPECT_EQ(coarse->attr_int("group", 0), 1);
  EXPECT_EQ(coarse->outputs, (std::vector<std::string>{"y_dil/cfws_coarse_output_0"}));
  EXPECT_EQ(fine->inputs,
            (std::vector<std::string>{"x", "y_dil/cfws_fine.weight", "b_dil"}));  // bias here
  EXPECT_EQ(fine->attr_ints("dilations"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(fine->attr_ints("pads"), (std::vector<int64_t>{3, 2, 2, 4}));
  EXPECT_EQ(add->inputs, (std::vector<std::string>{"y_dil/cfws_coarse_output_0",
                                                   "y_dil/cfws_fine_output_0"}));
  EXPECT_EQ(add->outputs, (std::vector<std::string>{"y_dil"}));  // the original output name
  // The halves get the original output's declared type.
  for (const char* v : {"y_dil/cfws_coarse_output_0", "y_dil/cfws_fine_output_0"}) {
    const ValueInfo* vi = m.graph.find_value_info(v);
    ASSERT_NE(vi, nullptr) << v;
    EXPECT_EQ(vi->shape(), (Shape{2, 8, 14, 15}));
  }
  const Tensor* cw = m.graph.initializer("y_dil/cfws_coarse.weight");
  const Tensor* fw = m.graph.initializer("y_dil/cfws_fine.weight");
  ASSERT_TRUE(cw && fw);
  EXPECT_EQ(cw->shape(), (Shape{8, 8, 1, 1}));
  EXPECT_EQ(fw->shape(), (Shape{8, 8, 3, 3}));
  // The depthwise split keeps its groups and stride; the grouped one its stride 2.
  const Node* dw = find_node(m, "y_dw/cfws_coarse");
  ASSERT_NE(dw, nullptr);
  EXPECT_EQ(dw->attr_int("group", 0), 8);
  EXPECT_EQ(dw->attr_ints("pads"), (std::vector<int64_t>{0, 0, 0, 0}));
  EXPECT_EQ(m.graph.initializer("y_dw/cfws_coarse.weight")->shape(), (Shape{8, 1, 1, 1}));
  const Node* gr = find_node(m, "y_gr/cfws_coarse");
  ASSERT_NE(gr, nullptr);
  EXPECT_EQ(gr->attr_ints("strides"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(gr->attr_int("group", 0), 2);
  // Depthwise: one centre per channel, so the coarse 1x1 takes it whole (q = +-127) and the
  // fine centre keeps at most half a coarse step s_c = |centre| / 127.
  const auto dw_coarse = m.graph.initializer("y_dw/cfws_coarse.weight")->span<float>();
  const auto dw_fine = m.graph.initializer("y_dw/cfws_fine.weight")->span<float>();
  for (size_t o = 0; o < 8; ++o)
    EXPECT_LE(std::fabs(dw_fine[o * 9 + 4]), std::fabs(dw_coarse[o]) / 127 * 0.5001f) << o;
}

TEST(QuantCfws, GeneratedNamesStayUnique) {
  // A node already called like the generated name: NameGen picks another.
  Model m = text_model(R"(
g (float[1,2,5,5] x) => (float[1,2,5,5] y, float[1,2,5,5] z)
<float[2,2,3,3] w>
{
  z = Identity (x)
  y = Conv <pads = [1,1,1,1]> (x, w)
})");
  m.graph.nodes[0].name = "conv/cfws_coarse";
  m.graph.nodes[1].name = "conv";
  const auto d = apply_cfws(m, WeightMode::kCfws);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_TRUE(d[0].applied);
  EXPECT_EQ(d[0].node, "conv");
  EXPECT_NE(find_node(m, "conv/cfws_coarse_1"), nullptr);
  std::set<std::string> names;
  for (const auto& n : m.graph.nodes) EXPECT_TRUE(names.insert(n.name).second) << n.name;
}

TEST(QuantCfws, RefusesWhatItCannotSplit) {
  Model m = text_model(R"(
g (float[1,4,6,6] x, float[4,4,3,3] w_in) => (float[1,4,6,6] a, float[1,4,6,6] b, float[1,4,6,6] c, float[1,4,6,6] d, float[1,4,6,6] e)
<float[4,4,3,3] w, float[4,4,3,1] w31>
{
  a = Conv <auto_pad = "SAME_UPPER", kernel_shape = [3,3]> (x, w)
  b = Conv <pads = [1,1,1,1]> (x, w_in)
  c = Conv <pads = [1,0,1,0]> (x, w31)
  d = Conv <pads = [1,1,1,1]> (x, w)
  e = Relu (x)
})");
  m.graph.nodes[3].name = "keep_me";
  const auto decisions = apply_cfws(m, WeightMode::kCfws, {"keep_me"});
  ASSERT_EQ(decisions.size(), 4u);
  for (const auto& d : decisions) EXPECT_FALSE(d.applied) << d.node;
  EXPECT_EQ(decisions[0].reason, "auto_pad SAME_UPPER");
  EXPECT_EQ(decisions[1].reason, "weight is not a constant initializer");
  EXPECT_EQ(decisions[2].reason, "3x1 kernel");
  EXPECT_EQ(decisions[3].reason, "excluded");
  EXPECT_EQ(decisions[3].node, "keep_me");
  EXPECT_EQ(count_op(m, "Conv"), 4u);
  // Other modes change nothing and report nothing.
  for (auto mode : {WeightMode::kPerChannel, WeightMode::kPerTensor})
    EXPECT_TRUE(apply_cfws(m, mode).empty());
  EXPECT_EQ(m.graph.nodes.size(), 5u);
}

TEST(QuantCfws, SharedWeightIsKeptWhileAnotherConvUsesIt) {
  Model m = text_model(R"(
g (float[1,2,5,5] x) => (float[1,2,5,5] y, float[1,2,5,5] z)
<float[2,2,3,3] w>
{
  y = Conv <pads = [1,1,1,1]> (x, w)
  z = Conv <pads = [1,1,1,1]> (x, w)
})");
  Model both = m;
  apply_cfws(both, WeightMode::kCfws);
  EXPECT_FALSE(both.graph.has_initializer("w"));  // nothing reads it any more
  EXPECT_EQ(count_op(both, "Conv"), 4u);
  // An unnamed node is known (and excluded) by its first output's name.
  apply_cfws(m, WeightMode::kCfws, {"z"});
  EXPECT_TRUE(m.graph.has_initializer("w"));  // z still reads it
  EXPECT_EQ(count_op(m, "Conv"), 3u);
}

TEST(QuantCfws, AutoSplitsOnlyWhereTheWeightErrorDrops) {
  Model m = text_model(R"(
g (float[1,8,6,6] x) => (float[1,8,6,6] y, float[1,8,6,6] z)
<float[8,8,3,3] w_dominant, float[8,8,3,3] w_plain>
{
  y = Conv <pads = [1,1,1,1]> (x, w_dominant)
  z = Conv <pads = [1,1,1,1]> (x, w_plain)
})");
  // RepVGG-like: centre taps 100x the surround.
  for (size_t j = 4; j < 8 * 8 * 9; j += 9) m.graph.mutable_initializer("w_dominant")->mutable_span<float>()[j] *= 100.0f;
  const Model orig = m;
  const auto d = apply_cfws(m, WeightMode::kCfwsAuto);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_TRUE(d[0].applied);
  EXPECT_GT(d[0].sqnr_cfws_db, d[0].sqnr_per_channel_db + 10);
  EXPECT_GT(d[0].centre_surround, 50);
  EXPECT_NE(d[0].reason.find("cfws lowers the weight error"), std::string::npos) << d[0].reason;
  EXPECT_FALSE(d[1].applied);
  EXPECT_NE(d[1].reason.find("does not lower"), std::string::npos) << d[1].reason;
  EXPECT_LT(d[1].centre_surround, 1.1);
  EXPECT_EQ(count_op(m, "Conv"), 3u);
  EXPECT_TRUE(m.graph.has_initializer("w_plain"));
  const Tensor x = Tensor::from_vector<float>({1, 8, 6, 6}, random_floats(288, 9));
  EXPECT_LT(max_rel_diff(run_all(orig, {{"x", x}}), run_all(m, {{"x", x}})), 1e-5);
  // Deterministic: the same model gives the same result.
  Model again = orig;
  apply_cfws(again, WeightMode::kCfwsAuto);
  EXPECT_EQ(serialize_model(again), serialize_model(m));
}

// The bundled deploy models (Fashion-MNIST): every applicable conv split, same outputs.
TEST(QuantCfws, BundledDeployModelsComputeTheSameFunction) {
  for (const char* name : {"mobileone", "repvgg", "acdbb"}) {
    SCOPED_TRACE(name);
    const std::string dir = source_dir() + "/models/" + name + "/";
    const Model orig = load_model(dir + name + ".deploy.onnx");
    Model m = orig;
    const auto d = apply_cfws(m, WeightMode::kCfws);
    const auto n_applied = std::count_if(d.begin(), d.end(), [](const auto& x) { return x.applied; });
    EXPECT_GT(n_applied, 0);
    EXPECT_EQ(count_op(m, "Add"), count_op(orig, "Add") + static_cast<size_t>(n_applied));
    validate_graph(m.graph);
    const Tensor x = data::read_npy(dir + "ref_input.npy", true);
    Executor a(orig, ExecutorOptions{2}), b(m, ExecutorOptions{2});
    const std::string in = a.input_names().at(0);
    EXPECT_LT(max_rel_diff(a.run({{in, x}}), b.run({{in, x}})), 1e-5);
  }
}

// MobileOne-S0 from ../shared: every depthwise and dense 3x3 split, same logits.
TEST(QuantCfws, MobileOneS0ComputesTheSameFunction) {
  REPQ_REQUIRE_MOBILEONE(path);
  const Model orig = load_model(path);
  Model m = orig;
  const auto d = apply_cfws(m, WeightMode::kCfws);
  const auto n_applied = std::count_if(d.begin(), d.end(), [](const auto& x) { return x.applied; });
  EXPECT_GT(n_applied, 10);
  const Tensor x = mobileone_apple_input();
  Executor a(orig, ExecutorOptions{2}), b(m, ExecutorOptions{2});
  const std::string in = a.input_names().at(0);
  EXPECT_LT(max_rel_diff(a.run({{in, x}}), b.run({{in, x}})), 1e-5);
}

TEST(QuantCfws, IdentitySplitOfSquarePointwiseConvs) {
  const Model orig = text_model(R"(
g (float[2,6,7,7] x) => (float[2,6,4,4] y, float[2,4,7,7] z, float[2,6,7,7] v)
<float[6,6,1,1] w_sq, float[6] b_sq, float[4,6,1,1] w_rect, float[6,3,1,1] w_grp>
{
  y = Conv <strides = [2,2]> (x, w_sq, b_sq)
  z = Conv (x, w_rect)
  v = Conv <group = 2> (x, w_grp)
})");
  Model off = orig;
  EXPECT_EQ(apply_cfws(off, WeightMode::kCfws)[0].reason, "1x1 kernel");  // off by default
  Model m = orig;
  const auto d = apply_cfws(m, WeightMode::kCfws, {}, true);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_TRUE(d[0].applied);
  EXPECT_NE(d[0].reason.find("identity split"), std::string::npos) << d[0].reason;
  EXPECT_FALSE(d[1].applied);
  EXPECT_FALSE(d[2].applied);
  EXPECT_EQ(d[1].reason, "1x1 kernel, not square or grouped");
  const Node* coarse = find_node(m, "y/cfws_coarse");
  ASSERT_NE(coarse, nullptr);
  EXPECT_EQ(coarse->attr_int("group", 0), 6);  // depthwise: the diagonal
  EXPECT_EQ(coarse->attr_ints("strides"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(m.graph.initializer("y/cfws_coarse.weight")->shape(), (Shape{6, 1, 1, 1}));
  const Tensor x = Tensor::from_vector<float>({2, 6, 7, 7}, random_floats(2 * 6 * 49, 3));
  EXPECT_LT(max_rel_diff(run_all(orig, {{"x", x}}), run_all(m, {{"x", x}})), 1e-5);
  // cfws-auto splits a diagonal 100x the rest, not a plain random one.
  Model dom = orig;
  for (size_t o = 0; o < 6; ++o) dom.graph.mutable_initializer("w_sq")->mutable_span<float>()[o * 7] *= 100;
  EXPECT_TRUE(apply_cfws(dom, WeightMode::kCfwsAuto, {}, true)[0].applied);
  Model plain = orig;
  EXPECT_FALSE(apply_cfws(plain, WeightMode::kCfwsAuto, {}, true)[0].applied);
}

// Per-layer weight SQNR, per channel against CFWS (auto decisions), and the model total
// (all conv weights together). Printed as markdown for docs/cfws.md.
struct ModelGains {
  int convs = 0, applicable = 0, split = 0;
  double total_pc_db = 0, total_auto_db = 0, total_cfws_db = 0;
};

ModelGains measure(const std::string& path, const std::string& title) {
  Model m = load_model(path);
  const Model orig = m;
  const auto d = apply_cfws(m, WeightMode::kCfwsAuto);
  ModelGains g;
  double sig = 0, n_pc = 0, n_auto = 0, n_cfws = 0;
  std::printf("\n%s\n| conv | kernel | centre/surround | per-channel dB | cfws dB | gain | split |\n"
              "|---|---|---|---|---|---|---|\n", title.c_str());
  for (const auto& n : orig.graph.nodes) {
    if (n.op_type != "Conv" || !orig.graph.initializer(n.inputs[1])) continue;
    ++g.convs;
    const Tensor& w = *orig.graph.initializer(n.inputs[1]);
    const auto e = quant::weight_errors(w);
    double s = 0;
    for (float v : w.span<float>()) s += static_cast<double>(v) * v;
    sig += s;
    n_pc += s / std::pow(10.0, e.sqnr_per_channel_db / 10);
    const std::string name = n.name.empty() ? n.outputs[0] : n.name;
    const auto it = std::find_if(d.begin(), d.end(), [&](const auto& x) { return x.node == name; });
    const bool split = it != d.end() && it->applied;
    if (!std::isnan(e.sqnr_cfws_db)) {
      ++g.applicable;
      n_cfws += s / std::pow(10.0, e.sqnr_cfws_db / 10);
      n_auto += s / std::pow(10.0, (split ? e.sqnr_cfws_db : e.sqnr_per_channel_db) / 10);
      std::printf("| %s | %s | %.1f | %.1f | %.1f | %+.1f | %s |\n", name.c_str(),
                  shape_str(w.shape()).c_str(), e.centre_surround, e.sqnr_per_channel_db,
                  e.sqnr_cfws_db, e.sqnr_cfws_db - e.sqnr_per_channel_db, split ? "yes" : "no");
    } else {
      n_cfws += s / std::pow(10.0, e.sqnr_per_channel_db / 10);
      n_auto += s / std::pow(10.0, e.sqnr_per_channel_db / 10);
    }
    g.split += split;
  }
  g.total_pc_db = 10 * std::log10(sig / n_pc);
  g.total_auto_db = 10 * std::log10(sig / n_auto);
  g.total_cfws_db = 10 * std::log10(sig / n_cfws);
  std::printf("%s: %d convs, %d kxk, cfws-auto splits %d; all conv weights: per-channel %.2f dB, "
              "cfws-auto %.2f dB, cfws everywhere %.2f dB\n", title.c_str(), g.convs, g.applicable,
              g.split, g.total_pc_db, g.total_auto_db, g.total_cfws_db);
  return g;
}

TEST(QuantCfws, WeightGainsOnTheBundledModels) {
  for (const char* name : {"repvgg", "repvgg_l2", "qarepvgg", "qarepvgg_v2", "acdbb", "mobileone"}) {
    const auto g = measure(source_dir() + "/models/" + name + "/" + name + ".deploy.onnx", name);
    EXPECT_GE(g.total_auto_db, g.total_pc_db) << name;
    EXPECT_GE(g.total_cfws_db, g.total_pc_db) << name;
    EXPECT_LE(g.split, g.applicable) << name;
  }
}

TEST(QuantCfws, WeightGainsOnMobileOneS0) {
  REPQ_REQUIRE_MOBILEONE(path);
  const auto g = measure(path, "MobileOne-S0");
  EXPECT_GT(g.split, 0);
  EXPECT_GT(g.total_auto_db, g.total_pc_db);
}

}  // namespace
}  // namespace repq::test
