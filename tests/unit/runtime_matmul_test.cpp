// Gemm and MatMul against naive loops.
#include <gtest/gtest.h>

#include "repq/error.h"
#include "repq/runtime/executor.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

Tensor rnd(const Shape& s, uint32_t seed) {
  return Tensor::from_vector<float>(s, random_floats(static_cast<size_t>(shape_numel(s)), seed));
}

Tensor run_model(const std::string& graph, const std::map<std::string, Tensor>& in) {
  Model model = parse_onnx_text("<ir_version: 8, opset_import: [\"\" : 13]>\n" + graph);
  Executor ex(model, {2});
  return ex.run(in).at("y");
}

TEST(RuntimeGemm, TransposesAlphaBetaAndBroadcastBias) {
  const Tensor a = rnd({5, 3}, 1);   // transA: A is [K=5, M=3]
  const Tensor b = rnd({40, 5}, 2);  // transB: B is [N=40, K=5]
  const Tensor c = rnd({40}, 3);     // broadcast over rows
  const Tensor y = run_model(R"(g (float[5,3] a, float[40,5] b, float[40] c) => (float y)
{ y = Gemm <transA = 1, transB = 1, alpha = 0.5, beta = 2.0> (a, b, c) })",
                             {{"a", a}, {"b", b}, {"c", c}});
  ASSERT_EQ(y.shape(), (Shape{3, 40}));
  for (int m = 0; m < 3; ++m)
    for (int n = 0; n < 40; ++n) {
      double acc = 0;
      for (int k = 0; k < 5; ++k) acc += a.data<float>()[k * 3 + m] * b.data<float>()[n * 5 + k];
      EXPECT_NEAR(y.data<float>()[m * 40 + n], 0.5 * acc + 2.0 * c.data<float>()[n], 1e-5);
    }
}

TEST(RuntimeGemm, LargeLinearLayerWithoutBias) {
  const Tensor a = rnd({2, 300}, 4);
  const Tensor b = rnd({300, 700}, 5);
  const Tensor y = run_model("g (float[2,300] a, float[300,700] b) => (float y) { y = Gemm (a, b) }",
                             {{"a", a}, {"b", b}});
  ASSERT_EQ(y.shape(), (Shape{2, 700}));
  for (int m = 0; m < 2; ++m)
    for (int n = 0; n < 700; n += 7) {
      double acc = 0;
      for (int k = 0; k < 300; ++k) acc += a.data<float>()[m * 300 + k] * b.data<float>()[k * 700 + n];
      EXPECT_NEAR(y.data<float>()[m * 700 + n], acc, 1e-4);
    }
}

TEST(RuntimeMatMul, BatchedWithBroadcast) {
  const Tensor a = rnd({2, 1, 3, 4}, 6);
  const Tensor b = rnd({3, 4, 5}, 7);
  const Tensor y = run_model("g (float[2,1,3,4] a, float[3,4,5] b) => (float y) { y = MatMul (a, b) }",
                             {{"a", a}, {"b", b}});
  ASSERT_EQ(y.shape(), (Shape{2, 3, 3, 5}));
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int m = 0; m < 3; ++m)
        for (int n = 0; n < 5; ++n) {
          double acc = 0;
          for (int k = 0; k < 4; ++k)
            acc += a.data<float>()[(i * 3 + m) * 4 + k] * b.data<float>()[(j * 4 + k) * 5 + n];
          EXPECT_NEAR(y.data<float>()[((i * 3 + j) * 3 + m) * 5 + n], acc, 1e-5);
        }
}

TEST(RuntimeMatMul, OneDimensionalOperands) {
  const Tensor v = Tensor::from_vector<float>({3}, {1, 2, 3});
  const Tensor m = Tensor::from_vector<float>({3, 2}, {1, 0, 0, 1, 1, 1});
  const Tensor y = run_model("g (float[3] v, float[3,2] m) => (float y) { y = MatMul (v, m) }",
                             {{"v", v}, {"m", m}});
  EXPECT_EQ(y.shape(), (Shape{2}));
  EXPECT_EQ(y.to_doubles(), (std::vector<double>{4, 5}));
  const Tensor z = run_model("g (float[3,2] m, float[2] v) => (float y) { y = MatMul (m, v) }",
                             {{"m", m}, {"v", Tensor::from_vector<float>({2}, {2, 3})}});
  EXPECT_EQ(z.shape(), (Shape{3}));
  EXPECT_EQ(z.to_doubles(), (std::vector<double>{2, 3, 5}));
}

TEST(RuntimeMatMul, RejectsInnerDimensionMismatch) {
  EXPECT_THROW(run_model("g (float[2,3] a, float[4,2] b) => (float y) { y = MatMul (a, b) }",
                         {{"a", rnd({2, 3}, 1)}, {"b", rnd({4, 2}, 2)}}),
               InputError);
}

}  // namespace
}  // namespace repq::test
