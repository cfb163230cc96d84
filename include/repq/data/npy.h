// NumPy .npy files (format versions 1, 2 and 3): C order, little endian, any rank.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "repq/ir/tensor.h"

namespace repq::data {

struct NpyHeader {
  DType dtype = DType::kUndefined;  // as stored: float32, float64 or uint8
  Shape shape;
  size_t data_offset = 0;  // bytes before the array data
};

// Parses and checks the header: magic, version, dict with 'descr', 'fortran_order', 'shape'.
// Throws InputError("<name>: ...") for a malformed header, Fortran order, big-endian or an
// unsupported dtype (only <f4, <f8 and |u1 are read), or when `file_size` (if known, i.e. not
// UINT64_MAX) is not exactly data_offset + the array's bytes (truncated or trailing data).
NpyHeader parse_npy_header(std::string_view bytes, const std::string& name,
                           uint64_t file_size = UINT64_MAX);
// Reads only the header of a file (its first bytes).
NpyHeader read_npy_header(const std::string& path);

// Decodes a whole .npy held in memory. float64 becomes float32; uint8 stays uint8 unless
// `to_float` is set (then its values are converted unchanged: 0..255).
Tensor decode_npy(std::string_view bytes, const std::string& name, bool to_float = false);
Tensor read_npy(const std::string& path, bool to_float = false);

// A float32 or uint8 tensor as .npy bytes (format 1.0), and written atomically to a file.
std::string encode_npy(const Tensor& tensor);
void write_npy(const std::string& path, const Tensor& tensor);

}  // namespace repq::data
