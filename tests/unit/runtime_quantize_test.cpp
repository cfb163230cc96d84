// QuantizeLinear / DequantizeLinear: rounding half to even, saturation, per-axis parameters,
// uint8 / int8 / int32.
#include <gtest/gtest.h>

#include "repq/error.h"
#include "repq/runtime/executor.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

std::map<std::string, Tensor> run_model(const std::string& graph,
                                        const std::map<std::string, Tensor>& in, int opset = 13) {
  Model model = parse_onnx_text("<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) +
                                "]>\n" + graph);
  Executor ex(model, {2});
  return ex.run(in);
}

TEST(RuntimeQuantize, RoundsHalfToEvenAndSaturatesUint8) {
  const Tensor x = Tensor::from_vector<float>({8}, {0.5f, 1.5f, 2.5f, -0.5f, 5.0f, 300.0f, -40.0f, 3.49f});
  const auto out = run_model(R"(g (float[8] x) => (uint8 q, uint8 d) <float s = {1}, uint8 z = {10}>
{ q = QuantizeLinear (x, s, z)  d = QuantizeLinear (x, s) })", {{"x", x}});
  const Tensor& q = out.at("q");
  ASSERT_EQ(q.dtype(), DType::kUInt8);
  // round(x) + 10: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0; then clamp to [0, 255]
  EXPECT_EQ(q.to_int64s(), (std::vector<int64_t>{10, 12, 12, 10, 15, 255, 0, 13}));
  // no zero point: uint8 with zero point 0
  EXPECT_EQ(out.at("d").to_int64s(), (std::vector<int64_t>{0, 2, 2, 0, 5, 255, 0, 3}));
}

TEST(RuntimeQuantize, Int8PerAxisOnAxis0) {
  // Weights [3, 2]: one scale / zero point per output channel (axis 0).
  const Tensor w = Tensor::from_vector<float>({3, 2}, {0.25f, -0.75f, 10.0f, -10.0f, 1.0f, 3.0f});
  const auto out = run_model(R"(g (float[3,2] w) => (int8 q, float back)
<float[3] s = {0.5, 0.05, 2.0}, int8[3] z = {0, -3, 1}>
{ q = QuantizeLinear <axis = 0> (w, s, z)  back = DequantizeLinear <axis = 0> (q, s, z) })",
                             {{"w", w}});
  // row 0: 0.25/0.5 = 0.5 -> 0; -0.75/0.5 = -1.5 -> -2
  // row 1: 10/0.05 = 200 - 3 -> 127 (saturated); -200 - 3 -> -128
  // row 2: 1/2 = 0.5 -> 0 + 1 = 1; 3/2 = 1.5 -> 2 + 1 = 3
  EXPECT_EQ(out.at("q").to_int64s(), (std::vector<int64_t>{0, -2, 127, -128, 1, 3}));
  EXPECT_EQ(out.at("back").to_doubles(),
            (std::vector<double>{0.0, -1.0, 130 * 0.05f, -125 * 0.05f, 0.0, 4.0}));
}

TEST(RuntimeQuantize, PerChannelActivationsOnAxis1) {
  const Tensor x = Tensor::from_vector<float>({1, 2, 2}, {1, 2, 3, 4});
  const auto out = run_model(R"(g (float[1,2,2] x) => (uint8 q) <float[2] s = {1, 0.5}, uint8[2] z = {0, 100}>
{ q = QuantizeLinear (x, s, z) })", {{"x", x}});
  EXPECT_EQ(out.at("q").to_int64s(), (std::vector<int64_t>{1, 2, 106, 108}));
}

TEST(RuntimeQuantize, DequantizeInt32BiasAndNegativeAxis) {
  const Tensor b = Tensor::from_vector<int32_t>({3}, {-1000000, 0, 123456});
  const auto out = run_model(R"(g (int32[3] b) => (float y) <float[3] s = {0.001, 0.5, 0.25}>
{ y = DequantizeLinear <axis = -1> (b, s) })", {{"b", b}});
  EXPECT_EQ(out.at("y").to_doubles(),
            (std::vector<double>{static_cast<float>(-1000000) * 0.001f, 0.0, 123456 * 0.25}));
}

TEST(RuntimeQuantize, QuantizesToInt32) {
  const Tensor x = Tensor::from_vector<float>({3}, {2.5f, -7.5f, 3e10f});
  const auto out = run_model(R"(g (float[3] x) => (int32 q) <float s = {1}, int32 z = {0}>
{ q = QuantizeLinear (x, s, z) })", {{"x", x}});
  EXPECT_EQ(out.at("q").to_int64s(), (std::vector<int64_t>{2, -8, 2147483647}));
}

TEST(RuntimeQuantize, RejectsBadScales) {
  EXPECT_THROW(run_model(R"(g (float[2] x) => (uint8 q) <float s = {0}> { q = QuantizeLinear (x, s) })",
                         {{"x", Tensor(DType::kFloat32, {2})}}),
               InputError);
  EXPECT_THROW(run_model(R"(g (float[2,3] x) => (uint8 q) <float[2] s = {1, 1}>
{ q = QuantizeLinear <axis = 1> (x, s) })", {{"x", Tensor(DType::kFloat32, {2, 3})}}),
               InputError);
}

}  // namespace
}  // namespace repq::test
