// MaxPool, AveragePool and the global pools against naive loops and hand values.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "repq/error.h"
#include "repq/runtime/executor.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

Tensor run_model(const std::string& graph, const Tensor& x, int opset = 19) {
  Model model = parse_onnx_text("<ir_version: 9, opset_import: [\"\" : " + std::to_string(opset) +
                                "]>\n" + graph);
  Executor ex(model, {2});
  return ex.run({{"x", x}}).at("y");
}

void expect_values(const Tensor& got, const Shape& shape, const std::vector<float>& want,
                   float tol = 1e-6f) {
  ASSERT_EQ(got.shape(), shape);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got.data<float>()[i], want[i], tol) << i;
}

Tensor iota(const Shape& s) {
  std::vector<float> v(static_cast<size_t>(shape_numel(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i + 1);
  return Tensor::from_vector<float>(s, v);
}

// 1x1x4x4 input 1..16, kernel 3, stride 2, pads 1 on every side.
//  1  2  3  4
//  5  6  7  8
//  9 10 11 12
// 13 14 15 16
TEST(RuntimePool, AverageExcludingPad) {
  const Tensor y = run_model(R"(g (float[1,1,4,4] x) => (float y)
{ y = AveragePool <kernel_shape = [3,3], strides = [2,2], pads = [1,1,1,1]> (x) })", iota({1, 1, 4, 4}));
  // windows: rows {0,1} x cols {0,1} -> (1+2+5+6)/4; rows{0,1} x cols{1,2,3} -> (2+3+4+6+7+8)/6 ...
  expect_values(y, {1, 1, 2, 2}, {14.0f / 4, 30.0f / 6, 57.0f / 6, 99.0f / 9});
}

TEST(RuntimePool, AverageIncludingPad) {
  const Tensor y = run_model(R"(g (float[1,1,4,4] x) => (float y)
{ y = AveragePool <kernel_shape = [3,3], strides = [2,2], pads = [1,1,1,1], count_include_pad = 1> (x) })",
                             iota({1, 1, 4, 4}));
  expect_values(y, {1, 1, 2, 2}, {14.0f / 9, 30.0f / 9, 57.0f / 9, 99.0f / 9});
}

TEST(RuntimePool, CeilModeAverageCountsOnlyPaddedInput) {
  // 1x1x5 input, kernel 2, stride 2, no pads, ceil_mode: out = ceil((5-2)/2)+1 = 3; the last
  // window covers only x[4], and count_include_pad does not count the overhang.
  for (int include : {0, 1}) {
    const Tensor y = run_model(
        "g (float[1,1,5] x) => (float y)\n{ y = AveragePool <kernel_shape = [2], strides = [2], "
        "ceil_mode = 1, count_include_pad = " + std::to_string(include) + "> (x) }",
        iota({1, 1, 5}));
    expect_values(y, {1, 1, 3}, {1.5f, 3.5f, 5.0f});
  }
}

TEST(RuntimePool, CeilModeWithPadsDropsWindowStartingInPadding) {
  // in 4, kernel 2, stride 2, pads 1/1: floor -> 3, ceil -> 3 (a 4th window would start in the
  // end padding and is dropped).
  const Tensor y = run_model(R"(g (float[1,1,4] x) => (float y)
{ y = MaxPool <kernel_shape = [2], strides = [2], pads = [1,1], ceil_mode = 1> (x) })",
                             iota({1, 1, 4}));
  expect_values(y, {1, 1, 3}, {1, 3, 4});
  const Tensor z = run_model(R"(g (float[1,1,6,6] x) => (float y)
{ y = MaxPool <kernel_shape = [3,3], strides = [2,2], ceil_mode = 1> (x) })", iota({1, 1, 6, 6}));
  // floor would give 2x2; ceil gives 3x3 with the last windows clipped at the border.
  expect_values(z, {1, 1, 3, 3}, {15, 17, 18, 27, 29, 30, 33, 35, 36});
}

TEST(RuntimePool, MaxPoolPadsDilationsNegativeValues) {
  // All values negative: padding must not contribute zeros.
  std::vector<float> v(25);
  for (int i = 0; i < 25; ++i) v[i] = -1.0f - static_cast<float>(i);
  const Tensor y = run_model(R"(g (float[1,1,5,5] x) => (float y)
{ y = MaxPool <kernel_shape = [2,2], pads = [1,1,1,1], dilations = [2,2], strides = [2,2]> (x) })",
                             Tensor::from_vector<float>({1, 1, 5, 5}, v));
  // out = floor((5+2-3)/2)+1 = 3; window at (0,0) covers rows {-1,1} cols {-1,1} -> x[1,1] = -7
  ASSERT_EQ(y.shape(), (Shape{1, 1, 3, 3}));
  EXPECT_EQ(y.data<float>()[0], -7.0f);
  EXPECT_EQ(y.data<float>()[4], -7.0f);   // rows {1,3} x cols {1,3}: -7, -9, -17, -19
  EXPECT_EQ(y.data<float>()[8], -19.0f);  // rows {3,5} x cols {3,5}: only x[3,3]
}

TEST(RuntimePool, MaxPoolAutoPadSameUpper) {
  const Tensor y = run_model(R"(g (float[1,1,5,5] x) => (float y)
{ y = MaxPool <kernel_shape = [2,2], strides = [2,2], auto_pad = "SAME_UPPER"> (x) })",
                             iota({1, 1, 5, 5}));
  // out 3x3; total pad 1 goes to the end.
  expect_values(y, {1, 1, 3, 3}, {7, 9, 10, 17, 19, 20, 22, 24, 25});
}

TEST(RuntimePool, RandomAgainstNaiveLoops) {
  const Shape s = {2, 3, 9, 10};
  const Tensor x = Tensor::from_vector<float>(s, random_floats(540, 4));
  const Tensor y = run_model(R"(g (float[2,3,9,10] x) => (float y)
{ y = AveragePool <kernel_shape = [3,2], strides = [2,3], pads = [1,0,2,1]> (x) })", x);
  const int64_t oh = (9 + 3 - 3) / 2 + 1, ow = (10 + 1 - 2) / 3 + 1;
  ASSERT_EQ(y.shape(), (Shape{2, 3, oh, ow}));
  const float* xd = x.data<float>();
  for (int64_t p = 0; p < 6; ++p)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox) {
        double sum = 0;
        int cnt = 0;
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 2; ++kx) {
            const int64_t iy = oy * 2 - 1 + ky, ix = ox * 3 + kx;
            if (iy < 0 || iy >= 9 || ix < 0 || ix >= 10) continue;
            sum += xd[p * 90 + iy * 10 + ix];
            ++cnt;
          }
        EXPECT_NEAR(y.data<float>()[(p * oh + oy) * ow + ox], sum / cnt, 1e-6);
      }
}

TEST(RuntimePool, GlobalPools) {
  const Tensor x = iota({2, 3, 2, 2});
  const Tensor a = run_model("g (float[2,3,2,2] x) => (float y) { y = GlobalAveragePool (x) }", x);
  expect_values(a, {2, 3, 1, 1}, {2.5f, 6.5f, 10.5f, 14.5f, 18.5f, 22.5f});
  const Tensor m = run_model("g (float[2,3,2,2] x) => (float y) { y = GlobalMaxPool (x) }", x);
  expect_values(m, {2, 3, 1, 1}, {4, 8, 12, 16, 20, 24});
}

TEST(RuntimePool, MaxPoolIndicesOutputIsRefused) {
  Model model = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[1,1,4,4] x) => (float y, int64 i) { y, i = MaxPool <kernel_shape = [2,2]> (x) })");
  EXPECT_THROW(Executor(model, {1}), InputError);
}

}  // namespace
}  // namespace repq::test
