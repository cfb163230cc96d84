// Bit-exactness against PIL: reference decodes and preprocessed tensors made by Pillow 9.4 +
// NumPy (tests/data/pil/make_fixtures.py) from small committed JPEGs.
#include <gtest/gtest.h>

#include "repq/common/atomic_file.h"
#include "repq/data/image.h"
#include "repq/data/npy.h"
#include "repq/data/preprocess.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

std::string fixture(const std::string& name) { return source_dir() + "/tests/data/pil/" + name; }

void expect_decode_matches_pil(const std::string& stem) {
  const data::Image img = data::load_image(fixture(stem + ".jpg"));
  const Tensor want = data::read_npy(fixture(stem + "_decoded.npy"));
  ASSERT_EQ(want.shape(), (Shape{img.height, img.width, 3}));
  ASSERT_EQ(want.dtype(), DType::kUInt8);
  int differing = 0;
  for (size_t i = 0; i < img.pixels.size(); ++i) differing += img.pixels[i] != want.data<uint8_t>()[i];
  EXPECT_EQ(differing, 0) << stem;
}

TEST(DataPil, JpegDecodeIdenticalToPil) { expect_decode_matches_pil("rgb420"); }

TEST(DataPil, CmykJpegDecodeIdenticalToPil) {
  const std::string bytes = read_file(fixture("cmyk.jpg"));
  EXPECT_EQ(data::probe_image(bytes, "cmyk.jpg").channels, 4);
  expect_decode_matches_pil("cmyk");
}

void expect_preprocess_matches_pil(const std::vector<std::string>& args, const std::string& ref) {
  const Tensor got = data::load_preprocessed(fixture("rgb420.jpg"), data::Preprocess::from_args(args));
  const Tensor want = data::read_npy(fixture(ref));
  ASSERT_EQ(got.shape(), (Shape{1, want.dim(0), want.dim(1), want.dim(2)}));
  EXPECT_EQ(got.bytes(), want.bytes()) << ref << ": not bit-identical to PIL + NumPy";
}

TEST(DataPil, BilinearDownscalePreprocessIdenticalToPil) {
  expect_preprocess_matches_pil({"--resize", "20", "--crop", "16"}, "rgb420_r20_c16_bilinear.npy");
}

TEST(DataPil, BicubicUpscaleTorchvisionPreprocessIdenticalToPil) {
  expect_preprocess_matches_pil({"--preset", "torchvision", "--resize", "30", "--crop", "25", "--interpolation", "bicubic"},
                                "rgb420_r30_c25_bicubic_tv.npy");
}

}  // namespace
}  // namespace repq::test
