// GPTQ's H accumulation (quant/gptq.h HessianAccumulator, src/quant/gptq_hessian.cpp): the
// documented summation order reproduced bit for bit by an independent scalar reference, a
// grouped strided conv, auto_pad SAME_* and a Gemm against naive double sums, the same bits for any thread count
// and batch split, and quantize()'s H from calibration's second pass against collect_hessians.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "repq/data/npy.h"
#include "repq/quant/gptq.h"
#include "repq/quant/quantize.h"
#include "support/gptq_reference.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

quant::LayerQuant layer(const std::string& node, const std::string& op, const std::string& w) {
  quant::LayerQuant l;
  l.node = node, l.op = op, l.input = "x", l.weight = w;
  l.scales = {0.1f, 0.1f};
  return l;
}

TEST(QuantGptqHessian, FollowsTheDocumentedSumOrderBitForBit) {
  // A 1x1 conv over 7 channels: the patch rows are the channels of a [1, 7, P, 1] input.
  Model m = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[N,7,H,1] x) => (float[N,2,H,1] y)
<float[2,7,1,1] w = {1,2,3,4,5,6,7,8,9,10,11,12,13,14}>
{ y = Conv <kernel_shape = [1,1]> (x, w) })");
  m.graph.nodes[0].name = "conv";
  for (int64_t P : {1, 3, 5, 12, 13, 256, 263, 600}) {
    // Values of mixed magnitude, so that a different order would change the last bits.
    auto x = random_floats(static_cast<size_t>(7 * P), static_cast<uint32_t>(P), -1.0f, 1.0f);
    for (size_t i = 0; i < x.size(); i += 5) x[i] *= 300.0f;
    quant::HessianAccumulator acc(m, m, {layer("conv", "Conv", "w")}, 2);
    acc.observe("x", Tensor::from_vector<float>({1, 7, P, 1}, x));
    const auto st = acc.finish().at("conv");
    ASSERT_EQ(st.k, 7);
    EXPECT_EQ(st.count, P);
    for (int i = 0; i < 7; ++i) {
      double sx = 0;  // the same order with b = 1: eight lanes of adds, the tail into lane 0
      for (int64_t p0 = 0; p0 < P; p0 += 256) {
        const int64_t end = std::min(P, p0 + 256);
        float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t p = p0;
        for (; p + 8 <= end; p += 8)
          for (int t = 0; t < 8; ++t) l[t] += x[i * P + p + t];
        for (; p < end; ++p) l[0] += x[i * P + p];
        sx += static_cast<double>(((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])));
      }
      EXPECT_EQ(st.sum_x[i], sx) << "P " << P << " i " << i;
      for (int j = 0; j < 7; ++j)
        EXPECT_EQ(st.h[i * 7 + j], reference_entry(&x[i * P], &x[j * P], P)) << "P " << P << " " << i << "," << j;
    }
  }
}

// Grouped (2 groups of 2 channels) 3x3 conv, stride 2, pads (1, 0, 0, 1) on 5x6 inputs, and a
// Gemm: H and sum x against naive double sums over the zero-padded patches; 1 or 3 threads and
// one batch of 3 or three batches of 1 give the same bits.
TEST(QuantGptqHessian, GroupedStridedConvAndGemmAgainstNaiveSums) {
  Model m = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[N,4,5,6] x) => (float[N,3] z)
<float[4,2,3,3] w = {1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9},
 float[3,4] v = {1,2,3,4,5,6,7,8,9,10,11,12}, int64[2] shp = {0, -1}>
{ y = Conv <kernel_shape = [3,3], group = 2, strides = [2,2], pads = [1,0,0,1]> (x, w)
  p = GlobalAveragePool (y)  f = Reshape (p, shp)  z = Gemm <transB = 1> (f, v) })");
  m.graph.nodes[0].name = "conv";
  m.graph.nodes[3].name = "fc";
  const auto x = random_floats(3 * 4 * 5 * 6, 11u, -2.0f, 2.0f);
  const auto f = random_floats(3 * 4, 12u, -2.0f, 2.0f);
  const std::vector<quant::LayerQuant> layers = {layer("conv", "Conv", "w"), layer("fc", "Gemm", "v")};
  std::vector<std::map<std::string, quant::LayerHessian>> runs;
  for (int threads : {1, 3}) {
    for (bool split : {false, true}) {
      quant::HessianAccumulator acc(m, m, layers, threads);
      if (split) {
        for (int64_t b = 0; b < 3; ++b) {
          acc.observe("x", Tensor::from_vector<float>({1, 4, 5, 6}, std::vector<float>(x.begin() + b * 120, x.begin() + (b + 1) * 120)));
          acc.observe("f", Tensor::from_vector<float>({1, 4}, std::vector<float>(f.begin() + b * 4, f.begin() + (b + 1) * 4)));
        }
      } else {
        acc.observe("x", Tensor::from_vector<float>({3, 4, 5, 6}, x));
        acc.observe("f", Tensor::from_vector<float>({3, 4}, f));
      }
      runs.push_back(acc.finish());
    }
  }
  for (size_t r = 1; r < runs.size(); ++r)
    for (const char* name : {"conv", "fc"}) {
      EXPECT_EQ(runs[r].at(name).h, runs[0].at(name).h) << name << " run " << r;
      EXPECT_EQ(runs[r].at(name).sum_x, runs[0].at(name).sum_x) << name << " run " << r;
    }
  // Naive sums over the 2 x 3 output positions, per group.
  const auto& conv = runs[0].at("conv");
  ASSERT_EQ(conv.groups, 2);
  ASSERT_EQ(conv.k, 18);
  const int oh = (5 + 1 + 0 - 3) / 2 + 1, ow = (6 + 0 + 1 - 3) / 2 + 1;
  EXPECT_EQ(conv.count, 3 * oh * ow);
  for (int g = 0; g < 2; ++g) {
    std::vector<double> h(18 * 18, 0.0), sx(18, 0.0);
    for (int b = 0; b < 3; ++b)
      for (int y = 0; y < oh; ++y)
        for (int xo = 0; xo < ow; ++xo) {
          double p[18];
          for (int ci = 0; ci < 2; ++ci)
            for (int t = 0; t < 9; ++t) {
              const int iy = y * 2 - 1 + t / 3, ix = xo * 2 - 0 + t % 3;
              p[ci * 9 + t] = iy < 0 || iy >= 5 || ix < 0 || ix >= 6
                                  ? 0.0
                                  : x[((b * 4 + g * 2 + ci) * 5 + iy) * 6 + ix];
            }
          for (int i = 0; i < 18; ++i) {
            sx[i] += p[i];
            for (int j = 0; j < 18; ++j) h[i * 18 + j] += p[i] * p[j];
          }
        }
    for (int i = 0; i < 18 * 18; ++i) EXPECT_NEAR(conv.h[g * 324 + i], h[i], 1e-4) << g << " " << i;
    for (int i = 0; i < 18; ++i) EXPECT_NEAR(conv.sum_x[g * 18 + i], sx[i], 1e-4);
  }
  const auto& fc = runs[0].at("fc");
  ASSERT_EQ(fc.k, 4);
  EXPECT_EQ(fc.count, 3);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      double s = 0;
      for (int b = 0; b < 3; ++b) s += double(f[b * 4 + i]) * f[b * 4 + j];
      EXPECT_NEAR(fc.h[i * 4 + j], s, 1e-5);
    }
}

// auto_pad SAME_UPPER / SAME_LOWER, 3x3 stride 2 on a 5x6 input: output 3x3, pads (top,
// bottom) = (1, 1); (left, right) = (0, 1) for SAME_UPPER and (1, 0) for SAME_LOWER (ONNX: the
// odd pad at the end / at the start).
TEST(QuantGptqHessian, AutoPadSameAgainstNaiveSums) {
  const auto x = random_floats(5 * 6, 21u, -1.0f, 1.0f);
  for (const std::string mode : {"SAME_UPPER", "SAME_LOWER"}) {
    Model m = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[N,1,5,6] x) => (float[N,2,3,3] y)
<float[2,1,3,3] w = {1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9}>
{ y = Conv <kernel_shape = [3,3], strides = [2,2], auto_pad = ")" + mode + R"("> (x, w) })");
    m.graph.nodes[0].name = "conv";
    const quant::LayerQuant l = layer("conv", "Conv", "w");
    ASSERT_EQ(quant::gptq_unsupported_reason(m, l), "");
    quant::HessianAccumulator acc(m, m, {l}, 2);
    acc.observe("x", Tensor::from_vector<float>({1, 1, 5, 6}, x));
    const auto st = acc.finish().at("conv");
    EXPECT_EQ(st.count, 9);
    const int pl = mode == "SAME_UPPER" ? 0 : 1;
    std::vector<double> h(81, 0.0);
    for (int y = 0; y < 3; ++y)
      for (int xo = 0; xo < 3; ++xo) {
        double p[9];
        for (int t = 0; t < 9; ++t) {
          const int iy = y * 2 - 1 + t / 3, ix = xo * 2 - pl + t % 3;
          p[t] = iy < 0 || iy >= 5 || ix < 0 || ix >= 6 ? 0.0 : x[iy * 6 + ix];
        }
        for (int i = 0; i < 81; ++i) h[i] += p[i / 9] * p[i % 9];
      }
    for (int i = 0; i < 81; ++i) EXPECT_NEAR(st.h[i], h[i], 1e-5) << mode << " " << i;
  }
}

// quantize() sums H during calibration's second pass; the result equals a separate pass
// (collect_hessians) applied to the same round-to-nearest plan.
TEST(QuantGptqHessian, QuantizeSecondPassEqualsSeparatePass) {
  Model m = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[N,2,3,3] x) => (float[N,3,3,3] y)
<float[3,2,3,3] w = {0.5,-0.2,0.1,0.3,0.9,-0.4,0.2,0.05,-0.3, 0.1,0.2,-0.6,0.4,0.8,0.1,-0.2,0.3,0.02,
                     -0.3,0.6,0.2,0.1,0.7,-0.1,0.4,-0.25,0.15, 0.2,0.1,0.3,-0.5,0.6,0.2,0.1,-0.1,0.33,
                     0.05,0.4,-0.2,0.3,-0.7,0.2,0.6,0.1,-0.4, 0.3,-0.3,0.2,0.1,0.5,0.4,-0.2,0.2,0.1},
 float[3] b = {0.1, -0.2, 0.05}>
{ c = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w, b)  y = Relu (c) })");
  m.graph.nodes[0].name = "conv";
  m.graph.nodes[1].name = "relu";
  TempDir dir;
  for (int k = 0; k < 5; ++k)
    data::write_npy(dir.file("s" + std::to_string(k) + ".npy"),
                    Tensor::from_vector<float>({2, 3, 3}, random_floats(18, 40u + k, -1.0f, 1.0f)));
  data::DatasetOptions dopt;
  dopt.threads = 1;
  const auto ds = data::Dataset::open(dir.path().string(), dopt);
  quant::QuantizeOptions o;
  o.collect.progress = false;
  o.collect.batch = 2;
  o.gptq.bias_correction = true;
  const auto rtn = quant::quantize(m, ds, o);  // per-channel round to nearest
  o.weights = quant::WeightMode::kGptq;
  const auto r = quant::quantize(m, ds, o);
  quant::QuantPlan plan = rtn.plan;
  const auto hs = quant::collect_hessians(rtn.fused, rtn.fused, ds, plan.layers, o.collect);
  quant::apply_gptq(rtn.fused, plan, hs, o.gptq);
  const quant::LayerQuant* a = r.plan.layer("conv");
  const quant::LayerQuant* e = plan.layer("conv");
  ASSERT_TRUE(a && e);
  ASSERT_EQ(a->qweight.size(), 54u);
  EXPECT_EQ(a->qweight, e->qweight);
  EXPECT_EQ(a->bias_values, e->bias_values);
  EXPECT_EQ(a->note, e->note);
}

}  // namespace
}  // namespace repq::test
