// repq quantize end to end on the bundled MobileOne-style Fashion-MNIST model (train form):
// every method runs and is deterministic, plans round-trip byte for byte, a plan for another
// model is refused, bad usage exits 2 without leaving a file, the target's formats hold, and
// the INT8 model evaluates in repq's own executor close to the float model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "repq/common/atomic_file.h"
#include "repq/ir/graph_utils.h"
#include "repq/ir/onnx_io.h"
#include "repq/quant/plan.h"
#include "support/test_util.h"

namespace repq {
namespace {

namespace fs = std::filesystem;
using test::run_repq;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string models() { return test::source_dir() + "/models"; }
std::string mobileone() { return models() + "/mobileone/mobileone.train.onnx"; }
std::string repvgg() { return models() + "/repvgg_l2/repvgg_l2.train.onnx"; }
std::string calib_dir() { return models() + "/data/fashion_mnist/calib"; }
std::string eval_dir() { return models() + "/data/fashion_mnist/eval"; }
const std::vector<std::string> kPre = {"--preset", "none", "--color", "grey", "--mean", "0.2860", "--std", "0.3530"};

std::vector<std::string> quantize_args(const std::string& model, const std::string& out,
                                       std::vector<std::string> extra) {
  std::vector<std::string> a = {"quantize", model, "--calib", calib_dir(), "-o", out, "--threads", "2"};
  a.insert(a.end(), kPre.begin(), kPre.end());
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

class CliQuantize : public ::testing::Test {
 protected:
  test::TempDir tmp_;
};

class CliQuantizeMethod : public ::testing::TestWithParam<std::string> {};

TEST_P(CliQuantizeMethod, RunsAndIsDeterministic) {
  test::TempDir tmp;
  const std::string a = tmp.file("a.onnx"), b = tmp.file("b.onnx");
  const auto r = run_repq(quantize_args(mobileone(), a, {"--method", GetParam(), "--json"}));
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema"], "repq.quantize/1");
  EXPECT_EQ(j["method"], GetParam());
  EXPECT_EQ(j["calib"]["samples"], 32);
  EXPECT_NE(j["fuse_summary"], nullptr);  // the train form has branches to fold
  EXPECT_GT(j["layers_quantized"].get<int>(), 0);
  EXPECT_GE(j["seconds"]["total"].get<double>(), j["seconds"]["forward"].get<double>());
  // The QDQ model: no BatchNormalization left, one weight DequantizeLinear per layer (int8).
  const Model q = load_model(a);
  const auto h = op_histogram(q.graph);
  EXPECT_EQ(h.count("BatchNormalization"), 0u);
  size_t int8_weights = 0;
  for (const auto& n : q.graph.nodes)
    if (n.op_type == "DequantizeLinear") {
      const Tensor* t = q.graph.initializer(n.inputs[0]);
      if (t && t->dtype() == DType::kInt8) ++int8_weights;
    }
  EXPECT_EQ(int8_weights, j["layers_quantized"].get<size_t>());
  EXPECT_GT(h.at("QuantizeLinear"), 0u);
  // Same inputs, same bytes.
  auto args = quantize_args(mobileone(), b, {"--method", GetParam()});
  args.insert(args.begin(), "-q");
  const auto r2 = run_repq(args);
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_TRUE(r2.err.empty()) << r2.err;  // -q: no summary
  EXPECT_EQ(read_file(a), read_file(b));
}

INSTANTIATE_TEST_SUITE_P(Methods, CliQuantizeMethod,
                         ::testing::Values("minmax", "percentile", "mse", "entropy", "kl", "cfws",
                                           "gptq"));

TEST_F(CliQuantize, TextSummaryOnStderr) {
  const auto r = run_repq(quantize_args(mobileone(), tmp_.file("q.onnx"), {"--method", "cfws"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_TRUE(contains(r.err, "method cfws: kl activations, cfws-auto weights, target ort")) << r.err;
  EXPECT_TRUE(contains(r.err, "fuse: folded")) << r.err;
  EXPECT_TRUE(contains(r.err, "calibration: 32 samples")) << r.err;
  EXPECT_TRUE(contains(r.err, "cfws: split")) << r.err;
  EXPECT_TRUE(contains(r.err, "time: forward passes")) << r.err;
}

TEST_F(CliQuantize, PlanRoundTripIsByteIdentical) {
  const std::string a = tmp_.file("a.onnx"), b = tmp_.file("b.onnx"), plan = tmp_.file("plan.json");
  ASSERT_EQ(run_repq(quantize_args(mobileone(), a, {"--method", "cfws", "--plan-out", plan})).exit_code, 0);
  const quant::QuantPlan p = quant::plan_from_json(read_file(plan), plan);
  EXPECT_EQ(p.act_method, "kl");
  EXPECT_EQ(p.weight_mode, "cfws-auto");
  EXPECT_EQ(p.calib_samples, 32);
  // No --calib needed with --plan-in; the model is the same, byte for byte.
  const auto r = run_repq({"quantize", mobileone(), "--plan-in", plan, "-o", b, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["plan_in"], plan);
  EXPECT_EQ(read_file(a), read_file(b));
}

// --weights gptq: the plan carries every layer's int8 values (and the preset's corrected
// biases), so --plan-in rebuilds the same bytes without data; a bad --gptq-inputs exits 2.
TEST_F(CliQuantize, GptqPlanRoundTripIsByteIdentical) {
  const std::string a = tmp_.file("a.onnx"), b = tmp_.file("b.onnx"), plan = tmp_.file("plan.json");
  const auto r0 = run_repq(quantize_args(mobileone(), a, {"--method", "gptq", "--gptq-inputs", "quantized",
                                                          "--gptq-act-order", "--plan-out", plan}));
  ASSERT_EQ(r0.exit_code, 0) << r0.err;
  const quant::QuantPlan p = quant::plan_from_json(read_file(plan), plan);
  EXPECT_EQ(p.act_method, "percentile");
  EXPECT_EQ(p.weight_mode, "gptq");
  size_t with_values = 0, with_bias = 0;
  for (const auto& l : p.layers) {
    with_values += l.qweight.empty() ? 0 : 1;
    with_bias += l.bias_values.empty() ? 0 : 1;
  }
  EXPECT_GT(with_values, 0u);
  EXPECT_GT(with_bias, 0u);
  const auto r = run_repq({"quantize", mobileone(), "--plan-in", plan, "-o", b});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(a), read_file(b));
  const auto bad = run_repq(quantize_args(mobileone(), tmp_.file("c.onnx"), {"--weights", "gptq", "--gptq-inputs", "qdq"}));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(contains(bad.err, "--gptq-inputs")) << bad.err;
  EXPECT_FALSE(fs::exists(tmp_.file("c.onnx")));
}

TEST_F(CliQuantize, PlanForAnotherModelIsRefused) {
  const std::string plan = tmp_.file("plan.json"), out = tmp_.file("out.onnx");
  ASSERT_EQ(run_repq(quantize_args(mobileone(), tmp_.file("a.onnx"), {"--plan-out", plan})).exit_code, 0);
  const auto r = run_repq({"quantize", repvgg(), "--plan-in", plan, "-o", out});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, plan + ": made for another model (digest")) << r.err;
  EXPECT_FALSE(fs::exists(out));
  // --no-fuse makes another graph of the same file: refused too.
  const auto r2 = run_repq({"quantize", mobileone(), "--plan-in", plan, "-o", out, "--no-fuse"});
  EXPECT_EQ(r2.exit_code, 2) << r2.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(CliQuantize, BadUsageExitsTwoWithoutAFile) {
  const std::string out = tmp_.file("out.onnx");
  auto r = run_repq({"quantize", mobileone(), "-o", out});  // no --calib
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "--calib")) << r.err;
  r = run_repq(quantize_args(mobileone(), out, {"--method", "best"}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "best")) << r.err;
  EXPECT_TRUE(contains(r.err, "cfws")) << r.err;  // lists the valid names
  r = run_repq(quantize_args(mobileone(), out, {"--act", "median"}));
  EXPECT_EQ(r.exit_code, 2);
  r = run_repq(quantize_args(mobileone(), out, {"--target", "tpu"}));
  EXPECT_EQ(r.exit_code, 2);
  r = run_repq(quantize_args(mobileone(), out, {"--percentile", "120"}));
  EXPECT_EQ(r.exit_code, 2);
  std::vector<std::string> missing = {"quantize", mobileone(), "--calib", tmp_.file("nothing-here"), "-o", out};
  missing.insert(missing.end(), kPre.begin(), kPre.end());
  r = run_repq(missing);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "nothing-here")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;  // one line
  EXPECT_FALSE(fs::exists(out));
  // An -o in a folder that does not exist.
  const std::string nowhere = tmp_.file("no-such-dir") + "/out.onnx";
  r = run_repq(quantize_args(mobileone(), nowhere, {}));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_FALSE(fs::exists(tmp_.file("no-such-dir")));
  // -o naming the input: refused, the input unchanged, no temporary file left.
  const std::string copy = tmp_.file("model.onnx");
  fs::copy_file(mobileone(), copy);
  const std::string before = read_file(copy);
  r = run_repq(quantize_args(copy, copy, {}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "names the input")) << r.err;
  EXPECT_EQ(read_file(copy), before);
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(tmp_.path())) files += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 1u);  // only the copy
}

TEST_F(CliQuantize, TensorRTTargetIsSymmetricInt8) {
  const std::string plan = tmp_.file("plan.json");
  ASSERT_EQ(run_repq(quantize_args(mobileone(), tmp_.file("q.onnx"),
                                   {"--target", "tensorrt", "--plan-out", plan}))
                .exit_code,
            0);
  const quant::QuantPlan p = quant::plan_from_json(read_file(plan), plan);
  EXPECT_EQ(p.target, quant::Target::kTensorRT);
  ASSERT_FALSE(p.activations.empty());
  for (const auto& a : p.activations) {
    EXPECT_EQ(a.zero_point, 0) << a.tensor;
    EXPECT_EQ(a.dtype, DType::kInt8) << a.tensor;
  }
  for (const auto& l : p.layers) EXPECT_FALSE(l.relu_fused) << l.node;
}

// Known answer: min-max calibration of the network input. The preprocessed pixel range is
// [(0/255 - 0.286)/0.353, (255/255 - 0.286)/0.353]; the 32 calibration images hold both black
// and white pixels, so uint8 asymmetric quantization has scale (max - min) / 255.
TEST_F(CliQuantize, MinMaxInputScaleIsKnown) {
  const std::string plan = tmp_.file("plan.json");
  ASSERT_EQ(run_repq(quantize_args(mobileone(), tmp_.file("q.onnx"), {"--plan-out", plan})).exit_code, 0);
  const quant::QuantPlan p = quant::plan_from_json(read_file(plan), plan);
  const quant::ActivationQuant* in = p.activation("input");
  ASSERT_NE(in, nullptr);
  const double lo = (0.0 - 0.2860) / 0.3530, hi = (1.0 - 0.2860) / 0.3530;
  EXPECT_NEAR(in->min, lo, 1e-5);
  EXPECT_NEAR(in->max, hi, 1e-5);
  EXPECT_EQ(in->dtype, DType::kUInt8);
  EXPECT_NEAR(in->scale, (hi - lo) / 255.0, 1e-6);
  EXPECT_NEAR(in->zero_point, std::round(-lo / ((hi - lo) / 255.0)), 1.0);
}

TEST_F(CliQuantize, ExcludedLayerStaysFloat) {
  const std::string a = tmp_.file("a.onnx"), b = tmp_.file("b.onnx");
  const auto r = run_repq(quantize_args(mobileone(), a, {"--json"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const std::string first = j["layers"][0]["node"];
  const auto r2 = run_repq(quantize_args(mobileone(), b, {"--json", "--exclude", first}));
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  const auto j2 = nlohmann::json::parse(r2.out);
  EXPECT_EQ(j2["layers_quantized"].get<int>(), j["layers_quantized"].get<int>() - 1);
  bool listed = false;
  for (const auto& f : j2["float_nodes"]) listed |= f["node"] == first;
  EXPECT_TRUE(listed) << j2["float_nodes"].dump();
  // Excluding every Conv by op type leaves no int8 weight.
  const auto r3 = run_repq(quantize_args(mobileone(), b, {"--json", "--exclude", "Conv,Gemm"}));
  ASSERT_EQ(r3.exit_code, 0) << r3.err;
  EXPECT_EQ(nlohmann::json::parse(r3.out)["layers_quantized"], 0);
}

// The INT8 model is a QDQ model: repq's executor simulates it. Per-channel min-max on this
// model keeps nearly every prediction of the float model (measured: 0.990 agreement).
TEST_F(CliQuantize, Int8ModelEvaluatesInRepq) {
  const std::string q = tmp_.file("q.onnx");
  ASSERT_EQ(run_repq(quantize_args(mobileone(), q, {"--method", "minmax"})).exit_code, 0);
  std::vector<std::string> args = {"-q", "eval", q, "--data", eval_dir(), "--labels",
                                   eval_dir() + "/labels.csv", "--ref", mobileone(), "--json"};
  args.insert(args.end(), kPre.begin(), kPre.end());
  const auto r = run_repq(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["samples"], 512);
  const double agree = j["agreement"]["top1"].get<double>();
  const double top1 = j["top1"].get<double>(), ref = j["agreement"]["reference_top1"].get<double>();
  std::printf("[ info ] mobileone minmax INT8 (repq simulation): top-1 %.4f (float %.4f), agreement %.4f, "
              "SQNR %.1f dB\n", top1, ref, agree, j["agreement"]["mean_sqnr_db"].get<double>());
  EXPECT_GE(agree, 0.98);
  EXPECT_GE(top1, ref - 0.03);
  EXPECT_LT(agree, 1.0 + 1e-12);
}

}  // namespace
}  // namespace repq
