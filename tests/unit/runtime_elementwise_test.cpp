// Element-wise ops: broadcasting arithmetic (float and int64), activations, Clip across the
// opset-11 change, BatchNormalization, Softmax across the opset-13 change, ReduceMean.
#include <gtest/gtest.h>

#include <cmath>

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

Tensor rnd(const Shape& s, uint32_t seed) {
  return Tensor::from_vector<float>(s, random_floats(static_cast<size_t>(shape_numel(s)), seed));
}

TEST(RuntimeBinary, BroadcastsLikeNumpy) {
  const Tensor a = rnd({2, 3, 4, 5}, 1);
  const Tensor b = rnd({3, 1, 5}, 2);
  const auto out = run_model(R"(g (float[2,3,4,5] a, float[3,1,5] b) => (float s, float d, float p, float q)
{ s = Add (a, b)  d = Sub (b, a)  p = Mul (a, b)  q = Div (a, b) })", {{"a", a}, {"b", b}});
  const float* ad = a.data<float>();
  const float* bd = b.data<float>();
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int h = 0; h < 4; ++h)
        for (int w = 0; w < 5; ++w) {
          const int i = ((n * 3 + c) * 4 + h) * 5 + w;
          const float av = ad[i], bv = bd[c * 5 + w];
          ASSERT_EQ(out.at("s").data<float>()[i], av + bv);
          ASSERT_EQ(out.at("d").data<float>()[i], bv - av);
          ASSERT_EQ(out.at("p").data<float>()[i], av * bv);
          ASSERT_EQ(out.at("q").data<float>()[i], av / bv);
        }
  EXPECT_EQ(out.at("s").shape(), (Shape{2, 3, 4, 5}));
}

TEST(RuntimeBinary, BothSidesBroadcastAndScalars) {
  const Tensor a = Tensor::from_vector<float>({3, 1}, {1, 2, 3});
  const Tensor b = Tensor::from_vector<float>({1, 4}, {10, 20, 30, 40});
  const auto out = run_model(R"(g (float[3,1] a, float[1,4] b) => (float y, float z) <float k = {0.5}>
{ y = Add (a, b)  z = Mul (k, a) })", {{"a", a}, {"b", b}});
  EXPECT_EQ(out.at("y").shape(), (Shape{3, 4}));
  EXPECT_EQ(out.at("y").to_doubles(),
            (std::vector<double>{11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43}));
  EXPECT_EQ(out.at("z").to_doubles(), (std::vector<double>{0.5, 1, 1.5}));
}

TEST(RuntimeBinary, Int64ShapeArithmetic) {
  const auto out = run_model(R"(g (int64[3] a) => (int64 y, int64 q) <int64[1] two = {2}, int64[1] one = {1}>
{ m = Mul (a, two)  y = Sub (m, one)  q = Div (a, two) })",
                             {{"a", Tensor::from_vector<int64_t>({3}, {3, 7, -5})}});
  EXPECT_EQ(out.at("y").dtype(), DType::kInt64);
  EXPECT_EQ(out.at("y").to_int64s(), (std::vector<int64_t>{5, 13, -11}));
  EXPECT_EQ(out.at("q").to_int64s(), (std::vector<int64_t>{1, 3, -2}));
}

TEST(RuntimeBinary, RejectsIncompatibleShapesAndIntDivisionByZero) {
  EXPECT_THROW(run_model("g (float[2,3] a, float[4] b) => (float y) { y = Add (a, b) }",
                         {{"a", rnd({2, 3}, 1)}, {"b", rnd({4}, 2)}}),
               InputError);
  EXPECT_THROW(run_model("g (int64[2] a, int64[2] b) => (int64 y) { y = Div (a, b) }",
                         {{"a", Tensor::from_vector<int64_t>({2}, {1, 2})},
                          {"b", Tensor::from_vector<int64_t>({2}, {1, 0})}}),
               InputError);
}

TEST(RuntimeBinary, InPlaceDoesNotTouchTheCallersInput) {
  // x's last use is the Add: the executor may hand it over, but the caller's tensor shares the
  // buffer, so copy-on-write must keep the caller's values.
  const Tensor x = Tensor::from_vector<float>({4}, {1, 2, 3, 4});
  const auto out = run_model(R"(g (float[4] x) => (float y) <float[4] k = {1, 1, 1, 1}>
{ r = Relu (x)  y = Add (r, k) })", {{"x", x}});
  EXPECT_EQ(out.at("y").to_doubles(), (std::vector<double>{2, 3, 4, 5}));
  EXPECT_EQ(x.to_doubles(), (std::vector<double>{1, 2, 3, 4}));
}

TEST(RuntimeActivation, HandValues) {
  const Tensor x = Tensor::from_vector<float>({6}, {-4, -1, -0.25f, 0, 0.5f, 5});
  const auto out = run_model(R"(g (float[6] x) => (float r, float l, float s, float h, float w)
{ r = Relu (x)  l = LeakyRelu <alpha = 0.1> (x)  s = Sigmoid (x)
  h = HardSigmoid <alpha = 0.25, beta = 0.5> (x)  w = HardSwish (x) })", {{"x", x}});
  const std::vector<float> xv = {-4, -1, -0.25f, 0, 0.5f, 5};
  for (size_t i = 0; i < xv.size(); ++i) {
    const float v = xv[i];
    EXPECT_EQ(out.at("r").data<float>()[i], v > 0 ? v : 0.0f);
    EXPECT_FLOAT_EQ(out.at("l").data<float>()[i], v > 0 ? v : 0.1f * v);
    EXPECT_NEAR(out.at("s").data<float>()[i], 1.0 / (1.0 + std::exp(-v)), 1e-7);
    EXPECT_FLOAT_EQ(out.at("h").data<float>()[i], std::max(0.0f, std::min(1.0f, 0.25f * v + 0.5f)));
    EXPECT_NEAR(out.at("w").data<float>()[i], v * std::max(0.0, std::min(1.0, v / 6.0 + 0.5)), 1e-6);
  }
}

TEST(RuntimeActivation, ClipAttributesBeforeOpset11InputsAfter) {
  const Tensor x = Tensor::from_vector<float>({5}, {-3, -1, 0, 2, 9});
  const auto old = run_model("g (float[5] x) => (float y) { y = Clip <min = -1.5, max = 6.0> (x) }",
                             {{"x", x}}, 6);
  EXPECT_EQ(old.at("y").to_doubles(), (std::vector<double>{-1.5, -1, 0, 2, 6}));
  const auto now = run_model(R"(g (float[5] x) => (float y, float z) <float lo = {0}, float hi = {6}>
{ y = Clip (x, lo, hi)  z = Clip (x, , hi) })", {{"x", x}}, 13);
  EXPECT_EQ(now.at("y").to_doubles(), (std::vector<double>{0, 0, 0, 2, 6}));
  EXPECT_EQ(now.at("z").to_doubles(), (std::vector<double>{-3, -1, 0, 2, 6}));
}

TEST(RuntimeNormalization, BatchNormInferenceForm) {
  const Tensor x = rnd({2, 3, 2, 2}, 3);
  const auto out = run_model(R"(g (float[2,3,2,2] x) => (float y)
<float[3] s = {1, 2, -1}, float[3] b = {0, 0.5, 1}, float[3] mu = {0.1, -0.2, 0.3}, float[3] var = {0.5, 1.5, 0.25}>
{ y = BatchNormalization <epsilon = 0.001> (x, s, b, mu, var) })", {{"x", x}});
  const float s[3] = {1, 2, -1}, b[3] = {0, 0.5f, 1}, mu[3] = {0.1f, -0.2f, 0.3f},
              var[3] = {0.5f, 1.5f, 0.25f};
  for (int i = 0; i < 24; ++i) {
    const int c = (i / 4) % 3;
    const double want = (x.data<float>()[i] - mu[c]) / std::sqrt(var[c] + 0.001) * s[c] + b[c];
    EXPECT_NEAR(out.at("y").data<float>()[i], want, 1e-5) << i;
  }
}

TEST(RuntimeSoftmax, Opset13NormalizesOneAxis) {
  const Tensor x = rnd({2, 3, 4}, 5);
  const auto out = run_model("g (float[2,3,4] x) => (float y) { y = Softmax <axis = 1> (x) }",
                             {{"x", x}});
  const float* xd = x.data<float>();
  for (int n = 0; n < 2; ++n)
    for (int k = 0; k < 4; ++k) {
      double sum = 0;
      for (int c = 0; c < 3; ++c) sum += std::exp(xd[(n * 3 + c) * 4 + k]);
      for (int c = 0; c < 3; ++c) {
        const int i = (n * 3 + c) * 4 + k;
        EXPECT_NEAR(out.at("y").data<float>()[i], std::exp(xd[i]) / sum, 1e-6);
      }
    }
}

TEST(RuntimeSoftmax, BeforeOpset13CoercesTo2D) {
  const Tensor x = rnd({2, 3, 4}, 6);
  const auto out = run_model("g (float[2,3,4] x) => (float y) { y = Softmax <axis = 1> (x) }",
                             {{"x", x}}, 11);
  const float* xd = x.data<float>();
  for (int n = 0; n < 2; ++n) {
    double sum = 0;
    for (int j = 0; j < 12; ++j) sum += std::exp(xd[n * 12 + j]);
    for (int j = 0; j < 12; ++j)
      EXPECT_NEAR(out.at("y").data<float>()[n * 12 + j], std::exp(xd[n * 12 + j]) / sum, 1e-6);
  }
  // Default axis: 1 before 13, -1 from 13.
  const auto d13 = run_model("g (float[2,3,4] x) => (float y) { y = Softmax (x) }", {{"x", x}});
  double row = 0;
  for (int j = 0; j < 4; ++j) row += d13.at("y").data<float>()[j];
  EXPECT_NEAR(row, 1.0, 1e-6);
}

TEST(RuntimeReduce, ReduceMeanAxesAttributeAndInput) {
  const Tensor x = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  const auto a = run_model("g (float[2,3] x) => (float y) { y = ReduceMean <axes = [1]> (x) }",
                           {{"x", x}});
  EXPECT_EQ(a.at("y").shape(), (Shape{2, 1}));
  EXPECT_EQ(a.at("y").to_doubles(), (std::vector<double>{2, 5}));
  const auto b = run_model(R"(g (float[2,3] x) => (float y, float z) <int64[1] ax = {0}>
{ y = ReduceMean <keepdims = 0> (x, ax)  z = ReduceMean <keepdims = 0> (x) })", {{"x", x}}, 18);
  EXPECT_EQ(b.at("y").shape(), (Shape{3}));
  EXPECT_EQ(b.at("y").to_doubles(), (std::vector<double>{2.5, 3.5, 4.5}));
  EXPECT_EQ(b.at("z").to_doubles(), (std::vector<double>{3.5}));
}

}  // namespace
}  // namespace repq::test
