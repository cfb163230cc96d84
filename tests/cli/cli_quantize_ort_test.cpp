// The INT8 models repq writes, run by ONNX Runtime (onnxruntime-node, level "extended", 2
// threads): ORT loads them, rewrites every quantized Conv to QLinearConv (no float Conv left
// among them), and its predictions agree with repq's own simulation of the plan (the QDQ model
// run by repq's executor) on >= 99.5% of the evaluation images. repq's executor runs the
// DequantizeLinear -> Conv -> QuantizeLinear groups with QLinearConv's integer arithmetic
// (bit-exact with ORT), so on MobileOne-S0, whose only other integer ops are QGemm and the
// pool, the scores must also agree at >= 100 dB SQNR. Fashion-MNIST models of
// models/ on the 512 bundled evaluation images; MobileOne-S0 from ../shared on ImageNet photos.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "repq/data/dataset.h"
#include "repq/ir/graph_utils.h"
#include "repq/ir/onnx_io.h"
#include "repq/runtime/executor.h"
#include "support/mobileone.h"
#include "support/ort_runner.h"
#include "support/test_util.h"

namespace repq {
namespace {

namespace fs = std::filesystem;
using test::run_repq;

const std::vector<std::string> kFashion = {"--preset", "none", "--color", "grey", "--mean", "0.2860", "--std", "0.3530"};
const std::vector<std::string> kImageNet = {"--preset", "imagenet"};

// Every sample of `dir`, preprocessed as repq reads it, as one [N, C, H, W] batch.
Tensor load_inputs(const std::string& dir, const std::vector<std::string>& pre) {
  data::DatasetOptions d;
  d.preprocess = data::Preprocess::from_args(pre);
  return data::load_all(data::Dataset::open(dir, d)).input;
}

std::map<std::string, size_t> op_counts(const std::string& onnx_file) {
  onnx::ModelProto mp;
  std::ifstream in(onnx_file, std::ios::binary);
  EXPECT_TRUE(mp.ParseFromIstream(&in)) << onnx_file;
  std::map<std::string, size_t> h;
  for (const auto& n : mp.graph().node()) ++h[n.op_type()];
  return h;
}

std::vector<int64_t> top1(const Tensor& scores) {
  const int64_t n = scores.dim(0), c = scores.dim(1);
  const float* p = scores.data<float>();
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    out[static_cast<size_t>(i)] = std::max_element(p + i * c, p + (i + 1) * c) - (p + i * c);
  return out;
}

double agreement(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i] ? 1 : 0;
  return static_cast<double>(same) / static_cast<double>(a.size());
}

double sqnr_db(const Tensor& ref, const Tensor& x) {
  double s = 0, e = 0;
  const auto r = ref.span<float>(), v = x.span<float>();
  for (size_t i = 0; i < r.size(); ++i) {
    s += double(r[i]) * r[i];
    e += (double(r[i]) - v[i]) * (double(r[i]) - v[i]);
  }
  return e > 0 ? 10 * std::log10(s / e) : 200.0;
}

// Quantizes `model` with `method` (calibration: the first 32 samples of `calib`), runs the INT8
// model with ORT and with repq on `x`, checks the integer rewrite and the agreement.
void check_int8_under_ort(const std::string& label, const std::string& model, const std::string& calib,
                          const std::vector<std::string>& pre, const std::string& method, const Tensor& x,
                          double min_agreement = 0.995, double min_sqnr_db = 0.0) {
  test::TempDir tmp;
  const std::string q = tmp.file("q.onnx"), opt = tmp.file("q.ort.onnx");
  std::vector<std::string> args = {"quantize", model, "--calib", calib, "-o", q, "--method", method,
                                   "--num-calib", "32", "--threads", "2", "--json"};
  args.insert(args.end(), pre.begin(), pre.end());
  const auto r = run_repq(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  size_t quantized_convs = 0;
  for (const auto& l : j["layers"]) quantized_convs += l["op"] == "Conv" ? 1 : 0;
  size_t float_convs = 0;
  for (const auto& f : j["float_nodes"]) float_convs += f["op"] == "Conv" ? 1 : 0;

  // The stem's 1- or 3-channel input is padded to 4 channels as 8-bit values: one Pad, reading
  // the input's QuantizeLinear (docs/quantize.md, "Stem input padded to 4 channels").
  const Model written = load_model(q);
  const GraphIndex widx(written.graph);
  const auto pads = std::count_if(written.graph.nodes.begin(), written.graph.nodes.end(),
                                  [](const Node& n) { return n.op_type == "Pad"; });
  EXPECT_EQ(pads, 1) << label;
  for (const Node& n : written.graph.nodes) {
    if (n.op_type != "Pad") continue;
    const auto p = widx.producer.find(n.inputs[0]);
    ASSERT_NE(p, widx.producer.end()) << label << ": the Pad reads the float graph input";
    EXPECT_EQ(written.graph.nodes.at(p->second).op_type, "QuantizeLinear") << label;
  }

  test::OrtRunOptions o;
  o.level = "extended";
  o.threads = 2;
  o.optimized_model_path = opt;
  const auto ort = test::ort_run(q, {{"input", x}}, o);
  const auto h = op_counts(opt);
  const size_t qlinear = h.count("QLinearConv") ? h.at("QLinearConv") : 0;
  const size_t conv = h.count("Conv") ? h.at("Conv") : 0;
  EXPECT_EQ(qlinear, quantized_convs) << label << ": every quantized Conv runs as QLinearConv";
  EXPECT_EQ(conv, float_convs) << label << ": float Conv left beside the excluded ones";

  Executor sim(written, ExecutorOptions{2});
  const Tensor repq_scores = sim.run({{"input", x}}).begin()->second;
  Executor fl(load_model(model), ExecutorOptions{2});
  const Tensor float_scores = fl.run({{"input", x}}).begin()->second;
  const Tensor& ort_scores = ort.begin()->second;
  const auto p_ort = top1(ort_scores), p_repq = top1(repq_scores), p_float = top1(float_scores);
  const double agree = agreement(p_ort, p_repq);
  std::printf("[ info ] %-12s %-7s %zu QLinearConv: ORT vs repq simulation top-1 agreement %.4f, "
              "SQNR %.1f dB; vs float: ORT %.4f, repq %.4f (%lld images)\n",
              label.c_str(), method.c_str(), qlinear, agree, sqnr_db(repq_scores, ort_scores),
              agreement(p_ort, p_float), agreement(p_repq, p_float),
              static_cast<long long>(x.dim(0)));
  EXPECT_GE(agree, min_agreement) << label << " " << method;
  EXPECT_GE(sqnr_db(repq_scores, ort_scores), min_sqnr_db) << label << " " << method;
}

struct Case {
  std::string model, method;
};

class CliQuantizeOrt : public ::testing::TestWithParam<Case> {};

TEST_P(CliQuantizeOrt, OrtRunsIntegerConvsAndAgreesWithRepq) {
  REPQ_REQUIRE_ORT();
  const std::string models = test::source_dir() + "/models";
  const std::string data = models + "/data/fashion_mnist";
  const Case& c = GetParam();
  static const Tensor x = load_inputs(data + "/eval", kFashion);
  ASSERT_EQ(x.dim(0), 512);
  check_int8_under_ort(c.model, models + "/" + c.model + "/" + c.model + ".train.onnx",
                       data + "/calib", kFashion, c.method, x);
}

INSTANTIATE_TEST_SUITE_P(
    Models, CliQuantizeOrt,
    ::testing::Values(Case{"repvgg_l2", "cfws"}, Case{"repvgg_l2", "minmax"}, Case{"mobileone", "cfws"},
                      Case{"mobileone", "minmax"}, Case{"qarepvgg", "cfws"}, Case{"qarepvgg", "minmax"}),
    [](const ::testing::TestParamInfo<Case>& i) { return i.param.model + "_" + i.param.method; });

// MobileOne-S0: calibrated on the first 32 photos, checked on 125 photos of the second half
// (every other one, symlinked into a temporary folder so only those are decoded).
class CliQuantizeOrtMobileOneS0 : public ::testing::TestWithParam<std::string> {};

TEST_P(CliQuantizeOrtMobileOneS0, SlowOrtAgreesWithRepq) {
  REPQ_REQUIRE_MOBILEONE(model);
  REPQ_REQUIRE_ORT();
  const std::string images = test::shared_dir() + "/data/imagenet_sample/images";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(images)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 500u);
  test::TempDir tmp;
  for (size_t i = 250; i < 500; i += 2) fs::create_symlink(files[i], tmp.path() / files[i].filename());
  static const Tensor x = load_inputs(tmp.path().string(), kImageNet);
  check_int8_under_ort("MobileOne-S0", model, images, kImageNet, GetParam(), x, 0.995, 100.0);
}

INSTANTIATE_TEST_SUITE_P(Methods, CliQuantizeOrtMobileOneS0, ::testing::Values("percentile", "minmax"));

}  // namespace
}  // namespace repq
