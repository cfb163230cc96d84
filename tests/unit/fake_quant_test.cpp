// FakeQuantizeLinear (src/runtime/fake_quant.cpp, repq-internal): bit for bit the value of
// QuantizeLinear followed by DequantizeLinear, checked by hand on ties, saturation, zero
// points and infinities, and against the executor's own QuantizeLinear -> DequantizeLinear
// pair (per tensor and per axis, uint8 and int8) on edge and random values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "repq/error.h"
#include "repq/runtime/executor.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

std::map<std::string, Tensor> run_model(const std::string& graph, const std::map<std::string, Tensor>& in) {
  Executor ex(parse_onnx_text("<ir_version: 8, opset_import: [\"\" : 13]>\n" + graph), {2});
  return ex.run(in);
}

// Bits of y equal bits of want (so -0.0 != +0.0 and NaN == NaN).
void expect_same_bits(const Tensor& y, const Tensor& want) {
  ASSERT_EQ(y.dtype(), DType::kFloat32);
  ASSERT_EQ(y.shape(), want.shape());
  for (int64_t i = 0; i < y.numel(); ++i) {
    uint32_t a = 0, b = 0;
    std::memcpy(&a, y.data<float>() + i, 4);
    std::memcpy(&b, want.data<float>() + i, 4);
    EXPECT_EQ(a, b) << "element " << i << ": " << y.data<float>()[i] << " vs " << want.data<float>()[i];
  }
}

constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(FakeQuant, Int8TiesSaturationAndZeroPointByHand) {
  // s = 0.5, z = 3: x / s = 0.5 (tie -> 0), 1.5 (-> 2), 2.5 (-> 2), -0.5 (-> -0), -1.5 (-> -2),
  // 300 (124 + 3 = 127: saturates at 124), -300 (-131: saturates at -128 - 3), +inf, -inf,
  // 249 (124.5 -> tie to 124, just inside), -262 (-131 exactly).
  const Tensor x = Tensor::from_vector<float>(
      {11}, {0.25f, 0.75f, 1.25f, -0.25f, -0.75f, 150.0f, -150.0f, kInf, -kInf, 62.25f, -65.5f});
  const auto out = run_model(R"(g (float[11] x) => (float y, float ref) <float s = {0.5}, int8 z = {3}>
{ y = FakeQuantizeLinear (x, s, z)  q = QuantizeLinear (x, s, z)  ref = DequantizeLinear (q, s, z) })",
                             {{"x", x}});
  const std::vector<float> want = {0.0f, 1.0f, 1.0f, 0.0f, -1.0f, 62.0f, -65.5f, 62.0f, -65.5f, 62.0f, -65.5f};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(out.at("y").data<float>()[i], want[i]) << i;
  expect_same_bits(out.at("y"), out.at("ref"));
}

TEST(FakeQuant, Uint8WithoutZeroPointClampsAtZero) {
  // uint8, zero point 0: negatives go to +0 (not -0), 255 * s is the top level.
  const Tensor x = Tensor::from_vector<float>({6}, {-1.0f, -0.0f, 0.1f, 0.15f, 25.5f, 1000.0f});
  const auto out = run_model(R"(g (float[6] x) => (float y, float ref) <float s = {0.1}>
{ y = FakeQuantizeLinear (x, s)  q = QuantizeLinear (x, s)  ref = DequantizeLinear (q, s) })", {{"x", x}});
  const float* y = out.at("y").data<float>();
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_FALSE(std::signbit(y[0]));
  EXPECT_FALSE(std::signbit(y[1]));
  EXPECT_EQ(y[2], 1 * 0.1f);
  EXPECT_EQ(y[3], 2 * 0.1f);  // 0.15f / 0.1f = 1.5 (in float) -> tie to 2
  EXPECT_EQ(y[5], 255 * 0.1f);
  expect_same_bits(out.at("y"), out.at("ref"));
}

TEST(FakeQuant, PerAxisMatchesTheQuantizeDequantizePair) {
  // [2, 3, 2]: one scale / zero point per index of axis 1 (uint8) and of axis 0 (int8, axis -3).
  const Tensor x = Tensor::from_vector<float>(
      {2, 3, 2}, {0.5f, -0.5f, 7.5f, 300.0f, -3.0f, 1.25f, 2.5f, -2.5f, 0.05f, -1e9f, 1e9f, 0.0f});
  const auto out = run_model(R"(g (float[2,3,2] x) => (float y, float ref, float y0, float ref0)
<float[3] s = {1, 0.05, 0.25}, uint8[3] z = {128, 0, 255}, float[2] s0 = {0.5, 2}, int8[2] z0 = {-128, 5}>
{
  y = FakeQuantizeLinear (x, s, z)
  q = QuantizeLinear (x, s, z)
  ref = DequantizeLinear (q, s, z)
  y0 = FakeQuantizeLinear <axis = -3> (x, s0, z0)
  q0 = QuantizeLinear <axis = 0> (x, s0, z0)
  ref0 = DequantizeLinear <axis = 0> (q0, s0, z0)
})",
                             {{"x", x}});
  // axis 1, channel 0 (s 1, z 128): 0.5 -> 0, -0.5 -> -0 -> 0; channel 1 (s 0.05, z 0):
  // 7.5 -> 150, 300 -> 255 levels; channel 2 (s 0.25, z 255): -3 -> -12, 1.25 -> 0 (clamped).
  const float* y = out.at("y").data<float>();
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[2], 150 * 0.05f);
  EXPECT_EQ(y[3], 255 * 0.05f);
  EXPECT_EQ(y[4], -3.0f);
  EXPECT_EQ(y[5], 0.0f);
  expect_same_bits(out.at("y"), out.at("ref"));
  // axis 0, row 1 (s 2, z 5): 2.5 / 2 = 1.25 -> 1; -1e9 -> -128 - 5 = -133 levels; 1e9 -> 122.
  const float* y0 = out.at("y0").data<float>();
  EXPECT_EQ(y0[6], 2.0f);
  EXPECT_EQ(y0[9], -133 * 2.0f);
  EXPECT_EQ(y0[10], 122 * 2.0f);
  expect_same_bits(out.at("y0"), out.at("ref0"));
}

TEST(FakeQuant, RandomValuesMatchThePairBitForBit) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  const int64_t n = 3 * 5000;
  Tensor x(DType::kFloat32, {3, 5000});
  float* p = x.mutable_data<float>();
  // Random values, exact ties (k + 0.5 levels) and level boundaries.
  for (int64_t i = 0; i < n; ++i) {
    if (i % 3 == 0) p[i] = u(rng);
    else if (i % 3 == 1) p[i] = (static_cast<float>(i % 301) - 150.0f + 0.5f) * 0.0234375f;
    else p[i] = (static_cast<float>(i % 400) - 200.0f) * 0.0234375f;
  }
  const auto out = run_model(R"(g (float[3,5000] x) => (float y, float ref, float yc, float refc)
<float s = {0.0234375}, int8 z = {-7}, float[3] sc = {0.01, 0.0234375, 0.3}, uint8[3] zc = {0, 77, 200}>
{
  y = FakeQuantizeLinear (x, s, z)
  q = QuantizeLinear (x, s, z)
  ref = DequantizeLinear (q, s, z)
  yc = FakeQuantizeLinear <axis = 0> (x, sc, zc)
  qc = QuantizeLinear <axis = 0> (x, sc, zc)
  refc = DequantizeLinear <axis = 0> (qc, sc, zc)
})",
                             {{"x", x}});
  expect_same_bits(out.at("y"), out.at("ref"));
  expect_same_bits(out.at("yc"), out.at("refc"));
}

TEST(FakeQuant, InPlaceGivesTheSameValuesAndLeavesTheCallersInputAlone) {
  // in_place = 1 on an intermediate (written over) and on the graph input at its last use (the
  // caller's tensor must not change: writing to it copies it first).
  const Tensor x = Tensor::from_vector<float>({4}, {0.25f, -0.75f, 1.25f, 100.0f});
  const std::vector<float> before(x.data<float>(), x.data<float>() + 4);
  Executor ex(parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[4] x) => (float y, float yx, float ref) <float s = {0.5}, int8 z = {3}>
{
  r = Relu (x)
  y = FakeQuantizeLinear <in_place = 1> (r, s, z)
  q = QuantizeLinear (x, s, z)
  ref = DequantizeLinear (q, s, z)
  yx = FakeQuantizeLinear <in_place = 1> (x, s, z)
})"),
              {2});
  const auto out = ex.run({{"x", x}});
  // Relu first: 0.25 -> 0.5 tie -> 0; -0.75 -> 0; 1.25 -> 2.5 -> 2 levels; 100 -> 124 levels.
  const std::vector<float> want = {0.0f, 0.0f, 1.0f, 62.0f};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(out.at("y").data<float>()[i], want[i]) << i;
  expect_same_bits(out.at("yx"), out.at("ref"));
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(x.data<float>()[i], before[i]) << i;
}

TEST(FakeQuant, NanStaysNan) {
  const Tensor x = Tensor::from_vector<float>({2}, {std::nanf(""), 1.0f});
  const auto out = run_model(R"(g (float[2] x) => (float y) <float s = {0.5}, int8 z = {0}>
{ y = FakeQuantizeLinear (x, s, z) })", {{"x", x}});
  EXPECT_TRUE(std::isnan(out.at("y").data<float>()[0]));
  EXPECT_EQ(out.at("y").data<float>()[1], 1.0f);
}

TEST(FakeQuant, RejectsWhatItCannotComputeExactly) {
  const std::map<std::string, Tensor> in = {{"x", Tensor(DType::kFloat32, {2, 3})}};
  // A zero scale, an int32 zero point (its range is not exact in float), a scale count that
  // does not match the axis.
  EXPECT_THROW(run_model(R"(g (float[2,3] x) => (float y) <float s = {0}> { y = FakeQuantizeLinear (x, s) })", in),
               InputError);
  EXPECT_THROW(run_model(R"(g (float[2,3] x) => (float y) <float s = {1}, int32 z = {0}>
{ y = FakeQuantizeLinear (x, s, z) })", in),
               InputError);
  EXPECT_THROW(run_model(R"(g (float[2,3] x) => (float y) <float[2] s = {1, 1}>
{ y = FakeQuantizeLinear <axis = 1> (x, s) })", in),
               InputError);
}

// The zero point's shape follows QuantizeLinear's rule (src/runtime/quant_params.h; ONNX: the
// shape must match the scale's, ONNX Runtime accepts a scalar or [1] per tensor): FakeQuantizeLinear
// accepts and rejects the same zero points as the pair it stands for.
TEST(FakeQuant, ZeroPointShapesAreQuantizeLinears) {
  const std::map<std::string, Tensor> in = {
      {"x", Tensor::from_vector<float>({2, 3}, {-1.0f, 0.2f, 0.7f, 1.3f, -0.4f, 2.0f})}};
  const auto both = [&](const std::string& inits, const std::string& attrs) {
    const std::string head = "g (float[2,3] x) => (float y) <" + inits + ">\n";
    const auto fq = [=] { return run_model(head + "{ y = FakeQuantizeLinear " + attrs + " (x, s, z) }", in); };
    const auto pair = [=] {
      return run_model(head + "{ q = QuantizeLinear " + attrs + " (x, s, z)  y = DequantizeLinear " + attrs +
                           " (q, s, z) }", in);
    };
    return std::make_pair(fq, pair);
  };
  // Per axis, a [1, 3] zero point for a [3] scale: the same count, another shape.
  const auto [fq_bad, pair_bad] = both("float[3] s = {0.1, 0.2, 0.3}, uint8[1,3] z = {1, 2, 3}", "<axis = 1>");
  EXPECT_THROW(pair_bad(), InputError);
  EXPECT_THROW(fq_bad(), InputError);
  // Per axis with a [3] zero point, and per tensor with a scalar scale and a [1] zero point: both
  // accepted, the same values.
  const auto [fq_axis, pair_axis] = both("float[3] s = {0.1, 0.2, 0.3}, uint8[3] z = {1, 2, 3}", "<axis = 1>");
  expect_same_bits(fq_axis().at("y"), pair_axis().at("y"));
  const auto [fq_one, pair_one] = both("float s = {0.1}, int8[1] z = {-3}", "");
  expect_same_bits(fq_one().at("y"), pair_one().at("y"));
  EXPECT_EQ(fq_one().at("y").data<float>()[0], -1.0f);  // round(-10) - 3 + 3: -10 * 0.1
  // Per tensor, a [2] zero point for a scalar scale.
  const auto [fq_two, pair_two] = both("float s = {0.1}, int8[2] z = {0, 0}", "");
  EXPECT_THROW(pair_two(), InputError);
  EXPECT_THROW(fq_two(), InputError);
}

}  // namespace
}  // namespace repq::test
