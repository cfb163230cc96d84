// libFuzzer target: image bytes -> probe_image and decode_image (JPEG, PNG, BMP, PNM, GIF)
// under a small pixel limit, in both colour modes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "repq/data/image.h"
#include "repq/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    (void)repq::data::probe_image(bytes, "fuzz.img");
  } catch (const repq::InputError&) {
  }
  repq::data::DecodeOptions opts;
  opts.max_pixels = 1 << 20;  // the bomb check is the same; keeps each run fast
  opts.color = size % 2 ? repq::data::ColorMode::kGrey : repq::data::ColorMode::kRGB;
  try {
    const auto img = repq::data::decode_image(bytes, "fuzz.img", opts);
    const size_t want = static_cast<size_t>(img.width) * img.height * img.channels;
    if (img.pixels.size() != want) __builtin_trap();  // decoder broke its own contract
  } catch (const repq::InputError&) {
  }
  return 0;
}
