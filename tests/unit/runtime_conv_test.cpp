// Conv and ConvTranspose against naive loops written here.
#include <gtest/gtest.h>

#include <cmath>

#include "repq/error.h"
#include "repq/runtime/executor.h"
#include "runtime/gemm.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

Tensor random_tensor(const Shape& s, uint32_t seed) {
  return Tensor::from_vector<float>(s, random_floats(static_cast<size_t>(shape_numel(s)), seed));
}

std::string header(int opset = 13) {
  return "<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) + "]>\n";
}

void expect_close(const Tensor& got, const std::vector<float>& want, const Shape& shape,
                  float tol = 1e-5f) {
  ASSERT_EQ(got.shape(), shape);
  ASSERT_EQ(static_cast<size_t>(got.numel()), want.size());
  const float* g = got.data<float>();
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(g[i], want[i], tol * (1.0f + std::fabs(want[i]))) << "at " << i;
}

struct ConvRef {
  int64_t group = 1, sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0, pb = 0, pr = 0;
};

// Direct definition of a 2-D conv: y[n,m,oy,ox] = b[m] + sum x[n,c,iy,ix] * w[m,c',ky,kx].
std::vector<float> naive_conv(const Tensor& x, const Tensor& w, const float* b, const ConvRef& p,
                              Shape& out) {
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const int64_t m = w.dim(0), cg = w.dim(1), kh = w.dim(2), kw = w.dim(3);
  const int64_t oh = (h + p.pt + p.pb - ((kh - 1) * p.dh + 1)) / p.sh + 1;
  const int64_t ow = (wd + p.pl + p.pr - ((kw - 1) * p.dw + 1)) / p.sw + 1;
  out = {n, m, oh, ow};
  std::vector<float> y(static_cast<size_t>(n * m * oh * ow));
  const float* xd = x.data<float>();
  const float* wdat = w.data<float>();
  const int64_t mg = m / p.group;
  for (int64_t in = 0; in < n; ++in)
    for (int64_t om = 0; om < m; ++om)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          double acc = b ? b[om] : 0.0;
          const int64_t g = om / mg;
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t iy = oy * p.sh - p.pt + ky * p.dh, ix = ox * p.sw - p.pl + kx * p.dw;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                acc += static_cast<double>(xd[((in * c + g * cg + ci) * h + iy) * wd + ix]) *
                       wdat[((om * cg + ci) * kh + ky) * kw + kx];
              }
          y[static_cast<size_t>(((in * m + om) * oh + oy) * ow + ox)] = static_cast<float>(acc);
        }
  return y;
}

Tensor run_one(const Model& model, const Tensor& x, int threads = 2) {
  Executor ex(model, {threads});
  auto out = ex.run({{"x", x}});
  return out.at("y");
}

struct ConvCase {
  std::string name;
  Shape x, w;
  std::string attrs;
  ConvRef ref;
  bool bias = true;
};

class RuntimeConvCases : public ::testing::TestWithParam<ConvCase> {};

TEST_P(RuntimeConvCases, MatchesNaiveLoops) {
  const ConvCase& c = GetParam();
  const bool avx512 = runtime::gemm_uses_avx512();
  const std::string text = header() + "g (float" + shape_str(c.x) + " x) => (float y) <float" +
                           shape_str(c.w) + " w" +
                           (c.bias ? ", float[" + std::to_string(c.w[0]) + "] b" : "") + ">\n{ y = Conv " +
                           c.attrs + " (x, w" + (c.bias ? ", b" : "") + ") }";
  Model model = parse_onnx_text(text);
  const Tensor x = random_tensor(c.x, 7);
  const Tensor& w = *model.graph.initializer("w");
  const float* b = c.bias ? model.graph.initializer("b")->data<float>() : nullptr;
  Shape out;
  const std::vector<float> want = naive_conv(x, w, b, c.ref, out);
  expect_close(run_one(model, x), want, out);
  if (avx512) {  // the AVX2 GEMM too, on a machine that would pick AVX-512
    runtime::set_gemm_avx512_for_testing(false);
    const Tensor y = run_one(model, x);
    runtime::set_gemm_avx512_for_testing(true);
    expect_close(y, want, out);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Runtime, RuntimeConvCases,
    ::testing::Values(
        ConvCase{"pad1", {2, 3, 7, 8}, {5, 3, 3, 3}, "<pads = [1,1,1,1]>", {1, 1, 1, 1, 1, 1, 1, 1, 1}},
        ConvCase{"stride2_asym_pads", {1, 3, 10, 9}, {4, 3, 3, 3}, "<strides = [2,2], pads = [0,1,2,1]>",
                 {1, 2, 2, 1, 1, 0, 1, 2, 1}},
        ConvCase{"dilated_rect", {1, 2, 11, 12}, {3, 2, 3, 2}, "<dilations = [2,3], pads = [2,1,1,2], strides = [1,2]>",
                 {1, 1, 2, 2, 3, 2, 1, 1, 2}, false},
        ConvCase{"groups", {2, 6, 6, 6}, {9, 2, 3, 3}, "<group = 3, pads = [1,1,1,1]>",
                 {3, 1, 1, 1, 1, 1, 1, 1, 1}},
        ConvCase{"depthwise_s1", {2, 8, 9, 9}, {8, 1, 3, 3}, "<group = 8, pads = [1,1,1,1]>",
                 {8, 1, 1, 1, 1, 1, 1, 1, 1}},
        ConvCase{"depthwise_s2_even", {1, 5, 10, 12}, {5, 1, 3, 3}, "<group = 5, strides = [2,2], pads = [1,1,1,1]>",
                 {5, 2, 2, 1, 1, 1, 1, 1, 1}},
        ConvCase{"depthwise_s2_no_pad", {1, 4, 9, 7}, {4, 1, 3, 3}, "<group = 4, strides = [2,2]>",
                 {4, 2, 2, 1, 1, 0, 0, 0, 0}},
        ConvCase{"depthwise_5x5_dilated", {1, 3, 12, 11}, {3, 1, 5, 5}, "<group = 3, dilations = [2,1], pads = [4,2,4,2]>",
                 {3, 1, 1, 2, 1, 4, 2, 4, 2}},
        ConvCase{"depthwise_multiplier", {1, 3, 6, 6}, {6, 1, 3, 3}, "<group = 3, pads = [0,1,1,0]>",
                 {3, 1, 1, 1, 1, 0, 1, 1, 0}},
        ConvCase{"pointwise", {2, 40, 9, 11}, {70, 40, 1, 1}, "", {1, 1, 1, 1, 1, 0, 0, 0, 0}},
        ConvCase{"pointwise_large_split", {1, 96, 30, 30}, {128, 96, 1, 1}, "", {1, 1, 1, 1, 1, 0, 0, 0, 0}},
        ConvCase{"pointwise_groups", {1, 8, 5, 5}, {6, 4, 1, 1}, "<group = 2>", {2, 1, 1, 1, 1, 0, 0, 0, 0}},
        ConvCase{"pointwise_stride2", {1, 4, 7, 7}, {3, 4, 1, 1}, "<strides = [2,2]>", {1, 2, 2, 1, 1, 0, 0, 0, 0}},
        ConvCase{"im2col_big", {1, 16, 33, 35}, {24, 16, 3, 3}, "<pads = [1,1,1,1], strides = [1,1]>",
                 {1, 1, 1, 1, 1, 1, 1, 1, 1}},
        ConvCase{"auto_pad_same_upper", {1, 3, 9, 8}, {4, 3, 4, 4}, "<auto_pad = \"SAME_UPPER\", strides = [2,1]>",
                 // out 5x8: total pad h = (5-1)*2+4-9 = 3 -> 1 top, 2 bottom; w = 7+4-8 = 3 -> 1,2
                 {1, 2, 1, 1, 1, 1, 1, 2, 2}},
        ConvCase{"auto_pad_same_lower", {1, 3, 9, 8}, {4, 3, 4, 4}, "<auto_pad = \"SAME_LOWER\", strides = [2,1]>",
                 {1, 2, 1, 1, 1, 2, 2, 1, 1}},
        ConvCase{"auto_pad_valid", {1, 3, 9, 8}, {4, 3, 3, 3}, "<auto_pad = \"VALID\", strides = [2,2]>",
                 {1, 2, 2, 1, 1, 0, 0, 0, 0}}),
    [](const ::testing::TestParamInfo<ConvCase>& i) { return i.param.name; });

TEST(RuntimeConv1D, MatchesNaiveLoops) {
  Model model = parse_onnx_text(header() + R"(
g (float[2,3,17] x) => (float y) <float[4,3,3] w, float[4] b>
{ y = Conv <strides = [2], pads = [2,1], dilations = [2]> (x, w, b) })");
  const Tensor x = random_tensor({2, 3, 17}, 3);
  const Tensor& w = *model.graph.initializer("w");
  Shape out;
  const std::vector<float> want =
      naive_conv(x.reshaped({2, 3, 1, 17}), w.reshaped({4, 3, 1, 3}),
                 model.graph.initializer("b")->data<float>(), {1, 1, 2, 1, 2, 0, 2, 0, 1}, out);
  expect_close(run_one(model, x), want, {out[0], out[1], out[3]});
}

TEST(RuntimeConv1D, DepthwiseMatchesNaiveLoops) {
  Model model = parse_onnx_text(header() + R"(
g (float[1,4,10] x) => (float y) <float[4,1,3] w>
{ y = Conv <group = 4, pads = [1,1]> (x, w) })");
  const Tensor x = random_tensor({1, 4, 10}, 5);
  Shape out;
  const std::vector<float> want = naive_conv(x.reshaped({1, 4, 1, 10}),
                                             model.graph.initializer("w")->reshaped({4, 1, 1, 3}),
                                             nullptr, {4, 1, 1, 1, 1, 0, 1, 0, 1}, out);
  expect_close(run_one(model, x), want, {1, 4, 10});
}

TEST(RuntimeConv, HandValues) {
  // 1 channel 3x3 input, 2x2 kernel of ones, stride 1, no pad: sums of 2x2 windows + bias 0.5.
  Model model = parse_onnx_text(header() + R"(
g (float[1,1,3,3] x) => (float y) <float[1,1,2,2] w = {1,1,1,1}, float[1] b = {0.5}>
{ y = Conv (x, w, b) })");
  const Tensor x = Tensor::from_vector<float>({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  expect_close(run_one(model, x), {12.5f, 16.5f, 24.5f, 28.5f}, {1, 1, 2, 2}, 0.0f);
}

TEST(RuntimeConv, WeightsComputedAtRunTime) {
  // Weights from DequantizeLinear (as in QDQ models) are not initializers.
  Model model = parse_onnx_text(header() + R"(
g (float[1,2,4,4] x) => (float y) <int8[3,2,1,1] wq = {1,-2,3,-4,5,-6}, float ws = {0.5}>
{ w = DequantizeLinear (wq, ws)  y = Conv (x, w) })");
  const Tensor x = random_tensor({1, 2, 4, 4}, 9);
  const float* xd = x.data<float>();
  std::vector<float> want(48);
  const float wv[3][2] = {{0.5f, -1.0f}, {1.5f, -2.0f}, {2.5f, -3.0f}};
  for (int m = 0; m < 3; ++m)
    for (int p = 0; p < 16; ++p) want[m * 16 + p] = wv[m][0] * xd[p] + wv[m][1] * xd[16 + p];
  expect_close(run_one(model, x), want, {1, 3, 4, 4});
}

TEST(RuntimeConv, FusedReluMatchesSeparateRelu) {
  // Conv -> Relu runs fused when nobody observes the Conv output; the result must be the same
  // bits as the unfused path (taken when an observer is present).
  Model model = parse_onnx_text(header(11) + R"(
g (float[2,8,10,10] x) => (float y) <float[8,1,3,3] dw, float[8] db, float[16,8,1,1] pw, float[16] pb,
                                     float[16,16,3,3] cw, float lo = {-0.1}, float hi = {0.2}>
{ a = Conv <group = 8, pads = [1,1,1,1]> (x, dw, db)  ar = Relu (a)
  b = Conv (ar, pw, pb)  br = Relu (b)
  c = Conv <pads = [1,1,1,1]> (br, cw)  y = Clip (c, lo, hi) })");
  const Tensor x = random_tensor({2, 8, 10, 10}, 11);
  Executor ex(model, {2});
  const Tensor fused = ex.run({{"x", x}}).at("y");
  std::map<std::string, Tensor> seen;
  const Tensor plain = ex.run({{"x", x}}, [&](const std::string& n, const Tensor& t) {
    seen[n] = t;
  }).at("y");
  EXPECT_TRUE(fused.equals(plain));
  ASSERT_TRUE(seen.count("a") && seen.count("b") && seen.count("c"));
  float mn = 1, mx = -1;
  for (float v : fused.span<float>()) {
    mn = std::min(mn, v);
    mx = std::max(mx, v);
  }
  EXPECT_FLOAT_EQ(mn, -0.1f);
  EXPECT_FLOAT_EQ(mx, 0.2f);
  // The Conv output also comes back unfused when asked for as an extra output.
  const auto with_extra = ex.run({{"x", x}}, nullptr, {"b"});
  EXPECT_TRUE(with_extra.at("b").equals(seen.at("b")));
  EXPECT_TRUE(with_extra.at("y").equals(plain));
}

TEST(RuntimeConv, RejectsMismatchedChannels) {
  Model model = parse_onnx_text(header() + R"(
g (float[1,4,5,5] x) => (float y) <float[2,3,3,3] w>
{ y = Conv (x, w) })");
  Executor ex(model, {1});
  try {
    ex.run({{"x", Tensor(DType::kFloat32, {1, 4, 5, 5})}});
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("node 'y' (Conv)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("channels"), std::string::npos) << e.what();
  }
}

TEST(RuntimeConv, Refuses3dConvUpFront) {
  Model model = parse_onnx_text(header() + R"(
g (float[1,1,4,4,4] x) => (float y) <float[1,1,3,3,3] w>
{ y = Conv (x, w) })");
  EXPECT_THROW(Executor(model, {1}), InputError);
}

// ---- ConvTranspose ----

// y[n, g*mg+m, iy*s - p + ky*d, ...] += x[n, g*cg+c, iy, ix] * w[g*cg+c, m, ky, kx]
std::vector<float> naive_conv_transpose(const Tensor& x, const Tensor& w, const float* b,
                                        int64_t group, int64_t sh, int64_t sw, int64_t dh,
                                        int64_t dwl, int64_t pt, int64_t pl, int64_t oh, int64_t ow) {
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const int64_t mg = w.dim(1), kh = w.dim(2), kw = w.dim(3), cg = c / group, m = mg * group;
  std::vector<double> y(static_cast<size_t>(n * m * oh * ow), 0.0);
  for (int64_t in = 0; in < n; ++in)
    for (int64_t om = 0; om < m; ++om)
      for (int64_t p = 0; p < oh * ow; ++p) y[(in * m + om) * oh * ow + p] = b ? b[om] : 0.0;
  const float* xd = x.data<float>();
  const float* wdat = w.data<float>();
  for (int64_t in = 0; in < n; ++in)
    for (int64_t ci = 0; ci < c; ++ci) {
      const int64_t g = ci / cg;
      for (int64_t iy = 0; iy < h; ++iy)
        for (int64_t ix = 0; ix < wd; ++ix)
          for (int64_t mm = 0; mm < mg; ++mm)
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t oy = iy * sh - pt + ky * dh, ox = ix * sw - pl + kx * dwl;
                if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                y[((in * m + g * mg + mm) * oh + oy) * ow + ox] +=
                    static_cast<double>(xd[((in * c + ci) * h + iy) * wd + ix]) *
                    wdat[((ci * mg + mm) * kh + ky) * kw + kx];
              }
    }
  return std::vector<float>(y.begin(), y.end());
}

TEST(RuntimeConvTranspose, StridePadsOutputPadding) {
  Model model = parse_onnx_text(header() + R"(
g (float[2,4,5,5] x) => (float y) <float[4,3,3,3] w, float[3] b>
{ y = ConvTranspose <strides = [2,2], pads = [1,1,1,1], output_padding = [1,1]> (x, w, b) })");
  const Tensor x = random_tensor({2, 4, 5, 5}, 21);
  // out = 2*(5-1) + 1 + 3 - 2 = 10
  const auto want = naive_conv_transpose(x, *model.graph.initializer("w"),
                                         model.graph.initializer("b")->data<float>(), 1, 2, 2, 1,
                                         1, 1, 1, 10, 10);
  expect_close(run_one(model, x), want, {2, 3, 10, 10});
}

TEST(RuntimeConvTranspose, GroupsDilationsAsymmetricPads) {
  Model model = parse_onnx_text(header() + R"(
g (float[1,4,4,5] x) => (float y) <float[4,2,3,2] w>
{ y = ConvTranspose <group = 2, dilations = [2,1], strides = [1,2], pads = [0,1,1,0]> (x, w) })");
  const Tensor x = random_tensor({1, 4, 4, 5}, 22);
  // h: 1*3 + 0 + 5 - 0 - 1 = 7; w: 2*4 + 0 + 2 - 1 - 0 = 9
  const auto want = naive_conv_transpose(x, *model.graph.initializer("w"), nullptr, 2, 1, 2, 2, 1,
                                         0, 1, 7, 9);
  expect_close(run_one(model, x), want, {1, 4, 7, 9});
}

TEST(RuntimeConvTranspose, OutputShapeSetsPads) {
  Model model = parse_onnx_text(header() + R"(
g (float[1,2,4,4] x) => (float y) <float[2,3,3,3] w, float[3] b>
{ y = ConvTranspose <strides = [2,2], output_shape = [8,8]> (x, w, b) })");
  const Tensor x = random_tensor({1, 2, 4, 4}, 23);
  // natural size 2*3 + 3 = 9, total padding 1: NOTSET puts the odd one at the start.
  const auto want = naive_conv_transpose(x, *model.graph.initializer("w"),
                                         model.graph.initializer("b")->data<float>(), 1, 2, 2, 1,
                                         1, 1, 1, 8, 8);
  expect_close(run_one(model, x), want, {1, 3, 8, 8});
}

TEST(RuntimeConvTranspose, OneDimensional) {
  Model model = parse_onnx_text(header() + R"(
g (float[1,2,6] x) => (float y) <float[2,3,4] w>
{ y = ConvTranspose <strides = [3]> (x, w) })");
  const Tensor x = random_tensor({1, 2, 6}, 24);
  const auto want = naive_conv_transpose(x.reshaped({1, 2, 1, 6}),
                                         model.graph.initializer("w")->reshaped({2, 3, 1, 4}),
                                         nullptr, 1, 1, 3, 1, 1, 0, 0, 1, 19);
  expect_close(run_one(model, x), want, {1, 3, 19});
}

}  // namespace
}  // namespace repq::test
