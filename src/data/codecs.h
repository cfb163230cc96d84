// Internal to src/data: the format-specific decoders behind decode_image().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "repq/data/image.h"

namespace repq::data::detail {

// Throws InputError("<name>: image is W x H = N pixels, over the limit of M") when
// max_pixels > 0 and width * height exceeds it.
void check_pixel_limit(int64_t width, int64_t height, int64_t max_pixels, const std::string& name);

// libjpeg-turbo. Decoded images have 1 (greyscale) or 3 (RGB; CMYK converted as PIL does)
// channels.
ImageInfo jpeg_probe(std::string_view bytes, const std::string& name);
Image jpeg_decode(std::string_view bytes, const std::string& name, int64_t max_pixels);

// stb_image (PNG, BMP, PNM, GIF). Decoded images have 1 or 3 channels: alpha dropped,
// 16-bit samples reduced to their high byte.
ImageInfo stb_probe(std::string_view bytes, const std::string& name);
Image stb_decode(std::string_view bytes, const std::string& name, int64_t max_pixels);

}  // namespace repq::data::detail
