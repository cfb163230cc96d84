// PIL-compatible resampling, checked against coefficients and values computed by hand from
// Pillow's algorithm (libImaging/Resample.c).
#include <gtest/gtest.h>

#include "data/fixtures.h"
#include "repq/data/resize.h"

namespace repq::test {
namespace {

using data::ResampleFilter;

TEST(DataResize, DownscaleCoefficients4To2) {
  // scale 2, support 2: out 0 centre 1.0 -> taps 0..2 weights tri(.25),tri(.25),tri(.75) =
  // .75,.75,.25 -> 3/7 3/7 1/7; out 1 centre 3.0 -> taps 1..3 -> 1/7 3/7 3/7.
  const auto co = data::pil_resample_coeffs(4, 2, ResampleFilter::kBilinear);
  EXPECT_EQ(co.ksize, 5);
  EXPECT_EQ(co.start, (std::vector<int>{0, 1}));
  EXPECT_EQ(co.count, (std::vector<int>{3, 3}));
  EXPECT_DOUBLE_EQ(co.weights[0], 3.0 / 7);
  EXPECT_DOUBLE_EQ(co.weights[1], 3.0 / 7);
  EXPECT_DOUBLE_EQ(co.weights[2], 1.0 / 7);
  EXPECT_DOUBLE_EQ(co.weights[5], 1.0 / 7);
  EXPECT_DOUBLE_EQ(co.weights[7], 3.0 / 7);
  // 22-bit fixed point, rounded: 3/7 * 2^22 = 1797558.86, 1/7 * 2^22 = 599186.29
  EXPECT_EQ(co.fixed[0], 1797559);
  EXPECT_EQ(co.fixed[2], 599186);
  EXPECT_EQ(co.fixed[3], 0);
}

TEST(DataResize, UpscaleCoefficients2To4) {
  // scale 0.5, no stretch: centres .25 .75 1.25 1.75 -> [1], [.75 .25], [.25 .75], [1]
  const auto co = data::pil_resample_coeffs(2, 4, ResampleFilter::kBilinear);
  EXPECT_EQ(co.start, (std::vector<int>{0, 0, 0, 1}));
  EXPECT_EQ(co.count, (std::vector<int>{1, 2, 2, 1}));
  EXPECT_DOUBLE_EQ(co.weights[0 * co.ksize], 1.0);
  EXPECT_DOUBLE_EQ(co.weights[1 * co.ksize + 0], 0.75);
  EXPECT_DOUBLE_EQ(co.weights[1 * co.ksize + 1], 0.25);
  EXPECT_DOUBLE_EQ(co.weights[2 * co.ksize + 1], 0.75);
  EXPECT_DOUBLE_EQ(co.weights[3 * co.ksize], 1.0);
}

TEST(DataResize, BicubicCoefficientsHaveNegativeLobes) {
  const auto co = data::pil_resample_coeffs(8, 4, ResampleFilter::kBicubic);
  EXPECT_EQ(co.ksize, 9);  // support 4 -> 2 * 4 + 1
  double sum = 0;
  bool negative = false;
  for (int k = 0; k < co.count[1]; ++k) {
    sum += co.weights[co.ksize + k];
    negative |= co.weights[co.ksize + k] < 0;
  }
  EXPECT_NEAR(sum, 1.0, 1e-12);
  EXPECT_TRUE(negative);
}

TEST(DataResize, Resize4x4To2x2ByHand) {
  // Row values 0 10 20 255, the same on every row: horizontally
  //   out0 = (3*0 + 3*10 + 20) / 7 = 7.14 -> 7,  out1 = (10 + 3*20 + 3*255) / 7 = 119.3 -> 119
  // then vertically every column is constant, so it stays.
  const data::Image in = make_image(4, 4, 1, [](int x, int, int) { return std::array{0, 10, 20, 255}[x]; });
  const data::Image out = data::resize_pil(in, 2, 2, ResampleFilter::kBilinear);
  EXPECT_EQ(out.pixels, (std::vector<uint8_t>{7, 119, 7, 119}));
  // Transposed: the vertical pass does the work.
  const data::Image in_t = make_image(4, 4, 1, [](int, int y, int) { return std::array{0, 10, 20, 255}[y]; });
  EXPECT_EQ(data::resize_pil(in_t, 2, 2, ResampleFilter::kBilinear).pixels, (std::vector<uint8_t>{7, 7, 119, 119}));
}

TEST(DataResize, IntermediateIsRoundedToUint8) {
  // A 4x4 image -> 2x2: horizontal first (rounded to uint8), then vertical. Column values
  // after the horizontal pass of rows r0 = [0 0 0 3], r1..r3 = [0 0 0 0]: out1 = 3*3/7 = 1.29
  // -> 1 on row 0 only. Vertical, out(1, 0) = 3/7 * 1 = 0.43 -> 0. Without the rounding in
  // between it would be 3/7 * 9/7 = 0.55 -> 1.
  const data::Image in = make_image(4, 4, 1, [](int x, int y, int) { return x == 3 && y == 0 ? 3 : 0; });
  const data::Image out = data::resize_pil(in, 2, 2, ResampleFilter::kBilinear);
  EXPECT_EQ(out.at(1, 0, 0), 0);
}

TEST(DataResize, Upscale2To4ByHand) {
  const data::Image in = make_image(2, 1, 3, [](int x, int, int c) { return x == 0 ? 0 : 100 + c; });
  const data::Image out = data::resize_pil(in, 4, 1, ResampleFilter::kBilinear);
  // [a, .75a + .25b, .25a + .75b, b] with a = 0, b = 100
  EXPECT_EQ(out.at(0, 0, 0), 0);
  EXPECT_EQ(out.at(1, 0, 0), 25);
  EXPECT_EQ(out.at(2, 0, 0), 75);
  EXPECT_EQ(out.at(3, 0, 0), 100);
  EXPECT_EQ(out.at(3, 0, 2), 102);
}

TEST(DataResize, SameSizeIsIdentity) {
  const data::Image in = pattern_image(9, 5, 3);
  EXPECT_EQ(data::resize_pil(in, 9, 5, ResampleFilter::kBilinear).pixels, in.pixels);
}

TEST(DataResize, WindowEqualsResizeThenCrop) {
  for (const auto& [w, h, ow, oh] : {std::array{37, 23, 20, 12}, std::array{16, 16, 40, 33}, std::array{30, 20, 30, 11},
                                     std::array{30, 20, 13, 20}}) {
    for (ResampleFilter f : {ResampleFilter::kBilinear, ResampleFilter::kBicubic}) {
      const data::Image in = pattern_image(w, h, 3, w + h);
      const data::Image full = data::resize_pil(in, ow, oh, f);
      const data::Window win{3, 2, ow - 5, oh - 4};
      const data::Image part = data::resize_pil(in, ow, oh, f, win);
      ASSERT_EQ(part.width, win.width);
      ASSERT_EQ(part.height, win.height);
      for (int y = 0; y < win.height; ++y)
        for (int x = 0; x < win.width; ++x)
          for (int c = 0; c < 3; ++c) ASSERT_EQ(part.at(x, y, c), full.at(x + win.x, y + win.y, c)) << w << "x" << h;
    }
  }
}

}  // namespace
}  // namespace repq::test
