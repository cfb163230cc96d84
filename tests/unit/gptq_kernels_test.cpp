// The faster paths of GPTQ: HessianAccumulator's depthwise path (stride 1: patch rows taken
// from kw shifted copies of the plane; chunk-outer small-K kernel) against the documented
// summation order, bit for bit, for any thread count and batch split; an integer case against
// exact hand sums; and apply_gptq spread over threads giving the same plan as one thread.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "repq/data/npy.h"
#include "repq/ir/onnx_io.h"
#include "repq/quant/gptq.h"
#include "repq/quant/quantize.h"
#include "support/gptq_reference.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

quant::LayerQuant layer(const std::string& node, const std::string& op, const std::string& w) {
  quant::LayerQuant l;
  l.node = node, l.op = op, l.input = "x", l.weight = w;
  return l;
}

// sum x of one row, added chunk by chunk into sx (eight lanes of adds, tail into lane 0).
void reference_sum(const float* a, int64_t P, double& sx) {
  for (int64_t p0 = 0; p0 < P; p0 += 256) {
    const int64_t end = std::min(P, p0 + 256);
    float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t p = p0;
    for (; p + 8 <= end; p += 8)
      for (int t = 0; t < 8; ++t) l[t] += a[p + t];
    for (; p < end; ++p) l[0] += a[p];
    sx += static_cast<double>(((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])));
  }
}

struct DwCase {
  int64_t H, W, dil;
  std::vector<int64_t> pads;  // top, left, bottom, right
};

// Depthwise 3x3 convs, 6 channels (the depthwise path needs groups >= 2 x threads), stride 1:
// symmetric padding with a plane of 323 patches (two chunks), and dilation 2 with uneven pads.
TEST(GptqKernels, DepthwiseStride1FollowsTheDocumentedOrder) {
  for (const DwCase& dc : {DwCase{17, 19, 1, {1, 1, 1, 1}}, DwCase{9, 11, 2, {2, 0, 1, 2}}}) {
    const int64_t C = 6, N = 3;
    const std::string pads = std::to_string(dc.pads[0]) + "," + std::to_string(dc.pads[1]) + "," +
                             std::to_string(dc.pads[2]) + "," + std::to_string(dc.pads[3]);
    std::string w;
    for (int i = 0; i < C * 9; ++i) w += (i ? "," : "") + std::to_string(i % 7 - 3);
    Model m = parse_onnx_text("<ir_version: 8, opset_import: [\"\" : 13]>\ng (float[N,6,H,W] x) => (float[N,6,A,B] y)\n"
                              "<float[6,1,3,3] w = {" + w + "}>\n"
                              "{ y = Conv <kernel_shape = [3,3], group = 6, pads = [" + pads +
                              "], dilations = [" + std::to_string(dc.dil) + "," + std::to_string(dc.dil) +
                              "]> (x, w) }");
    m.graph.nodes[0].name = "dw";
    const int64_t plane = dc.H * dc.W;
    auto x = random_floats(static_cast<size_t>(N * C * plane), 21u, -1.0f, 1.0f);
    for (size_t i = 0; i < x.size(); i += 7) x[i] *= 250.0f;  // mixed magnitudes: order shows
    // The patch rows, built plainly, and the expected sums in sample order.
    const int64_t oh = dc.H + dc.pads[0] + dc.pads[2] - 2 * dc.dil, ow = dc.W + dc.pads[1] + dc.pads[3] - 2 * dc.dil;
    const int64_t P = oh * ow;
    std::vector<double> h(static_cast<size_t>(C * 81), 0.0), sx(static_cast<size_t>(C * 9), 0.0);
    for (int64_t b = 0; b < N; ++b)
      for (int64_t c = 0; c < C; ++c) {
        std::vector<float> rows(static_cast<size_t>(9 * P));
        for (int64_t t = 0; t < 9; ++t)
          for (int64_t y = 0; y < oh; ++y)
            for (int64_t xo = 0; xo < ow; ++xo) {
              const int64_t iy = y - dc.pads[0] + (t / 3) * dc.dil, ix = xo - dc.pads[1] + (t % 3) * dc.dil;
              rows[t * P + y * ow + xo] = iy < 0 || iy >= dc.H || ix < 0 || ix >= dc.W
                                              ? 0.0f
                                              : x[((b * C + c) * dc.H + iy) * dc.W + ix];
            }
        for (int64_t i = 0; i < 9; ++i) {
          reference_sum(&rows[i * P], P, sx[c * 9 + i]);
          for (int64_t j = i; j < 9; ++j) h[c * 81 + i * 9 + j] += reference_entry(&rows[i * P], &rows[j * P], P);
        }
      }
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < 9; ++i)
        for (int64_t j = 0; j < i; ++j) h[c * 81 + i * 9 + j] = h[c * 81 + j * 9 + i];
    for (int threads : {1, 2, 3})
      for (bool split : {false, true}) {
        quant::HessianAccumulator acc(m, m, {layer("dw", "Conv", "w")}, threads);
        if (split) {
          for (int64_t b = 0; b < N; ++b)
            acc.observe("x", Tensor::from_vector<float>({1, C, dc.H, dc.W},
                                                        std::vector<float>(x.begin() + b * C * plane, x.begin() + (b + 1) * C * plane)));
        } else {
          acc.observe("x", Tensor::from_vector<float>({N, C, dc.H, dc.W}, x));
        }
        const auto st = acc.finish().at("dw");
        ASSERT_EQ(st.groups, C);
        ASSERT_EQ(st.k, 9);
        EXPECT_EQ(st.count, N * P);
        EXPECT_EQ(st.h, h) << "H " << dc.H << " threads " << threads << " split " << split;
        EXPECT_EQ(st.sum_x, sx) << "H " << dc.H << " threads " << threads << " split " << split;
      }
  }
}

// A 1x1 conv over 8 channels (k % 4 == 0: the four-column kernel with its vector tail and
// horizontal-add lane sums) against the documented order, bit for bit, for tails of 0 to 7.
TEST(GptqKernels, FourColumnKernelFollowsTheDocumentedOrder) {
  Model m = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[N,8,H,1] x) => (float[N,1,H,1] y)
<float[1,8,1,1] w = {1,2,3,4,5,6,7,8}>
{ y = Conv <kernel_shape = [1,1]> (x, w) })");
  m.graph.nodes[0].name = "conv";
  for (int64_t P : {1, 3, 4, 5, 7, 12, 13, 196, 256, 263, 516, 600}) {
    auto x = random_floats(static_cast<size_t>(8 * P), 90u + static_cast<uint32_t>(P), -1.0f, 1.0f);
    for (size_t i = 0; i < x.size(); i += 5) x[i] *= 300.0f;
    for (int threads : {1, 2}) {
      quant::HessianAccumulator acc(m, m, {layer("conv", "Conv", "w")}, threads);
      acc.observe("x", Tensor::from_vector<float>({1, 8, P, 1}, x));
      const auto st = acc.finish().at("conv");
      ASSERT_EQ(st.k, 8);
      for (int i = 0; i < 8; ++i) {
        double sx = 0;
        reference_sum(&x[i * P], P, sx);
        EXPECT_EQ(st.sum_x[i], sx) << "P " << P << " i " << i;
        for (int j = 0; j < 8; ++j)
          EXPECT_EQ(st.h[i * 8 + j], reference_entry(&x[std::min(i, j) * P], &x[std::max(i, j) * P], P))
              << "P " << P << " " << i << "," << j;
      }
    }
  }
}

// Small integers: every sum is exact, so H is known by hand. Two channels of a 2x2 plane,
// 3x3 kernel, pads 1: output 2x2, patch (y, x) row (ky, kx) = plane[y + ky - 1][x + kx - 1].
// Channel 0 = [[1, 2], [3, 4]]: patch rows are 0 except where the tap hits the plane; e.g. the
// centre tap (4) sees 1, 2, 3, 4 (H_44 = 30), the corner tap 0 sees only plane[0][0] = 1 at
// patch (1, 1), where the centre sees 4 (H_00 = 1, H_04 = 4), tap 8 only plane[1][1] = 4 at
// patch (0, 0) (H_88 = 16), so taps 0 and 8 never overlap (H_08 = 0).
TEST(GptqKernels, DepthwiseIntegerCaseByHand) {
  Model m = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[N,2,2,2] x) => (float[N,2,2,2] y)
<float[2,1,3,3] w = {1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1}>
{ y = Conv <kernel_shape = [3,3], group = 2, pads = [1,1,1,1]> (x, w) })");
  m.graph.nodes[0].name = "dw";
  quant::HessianAccumulator acc(m, m, {layer("dw", "Conv", "w")}, 1);
  acc.observe("x", Tensor::from_vector<float>({1, 2, 2, 2}, {1, 2, 3, 4, 0, 0, 0, 5}));
  const auto st = acc.finish().at("dw");
  ASSERT_EQ(st.k, 9);
  EXPECT_EQ(st.count, 4);
  EXPECT_EQ(st.h[4 * 9 + 4], 30.0);
  EXPECT_EQ(st.h[0 * 9 + 0], 1.0);
  EXPECT_EQ(st.h[0 * 9 + 4], 4.0);
  EXPECT_EQ(st.h[4 * 9 + 0], 4.0);
  EXPECT_EQ(st.h[8 * 9 + 8], 16.0);
  EXPECT_EQ(st.h[0 * 9 + 8], 0.0);
  // Tap 5 (right of centre) sees 2 at (0,0) and 4 at (1,0): with the centre 1*2 + 3*4 = 14.
  EXPECT_EQ(st.h[4 * 9 + 5], 14.0);
  EXPECT_EQ(st.sum_x[4], 10.0);
  EXPECT_EQ(st.sum_x[0], 1.0);
  // Channel 1 = [[0, 0], [0, 5]]: tap (ky, kx) sees plane[y+ky-1][x+kx-1] = 5 at the one patch
  // y = 2 - ky, x = 2 - kx when that is inside [0, 1]^2, i.e. when ky, kx >= 1.
  for (int t = 0; t < 9; ++t) {
    const bool sees = t / 3 >= 1 && t % 3 >= 1;
    EXPECT_EQ(st.h[81 + t * 9 + t], sees ? 25.0 : 0.0) << t;
    EXPECT_EQ(st.sum_x[9 + t], sees ? 5.0 : 0.0) << t;
  }
  EXPECT_EQ(st.h[81 + 4 * 9 + 8], 0.0);  // taps 4 and 8 see the 5 at different patches
}

// apply_gptq on a depthwise + pointwise + Gemm model: 1 and 3 threads give the same plan
// (int8 values, scales, corrected bias, notes) and the same model bytes.
TEST(GptqKernels, ApplyGptqSameForAnyThreadCount) {
  Model m = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[N,4,6,6] x) => (float[N,3] z)
<float[4,1,3,3] wd = {0.5,-0.2,0.1,0.3,0.9,-0.4,0.2,0.1,-0.3, 0.1,0.2,0.3,-0.4,0.8,0.1,0.0,-0.2,0.3,
                      -0.3,0.4,0.2,0.1,0.7,0.2,-0.1,0.3,0.1, 0.2,-0.1,0.05,0.3,1.1,-0.2,0.4,0.1,-0.2},
 float[4] bd = {0.1, -0.1, 0.05, 0.0},
 float[5,4,1,1] wp = {0.3,-0.7,0.2,0.11, 0.5,0.25,-0.33,0.9, -0.2,0.6,0.4,-0.1, 0.8,-0.05,0.3,0.2, 0.1,0.1,-0.9,0.45},
 float[3,5] v = {0.2,-0.4,0.6,0.13,-0.27, 0.5,0.05,-0.3,0.21,0.4, -0.6,0.33,0.1,-0.2,0.7},
 float[3] bv = {0.01, 0.02, -0.03}, int64[2] shp = {0, -1}>
{ d = Conv <kernel_shape = [3,3], group = 4, pads = [1,1,1,1]> (x, wd, bd)  r = Relu (d)
  p = Conv <kernel_shape = [1,1]> (r, wp)  q = GlobalAveragePool (p)  f = Reshape (q, shp)
  z = Gemm <transB = 1> (f, v, bv) })");
  m.graph.nodes[0].name = "dw";
  m.graph.nodes[1].name = "relu";
  m.graph.nodes[2].name = "pw";
  m.graph.nodes[5].name = "fc";
  TempDir dir;
  for (int k = 0; k < 6; ++k)
    data::write_npy(dir.file("s" + std::to_string(k) + ".npy"),
                    Tensor::from_vector<float>({4, 6, 6}, random_floats(144, 40u + k, -1.0f, 1.0f)));
  data::DatasetOptions dopt;
  dopt.threads = 1;
  const auto ds = data::Dataset::open(dir.path().string(), dopt);
  quant::QuantizeOptions o;
  o.weights = quant::WeightMode::kGptq;
  o.gptq.bias_correction = true;
  o.gptq.clip_search = true;
  o.collect.progress = false;
  o.collect.threads = 1;
  o.gptq.threads = 1;
  const auto r1 = quant::quantize(m, ds, o);
  o.gptq.threads = 3;
  const auto r3 = quant::quantize(m, ds, o);
  EXPECT_EQ(quant::plan_to_json(r1.plan), quant::plan_to_json(r3.plan));
  EXPECT_EQ(serialize_model(r1.qdq), serialize_model(r3.qdq));
  for (const char* name : {"dw", "pw", "fc"}) {
    const quant::LayerQuant* l = r3.plan.layer(name);
    ASSERT_NE(l, nullptr) << name;
    EXPECT_FALSE(l->qweight.empty()) << name;
    EXPECT_NE(l->note.find("gptq"), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace repq::test
