// Decoded 8-bit images and the decoders that produce them (JPEG via libjpeg-turbo, PNG and
// BMP / PNM / GIF via stb_image). Pixels match PIL's decoders: JPEG with the default
// ISLOW DCT and fancy upsampling, 16-bit PNG samples reduced to their high byte, alpha dropped
// (PIL's convert("RGB")), palette images expanded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace repq::data {

// Interleaved 8-bit pixels, row-major, `channels` (1 or 3) values per pixel.
struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels

  uint8_t at(int x, int y, int c) const {
    return pixels[(static_cast<size_t>(y) * width + x) * channels + c];
  }
};

// What the decoded image holds: 3 channels (greyscale replicated, like PIL's convert("RGB")),
// or 1 channel (colour converted with PIL's convert("L") weights 0.299/0.587/0.114).
enum class ColorMode { kRGB, kGrey };

inline constexpr int64_t kDefaultMaxPixels = 100'000'000;

struct DecodeOptions {
  ColorMode color = ColorMode::kRGB;
  // Images whose header declares more pixels are refused before decoding (decompression
  // bombs). 0 = no limit.
  int64_t max_pixels = kDefaultMaxPixels;
};

enum class ImageFormat { kUnknown, kJpeg, kPng, kOther };

// Header facts, read without decoding the pixels.
struct ImageInfo {
  ImageFormat format = ImageFormat::kUnknown;
  int width = 0;
  int height = 0;
  int channels = 0;  // as stored (1 grey, 2 grey+alpha, 3 colour, 4 colour+alpha or CMYK)
};

// The format from the first bytes (not the file name).
ImageFormat sniff_format(std::string_view bytes);

// Header only. Throws InputError("<name>: ...") when the bytes are not a readable image.
ImageInfo probe_image(std::string_view bytes, const std::string& name);

// Decodes an encoded image held in memory; `name` (usually the path) prefixes error messages.
// Throws InputError("<name>: <problem>") for empty, truncated, corrupt or unsupported data and
// for images over the pixel limit; never crashes on bad input.
Image decode_image(std::string_view bytes, const std::string& name,
                   const DecodeOptions& options = {});
// Reads and decodes a file.
Image load_image(const std::string& path, const DecodeOptions& options = {});

// Greyscale -> 3 channels (replicated), or colour -> 1 channel with PIL's "L" formula
// L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16. Returns the image unchanged when it
// already has the requested channels.
Image convert_color(Image image, ColorMode mode);

// True for the file name extensions the dataset lists as images (case-insensitive):
// .jpg .jpeg .png .bmp .ppm .pgm .pnm .gif
bool is_image_path(std::string_view path);

// Encoders, for fixtures and debugging dumps. PNG is lossless (stb_image_write); JPEG uses
// libjpeg-turbo with 4:2:0 chroma subsampling at the given quality (1..100).
std::string encode_png(const Image& image);
std::string encode_jpeg(const Image& image, int quality = 90);

}  // namespace repq::data
