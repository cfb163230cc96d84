// DQ(x_q) -> Conv(DQ(int8 w), DQ(int32 bias)) -> QuantizeLinear run by the executor's exact
// integer kernel, checked against a naive int64 reference written here with ONNX Runtime's
// QLinearConv arithmetic: acc = sum (x_q - zp_x) * (w_q - zp_w) + b_q (padding adds nothing),
// M = (s_x * s_w[o]) / s_y in float, y = saturate(round_half_even(float(acc) * M) + zp_y).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>

#include "repq/runtime/executor.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

struct Case {
  int64_t n = 1, c = 4, h = 7, w = 7, m = 6, k = 3, group = 1, stride = 1, pad = 1;
  bool x_signed = false, y_signed = false, per_channel = true, bias = true;
  int zp_x = 0, zp_y = 0, w_range = 127;
  float sx = 0.02f, sy = 0.05f;
  float bias_scale_factor = 1.0f;  // the bias DQ's scale is s_x * s_w[o] times this
  uint32_t seed = 1;
};

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

template <class T>
std::string list(const std::vector<T>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + num(static_cast<double>(x));
  return s;
}

struct Built {
  Model model;
  Tensor x;
  std::vector<int64_t> expected;
};

Built build(const Case& c) {
  std::mt19937 rng(c.seed);
  const int64_t cg = c.c / c.group;
  const int xlo = c.x_signed ? -128 : 0;
  std::vector<int32_t> xq(static_cast<size_t>(c.n * c.c * c.h * c.w));
  for (auto& v : xq) v = std::uniform_int_distribution<int>(xlo, xlo + 255)(rng);
  std::vector<int32_t> wq(static_cast<size_t>(c.m * cg * c.k * c.k)), bq(static_cast<size_t>(c.m));
  for (auto& v : wq) v = std::uniform_int_distribution<int>(-c.w_range, c.w_range)(rng);
  for (auto& v : bq) v = std::uniform_int_distribution<int>(-20000, 20000)(rng);
  std::vector<float> sw(static_cast<size_t>(c.per_channel ? c.m : 1));
  for (auto& v : sw) v = std::uniform_real_distribution<float>(0.001f, 0.01f)(rng);
  std::vector<float> sb(static_cast<size_t>(c.m));  // the bias scale s_x * s_w[o]
  for (int64_t o = 0; o < c.m; ++o) sb[o] = c.sx * sw[c.per_channel ? o : 0] * c.bias_scale_factor;

  const std::string xt = c.x_signed ? "int8" : "uint8", yt = c.y_signed ? "int8" : "uint8";
  const std::string shape = std::to_string(c.n) + "," + std::to_string(c.c) + "," +
                            std::to_string(c.h) + "," + std::to_string(c.w);
  std::string text = "<ir_version: 8, opset_import: [\"\" : 13]>\ng (" + xt + "[" + shape +
                     "] xq) => (" + yt + " y) <float sx = {" + num(c.sx) + "}, " + xt +
                     " zx = {" + std::to_string(c.zp_x) + "}, int8[" + std::to_string(c.m) + "," +
                     std::to_string(cg) + "," + std::to_string(c.k) + "," + std::to_string(c.k) +
                     "] wq = {" + list(wq) + "}, float" +
                     (c.per_channel ? "[" + std::to_string(c.m) + "]" : "") + " sw = {" + list(sw) +
                     "}, int32[" + std::to_string(c.m) + "] bq = {" + list(bq) +
                     "}, float[" + std::to_string(c.m) + "] sb = {" + list(sb) + "}, float sy = {" + num(c.sy) + "}, " + yt +
                     " zy = {" + std::to_string(c.zp_y) + "}>\n{\n";
  const std::string p = std::to_string(c.pad), s = std::to_string(c.stride);
  text += " xf = DequantizeLinear (xq, sx, zx)\n";
  text += std::string(" wf = DequantizeLinear <axis = 0> (wq, sw)\n");
  text += c.bias ? " bf = DequantizeLinear <axis = 0> (bq, sb)\n" : "";
  text += " cv = Conv <group = " + std::to_string(c.group) + ", pads = [" + p + "," + p + "," + p +
          "," + p + "], strides = [" + s + "," + s + "]> (xf, wf" + (c.bias ? ", bf" : "") + ")\n";
  text += " y = QuantizeLinear (cv, sy, zy)\n}";
  Built b;
  b.model = parse_onnx_text(text);
  b.x = Tensor(c.x_signed ? DType::kInt8 : DType::kUInt8, {c.n, c.c, c.h, c.w});
  for (size_t i = 0; i < xq.size(); ++i) {
    if (c.x_signed) b.x.mutable_data<int8_t>()[i] = static_cast<int8_t>(xq[i]);
    else b.x.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(xq[i]);
  }
  // The reference: naive loops in int64.
  const int64_t oh = (c.h + 2 * c.pad - c.k) / c.stride + 1, ow = (c.w + 2 * c.pad - c.k) / c.stride + 1;
  const int ylo = c.y_signed ? -128 : 0, yhi = ylo + 255;
  for (int64_t n = 0; n < c.n; ++n)
    for (int64_t o = 0; o < c.m; ++o) {
      const int64_t gi = o / (c.m / c.group);
      const float mult = c.sx * sw[c.per_channel ? o : 0] / c.sy;
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t x = 0; x < ow; ++x) {
          int64_t acc = c.bias ? bq[o] : 0;
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t ky = 0; ky < c.k; ++ky)
              for (int64_t kx = 0; kx < c.k; ++kx) {
                const int64_t iy = y * c.stride - c.pad + ky, ix = x * c.stride - c.pad + kx;
                if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
                const int64_t ch = gi * cg + ci;
                acc += (xq[((n * c.c + ch) * c.h + iy) * c.w + ix] - c.zp_x) *
                       int64_t{wq[((o * cg + ci) * c.k + ky) * c.k + kx]};
              }
          const double r = std::nearbyint(static_cast<float>(acc) * mult) + c.zp_y;
          b.expected.push_back(static_cast<int64_t>(std::clamp<double>(r, ylo, yhi)));
        }
    }
  return b;
}

// Runs the model with the exact kernel (and, for comparison, the float path); returns the
// number of values where the float path differs from the exact one.
int64_t check(const Case& c) {
  const Built b = build(c);
  Executor ex(b.model, {2});
  const Tensor y = ex.run({{"xq", b.x}}).at("y");
  EXPECT_EQ(y.dtype(), c.y_signed ? DType::kInt8 : DType::kUInt8);
  EXPECT_EQ(y.to_int64s(), b.expected);
  Executor plain(b.model, {2, false});
  const auto fl = plain.run({{"xq", b.x}}).at("y").to_int64s();
  int64_t differ = 0;
  for (size_t i = 0; i < fl.size(); ++i) {
    EXPECT_LE(std::abs(fl[i] - b.expected[i]), 1) << i;
    differ += fl[i] != b.expected[i];
  }
  std::printf("float path differs from the exact kernel in %lld of %zu values\n",
              static_cast<long long>(differ), fl.size());
  return differ;
}

TEST(RuntimeQdqExact, PerChannelPaddedUint8WithInputZeroPoint) {
  Case c;
  c.zp_x = 117, c.zp_y = 100;
  check(c);
}

TEST(RuntimeQdqExact, Int8ActivationsPerTensorWeightsNoBias) {
  Case c;
  c.x_signed = c.y_signed = true, c.zp_x = -7, c.zp_y = 3, c.per_channel = false, c.bias = false;
  check(c);
}

TEST(RuntimeQdqExact, Depthwise) {
  Case c;
  c.c = c.m = c.group = 8, c.zp_x = 30, c.zp_y = 128, c.seed = 3;
  check(c);
}

TEST(RuntimeQdqExact, GroupedAndStrided) {
  Case c;
  c.c = 8, c.m = 4, c.group = 2, c.stride = 2, c.h = 9, c.w = 8, c.n = 2, c.zp_x = 200, c.seed = 4;
  check(c);
}

TEST(RuntimeQdqExact, PointwiseUnpaddedUint8ToInt8) {
  Case c;
  c.k = 1, c.pad = 0, c.y_signed = true, c.zp_x = 5, c.zp_y = -20, c.seed = 5;
  check(c);
}

TEST(RuntimeQdqExact, LargeSumsUseIntegerAccumulation) {
  // 128 channels x 3x3 of |w| ~ 127 with |x - zp| up to 255: partial sums exceed 2^24, where
  // a float accumulation would no longer be exact.
  Case c;
  c.c = 128, c.m = 4, c.h = c.w = 5, c.zp_x = 0, c.zp_y = 128, c.sx = 1.0f, c.sy = 40.0f;
  c.seed = 6;
  check(c);
}

TEST(RuntimeQdqExact, SixteenChannelsMidZeroPoints) {
  // 16 -> 16 channels, zero points mid-range: the exact kernel matches the reference everywhere;
  // the float path (DQ -> float Conv -> Q) is within one step.
  Case c;
  c.c = 16, c.m = 16, c.h = c.w = 12, c.zp_x = 128, c.zp_y = 128, c.seed = 7;
  check(c);
}

TEST(RuntimeQdqExact, BiasIsTheIntegerAddedToTheAccumulator) {
  // QLinearConv adds the int32 bias as is (its DQ scale is not read): with a bias DQ scale of
  // 3 * s_x * s_w, the exact kernel still matches the reference, the float path does not.
  Case c;
  c.bias_scale_factor = 3.0f, c.zp_x = 60, c.zp_y = 128, c.seed = 9;
  const Built b = build(c);
  Executor ex(b.model, {2});
  EXPECT_EQ(ex.run({{"xq", b.x}}).at("y").to_int64s(), b.expected);
  Executor plain(b.model, {1, false});
  EXPECT_NE(plain.run({{"xq", b.x}}).at("y").to_int64s(), b.expected);
}

TEST(RuntimeQdqExact, ObserverStillSeesTheGroupsValues) {
  Case c;
  c.zp_x = 10, c.zp_y = 50, c.seed = 8;
  const Built b = build(c);
  Executor ex(b.model, {2});
  std::map<std::string, Shape> seen;
  const auto out = ex.run({{"xq", b.x}}, [&](const std::string& n, const Tensor& v) {
    seen[n] = v.shape();
  });
  for (const char* n : {"xq", "xf", "wf", "bf", "cv", "y"}) EXPECT_TRUE(seen.count(n)) << n;
  EXPECT_EQ(seen.at("cv"), (Shape{1, 6, 7, 7}));
  EXPECT_EQ(out.at("y").to_int64s(), b.expected);
  // Asking for the Conv's float output keeps it too, and y stays exact.
  const auto with_cv = ex.run({{"xq", b.x}}, nullptr, {"cv"});
  EXPECT_EQ(with_cv.at("cv").shape(), (Shape{1, 6, 7, 7}));
  EXPECT_EQ(with_cv.at("y").to_int64s(), b.expected);
}

TEST(RuntimeQdqExact, FloatConvIsNotTouched) {
  // A float Conv followed by QuantizeLinear (no DQ input) keeps the float path.
  const Model m = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[1,1,2,2] x) => (uint8 y) <float[1,1,1,1] w = {1.0}, float s = {1.0}, uint8 z = {0}>
{ c = Conv (x, w)  y = QuantizeLinear (c, s, z) })");
  Executor ex(m, {1});
  const Tensor x = Tensor::from_vector<float>({1, 1, 2, 2}, {0.5f, 1.5f, 2.5f, 3.49f});
  EXPECT_EQ(ex.run({{"x", x}}).at("y").to_int64s(), (std::vector<int64_t>{0, 2, 2, 3}));
}

}  // namespace
}  // namespace repq::test
