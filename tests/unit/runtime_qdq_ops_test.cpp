// The executor's exact kernels for DQ -> Add -> Q (QLinearAdd), DQ -> GlobalAveragePool -> Q
// (QLinearGlobalAveragePool) and Gemm(DQ, DQ, DQ) (QGemm, float output), against answers
// computed by hand or by an independent reference written here (tests/unit/ort_qdq_ops_test.cpp
// checks the same kernels against ONNX Runtime itself).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "repq/runtime/executor.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

Tensor u8(Shape s, const std::vector<int>& v) {
  Tensor t(DType::kUInt8, std::move(s));
  for (size_t i = 0; i < v.size(); ++i) t.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(v[i]);
  return t;
}

// fmaf(x, y, z) computed independently: x * y is exact in double and so is the sum here (all
// magnitudes lie within 2^-30 .. 2^12), so one rounding to float gives the fused result.
float fused(float x, float y, float z) {
  return static_cast<float>(static_cast<double>(x) * y + static_cast<double>(z));
}

// Every pair (a, b) of uint8 values, with the scales of MobileOne-S0's stage2.4 CFWS Add, where
// ORT's fused arithmetic and the unfused formula give different results.
TEST(RuntimeQdqOps, AddFollowsOrtsFusedArithmetic) {
  const float sa = 0.13160858f, sb = 0.072724506f, sc = 0.0321177f;
  const int za = 149, zb = 120, zc = 0;
  std::vector<int> a(65536), b(65536);
  for (int i = 0; i < 65536; ++i) a[i] = i / 256, b[i] = i % 256;
  const std::string text =
      "<ir_version: 8, opset_import: [\"\" : 13]>\ng (uint8[256,256] aq, uint8[256,256] bq) => (uint8 y)"
      " <float sa = {" + num(sa) + "}, uint8 za = {149}, float sb = {" + num(sb) +
      "}, uint8 zb = {120}, float sc = {" + num(sc) + "}, uint8 zc = {0}>\n{\n"
      " af = DequantizeLinear (aq, sa, za)\n bf = DequantizeLinear (bq, sb, zb)\n"
      " s = Add (af, bf)\n y = QuantizeLinear (s, sc, zc)\n}";
  const Model m = parse_onnx_text(text);
  const std::map<std::string, Tensor> in = {{"aq", u8({256, 256}, a)}, {"bq", u8({256, 256}, b)}};
  const auto got = Executor(m, {2}).run(in).at("y").to_int64s();
  const auto plain = Executor(m, {1, false}).run(in).at("y").to_int64s();
  const float ra = sa / sc, rb = sb / sc;
  const float fixed = static_cast<float>(zc) - fused(ra, static_cast<float>(za), rb * zb);
  int64_t differ = 0, unfused_differ = 0;
  volatile float pa = ra * static_cast<float>(za), pb = rb * static_cast<float>(zb);  // unfused
  const float fixed_unfused = static_cast<float>(zc) - (pa + pb);
  for (size_t i = 0; i < a.size(); ++i) {
    const float v = fused(static_cast<float>(a[i]), ra, fused(static_cast<float>(b[i]), rb, fixed));
    const int64_t want = std::clamp<int64_t>(static_cast<int64_t>(std::nearbyint(v)), 0, 255);
    EXPECT_EQ(got[i], want) << i;
    EXPECT_LE(std::abs(plain[i] - want), 1) << i;
    differ += plain[i] != want;
    const float u =
        fused(static_cast<float>(a[i]), ra, fused(static_cast<float>(b[i]), rb, fixed_unfused));
    unfused_differ += std::clamp<int64_t>(static_cast<int64_t>(std::nearbyint(u)), 0, 255) != want;
  }
  std::printf("float path differs in %lld of %zu values, an unfused fixed part in %lld\n",
              static_cast<long long>(differ), a.size(), static_cast<long long>(unfused_differ));
  EXPECT_GT(unfused_differ, 0) << "these scales should tell the fused fixed part apart";
}

TEST(RuntimeQdqOps, GlobalAveragePoolRoundsTheIntegerSumOnce) {
  // x = [10, 20, 30, 41] (zp 5, scale 0.5), y scale 0.25 zp 3: scale 0.5 / (0.25 * 4) = 0.5,
  // acc = 101 - 4 * 5 = 81, 81 * 0.5 = 40.5 -> 40 (half to even) + 3 = 43. The second channel
  // [255, 255, 255, 255]: acc = 1000, 500 is clamped to 255 - 3, + 3 = 255.
  const std::string text =
      "<ir_version: 8, opset_import: [\"\" : 13]>\ng (uint8[1,2,2,2] xq) => (uint8 y)"
      " <float sx = {0.5}, uint8 zx = {5}, float sy = {0.25}, uint8 zy = {3}>\n{\n"
      " xf = DequantizeLinear (xq, sx, zx)\n p = GlobalAveragePool (xf)\n"
      " y = QuantizeLinear (p, sy, zy)\n}";
  const Model m = parse_onnx_text(text);
  const Tensor y = Executor(m, {1}).run({{"xq", u8({1, 2, 2, 2}, {10, 20, 30, 41, 255, 255, 255, 255})}})
                       .at("y");
  EXPECT_EQ(y.shape(), (Shape{1, 2, 1, 1}));
  EXPECT_EQ(y.to_int64s(), (std::vector<int64_t>{43, 255}));
}

TEST(RuntimeQdqOps, GemmAddsTheBiasIntegersAndScalesPerColumn) {
  // a = [3, 5] - 1 = [2, 4]; w rows [1, -2], [3, 0]; bias [10, -4]:
  // acc = [10 + 2 - 8, -4 + 6] = [4, 2]; scales (1 * 0.5) * [0.25, 0.5] = [0.125, 0.25] -> [0.5, 0.5].
  // The bias DQ's scale (1.0 here, not s_a * s_w) is not read, as in ORT's QGemm.
  const std::string text =
      "<ir_version: 8, opset_import: [\"\" : 13]>\ng (uint8[1,2] aq) => (float y)"
      " <float sa = {0.5}, uint8 za = {1}, int8[2,2] wq = {1, -2, 3, 0}, float[2] sw = {0.25, 0.5},"
      " int8[2] zw = {0, 0}, int32[2] bq = {10, -4}, float[2] sb = {1.0, 1.0}>\n{\n"
      " af = DequantizeLinear (aq, sa, za)\n wf = DequantizeLinear <axis = 0> (wq, sw, zw)\n"
      " bf = DequantizeLinear <axis = 0> (bq, sb)\n y = Gemm <transB = 1> (af, wf, bf)\n}";
  const Model m = parse_onnx_text(text);
  const std::map<std::string, Tensor> in = {{"aq", u8({1, 2}, {3, 5})}};
  const Tensor y = Executor(m, {1}).run(in).at("y");
  EXPECT_EQ(y.shape(), (Shape{1, 2}));
  EXPECT_EQ(y.data<float>()[0], 0.5f);
  EXPECT_EQ(y.data<float>()[1], 0.5f);
  // The float path reads the bias scale: 0.5 * 0.25 * (2 - 8) + 10 = 9.25, 0.5 * 0.5 * 6 - 4 = -2.5.
  const Tensor f = Executor(m, {1, false}).run(in).at("y");
  EXPECT_FLOAT_EQ(f.data<float>()[0], 9.25f);
  EXPECT_FLOAT_EQ(f.data<float>()[1], -2.5f);
  // Without the weights' zero point ORT 1.30 does not form QGemm: the nodes run in float.
  std::string no_zp = text;
  no_zp.replace(no_zp.find("(wq, sw, zw)"), 12, "(wq, sw)");
  const Tensor g = Executor(parse_onnx_text(no_zp), {1}).run(in).at("y");
  EXPECT_FLOAT_EQ(g.data<float>()[0], 9.25f);
  EXPECT_FLOAT_EQ(g.data<float>()[1], -2.5f);
}

TEST(RuntimeQdqOps, ObserversStillSeeTheFloatValuesOfTheGroup) {
  const std::string text =
      "<ir_version: 8, opset_import: [\"\" : 13]>\ng (uint8[1,2,1,2] xq) => (uint8 y)"
      " <float sx = {0.5}, uint8 zx = {0}, float sy = {0.25}, uint8 zy = {0}>\n{\n"
      " xf = DequantizeLinear (xq, sx, zx)\n p = GlobalAveragePool (xf)\n"
      " y = QuantizeLinear (p, sy, zy)\n}";
  const Model m = parse_onnx_text(text);
  std::map<std::string, std::vector<float>> seen;
  const Tensor y = Executor(m, {1}).run({{"xq", u8({1, 2, 1, 2}, {1, 4, 6, 7})}},
                                        [&](const std::string& n, const Tensor& v) {
                                          if (v.dtype() == DType::kFloat32)
                                            seen[n].assign(v.span<float>().begin(), v.span<float>().end());
                                        })
                       .at("y");
  EXPECT_EQ(seen["xf"], (std::vector<float>{0.5f, 2.0f, 3.0f, 3.5f}));
  EXPECT_EQ(seen["p"], (std::vector<float>{1.25f, 3.25f}));
  EXPECT_EQ(y.to_int64s(), (std::vector<int64_t>{5, 13}));  // 2.5 * 2 = 5, 6.5 * 2 = 13
}

}  // namespace
}  // namespace repq::test
