// Image decoder hardening: inputs that made stb_image run into undefined behaviour (found by
// fuzz_image) are refused or repaired before stb sees them. Regression seeds of the same
// inputs are in tests/fuzz/corpus/image/regress_*.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "repq/data/image.h"
#include "repq/error.h"

namespace repq::data {
namespace {

std::string refusal(const std::string& bytes) {
  try {
    (void)decode_image(bytes, "x.img", {});
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

std::string probe_refusal(const std::string& bytes) {
  try {
    (void)probe_image(bytes, "x.img");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

const std::string kSixBytes("\x01\x02\x03\x04\x05\x06", 6);

TEST(HardeningImage, PnmHeaderNumbersTooLargeAreRefusedBeforeStb) {
  // stb_image 2.27 accumulates these into an int and overflows (undefined behaviour).
  EXPECT_EQ(refusal("P5\n88888888888888 2 255\n" + kSixBytes),
            "x.img: PNM header width is over 16777216; refused");
  EXPECT_EQ(probe_refusal("P5\n88888888888888 2 255\n" + kSixBytes),
            "x.img: PNM header width is over 16777216; refused");
  EXPECT_EQ(refusal("P6 2 99999999999 255\n" + kSixBytes),
            "x.img: PNM header height is over 16777216; refused");
  EXPECT_EQ(refusal("P5 3 2 4294967296\n" + kSixBytes),
            "x.img: PNM header maximum value is over 65535; refused");
  // One past stb's own dimension limit: refused here too, with the same message.
  EXPECT_EQ(refusal("P5 16777217 1 255\n" + kSixBytes),
            "x.img: PNM header width is over 16777216; refused");
}

TEST(HardeningImage, PnmHeadersThatStbReadsSafelyStillDecode) {
  // Leading zeros (the value never grows), and a long number inside a comment (skipped).
  for (const std::string header : {"P5 00000000000000003 2 255\n", "P5\n# 888888888888888888\n3 2\n255\n",
                                   "P5\t3\r2#c\n255\n"}) {
    const Image img = decode_image(header + kSixBytes, "x.pgm", {ColorMode::kGrey});
    EXPECT_EQ(img.width, 3) << header;
    EXPECT_EQ(img.height, 2) << header;
    EXPECT_EQ(img.pixels, (std::vector<uint8_t>{1, 2, 3, 4, 5, 6})) << header;
  }
}

uint32_t crc32(const std::string& s) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

Image test_image() {
  Image img{5, 3, 3, {}};
  for (int i = 0; i < 45; ++i) img.pixels.push_back(static_cast<uint8_t>(i * 37));
  return img;
}

TEST(HardeningImage, EmptyIdatChunksAreDroppedNotPassedToStb) {
  const Image want = test_image();
  const std::string png = encode_png(want);
  const size_t idat = png.find("IDAT") - 4;  // the chunk starts with its length
  ASSERT_LT(idat, png.size());
  const std::string empty_idat = be32(0) + "IDAT" + be32(crc32("IDAT"));
  ASSERT_EQ(empty_idat, std::string("\0\0\0\0IDAT\x35\xAF\x06\x1E", 12));
  // An empty IDAT before the data (stb: memcpy(NULL, p, 0)), and one before and after.
  const std::string before = png.substr(0, idat) + empty_idat + png.substr(idat);
  const size_t iend = before.find("IEND") - 4;
  const std::string both = before.substr(0, iend) + empty_idat + before.substr(iend);
  for (const std::string& bytes : {before, both}) {
    const Image got = decode_image(bytes, "x.png", {});
    EXPECT_EQ(got.width, 5);
    EXPECT_EQ(got.height, 3);
    EXPECT_EQ(got.pixels, want.pixels);
  }
}

TEST(HardeningImage, PngChunkLongerThanTheFileIsRefusedBeforeStbAllocates) {
  std::string png = encode_png(test_image());
  const size_t idat = png.find("IDAT") - 4;
  png.replace(idat, 4, be32(0x7FFFFFFF));  // stb would allocate 2 GiB before reading
  const std::string msg = refusal(png);
  EXPECT_EQ(msg.rfind("x.img: corrupt or truncated image: PNG chunk 'IDAT' declares 2147483647 "
                      "bytes but only ", 0), 0u) << msg;
}

}  // namespace
}  // namespace repq::data
