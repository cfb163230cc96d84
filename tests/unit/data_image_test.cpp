// Image decoding: PNG / JPEG values, colour modes, alpha, palette, 16-bit, bombs, bad files.
#include <gtest/gtest.h>

#include "data/fixtures.h"
#include "repq/data/image.h"
#include "repq/error.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

using data::ColorMode;
using data::Image;

// Expects an InputError whose message starts with "<name>: " and contains `what`.
template <class Fn>
void expect_input_error(Fn fn, const std::string& name, const std::string& what) {
  try {
    fn();
    ADD_FAILURE() << "no InputError (expected '" << what << "')";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(name + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(DataImage, PngRgbRoundTripExact) {
  const Image src = pattern_image(13, 7, 3);
  const Image got = data::decode_image(data::encode_png(src), "a.png");
  EXPECT_EQ(got.width, 13);
  EXPECT_EQ(got.height, 7);
  EXPECT_EQ(got.channels, 3);
  EXPECT_EQ(got.pixels, src.pixels);
}

TEST(DataImage, GreyscaleReplicatedOrKept) {
  const Image grey = pattern_image(5, 4, 1);
  const std::string png = data::encode_png(grey);
  const Image rgb = data::decode_image(png, "g.png", {ColorMode::kRGB});
  ASSERT_EQ(rgb.channels, 3);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x)
      for (int c = 0; c < 3; ++c) EXPECT_EQ(rgb.at(x, y, c), grey.at(x, y, 0));
  const Image kept = data::decode_image(png, "g.png", {ColorMode::kGrey});
  EXPECT_EQ(kept.channels, 1);
  EXPECT_EQ(kept.pixels, grey.pixels);
}

TEST(DataImage, ColourToGreyUsesPilWeights) {
  const Image src = make_image(3, 1, 3, [](int x, int, int c) {
    const int px[3][3] = {{255, 0, 0}, {0, 255, 0}, {10, 200, 30}};
    return px[x][c];
  });
  const Image g = data::decode_image(data::encode_png(src), "c.png", {ColorMode::kGrey});
  ASSERT_EQ(g.channels, 1);
  // PIL: L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16
  EXPECT_EQ(g.pixels[0], (255 * 19595 + 0x8000) >> 16);  // 76
  EXPECT_EQ(g.pixels[1], (255 * 38470 + 0x8000) >> 16);  // 150
  EXPECT_EQ(g.pixels[2], (10 * 19595 + 200 * 38470 + 30 * 7471 + 0x8000) >> 16);
}

TEST(DataImage, RgbaAlphaDropped) {
  std::string rows;
  for (int i = 0; i < 4; ++i) rows += std::string{char(10 * i), char(20 * i), char(30 * i), char(i == 0 ? 0 : 128)};
  const Image img = data::decode_image(make_png(2, 2, 8, 6, rows), "rgba.png");
  ASSERT_EQ(img.channels, 3);
  EXPECT_EQ(img.at(1, 1, 0), 30);
  EXPECT_EQ(img.at(1, 1, 2), 90);
  EXPECT_EQ(img.at(0, 0, 1), 0);  // fully transparent pixel keeps its colour (PIL convert("RGB"))
}

TEST(DataImage, GreyAlphaPng) {
  const std::string rows = std::string("\x64\xff\xc8\x00", 4);  // (100, a255) (200, a0)
  const Image img = data::decode_image(make_png(2, 1, 8, 4, rows), "la.png", {ColorMode::kGrey});
  ASSERT_EQ(img.channels, 1);
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{100, 200}));
}

TEST(DataImage, PalettePngWithTransparency) {
  const std::string plte = png_chunk("PLTE", std::string("\x01\x02\x03\xfa\xfb\xfc", 6));
  const std::string trns = png_chunk("tRNS", std::string("\x00\xff", 2));
  const Image img = data::decode_image(make_png(2, 1, 8, 3, std::string("\x01\x00", 2), plte + trns), "p.png");
  ASSERT_EQ(img.channels, 3);
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{0xfa, 0xfb, 0xfc, 1, 2, 3}));
}

TEST(DataImage, SixteenBitPngUsesHighByte) {
  // 16-bit RGB: samples 0x1234 0xABCD 0xFF00 | 0x00FF 0x8080 0x0001
  const std::string rows("\x12\x34\xab\xcd\xff\x00\x00\xff\x80\x80\x00\x01", 12);
  const Image img = data::decode_image(make_png(2, 1, 16, 2, rows), "s16.png");
  ASSERT_EQ(img.channels, 3);
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{0x12, 0xab, 0xff, 0x00, 0x80, 0x00}));
  // 16-bit grey
  const Image g = data::decode_image(make_png(1, 1, 16, 0, std::string("\xfe\x01", 2)), "g16.png", {ColorMode::kGrey});
  EXPECT_EQ(g.pixels, (std::vector<uint8_t>{0xfe}));
}

TEST(DataImage, JpegRgbAndGreyDecode) {
  const Image smooth = make_image(32, 24, 3, [](int x, int y, int c) { return 40 + 4 * x + 2 * y + 20 * c; });
  const Image rgb = data::decode_image(data::encode_jpeg(smooth, 95), "a.jpg");
  ASSERT_EQ(rgb.channels, 3);
  ASSERT_EQ(rgb.width, 32);
  ASSERT_EQ(rgb.height, 24);
  int max_err = 0;
  for (size_t i = 0; i < rgb.pixels.size(); ++i) max_err = std::max(max_err, std::abs(rgb.pixels[i] - smooth.pixels[i]));
  EXPECT_LE(max_err, 8);  // lossy, but close on a smooth image

  const Image grey_src = make_image(16, 16, 1, [](int x, int y, int) { return 8 * x + 4 * y; });
  const std::string jpg = data::encode_jpeg(grey_src, 95);
  EXPECT_EQ(data::probe_image(jpg, "g.jpg").channels, 1);
  const Image grey = data::decode_image(jpg, "g.jpg", {ColorMode::kGrey});
  EXPECT_EQ(grey.channels, 1);
  const Image as_rgb = data::decode_image(jpg, "g.jpg", {ColorMode::kRGB});
  ASSERT_EQ(as_rgb.channels, 3);
  for (size_t i = 0; i < grey.pixels.size(); ++i) {
    EXPECT_EQ(as_rgb.pixels[i * 3], grey.pixels[i]);
    EXPECT_EQ(as_rgb.pixels[i * 3 + 2], grey.pixels[i]);
  }
}

TEST(DataImage, JpegDecodeIsDeterministicAndLibjpegExact) {
  // Decoding the same bytes twice gives identical pixels (no SIMD-path nondeterminism).
  const std::string jpg = data::encode_jpeg(pattern_image(40, 30, 3), 80);
  EXPECT_EQ(data::decode_image(jpg, "x.jpg").pixels, data::decode_image(jpg, "x.jpg").pixels);
}

TEST(DataImage, ProbeReadsHeaderOnly) {
  const auto info = data::probe_image(png_bomb(100000, 100000), "bomb.png");
  EXPECT_EQ(info.format, data::ImageFormat::kPng);
  EXPECT_EQ(info.width, 100000);
  EXPECT_EQ(info.height, 100000);
}

TEST(DataImage, PngBombRefusedBeforeDecoding) {
  TempDir dir;
  const std::string path = dir.file("bomb.png");
  write_bytes(path, png_bomb(100000, 100000));
  expect_input_error([&] { data::load_image(path); }, path, "over the limit of 100000000");
  // A custom limit applies too.
  expect_input_error([&] { data::decode_image(data::encode_png(pattern_image(20, 20, 3)), "small.png", {ColorMode::kRGB, 399}); },
                     "small.png", "400 pixels");
  EXPECT_NO_THROW(data::decode_image(data::encode_png(pattern_image(20, 20, 3)), "ok.png", {ColorMode::kRGB, 400}));
}

TEST(DataImage, JpegBombRefusedBeforeDecoding) {
  std::string jpg = data::encode_jpeg(pattern_image(16, 16, 3), 90);
  // Patch the SOF0 frame header to declare 60000 x 60000.
  const size_t sof = jpg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  for (size_t at : {sof + 5, sof + 7}) {
    jpg[at] = static_cast<char>(60000 >> 8);
    jpg[at + 1] = static_cast<char>(60000 & 0xFF);
  }
  expect_input_error([&] { data::decode_image(jpg, "bomb.jpg"); }, "bomb.jpg", "over the limit");
}

TEST(DataImage, BadFilesAreInputErrorsNamingTheFile) {
  TempDir dir;
  const std::string jpg = data::encode_jpeg(pattern_image(64, 64, 3), 90);
  const std::string png = data::encode_png(pattern_image(64, 64, 3));
  struct Case {
    std::string file, bytes, what;
  };
  std::string bad_sof = jpg;
  bad_sof[bad_sof.find("\xFF\xC0") + 9] = 7;  // 7 components
  const std::vector<Case> cases = {
      {"zero.jpg", "", "empty file"},
      {"trunc.jpg", jpg.substr(0, jpg.size() / 2), "truncated"},
      {"head.jpg", jpg.substr(0, 20), "JPEG"},
      {"badsof.jpg", bad_sof, "corrupt JPEG"},
      {"trunc.png", png.substr(0, png.size() / 2), "corrupt or truncated"},
      {"head.png", png.substr(0, 12), "not a readable image"},
      {"text.jpg", "hello, I am not an image\n", "not a JPEG, PNG"},
      {"garbage.png", std::string(100, '\x42'), "not a JPEG, PNG"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    const std::string path = dir.file(c.file);
    write_bytes(path, c.bytes);
    expect_input_error([&] { data::load_image(path); }, path, c.what);
  }
  expect_input_error([&] { data::load_image(dir.file("missing.png")); }, dir.file("missing.png"), "cannot open");
}

TEST(DataImage, WrongExtensionDecodesByContent) {
  TempDir dir;
  const Image src = pattern_image(9, 9, 3);
  write_bytes(dir.file("really_a_png.jpg"), data::encode_png(src));
  EXPECT_EQ(data::load_image(dir.file("really_a_png.jpg")).pixels, src.pixels);
}

TEST(DataImage, ImageExtensions) {
  EXPECT_TRUE(data::is_image_path("a/b/n01440764_tench.JPEG"));
  EXPECT_TRUE(data::is_image_path("x.png"));
  EXPECT_TRUE(data::is_image_path("x.Jpg"));
  EXPECT_FALSE(data::is_image_path("x.npy"));
  EXPECT_FALSE(data::is_image_path("labels.tsv"));
  EXPECT_FALSE(data::is_image_path("dir.png/file"));
}

}  // namespace
}  // namespace repq::test

namespace repq::test {
namespace {

// Random byte flips and truncations of valid files: each decode succeeds or throws
// InputError; nothing crashes or throws anything else.
TEST(DataImage, MutatedFilesNeverCrash) {
  const std::vector<std::string> seeds = {data::encode_jpeg(pattern_image(48, 40, 3), 85),
                                          data::encode_jpeg(pattern_image(33, 17, 1), 70),
                                          data::encode_png(pattern_image(31, 29, 3)),
                                          make_png(3, 2, 16, 0, std::string(12, '\x7f'))};
  uint32_t state = 12345;
  const auto rnd = [&] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  int decoded = 0, refused = 0;
  for (const std::string& seed : seeds) {
    for (int iter = 0; iter < 150; ++iter) {
      std::string bytes = seed;
      const int flips = 1 + static_cast<int>(rnd() % 8);
      for (int f = 0; f < flips; ++f) bytes[rnd() % bytes.size()] = static_cast<char>(rnd());
      if (iter % 3 == 0) bytes.resize(rnd() % bytes.size());
      try {
        data::decode_image(bytes, "m.bin", {data::ColorMode::kRGB, 1'000'000});
        ++decoded;
      } catch (const InputError&) {
        ++refused;
      }
    }
  }
  EXPECT_EQ(decoded + refused, 600);
}

}  // namespace
}  // namespace repq::test
