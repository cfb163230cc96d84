// libFuzzer target: .npy bytes -> decode_npy (header parser, size checks, dtype conversion).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "repq/data/npy.h"
#include "repq/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const repq::Tensor t = repq::data::decode_npy(bytes, "fuzz.npy", /*to_float=*/true);
    (void)repq::data::encode_npy(t);
  } catch (const repq::InputError&) {
  }
  try {
    (void)repq::data::parse_npy_header(bytes, "fuzz.npy");  // header only, size unknown
  } catch (const repq::InputError&) {
  }
  return 0;
}
