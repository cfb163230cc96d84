// build_plan: activation scales / zero points per target from hand-made statistics (values
// computed by hand in the comments), shared scales, clipped fractions, weight encodings and
// axes of Conv / Gemm / MatMul, CFWS halves; apply_method_preset; model_digest.
#include <gtest/gtest.h>

#include <cmath>

#include "repq/calib/calibrators.h"
#include "repq/error.h"
#include "repq/eval/metrics.h"
#include "repq/quant/quantize.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

using quant::QuantizeOptions;
using quant::QuantPoint;
using quant::QuantPoints;
using quant::Target;

const char* kNet = R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[1,2,4,4] x) => (float[1,3] y1, float[1,3] y2, float[1,3] y3)
<float[2,2,1,1] w1 = {127, 0, -254, 1}, float[2,3] wg = {127, 254, 1, -127, 0, 127},
 float[3,2] wt = {127, -127, 254, 0, 1, 127}, float[2,3] wm = {127, 254, 1, -127, 0, 127}>
{
  c1 = Conv <kernel_shape = [1,1]> (x, w1)
  r1 = Relu (c1)
  gp = GlobalAveragePool (r1)
  f = Flatten (gp)
  y1 = Gemm (f, wg)
  y2 = Gemm <transB = 1> (f, wt)
  y3 = MatMul (f, wm)
})";

Model net() {
  Model m = parse_onnx_text(kNet);
  for (auto& n : m.graph.nodes) n.name = n.outputs.at(0);
  return m;
}

calib::TensorStats stats_of(const std::string& name, double lo, double hi,
                            std::vector<uint64_t> counts = {}) {
  calib::TensorStats s;
  s.name = name;
  s.min = lo;
  s.max = hi;
  s.hist.amax = std::max(std::abs(lo), std::abs(hi));
  s.hist.counts = std::move(counts);
  s.count = s.hist.total();
  return s;
}

struct Fixture {
  QuantPoints points;
  std::map<std::string, calib::TensorStats> stats;
  void add(const std::string& t, bool non_negative, calib::TensorStats s, std::string shared = "") {
    QuantPoint p;
    p.tensor = t;
    p.calibrated_on = t;
    p.non_negative = non_negative;
    p.shared_with = std::move(shared);
    points.activations.push_back(p);
    stats[t] = std::move(s);
  }
};

const quant::ActivationQuant& act(const quant::QuantPlan& p, const std::string& t) {
  const quant::ActivationQuant* a = p.activation(t);
  if (!a) throw std::runtime_error("no activation " + t);
  return *a;
}

Fixture activation_fixture() {
  Fixture f;
  f.add("x", false, stats_of("x", -1, 3));
  f.add("r1", true, stats_of("r1", 0, 2.55));
  f.add("pos", false, stats_of("pos", 1, 5));
  f.add("neg", false, stats_of("neg", -5, -1));
  f.add("zero", false, stats_of("zero", 0, 0));
  f.add("gp", true, stats_of("gp", 0, 1));
  f.add("f", true, stats_of("f", 0, 2), "gp");
  return f;
}

TEST(QuantBuildPlan, OrtMinMaxScalesAndZeroPoints) {
  Fixture f = activation_fixture();
  QuantizeOptions o;  // ort, minmax
  const quant::QuantPlan p = quant::build_plan(net(), f.points, f.stats, o);
  ASSERT_EQ(p.activations.size(), 7u);
  // Signed [-1, 3]: scale 4/255, zero point round(1 / (4/255)) = round(63.75) = 64.
  EXPECT_FLOAT_EQ(act(p, "x").scale, 0.015686275f);
  EXPECT_EQ(act(p, "x").zero_point, 64);
  EXPECT_EQ(act(p, "x").dtype, DType::kUInt8);
  EXPECT_EQ(act(p, "x").threshold, 3);
  EXPECT_EQ(act(p, "x").min, -1);
  EXPECT_EQ(act(p, "x").method, "minmax");
  // Relu output [0, 2.55]: scale 0.01, zero point 0.
  EXPECT_FLOAT_EQ(act(p, "r1").scale, 0.01f);
  EXPECT_EQ(act(p, "r1").zero_point, 0);
  EXPECT_TRUE(act(p, "r1").non_negative);
  // [1, 5] widened to [0, 5]: 5/255, zero point 0. [-5, -1] -> [-5, 0]: zero point 255.
  EXPECT_FLOAT_EQ(act(p, "pos").scale, 0.019607844f);
  EXPECT_EQ(act(p, "pos").zero_point, 0);
  EXPECT_FLOAT_EQ(act(p, "neg").scale, 0.019607844f);
  EXPECT_EQ(act(p, "neg").zero_point, 255);
  // All zeros: 2^-8, zero point 0.
  EXPECT_EQ(act(p, "zero").scale, 0.00390625f);
  EXPECT_EQ(act(p, "zero").zero_point, 0);
  EXPECT_EQ(act(p, "zero").threshold, 0);
  // Shared: the union [0, 2] for both, 2/255.
  EXPECT_FLOAT_EQ(act(p, "gp").scale, 0.007843138f);
  EXPECT_EQ(act(p, "f").scale, act(p, "gp").scale);
  EXPECT_EQ(act(p, "f").shared_with, "gp");
  EXPECT_EQ(act(p, "gp").shared_with, "");
  for (const auto& a : p.activations) EXPECT_EQ(a.clipped, 0) << a.tensor;
  // The plan loads back (shared scales equal, ranges valid).
  EXPECT_NO_THROW(quant::plan_from_json(quant::plan_to_json(p), "p.json"));
}

TEST(QuantBuildPlan, TensorRTIsSymmetricInt8) {
  Fixture f = activation_fixture();
  QuantizeOptions o;
  o.target = Target::kTensorRT;
  const quant::QuantPlan p = quant::build_plan(net(), f.points, f.stats, o);
  EXPECT_EQ(p.target, Target::kTensorRT);
  // T = max|x| = 3 -> 3/127; Relu output 2.55/127; [-5,-1] -> 5/127; union of gp/f: 2/127.
  EXPECT_FLOAT_EQ(act(p, "x").scale, 0.023622047f);
  EXPECT_FLOAT_EQ(act(p, "r1").scale, 0.020078741f);
  EXPECT_FLOAT_EQ(act(p, "neg").scale, 0.03937008f);
  EXPECT_FLOAT_EQ(act(p, "gp").scale, 0.015748031f);
  EXPECT_EQ(act(p, "f").scale, act(p, "gp").scale);
  for (const auto& a : p.activations) {
    EXPECT_EQ(a.dtype, DType::kInt8) << a.tensor;
    EXPECT_EQ(a.zero_point, 0) << a.tensor;
  }
  EXPECT_NO_THROW(quant::plan_from_json(quant::plan_to_json(p), "p.json"));
}

TEST(QuantBuildPlan, ClippedFractionFromTheHistogram) {
  Fixture f;
  // |x| in 4 bins over [0, 4]: 50 values in [2,3), 50 in [3,4]. 75th percentile: 3.5.
  f.add("p", true, stats_of("p", 0, 4, {0, 0, 50, 50}));
  // Signed [-1, 4], 20 values with |x| < 1: 75th percentile 3 + 15/40 = 3.375.
  f.add("s", false, stats_of("s", -1, 4, {20, 0, 40, 40}));
  QuantizeOptions o;
  o.act = calib::Method::kPercentile;
  o.percentile = 75;
  const quant::QuantPlan p = quant::build_plan(net(), f.points, f.stats, o);
  const auto& pa = act(p, "p");
  EXPECT_DOUBLE_EQ(pa.threshold, 3.5);
  EXPECT_FLOAT_EQ(pa.scale, static_cast<float>(3.5 / 255));
  // Saturates above (255 + 0.5) steps: the part of bin [3, 4] above it, of 100 values.
  EXPECT_NEAR(pa.clipped, 50 * (4 - 255.5 * pa.scale) / 100, 1e-12);
  EXPECT_NEAR(pa.clipped, 0.2466, 1e-4);
  const auto& sa = act(p, "s");
  EXPECT_DOUBLE_EQ(sa.threshold, 3.375);
  // Range [-1, 3.375]: scale 4.375/255, zero point round(58.29) = 58.
  EXPECT_FLOAT_EQ(sa.scale, static_cast<float>(4.375 / 255));
  EXPECT_EQ(sa.zero_point, 58);
  EXPECT_NEAR(sa.clipped, 40 * (4 - (255 - 58 + 0.5) * sa.scale) / 100, 1e-12);
  o.target = Target::kTensorRT;
  const quant::QuantPlan t = quant::build_plan(net(), f.points, f.stats, o);
  const auto& ta = act(t, "s");
  EXPECT_FLOAT_EQ(ta.scale, static_cast<float>(3.375 / 127));
  EXPECT_NEAR(ta.clipped, 40 * (4 - 127.5 * ta.scale) / 100, 1e-12);
}

TEST(QuantBuildPlan, LevelsFollowTargetAndSign) {
  std::vector<uint64_t> counts(64);
  for (size_t b = 0; b < counts.size(); ++b) counts[b] = 1 + (4000 >> std::min<size_t>(b, 12));
  Fixture f;
  f.add("u", true, stats_of("u", 0, 6.4, counts));
  f.add("v", false, stats_of("v", -6.4, 6.4, counts));
  QuantizeOptions o;
  o.act = calib::Method::kMse;
  const double t255 = calib::choose_threshold(f.stats["u"], o.act, {o.percentile, 255});
  const double t127 = calib::choose_threshold(f.stats["u"], o.act, {o.percentile, 127});
  ASSERT_NE(t255, t127);  // the histogram tells the two grids apart
  const quant::QuantPlan p = quant::build_plan(net(), f.points, f.stats, o);
  EXPECT_EQ(act(p, "u").threshold, t255);  // unsigned uint8: 255 levels
  EXPECT_EQ(act(p, "v").threshold, t127);  // signed: 127
  o.target = Target::kTensorRT;
  EXPECT_EQ(act(quant::build_plan(net(), f.points, f.stats, o), "u").threshold, t127);
}

quant::LayerQuant layer(const std::string& node, const std::string& op, const std::string& w) {
  quant::LayerQuant l;
  l.node = node;
  l.op = op;
  l.input = "x";
  l.weight = w;
  l.output = node;
  return l;
}

TEST(QuantBuildPlan, WeightEncodingsAndAxes) {
  Fixture f;
  f.add("x", false, stats_of("x", -1, 1));
  f.points.layers = {layer("c1", "Conv", "w1"), layer("y1", "Gemm", "wg"),
                     layer("y2", "Gemm", "wt"), layer("y3", "MatMul", "wm")};
  f.points.float_nodes.push_back({"gp", "GlobalAveragePool", "not quantized"});
  QuantizeOptions o;
  const Model m = net();
  const quant::QuantPlan p = quant::build_plan(m, f.points, f.stats, o);
  EXPECT_EQ(p.model_digest, quant::model_digest(m));
  EXPECT_EQ(p.act_method, "minmax");
  EXPECT_EQ(p.weight_mode, "per-channel");
  ASSERT_EQ(p.float_nodes.size(), 1u);
  EXPECT_EQ(p.float_nodes[0].node, "gp");
  ASSERT_EQ(p.layers.size(), 4u);
  // Conv [2,2,1,1] {127, 0 | -254, 1}: scales 1, 2; 1/2 rounds (half to even) to 0: noise 1.
  const auto& c = *p.layer("c1");
  EXPECT_EQ(c.encoding, "per-channel");
  EXPECT_EQ(c.weight_axis, 0);
  EXPECT_EQ(c.scales, (std::vector<float>{1, 2}));
  EXPECT_NEAR(c.weight_sqnr_db, 10 * std::log10(127.0 * 127 + 254 * 254 + 1), 1e-9);
  // Gemm transB=0 [K=2, N=3], columns {127,-127}, {254,0}, {1,127}: axis 1, scales 1, 2, 1.
  EXPECT_EQ(p.layer("y1")->weight_axis, 1);
  EXPECT_EQ(p.layer("y1")->scales, (std::vector<float>{1, 2, 1}));
  EXPECT_EQ(p.layer("y1")->weight_sqnr_db, kMaxSqnrDb);  // every value on the grid
  // Gemm transB=1 [N=3, K=2]: the same channels along axis 0.
  EXPECT_EQ(p.layer("y2")->weight_axis, 0);
  EXPECT_EQ(p.layer("y2")->scales, (std::vector<float>{1, 2, 1}));
  // MatMul [K, N]: axis 1.
  EXPECT_EQ(p.layer("y3")->weight_axis, 1);
  EXPECT_EQ(p.layer("y3")->scales, (std::vector<float>{1, 2, 1}));

  o.weights = quant::WeightMode::kPerTensor;
  const quant::QuantPlan t = quant::build_plan(m, f.points, f.stats, o);
  // One scale 254/127 = 2: 127/2 = 63.5 -> 64 (half to even) and 1/2 -> 0: noise 1 + 1.
  EXPECT_EQ(t.layer("c1")->encoding, "per-tensor");
  EXPECT_EQ(t.layer("c1")->scales, (std::vector<float>{2}));
  EXPECT_NEAR(t.layer("c1")->weight_sqnr_db, 10 * std::log10((127.0 * 127 + 254 * 254 + 1) / 2), 1e-9);
  EXPECT_EQ(t.weight_mode, "per-tensor");
  EXPECT_NO_THROW(quant::plan_from_json(quant::plan_to_json(t), "t.json"));
}

TEST(QuantBuildPlan, CfwsHalves) {
  Model m = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[1,1,4,4] x) => (float[1,1,4,4] y)
<float[1,1,1,1] wc = {254}, float[1,1,3,3] wf = {127, 0, 0, 0, 1, 0, 0, 0, -63.5}>
{
  a = Conv <kernel_shape = [1,1]> (x, wc)
  b = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, wf)
  y = Add (a, b)
})");
  m.graph.nodes[0].name = "k/cfws_coarse";
  m.graph.nodes[1].name = "k/cfws_fine";
  Fixture f;
  f.add("x", false, stats_of("x", -1, 1, {10, 10, 10, 10}));  // kl needs the histogram
  f.points.layers = {layer("k/cfws_coarse", "Conv", "wc"), layer("k/cfws_fine", "Conv", "wf")};
  QuantizeOptions o;
  quant::apply_method_preset("cfws", o);
  const quant::QuantPlan p = quant::build_plan(m, f.points, f.stats, o);
  EXPECT_EQ(p.weight_mode, "cfws-auto");
  EXPECT_EQ(p.act_method, "kl");
  const auto& c = *p.layer("k/cfws_coarse");
  const auto& fi = *p.layer("k/cfws_fine");
  EXPECT_EQ(c.encoding, "cfws-coarse");
  EXPECT_EQ(fi.encoding, "cfws-fine");
  EXPECT_EQ(c.cfws_of, "k");
  EXPECT_EQ(fi.cfws_of, "k");
  EXPECT_EQ(c.scales, (std::vector<float>{2}));
  EXPECT_EQ(fi.scales, (std::vector<float>{1}));
  // Whole kernel: centre 254 + 1 = 255, corners 127 and -63.5; only -63.5 -> -64 errs (0.25).
  const double whole = 10 * std::log10((127.0 * 127 + 255 * 255 + 63.5 * 63.5) / 0.25);
  EXPECT_NEAR(c.weight_sqnr_db, whole, 1e-9);
  EXPECT_NEAR(fi.weight_sqnr_db, whole, 1e-9);
  EXPECT_NO_THROW(quant::plan_from_json(quant::plan_to_json(p), "p.json"));
}

TEST(QuantBuildPlan, Errors) {
  Fixture f;
  f.add("x", false, stats_of("x", -1, 1));
  QuantPoints missing = f.points;
  missing.activations[0].calibrated_on = "nowhere";
  EXPECT_THROW(quant::build_plan(net(), missing, f.stats, {}), InternalError);
  f.points.layers = {layer("c1", "Conv", "nope")};
  try {
    quant::build_plan(net(), f.points, f.stats, {});
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "node 'c1': weight 'nope' is not an initializer");
  }
}

TEST(QuantMethodPresets, Combinations) {
  QuantizeOptions o;
  o.target = Target::kTensorRT;
  quant::apply_method_preset("cfws", o);
  EXPECT_EQ(o.act, calib::Method::kKl);
  EXPECT_EQ(o.weights, quant::WeightMode::kCfwsAuto);
  EXPECT_EQ(o.target, Target::kTensorRT);  // untouched
  const std::pair<const char*, calib::Method> plain[] = {
      {"minmax", calib::Method::kMinMax}, {"percentile", calib::Method::kPercentile},
      {"mse", calib::Method::kMse},       {"entropy", calib::Method::kEntropy},
      {"kl", calib::Method::kKl}};
  for (const auto& [name, m] : plain) {
    quant::apply_method_preset(name, o);
    EXPECT_EQ(o.act, m) << name;
    EXPECT_EQ(o.weights, quant::WeightMode::kPerChannel) << name;
  }
  quant::apply_method_preset("gptq", o);
  EXPECT_EQ(o.act, calib::Method::kPercentile);
  EXPECT_EQ(o.weights, quant::WeightMode::kGptq);
  EXPECT_TRUE(o.gptq.bias_correction);
  try {
    quant::apply_method_preset("adaround", o);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(),
                 "--method: unknown method 'adaround' (valid: minmax, percentile, mse, entropy, kl, cfws, "
                 "gptq)");
  }
}

// --- model digest ---

const char* kDigestModel = R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[1,2,4,4] x) => (float[1,2,4,4] y)
<float[2,2,3,3] w, float[2] b = {0.5, -1}>
{
  c = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w, b)
  y = Relu (c)
})";

TEST(QuantModelDigest, IsStableHexAndIgnoresDocStrings) {
  const Model m = parse_onnx_text(kDigestModel);
  const std::string d = quant::model_digest(m);
  EXPECT_EQ(d.size(), 16u);
  EXPECT_EQ(d.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(quant::model_digest(parse_onnx_text(kDigestModel)), d);
  Model docs = m;
  docs.doc_string = "model doc";
  docs.graph.doc_string = "graph doc";
  docs.graph.nodes[0].doc_string = "node doc";
  docs.graph.nodes[0].attributes[0].doc_string = "attribute doc";
  docs.graph.inputs[0].doc_string = "input doc";
  docs.producer_name = "someone else";
  EXPECT_EQ(quant::model_digest(docs), d);
  Model reordered = m;  // initializer storage order has no meaning
  const std::string first = m.graph.initializer_names().at(0);
  const Tensor t = *reordered.graph.initializer(first);
  reordered.graph.remove_initializer(first);
  reordered.graph.set_initializer(first, t);
  ASSERT_NE(reordered.graph.initializer_names(), m.graph.initializer_names());
  EXPECT_EQ(quant::model_digest(reordered), d);
}

TEST(QuantModelDigest, ChangesWithOneByteOrAttributeOrName) {
  const Model m = parse_onnx_text(kDigestModel);
  const std::string d = quant::model_digest(m);
  Model byte = m;
  byte.graph.mutable_initializer("w")->mutable_raw()[17] ^= std::byte{1};
  EXPECT_NE(quant::model_digest(byte), d);
  Model attr = m;
  attr.graph.nodes[0].set_attr(Attribute::make_ints("pads", {1, 1, 1, 0}));
  EXPECT_NE(quant::model_digest(attr), d);
  Model renamed = m;
  renamed.graph.nodes[1].name = "relu";
  EXPECT_NE(quant::model_digest(renamed), d);
  Model op = m;
  op.graph.nodes[1].op_type = "Sigmoid";
  EXPECT_NE(quant::model_digest(op), d);
  Model shape = m;  // same bytes, other shape
  shape.graph.set_initializer("b", shape.graph.initializer("b")->reshaped({2, 1}));
  EXPECT_NE(quant::model_digest(shape), d);
}

}  // namespace
}  // namespace repq::test
