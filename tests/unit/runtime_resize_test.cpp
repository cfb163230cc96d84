// Resize: nearest modes and linear coordinate transformations, scales and sizes inputs.
#include <gtest/gtest.h>

#include <cmath>

#include "repq/error.h"
#include "repq/runtime/executor.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

Tensor resize(const std::string& attrs, const Tensor& x, const std::string& scales_or_sizes,
              int opset = 13) {
  const std::string sig = "g (float" + shape_str(x.shape()) + " x) => (float y) <" + scales_or_sizes +
                          ">\n{ y = Resize <" + attrs + "> (x, " +
                          (scales_or_sizes.rfind("float", 0) == 0 ? "roi, s" : "roi, , s") + ") }";
  Model model = parse_onnx_text("<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) +
                                "]>\n" + sig);
  Executor ex(model, {2});
  return ex.run({{"x", x}}).at("y");
}

std::string scales(const std::string& v) { return "float[4] s = {" + v + "}, float[0] roi = {}"; }
std::string sizes(const std::string& v) { return "int64[4] s = {" + v + "}, float[0] roi = {}"; }

TEST(RuntimeResize, NearestAsymmetricFloorUpsample) {
  const Tensor x = Tensor::from_vector<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  const Tensor y = resize(
      "mode = \"nearest\", coordinate_transformation_mode = \"asymmetric\", nearest_mode = \"floor\"",
      x, scales("1, 1, 2, 3"));
  ASSERT_EQ(y.shape(), (Shape{1, 1, 4, 6}));
  EXPECT_EQ(y.to_doubles(), (std::vector<double>{1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2,
                                                 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4}));
}

TEST(RuntimeResize, NearestRoundingModesOnTies) {
  // Downsample 4 -> 2 with half_pixel: source coordinates are 0.5 and 2.5, exact ties.
  const Tensor x = Tensor::from_vector<float>({1, 1, 1, 4}, {10, 11, 12, 13});
  EXPECT_EQ(resize("mode = \"nearest\"", x, scales("1, 1, 1, 0.5")).to_doubles(),
            (std::vector<double>{10, 12}));  // round_prefer_floor is the default
  EXPECT_EQ(resize("mode = \"nearest\", nearest_mode = \"round_prefer_ceil\"", x,
                   scales("1, 1, 1, 0.5"))
                .to_doubles(),
            (std::vector<double>{11, 13}));
  EXPECT_EQ(resize("mode = \"nearest\", nearest_mode = \"ceil\", coordinate_transformation_mode = "
                   "\"asymmetric\"",
                   x, scales("1, 1, 1, 0.75"))
                .to_doubles(),  // 4 * 0.75 = 3 outputs at 0, 1.33, 2.67 -> 0, 2, 3
            (std::vector<double>{10, 12, 13}));
}

TEST(RuntimeResize, LinearCoordinateModesOneRow) {
  const Tensor x = Tensor::from_vector<float>({1, 1, 1, 2}, {0, 1});
  const auto near = [](const Tensor& t, std::vector<double> want) {
    ASSERT_EQ(static_cast<size_t>(t.numel()), want.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(t.data<float>()[i], want[i], 1e-6) << i;
  };
  near(resize("mode = \"linear\"", x, scales("1, 1, 1, 2")), {0, 0.25, 0.75, 1});
  near(resize("mode = \"linear\", coordinate_transformation_mode = \"align_corners\"", x,
              scales("1, 1, 1, 2")),
       {0, 1.0 / 3, 2.0 / 3, 1});
  near(resize("mode = \"linear\", coordinate_transformation_mode = \"asymmetric\"", x,
              scales("1, 1, 1, 2")),
       {0, 0.5, 1, 1});
  // pytorch_half_pixel: an output of length 1 samples coordinate 0, half_pixel samples the middle.
  const Tensor wide = Tensor::from_vector<float>({1, 1, 1, 4}, {0, 1, 2, 3});
  near(resize("mode = \"linear\", coordinate_transformation_mode = \"pytorch_half_pixel\"", wide,
              sizes("1, 1, 1, 1")),
       {0});
  near(resize("mode = \"linear\"", wide, sizes("1, 1, 1, 1")), {1.5});
}

// Independent bilinear reference (half_pixel or align_corners) in double.
std::vector<double> bilinear(const Tensor& x, int64_t oh, int64_t ow, bool align) {
  const int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  auto coord = [&](int64_t o, int64_t in, int64_t out) {
    double v = align ? (out == 1 ? 0.0 : o * double(in - 1) / double(out - 1))
                     : (o + 0.5) * double(in) / double(out) - 0.5;
    return std::min(std::max(v, 0.0), double(in - 1));
  };
  std::vector<double> y;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox) {
        const double cy = coord(oy, h, oh), cx = coord(ox, w, ow);
        const int64_t y0 = int64_t(cy), x0 = int64_t(cx);
        const int64_t y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
        const double fy = cy - y0, fx = cx - x0;
        auto at = [&](int64_t yy, int64_t xx) { return double(x.data<float>()[(p * h + yy) * w + xx]); };
        y.push_back(at(y0, x0) * (1 - fy) * (1 - fx) + at(y0, x1) * (1 - fy) * fx +
                    at(y1, x0) * fy * (1 - fx) + at(y1, x1) * fy * fx);
      }
  return y;
}

TEST(RuntimeResize, BilinearWithSizesMatchesReference) {
  const Tensor x = Tensor::from_vector<float>({2, 3, 5, 7}, random_floats(210, 3));
  for (bool align : {false, true}) {
    const Tensor y = resize(std::string("mode = \"linear\"") +
                                (align ? ", coordinate_transformation_mode = \"align_corners\"" : ""),
                            x, sizes("2, 3, 8, 12"));
    ASSERT_EQ(y.shape(), (Shape{2, 3, 8, 12}));
    const auto want = bilinear(x, 8, 12, align);
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(y.data<float>()[i], want[i], 2e-6) << i;
  }
}

TEST(RuntimeResize, Opset18AxesAndScalesFloorTheOutputSize) {
  Model model = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 18]>
g (float[1,1,3,3] x) => (float y) <float[2] s = {1.5, 0.5}, float[0] roi = {}>
{ y = Resize <mode = "nearest", axes = [2, 3], coordinate_transformation_mode = "asymmetric", nearest_mode = "floor"> (x, roi, s) })");
  Executor ex(model, {1});
  const Tensor x = Tensor::from_vector<float>({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  const Tensor y = ex.run({{"x", x}}).at("y");
  ASSERT_EQ(y.shape(), (Shape{1, 1, 4, 1}));  // floor(3 * 1.5) = 4, floor(3 * 0.5) = 1
  // rows: 0/1.5=0, 1/1.5=0.67, 2/1.5=1.33, 3/1.5=2 -> 0, 0, 1, 2
  EXPECT_EQ(y.to_doubles(), (std::vector<double>{1, 1, 4, 7}));
}

TEST(RuntimeResize, RefusesCubicAndMissingScales) {
  Model cubic = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[1,1,2,2] x) => (float y) <float[4] s = {1, 1, 2, 2}, float[0] roi = {}>
{ y = Resize <mode = "cubic"> (x, roi, s) })");
  EXPECT_THROW(Executor(cubic, {1}), InputError);
  Model none = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[1,1,2,2] x) => (float y) <float[0] roi = {}>
{ y = Resize (x, roi) })");
  Executor ex(none, {1});
  EXPECT_THROW(ex.run({{"x", Tensor(DType::kFloat32, {1, 1, 2, 2})}}), InputError);
}

}  // namespace
}  // namespace repq::test
