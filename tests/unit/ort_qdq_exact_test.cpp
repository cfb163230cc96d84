// ONNX Runtime (level "extended": every DQ -> Conv -> Q group becomes a QLinearConv) vs repq's
// executor with its exact QDQ conv kernel: the quantized output of every conv must be
// bit-identical, and the predictions agree. The models are min-max plans made here (as in
// ort_qdq_test.cpp): activation ranges seen by the float executor, weights max|w| / 127.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "repq/data/dataset.h"
#include "repq/data/npy.h"
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

struct Exactness {
  size_t convs = 0;          // quantized conv outputs compared
  int64_t values = 0, differ = 0, max_steps = 0;
  double agreement = 0;      // top-1 of the logits
  int64_t images = 0;
};

int64_t argmax(const float* p, int64_t k) { return std::max_element(p, p + k) - p; }

// Exports `m` with a min-max plan on `calib`; makes every QuantizeLinear fed by a Conv a graph
// output too; runs ORT (extended) and repq's executor on `eval` in batches of `batch`.
Exactness compare(const std::string& label, const Model& m, const Tensor& calib, const Tensor& eval,
                  int64_t batch) {
  quant::QuantizeOptions o;
  o.target = quant::Target::kOrt;
  const auto pts = quant::find_quant_points(m, o);
  Model q = quant::export_qdq(m, minmax_plan(m, pts, calib));
  std::map<std::string, std::string> made_by;
  for (const auto& n : q.graph.nodes) made_by[n.outputs.at(0)] = n.op_type;
  std::vector<std::string> conv_q;
  for (const auto& n : q.graph.nodes)
    if (n.op_type == "QuantizeLinear" && made_by[n.inputs.at(0)] == "Conv") {
      conv_q.push_back(n.outputs.at(0));
      ValueInfo vi;
      vi.name = n.outputs.at(0);
      vi.elem_type = DType::kUInt8;
      q.graph.outputs.push_back(vi);
    }
  TempDir tmp;
  save_model(q, tmp.file("q.onnx"));
  OrtRunOptions ro;
  ro.level = "extended";
  ro.threads = 2;
  const std::string in = m.graph.runtime_inputs()[0]->name, out = m.graph.outputs[0].name;
  Executor ex(q, {2});
  Exactness r;
  r.convs = conv_q.size();
  int64_t same = 0;
  for (int64_t b0 = 0; b0 < eval.dim(0); b0 += batch) {
    const Tensor x = batch_rows(eval, b0, std::min(batch, eval.dim(0) - b0));
    const auto got = ort_run(tmp.file("q.onnx"), {{in, x}}, ro);
    const auto want = ex.run({{in, x}});
    for (const auto& name : conv_q) {
      const auto g = got.at(name).to_int64s(), w = want.at(name).to_int64s();
      EXPECT_EQ(g.size(), w.size()) << name;
      for (size_t i = 0; i < std::min(g.size(), w.size()); ++i) {
        r.differ += g[i] != w[i];
        r.max_steps = std::max(r.max_steps, std::abs(g[i] - w[i]));
      }
      r.values += static_cast<int64_t>(w.size());
    }
    const Tensor& gl = got.at(out);
    const Tensor& wl = want.at(out);
    const int64_t k = wl.numel() / wl.dim(0);
    for (int64_t i = 0; i < wl.dim(0); ++i)
      same += argmax(gl.data<float>() + i * k, k) == argmax(wl.data<float>() + i * k, k);
    r.images += wl.dim(0);
  }
  r.agreement = double(same) / double(r.images);
  std::printf("%s: %zu quantized convs, %lld values: %lld differ (max %lld steps); top-1 agreement "
              "%.2f %% of %lld images\n",
              label.c_str(), r.convs, static_cast<long long>(r.values),
              static_cast<long long>(r.differ), static_cast<long long>(r.max_steps),
              100 * r.agreement, static_cast<long long>(r.images));
  return r;
}

class OrtQdqExactModels : public ::testing::TestWithParam<std::string> {};

TEST_P(OrtQdqExactModels, ConvOutputsAreBitExact) {
  REPQ_REQUIRE_ORT();
  const std::string dir = source_dir() + "/models/" + GetParam();
  const Model m = load_model(dir + "/" + GetParam() + ".deploy.onnx");
  const Tensor x = data::read_npy(dir + "/ref_input.npy");
  const Exactness r = compare(GetParam() + " deploy", m, batch_rows(x, 0, 16), x, x.dim(0));
  EXPECT_GT(r.convs, 0u);
  EXPECT_EQ(r.differ, 0);
  EXPECT_EQ(r.agreement, 1.0);
}

INSTANTIATE_TEST_SUITE_P(Models, OrtQdqExactModels,
                         ::testing::Values("repvgg", "repvgg_l2", "mobileone", "qarepvgg",
                                           "qarepvgg_v2", "acdbb"));

// Calibrated on 8 ImageNet photos, compared on 32 others (the real model, 43 layers; 32 to keep
// the test near 30 s in release: 64 photos, 242M conv outputs, took 60 s and also gave 0 differences).
TEST(OrtQdqExact, MobileOneS0BitExactSlow) {
  REPQ_REQUIRE_MOBILEONE(path);
  REPQ_REQUIRE_ORT();
  const Model m = load_model(path);
  data::DatasetOptions dopt;
  dopt.limit = 40;
  const Tensor x =
      data::load_all(data::Dataset::open(shared_dir() + "/data/imagenet_sample/images", dopt)).input;
  const Exactness r = compare("MobileOne-S0 (8 photos calibrate, 32 compare)", m, batch_rows(x, 0, 8),
                              batch_rows(x, 8, x.dim(0) - 8), 16);
  EXPECT_GE(r.convs, 40u);
  EXPECT_EQ(r.differ, 0);
  EXPECT_GE(r.agreement, 0.995);
}

}  // namespace
}  // namespace repq::test
