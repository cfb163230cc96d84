// PNG (and BMP / PNM / GIF) decoding with stb_image, compiled here with static linkage
// so it cannot clash with another copy of stb_image in the same program.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/codecs.h"
#include "repq/error.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wcast-align"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_NO_JPEG  // JPEG goes through libjpeg-turbo (PIL's decoder)
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_NO_PSD
#define STBI_NO_PIC
#include <stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace repq::data::detail {

namespace {

int length_of(std::string_view bytes, const std::string& name) {
  if (bytes.empty()) throw InputError(name + ": empty file");
  if (bytes.size() > static_cast<size_t>(INT32_MAX)) throw InputError(name + ": file too large (over 2 GiB)");
  return static_cast<int>(bytes.size());
}

const auto* as_bytes(std::string_view bytes) { return reinterpret_cast<const stbi_uc*>(bytes.data()); }

std::string reason() {
  const char* r = stbi_failure_reason();
  return r ? r : "unknown error";
}

}  // namespace

// PNG's IHDR, read directly: stb_image refuses images over 2^30 bytes with a vague message
// before telling their size, and the pixel limit must name the size.
static bool png_header(std::string_view bytes, ImageInfo& info) {
  if (bytes.size() < 33 || bytes.substr(12, 4) != "IHDR") return false;
  const auto be32 = [&](size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<unsigned char>(bytes[at + i]);
    return v;
  };
  const uint32_t w = be32(16), h = be32(20);
  if (w == 0 || h == 0 || w > INT32_MAX || h > INT32_MAX) return false;
  static const int kChannels[7] = {1, 0, 3, 3, 2, 0, 4};  // by colour type
  const auto type = static_cast<unsigned char>(bytes[25]);
  if (type > 6 || kChannels[type] == 0) return false;
  info = {ImageFormat::kPng, static_cast<int>(w), static_cast<int>(h), kChannels[type]};
  return true;
}

// stb_image 2.27 parses PNM header numbers into an int without an overflow check (undefined
// behaviour on "P5 88888888888 2 255"). This walks the header exactly as stb does (same
// whitespace, '#' comments, end-of-data rule) and refuses a width or height over stb's
// STBI_MAX_DIMENSIONS or a maximum value over 65535 before stb sees the number.
static void check_pnm_header(std::string_view bytes, const std::string& name) {
  if (bytes.size() < 2 || bytes[0] != 'P' || (bytes[1] != '5' && bytes[1] != '6')) return;
  size_t pos = 2;
  const auto eof = [&] { return pos >= bytes.size(); };
  const auto get = [&] { return pos < bytes.size() ? bytes[pos++] : '\0'; };
  const auto space = [](char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
  };
  char c = get();
  const auto skip = [&] {
    for (;;) {
      while (!eof() && space(c)) c = get();
      if (eof() || c != '#') break;
      while (!eof() && c != '\n' && c != '\r') c = get();
    }
  };
  const auto number = [&](const char* what, int64_t limit) {
    int64_t value = 0;
    while (!eof() && c >= '0' && c <= '9') {
      value = value * 10 + (c - '0');
      if (value > limit)
        throw InputError(name + ": PNM header " + what + " is over " + std::to_string(limit) +
                         "; refused");
      c = get();
    }
  };
  constexpr int64_t kMaxDim = int64_t{1} << 24;  // STBI_MAX_DIMENSIONS
  skip();
  number("width", kMaxDim);
  skip();
  number("height", kMaxDim);
  skip();
  number("maximum value", 65535);
}

// stb_image 2.27 calls memcpy(NULL, p, 0) on a first IDAT chunk of length 0 (legal PNG,
// undefined behaviour in stb). Returns a copy of the PNG without its empty IDAT chunks, or
// an empty string when it has none. Throws when a chunk's length runs past the end of the
// file (stb would allocate that length before noticing).
static std::string png_without_empty_idat(std::string_view bytes, const std::string& name) {
  if (sniff_format(bytes) != ImageFormat::kPng) return {};
  const auto be32 = [&](size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<unsigned char>(bytes[at + i]);
    return v;
  };
  std::vector<std::pair<size_t, size_t>> drop;  // [begin, end) of empty IDAT chunks
  for (size_t pos = 8; pos + 8 <= bytes.size();) {
    const uint64_t len = be32(pos);
    const std::string_view type = bytes.substr(pos + 4, 4);
    if (len > bytes.size() - pos - 8)
      throw InputError(name + ": corrupt or truncated image: PNG chunk '" + std::string(type) + "' declares " +
                       std::to_string(len) + " bytes but only " +
                       std::to_string(bytes.size() - pos - 8) + " remain");
    const size_t end = std::min<size_t>(bytes.size(), pos + 12 + len);
    if (type == "IDAT" && len == 0) drop.emplace_back(pos, end);
    if (type == "IEND") break;
    pos = end;
  }
  if (drop.empty()) return {};
  std::string out;
  size_t from = 0;
  for (const auto& [b, e] : drop) {
    out.append(bytes.substr(from, b - from));
    from = e;
  }
  out.append(bytes.substr(from));
  return out;
}

ImageInfo stb_probe(std::string_view bytes, const std::string& name) {
  const int len = length_of(bytes, name);
  ImageInfo info;
  if (png_header(bytes, info)) return info;
  check_pnm_header(bytes, name);
  if (!stbi_info_from_memory(as_bytes(bytes), len, &info.width, &info.height, &info.channels))
    throw InputError(name + ": not a readable image: " + reason());
  info.format = sniff_format(bytes);
  return info;
}

Image stb_decode(std::string_view bytes, const std::string& name, int64_t max_pixels) {
  const ImageInfo info = stb_probe(bytes, name);
  check_pixel_limit(info.width, info.height, max_pixels, name);
  const std::string cleaned = png_without_empty_idat(bytes, name);
  if (!cleaned.empty()) bytes = cleaned;
  int w = 0, h = 0, comp = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> data(
      stbi_load_from_memory(as_bytes(bytes), length_of(bytes, name), &w, &h, &comp, 0),
      stbi_image_free);
  if (!data) {
    const std::string why = reason();
    if (why == "outofmem") throw InputError(name + ": out of memory decoding the image");
    if (why == "too large")
      throw InputError(name + ": image too large to decode (" + std::to_string(info.width) + "x" +
                       std::to_string(info.height) + ")");
    throw InputError(name + ": corrupt or truncated image: " + why);
  }
  if (w != info.width || h != info.height || comp < 1 || comp > 4)
    throw InputError(name + ": corrupt image: header and data disagree");
  // Drop alpha (PIL's convert("RGB") / convert("L") ignore it).
  const int keep = comp >= 3 ? 3 : 1;
  Image img;
  img.width = w;
  img.height = h;
  img.channels = keep;
  const size_t n = static_cast<size_t>(w) * static_cast<size_t>(h);
  img.pixels.resize(n * keep);
  const stbi_uc* src = data.get();
  if (keep == comp) {
    std::copy(src, src + n * keep, img.pixels.begin());
  } else {
    for (size_t i = 0; i < n; ++i)
      for (int c = 0; c < keep; ++c) img.pixels[i * keep + c] = src[i * comp + c];
  }
  return img;
}

}  // namespace repq::data::detail
