// Fixture builders for the data-stage tests (tests/unit/data_*_test.cpp): synthetic images,
// hand-built PNG files (16-bit, palette, bombs) and small file helpers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "repq/data/image.h"

namespace repq::test {

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// An image whose sample (x, y, c) is fn(x, y, c).
inline data::Image make_image(int w, int h, int c, const std::function<int(int, int, int)>& fn) {
  data::Image img;
  img.width = w;
  img.height = h;
  img.channels = c;
  img.pixels.resize(static_cast<size_t>(w) * h * c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k) img.pixels[(static_cast<size_t>(y) * w + x) * c + k] = static_cast<uint8_t>(fn(x, y, k));
  return img;
}

// A smooth, distinct test pattern.
inline data::Image pattern_image(int w, int h, int c, int seed = 0) {
  return make_image(w, h, c, [&](int x, int y, int k) { return (x * 7 + y * 13 + k * 50 + seed * 31) % 256; });
}

inline uint32_t crc32(const std::string& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char ch : data) {
    crc ^= ch;
    for (int i = 0; i < 8; ++i) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

inline std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

inline std::string png_chunk(const std::string& type, const std::string& data) {
  return be32(static_cast<uint32_t>(data.size())) + type + data + be32(crc32(type + data));
}

// zlib stream of stored (uncompressed) deflate blocks.
inline std::string zlib_stored(const std::string& raw) {
  std::string out = "\x78\x01";
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(65535, raw.size() - pos);
    const bool last = pos + n == raw.size();
    out += static_cast<char>(last ? 1 : 0);
    out += static_cast<char>(n & 0xFF);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(~n & 0xFF);
    out += static_cast<char>((~n >> 8) & 0xFF);
    out += raw.substr(pos, n);
    pos += n;
  } while (pos < raw.size());
  uint32_t a = 1, b = 0;
  for (unsigned char ch : raw) {
    a = (a + ch) % 65521;
    b = (b + a) % 65521;
  }
  return out + be32(b << 16 | a);
}

// A PNG from raw scanline bytes (filter byte 0 is prepended to each row). `extra` chunks
// (e.g. PLTE, tRNS) go before IDAT.
inline std::string make_png(uint32_t w, uint32_t h, int bit_depth, int color_type, const std::string& rows,
                            const std::string& extra = "") {
  std::string ihdr = be32(w) + be32(h);
  ihdr += static_cast<char>(bit_depth);
  ihdr += static_cast<char>(color_type);
  ihdr += std::string(3, '\0');
  std::string raw;
  const size_t row_bytes = h ? rows.size() / h : 0;
  for (uint32_t y = 0; y < h; ++y) raw += '\0' + rows.substr(y * row_bytes, row_bytes);
  return std::string("\x89PNG\r\n\x1A\n", 8) + png_chunk("IHDR", ihdr) + extra + png_chunk("IDAT", zlib_stored(raw)) +
         png_chunk("IEND", "");
}

// A PNG whose header declares w x h but holds almost nothing (a decompression bomb's header).
inline std::string png_bomb(uint32_t w, uint32_t h) {
  std::string ihdr = be32(w) + be32(h) + std::string("\x08\x02\0\0\0", 5);  // 8-bit RGB
  return std::string("\x89PNG\r\n\x1A\n", 8) + png_chunk("IHDR", ihdr) +
         png_chunk("IDAT", zlib_stored(std::string(16, '\0'))) + png_chunk("IEND", "");
}

inline std::vector<float> read_floats(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> v(s.size() / sizeof(float));
  std::copy(s.data(), s.data() + v.size() * sizeof(float), reinterpret_cast<char*>(v.data()));
  return v;
}

}  // namespace repq::test
