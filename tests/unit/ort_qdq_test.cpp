// The QDQ models repq exports, run by ONNX Runtime at optimization level "extended": every
// quantized Conv becomes a QLinearConv (CFWS halves two QLinearConv + QLinearAdd), no float Conv
// is left, and ORT's integer outputs agree with repq's executor running the same QDQ model.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "repq/data/dataset.h"
#include "repq/data/npy.h"
#include "repq/ir/graph_utils.h"
#include "repq/ir/onnx_io.h"
#include "repq/quant/quantize.h"
#include "repq/runtime/executor.h"
#include "support/mobileone.h"
#include "support/ort_runner.h"
#include "support/quant_test_util.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

using quant::QuantPlan;
using quant::Target;
using Ops = std::map<std::string, size_t>;

double sqnr_db(std::span<const float> ref, std::span<const float> got) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += double(ref[i]) * ref[i];
    den += (double(ref[i]) - got[i]) * (double(ref[i]) - got[i]);
  }
  return 10 * std::log10(num / std::max(den, 1e-30));
}

struct Result {
  Ops optimized;         // op histogram of ORT's optimized graph
  double sqnr_db = 0;    // ORT vs repq's executor, same QDQ model
  double agreement = 0;  // top-1, same
  size_t convs = 0, cfws_adds = 0;  // quantized Convs / CFWS Adds in the plan
};

// Exports `m` with a min-max plan calibrated on `calib`, runs it on `eval` with ORT (level
// extended, optimized graph saved) and with repq's executor.
Result run_case(const std::string& label, const Model& m, const Tensor& calib, const Tensor& eval,
                Target target = Target::kOrt) {
  quant::QuantizeOptions o;
  o.target = target;
  const auto pts = quant::find_quant_points(m, o);
  const QuantPlan plan = minmax_plan(m, pts, calib, target);
  const Model q = quant::export_qdq(m, plan);
  TempDir tmp;
  save_model(q, tmp.file("q.onnx"));
  OrtRunOptions ro;
  ro.level = "extended";
  ro.threads = 2;
  ro.optimized_model_path = tmp.file("opt.onnx");
  const std::string in = m.graph.runtime_inputs()[0]->name, out = m.graph.outputs[0].name;
  const Tensor got = ort_run(tmp.file("q.onnx"), {{in, eval}}, ro).at(out);
  Executor ex(q, {2});
  const Tensor want = ex.run({{in, eval}}).at(out);
  Result r;
  LoadOptions lo;
  lo.validate = false;
  r.optimized = op_histogram(load_model(tmp.file("opt.onnx"), lo).graph);
  for (const auto& l : plan.layers) r.convs += l.op == "Conv";
  for (const auto& n : m.graph.nodes) r.cfws_adds += n.op_type == "Add" && n.name.ends_with("/cfws_add");
  const auto g = got.span<float>(), w = want.span<float>();
  r.sqnr_db = sqnr_db(w, g);
  Executor fx(m, {2});
  const Tensor ref = fx.run({{in, eval}}).at(out);
  const double ort_float = sqnr_db(ref.span<float>(), g), repq_float = sqnr_db(ref.span<float>(), w);
  const int64_t n = want.dim(0), k = want.numel() / n;
  int64_t same = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto a = std::max_element(g.begin() + i * k, g.begin() + (i + 1) * k) - (g.begin() + i * k);
    const auto b = std::max_element(w.begin() + i * k, w.begin() + (i + 1) * k) - (w.begin() + i * k);
    same += a == b;
  }
  r.agreement = double(same) / double(n);
  std::string ops;
  for (const auto& [op, c] : r.optimized) ops += " " + op + "=" + std::to_string(c);
  std::printf("%s: %zu quantized convs; ORT (extended) vs repq executor on the QDQ model: SQNR %.1f dB, "
              "top-1 agreement %.1f %% of %lld (vs the float model: ORT %.1f dB, repq %.1f dB)\n"
              "  optimized graph:%s\n",
              label.c_str(), r.convs, r.sqnr_db, 100 * r.agreement, static_cast<long long>(n), ort_float,
              repq_float, ops.c_str());
  return r;
}

size_t count(const Ops& ops, const std::string& op) { return ops.count(op) ? ops.at(op) : 0; }

// Every quantized Conv runs as QLinearConv; no float Conv, Relu or DequantizeLinear-fed float
// op is left between them; the classifier runs as QGemm.
void expect_integer_graph(const Result& r, size_t adds) {
  EXPECT_EQ(count(r.optimized, "QLinearConv"), r.convs);
  EXPECT_EQ(count(r.optimized, "Conv"), 0u);
  EXPECT_EQ(count(r.optimized, "Relu"), 0u);
  EXPECT_EQ(count(r.optimized, "Add"), 0u);
  EXPECT_EQ(count(r.optimized, "com.microsoft:QLinearAdd"), adds);
}

class OrtQdqModels : public ::testing::TestWithParam<std::string> {};

TEST_P(OrtQdqModels, EveryConvRunsAsQLinearConv) {
  REPQ_REQUIRE_ORT();
  const std::string dir = source_dir() + "/models/" + GetParam();
  const Model m = load_model(dir + "/" + GetParam() + ".deploy.onnx");
  const Tensor x = data::read_npy(dir + "/ref_input.npy");
  const Result r = run_case(GetParam() + " deploy", m, batch_rows(x, 0, 16), x);
  expect_integer_graph(r, 0);
  EXPECT_EQ(count(r.optimized, "com.microsoft:QGemm"), 1u);
  EXPECT_EQ(count(r.optimized, "com.microsoft:QLinearGlobalAveragePool"), 1u);
  EXPECT_GT(r.sqnr_db, 30.0);
  EXPECT_GE(r.agreement, 31.0 / 32.0);
}

INSTANTIATE_TEST_SUITE_P(Models, OrtQdqModels,
                         ::testing::Values("repvgg", "repvgg_l2", "mobileone", "qarepvgg", "qarepvgg_v2",
                                           "acdbb"));

TEST(OrtQdq, CfwsSplitModelRunsAsTwoQLinearConvAndQLinearAdd) {
  REPQ_REQUIRE_ORT();
  const std::string dir = source_dir() + "/models/repvgg_l2";
  Model m = load_model(dir + "/repvgg_l2.deploy.onnx");
  const auto decisions = quant::apply_cfws(m, quant::WeightMode::kCfws);
  const Tensor x = data::read_npy(dir + "/ref_input.npy");
  const Result r = run_case("repvgg_l2 deploy, CFWS split", m, batch_rows(x, 0, 16), x);
  ASSERT_GT(r.cfws_adds, 0u) << decisions.size() << " convs considered";
  expect_integer_graph(r, r.cfws_adds);
  EXPECT_GT(r.sqnr_db, 30.0);
  EXPECT_GE(r.agreement, 31.0 / 32.0);
}

Tensor random_input(const Shape& s, uint32_t seed) {
  return Tensor::from_vector<float>(s, random_floats(size_t(shape_numel(s)), seed));
}

Model hand_net() { return named_model(small_quant_net("batch", 8)); }

TEST(OrtQdq, HandMadeNetRunsInIntegerThroughAddConcatPools) {
  REPQ_REQUIRE_ORT();
  const Model m = hand_net();
  const Result r = run_case("conv+relu+add+concat+maxpool+gap+gemm", m, random_input({8, 3, 8, 8}, 1),
                            random_input({32, 3, 8, 8}, 2));
  expect_integer_graph(r, 1);
  EXPECT_EQ(count(r.optimized, "com.microsoft:QLinearConcat"), 1u);
  EXPECT_EQ(count(r.optimized, "com.microsoft:QLinearGlobalAveragePool"), 1u);
  EXPECT_EQ(count(r.optimized, "com.microsoft:QGemm"), 1u);
  EXPECT_EQ(count(r.optimized, "MaxPool"), 1u) << "on uint8: its Q/DQ pair dropped";
  EXPECT_EQ(count(r.optimized, "DequantizeLinear"), 0u) << "nothing runs in float in between";
  EXPECT_EQ(count(r.optimized, "QuantizeLinear"), 1u) << "only the graph input";
  EXPECT_GT(r.sqnr_db, 30.0);
  EXPECT_GE(r.agreement, 31.0 / 32.0);
}

TEST(OrtQdq, TensorRTTargetLoadsAndAgrees) {
  REPQ_REQUIRE_ORT();
  const Model m = hand_net();
  const Result r = run_case("hand-made net, target tensorrt (int8 symmetric)", m, random_input({8, 3, 8, 8}, 3),
                            random_input({32, 3, 8, 8}, 4), Target::kTensorRT);
  EXPECT_GT(r.sqnr_db, 30.0);
  EXPECT_GE(r.agreement, 31.0 / 32.0);
}

// MatMul and Gemm with [K, N] weights: per-channel scales along axis 1. The first MatMul's
// result feeds a Relu and a Gemm (quantized: QLinearMatMul), the Gemm's result only a Softmax
// (float: QGemm with a float output).
TEST(OrtQdq, MatMulAndGemmWithPerColumnWeights) {
  REPQ_REQUIRE_ORT();
  Model m = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[batch,16] x) => (float[batch,6] y)
<float[16,12] wm, float[12,6] wg, float[6] bg>
{
  h = MatMul (x, wm)
  r = Relu (h)
  t = Gemm (r, wg, bg)
  y = Softmax <axis = 1> (t)
})");
  for (auto& n : m.graph.nodes) n.name = n.outputs.at(0);
  const Result r = run_case("MatMul + Gemm (transB = 0)", m, random_input({16, 16}, 6), random_input({64, 16}, 7));
  EXPECT_EQ(count(r.optimized, "QLinearMatMul"), 1u);
  EXPECT_EQ(count(r.optimized, "com.microsoft:QGemm"), 1u);
  EXPECT_EQ(count(r.optimized, "MatMul"), 0u);
  EXPECT_EQ(count(r.optimized, "Gemm"), 0u);
  EXPECT_GT(r.sqnr_db, 30.0);
  EXPECT_GE(r.agreement, 63.0 / 64.0);
}

// Statistics of `names` over `x`, made here (two passes of the float executor) as the collector
// would: range, count, zeros, then a 2048-bin |x| histogram.
std::map<std::string, calib::TensorStats> stats_of(const Model& m, const std::vector<std::string>& names,
                                                    const Tensor& x) {
  std::map<std::string, calib::TensorStats> st;
  for (const auto& n : names) {
    st[n].name = n;
    st[n].min = std::numeric_limits<double>::infinity();
    st[n].max = -std::numeric_limits<double>::infinity();
  }
  Executor ex(m, {2});
  const std::string in = m.graph.runtime_inputs()[0]->name;
  ex.run({{in, x}}, [&](const std::string& n, const Tensor& v) {
    if (!st.count(n)) return;
    for (float f : v.span<float>()) {
      st[n].min = std::min(st[n].min, double(f));
      st[n].max = std::max(st[n].max, double(f));
      st[n].zeros += f == 0.0f;
    }
    st[n].count += uint64_t(v.numel());
  });
  for (auto& [n, t] : st) {
    t.hist.amax = std::max(std::fabs(t.min), std::fabs(t.max));
    t.hist.counts.assign(2048, 0);
  }
  ex.run({{in, x}}, [&](const std::string& n, const Tensor& v) {
    if (st.count(n)) st[n].hist.add(v.data<float>(), v.numel());
  });
  return st;
}

// The library's own pipeline pieces: find_quant_points -> build_plan (each calibrator, both
// targets, CFWS split with cfws weights) -> export_qdq, run by ORT.
TEST(OrtQdq, BuildPlanPlansRunInInteger) {
  REPQ_REQUIRE_ORT();
  const std::string dir = source_dir() + "/models/repvgg_l2";
  const Model deploy = load_model(dir + "/repvgg_l2.deploy.onnx");
  const Tensor x = data::read_npy(dir + "/ref_input.npy");
  struct Case { calib::Method act; Target target; quant::WeightMode weights; };
  for (const Case c : {Case{calib::Method::kMinMax, Target::kOrt, quant::WeightMode::kPerChannel},
                       Case{calib::Method::kKl, Target::kOrt, quant::WeightMode::kCfws},
                       Case{calib::Method::kPercentile, Target::kTensorRT, quant::WeightMode::kPerTensor}}) {
    Model m = deploy;
    quant::QuantizeOptions o;
    o.act = c.act;
    o.target = c.target;
    o.weights = c.weights;
    const auto decisions = quant::apply_cfws(m, c.weights);
    const auto pts = quant::find_quant_points(m, o);
    const QuantPlan plan = quant::build_plan(m, pts, stats_of(m, pts.stats_tensors(), batch_rows(x, 0, 16)), o);
    const Model q = quant::export_qdq(m, plan);
    TempDir tmp;
    save_model(q, tmp.file("q.onnx"));
    OrtRunOptions ro;
    ro.level = "extended";
    ro.optimized_model_path = tmp.file("opt.onnx");
    const Tensor got = ort_run(tmp.file("q.onnx"), {{"input", x}}, ro).at("logits");
    Executor ex(q, {2});
    const Tensor want = ex.run({{"input", x}}).at("logits");
    LoadOptions lo;
    lo.validate = false;
    const Ops ops = op_histogram(load_model(tmp.file("opt.onnx"), lo).graph);
    const std::string label = calib::method_name(c.act) + " " + quant::target_name(c.target) + " " +
                              quant::weight_mode_name(c.weights);
    std::printf("build_plan %s: ORT vs repq %.1f dB; QLinearConv %zu of %zu layers, QLinearAdd %zu\n", label.c_str(),
                sqnr_db(want.span<float>(), got.span<float>()), count(ops, "QLinearConv"), plan.layers.size() - 1,
                count(ops, "com.microsoft:QLinearAdd"));
    EXPECT_GT(sqnr_db(want.span<float>(), got.span<float>()), 30.0) << label;
    if (c.target == Target::kOrt) {
      EXPECT_EQ(count(ops, "QLinearConv"), plan.layers.size() - 1) << label;  // all but the Gemm
      EXPECT_EQ(count(ops, "Conv"), 0u) << label;
      size_t splits = 0;
      for (const auto& d : decisions) splits += d.applied;
      EXPECT_EQ(count(ops, "com.microsoft:QLinearAdd"), splits) << label;
    }
  }
}

// Calibrated (min-max) on 8 ImageNet photos, evaluated on 24.
TEST(OrtQdq, MobileOneS0RunsAsQLinearConvSlow) {
  REPQ_REQUIRE_MOBILEONE(path);
  REPQ_REQUIRE_ORT();
  const Model m = load_model(path);
  data::DatasetOptions dopt;
  dopt.limit = 24;
  const Tensor x = data::load_all(data::Dataset::open(shared_dir() + "/data/imagenet_sample/images", dopt)).input;
  const Result r = run_case("MobileOne-S0 (8 photos calibrate, 24 evaluate)", m, batch_rows(x, 0, 8), x);
  expect_integer_graph(r, 0);
  EXPECT_EQ(count(r.optimized, "com.microsoft:QGemm"), 1u);
  // repq's executor runs each DequantizeLinear -> Conv -> QuantizeLinear group with
  // QLinearConv's integer arithmetic (src/runtime/qdq_conv.cpp), so every conv output is
  // bit-exact; only QGemm (the classifier) and the pool's requantization run in float in the
  // simulation. Measured well above 100 dB (was 15 dB before the exact kernel).
  EXPECT_GE(r.sqnr_db, 100.0);
  EXPECT_EQ(r.agreement, 1.0);
}

}  // namespace
}  // namespace repq::test
