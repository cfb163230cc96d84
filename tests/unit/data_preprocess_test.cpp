// Preprocessing: sizes, crop offsets, padding, normalization, options, and the reference
// input of ../shared/models/mobileone_s0 (apple.png -> apple.bin).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "data/fixtures.h"
#include "repq/data/preprocess.h"
#include "repq/error.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

using data::Preprocess;

TEST(DataPreprocess, ResizedSizeRoundsOrTruncatesLongSide) {
  Preprocess pp;  // imagenet: short side 256, long side rounded
  EXPECT_EQ(data::resized_size(181, 174, pp), (std::array<int, 2>{266, 256}));  // 266.3
  EXPECT_EQ(data::resized_size(500, 375, pp), (std::array<int, 2>{341, 256}));  // 341.33
  EXPECT_EQ(data::resized_size(300, 200, pp), (std::array<int, 2>{384, 256}));
  EXPECT_EQ(data::resized_size(200, 300, pp), (std::array<int, 2>{256, 384}));
  EXPECT_EQ(data::resized_size(120, 68, pp), (std::array<int, 2>{452, 256}));  // 451.76: up
  pp.long_side = data::LongSide::kTruncate;
  EXPECT_EQ(data::resized_size(120, 68, pp), (std::array<int, 2>{451, 256}));
  // Ties go to even like Python's round(): 256 * 3 / 2 = 384 (exact); 5 * 3 / 2 = 7.5 -> 8,
  // 5 * 5 / 2 = 12.5 -> 12.
  Preprocess small;
  small.resize = 5;
  EXPECT_EQ(data::resized_size(3, 2, small), (std::array<int, 2>{8, 5}));
  EXPECT_EQ(data::resized_size(2, 5, small), (std::array<int, 2>{5, 12}));
  small.resize_height = 7;
  small.resize_width = 9;
  EXPECT_EQ(data::resized_size(3, 2, small), (std::array<int, 2>{9, 7}));
}

// An image whose pixel value encodes its column, preprocessed with no normalization, tells
// where the crop started.
int crop_left(int width, data::CropOffset mode) {
  Preprocess pp = Preprocess::from_preset("none");
  pp.crop_height = 1;
  pp.crop_width = 4;
  pp.crop_offset = mode;
  pp.divisor = 1.0f;
  const data::Image img = make_image(width, 1, 3, [](int x, int, int) { return x; });
  return static_cast<int>(data::preprocess_image(img, pp).data<float>()[0]);
}

TEST(DataPreprocess, CropOffsets) {
  EXPECT_EQ(crop_left(10, data::CropOffset::kFloor), 3);  // (10-4)//2
  EXPECT_EQ(crop_left(11, data::CropOffset::kFloor), 3);  // 7//2
  EXPECT_EQ(crop_left(11, data::CropOffset::kRound), 4);  // round(3.5) = 4 (even)
  EXPECT_EQ(crop_left(9, data::CropOffset::kRound), 2);   // round(2.5) = 2 (even)
  EXPECT_EQ(crop_left(9, data::CropOffset::kFloor), 2);
}

TEST(DataPreprocess, SmallImagesArePaddedLikeTorchvision) {
  Preprocess pp = Preprocess::from_preset("none");
  pp.crop_height = 3;
  pp.crop_width = 5;
  pp.divisor = 1.0f;
  pp.color = data::ColorMode::kGrey;
  const data::Image img = make_image(2, 1, 1, [](int x, int, int) { return 10 + x; });
  const Tensor t = data::preprocess_image(img, pp);
  ASSERT_EQ(t.shape(), (Shape{1, 3, 5}));
  // left pad (5-2)//2 = 1, top pad (3-1)//2 = 1
  const std::vector<float> want = {0, 0, 0, 0, 0, 0, 10, 11, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(std::vector<float>(t.span<float>().begin(), t.span<float>().end()), want);
}

TEST(DataPreprocess, NormalizationAndChannelOrder) {
  const data::Image img = make_image(1, 1, 3, [](int, int, int c) { return std::array{255, 128, 0}[c]; });
  Preprocess pp = Preprocess::from_preset("imagenet");
  pp.resize = 0;
  pp.crop_height = pp.crop_width = 0;
  const Tensor rgb = data::preprocess_image(img, pp);
  ASSERT_EQ(rgb.shape(), (Shape{3, 1, 1}));
  // torchvision: ToTensor (x / 255 in float32) then (x - mean) / std in float32
  EXPECT_EQ(rgb.data<float>()[0], (255.0f / 255.0f - 0.485f) / 0.229f);
  EXPECT_EQ(rgb.data<float>()[1], (128.0f / 255.0f - 0.456f) / 0.224f);
  EXPECT_EQ(rgb.data<float>()[2], (0.0f / 255.0f - 0.406f) / 0.225f);
  pp.channel_order = data::ChannelOrder::kBGR;
  const Tensor bgr = data::preprocess_image(img, pp);
  EXPECT_EQ(bgr.data<float>()[0], rgb.data<float>()[2]);  // mean/std follow their channel
  EXPECT_EQ(bgr.data<float>()[1], rgb.data<float>()[1]);
  EXPECT_EQ(bgr.data<float>()[2], rgb.data<float>()[0]);
  const Tensor none = data::preprocess_image(img, Preprocess::from_preset("none"));
  EXPECT_EQ(none.data<float>()[0], 1.0f);
  EXPECT_EQ(none.data<float>()[1], 128.0f / 255.0f);
}

TEST(DataPreprocess, ImagenetOutputShape) {
  const data::Image img = pattern_image(500, 375, 3);
  const Tensor t = data::preprocess_image(img, Preprocess{});
  EXPECT_EQ(t.shape(), (Shape{3, 224, 224}));
  EXPECT_EQ(Preprocess{}.output_shape(68, 121), (std::array<int64_t, 3>{3, 224, 224}));
}

TEST(DataPreprocess, ParseOptions) {
  const Preprocess pp = Preprocess::from_args({"--mean", "0.5,0.5,0.5", "--std=0.25", "--crop", "200,180",
                                               "--resize", "230", "--preset", "torchvision", "--channel-order", "bgr",
                                               "--interpolation", "bicubic", "--max-pixels", "1000"});
  EXPECT_EQ(pp.preset, "torchvision");  // applied first
  EXPECT_EQ(pp.long_side, data::LongSide::kTruncate);
  EXPECT_EQ(pp.mean, (std::vector<float>{0.5f, 0.5f, 0.5f}));
  EXPECT_EQ(pp.std_dev, (std::vector<float>{0.25f}));
  EXPECT_EQ(pp.crop_height, 200);
  EXPECT_EQ(pp.crop_width, 180);
  EXPECT_EQ(pp.resize, 230);
  EXPECT_EQ(pp.channel_order, data::ChannelOrder::kBGR);
  EXPECT_EQ(pp.filter, data::ResampleFilter::kBicubic);
  EXPECT_EQ(pp.max_pixels, 1000);
  EXPECT_NE(pp.describe().find("resize short side 230 (bicubic, long side truncated)"), std::string::npos) << pp.describe();

  const Preprocess none = Preprocess::from_args({"--preset", "none"});
  EXPECT_EQ(none.resize, 0);
  EXPECT_EQ(none.crop_height, 0);
  EXPECT_EQ(none.describe(), "none: /255, mean 0, std 1, RGB, CHW float32");
  EXPECT_EQ(Preprocess{}.describe(),
            "imagenet: resize short side 256 (bilinear, long side rounded), centre crop 224x224 (floor offsets), "
            "/255, mean 0.485,0.456,0.406, std 0.229,0.224,0.225, RGB, CHW float32");
  EXPECT_GE(Preprocess::options().size(), 10u);
}

TEST(DataPreprocess, BadOptionsNameTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--mean", "0.5,0.5"}, "--mean: expected 1 or 3"},
      {{"--mean", "a,b,c"}, "--mean: expected a number"},
      {{"--std", "0"}, "--std: must not be 0"},
      {{"--resize", "-3"}, "--resize: expected a size"},
      {{"--crop", "224,0"}, "--crop: H and W"},
      {{"--preset", "coco"}, "--preset: expected imagenet|torchvision|none"},
      {{"--channel-order", "rbg"}, "--channel-order: expected rgb|bgr"},
      {{"--bogus", "1"}, "--bogus: unknown preprocessing option"},
      {{"--resize"}, "--resize: missing value"},
      {{"--color", "grey"}, "--mean: has 3 values but the images have 1 channel"},
  };
  for (const auto& [args, want] : cases) {
    try {
      Preprocess::from_args(args);
      ADD_FAILURE() << "no error for " << args[0];
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(Preprocess::from_args({"--color", "grey", "--mean", "0.5", "--std", "0.5"}));
}

TEST(DataPreprocess, AppleMatchesReferenceInput) {
  REPQ_REQUIRE_SHARED();
  const std::string dir = shared_dir() + "/models/mobileone_s0";
  const std::vector<float> want = read_floats(dir + "/apple.bin");
  ASSERT_EQ(want.size(), 3u * 224 * 224);
  const Tensor got = data::load_preprocessed(dir + "/apple.png", Preprocess::from_preset("imagenet"));
  ASSERT_EQ(got.shape(), (Shape{1, 3, 224, 224}));
  double max_diff = 0;
  for (size_t i = 0; i < want.size(); ++i)
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(got.data<float>()[i] - want[i])));
  std::cout << "[ apple.png -> apple.bin ] max abs difference " << max_diff << "\n";
  RecordProperty("apple_max_abs_diff", std::to_string(max_diff));
  EXPECT_LT(max_diff, 1e-5);
  // The torchvision preset gives the same result on this image (266x256 -> 21, 16 offsets).
  const Tensor tv = data::load_preprocessed(dir + "/apple.png", Preprocess::from_preset("torchvision"));
  EXPECT_TRUE(tv.equals(got));
}

}  // namespace
}  // namespace repq::test
