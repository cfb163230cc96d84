// Format sniffing, dispatch to the decoders, colour conversion.
#include <algorithm>
#include <cctype>
#include <string>

#include "data/codecs.h"
#include "repq/common/atomic_file.h"
#include "repq/data/image.h"
#include "repq/error.h"

namespace repq::data {

namespace {
constexpr uint64_t kMaxFileBytes = uint64_t{1} << 30;  // 1 GiB: no sane calibration image

bool starts_with(std::string_view bytes, std::string_view magic) {
  return bytes.size() >= magic.size() && bytes.substr(0, magic.size()) == magic;
}
}  // namespace

namespace detail {
void check_pixel_limit(int64_t width, int64_t height, int64_t max_pixels, const std::string& name) {
  if (width <= 0 || height <= 0)
    throw InputError(name + ": invalid image size " + std::to_string(width) + "x" + std::to_string(height));
  if (max_pixels > 0 && width * height > max_pixels)
    throw InputError(name + ": image is " + std::to_string(width) + "x" + std::to_string(height) + " = " +
                     std::to_string(width * height) + " pixels, over the limit of " +
                     std::to_string(max_pixels) + " (refused before decoding)");
}
}  // namespace detail

ImageFormat sniff_format(std::string_view bytes) {
  if (starts_with(bytes, "\xFF\xD8\xFF")) return ImageFormat::kJpeg;
  if (starts_with(bytes, "\x89PNG\r\n\x1A\n")) return ImageFormat::kPng;
  if (starts_with(bytes, "BM") || starts_with(bytes, "GIF8") || starts_with(bytes, "P5") ||
      starts_with(bytes, "P6"))
    return ImageFormat::kOther;
  return ImageFormat::kUnknown;
}

ImageInfo probe_image(std::string_view bytes, const std::string& name) {
  if (bytes.empty()) throw InputError(name + ": empty file");
  switch (sniff_format(bytes)) {
    case ImageFormat::kJpeg: return detail::jpeg_probe(bytes, name);
    case ImageFormat::kPng:
    case ImageFormat::kOther: return detail::stb_probe(bytes, name);
    case ImageFormat::kUnknown: break;
  }
  throw InputError(name + ": not a JPEG, PNG, BMP, PNM or GIF image (unrecognized content)");
}

Image decode_image(std::string_view bytes, const std::string& name, const DecodeOptions& options) {
  if (bytes.empty()) throw InputError(name + ": empty file");
  Image img;
  switch (sniff_format(bytes)) {
    case ImageFormat::kJpeg: img = detail::jpeg_decode(bytes, name, options.max_pixels); break;
    case ImageFormat::kPng:
    case ImageFormat::kOther: img = detail::stb_decode(bytes, name, options.max_pixels); break;
    case ImageFormat::kUnknown:
      throw InputError(name + ": not a JPEG, PNG, BMP, PNM or GIF image (unrecognized content)");
  }
  return convert_color(std::move(img), options.color);
}

Image load_image(const std::string& path, const DecodeOptions& options) {
  const std::string bytes = read_file(path, kMaxFileBytes);
  return decode_image(bytes, path, options);
}

Image convert_color(Image image, ColorMode mode) {
  const int want = mode == ColorMode::kRGB ? 3 : 1;
  if (image.channels == want) return image;
  const size_t n = static_cast<size_t>(image.width) * static_cast<size_t>(image.height);
  std::vector<uint8_t> out(n * want);
  if (image.channels == 1 && want == 3) {
    for (size_t i = 0; i < n; ++i) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = image.pixels[i];
  } else if (image.channels == 3 && want == 1) {
    for (size_t i = 0; i < n; ++i) {
      const uint32_t r = image.pixels[i * 3], g = image.pixels[i * 3 + 1], b = image.pixels[i * 3 + 2];
      out[i] = static_cast<uint8_t>((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
    }
  } else {
    throw InternalError("convert_color: unsupported channel count " + std::to_string(image.channels));
  }
  image.pixels = std::move(out);
  image.channels = want;
  return image;
}

bool is_image_path(std::string_view path) {
  const size_t dot = path.rfind('.');
  if (dot == std::string_view::npos || path.find('/', dot) != std::string_view::npos) return false;
  std::string ext(path.substr(dot + 1));
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  static const char* const kExts[] = {"jpg", "jpeg", "png", "bmp", "ppm", "pgm", "pnm", "gif"};
  return std::any_of(std::begin(kExts), std::end(kExts), [&](const char* e) { return ext == e; });
}

}  // namespace repq::data
