// .npy reading and writing (NumPy format versions 1.0, 2.0, 3.0).
#include "repq/data/npy.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "repq/common/atomic_file.h"
#include "repq/error.h"

namespace repq::data {

namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr size_t kMaxHeader = size_t{1} << 20;

// A cursor over the header's Python dict literal.
class DictParser {
 public:
  DictParser(std::string_view text, const std::string& name) : s_(text), name_(name) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(name_ + ": malformed .npy header: " + what);
  }
  void ws() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool eat(char c) {
    ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) fail(std::string("expected '") + c + "'");
  }
  std::string str() {
    ws();
    if (i_ >= s_.size() || (s_[i_] != '\'' && s_[i_] != '"')) fail("expected a quoted string");
    const char q = s_[i_++];
    const size_t end = s_.find(q, i_);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string out(s_.substr(i_, end - i_));
    i_ = end + 1;
    return out;
  }
  std::string word() {
    ws();
    const size_t b = i_;
    while (i_ < s_.size() && std::isalnum(static_cast<unsigned char>(s_[i_]))) ++i_;
    return std::string(s_.substr(b, i_ - b));
  }
  Shape tuple() {
    expect('(');
    Shape shape;
    while (!eat(')')) {
      ws();
      const size_t b = i_;
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
      if (b == i_ || i_ - b > 15) fail("expected a dimension in the shape");
      shape.push_back(std::stoll(std::string(s_.substr(b, i_ - b))));
      if (!eat(',')) {
        expect(')');
        break;
      }
    }
    return shape;
  }

 private:
  std::string_view s_;
  const std::string& name_;
  size_t i_ = 0;
};

DType parse_descr(const std::string& d, const std::string& name) {
  if (d.size() >= 2 && d[0] == '>' && d.substr(1) != "u1" && d.substr(1) != "i1")
    throw InputError(name + ": big-endian .npy data ('" + d + "') is not supported");
  if (d == "<f4" || d == "=f4") return DType::kFloat32;
  if (d == "<f8" || d == "=f8") return DType::kFloat64;
  if (d == "|u1" || d == "<u1" || d == ">u1" || d == "=u1") return DType::kUInt8;
  throw InputError(name + ": unsupported .npy dtype '" + d + "' (float32, float64 or uint8 expected)");
}

}  // namespace

NpyHeader parse_npy_header(std::string_view bytes, const std::string& name, uint64_t file_size) {
  if (bytes.empty()) throw InputError(name + ": empty file");
  if (bytes.size() < 10 || bytes.substr(0, 6) != kMagic) throw InputError(name + ": not a .npy file (bad magic)");
  const auto byte = [&](size_t i) { return static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])); };
  const int major = static_cast<int>(byte(6));
  size_t header_len = 0, prefix = 0;
  if (major == 1) {
    header_len = byte(8) | byte(9) << 8;
    prefix = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw InputError(name + ": truncated .npy header");
    header_len = byte(8) | byte(9) << 8 | byte(10) << 16 | byte(11) << 24;
    prefix = 12;
  } else {
    throw InputError(name + ": unsupported .npy format version " + std::to_string(major));
  }
  if (header_len > kMaxHeader) throw InputError(name + ": malformed .npy header: header too long");
  if (bytes.size() < prefix + header_len) throw InputError(name + ": truncated .npy header");

  DictParser p(bytes.substr(prefix, header_len), name);
  NpyHeader h;
  h.data_offset = prefix + header_len;
  bool have_descr = false, have_order = false, have_shape = false;
  p.expect('{');
  while (!p.eat('}')) {
    const std::string key = p.str();
    p.expect(':');
    if (key == "descr") {
      h.dtype = parse_descr(p.str(), name);
      have_descr = true;
    } else if (key == "fortran_order") {
      const std::string v = p.word();
      if (v == "True") throw InputError(name + ": Fortran-order .npy arrays are not supported (save C order)");
      if (v != "False") p.fail("fortran_order must be True or False");
      have_order = true;
    } else if (key == "shape") {
      h.shape = p.tuple();
      have_shape = true;
    } else {
      p.fail("unexpected key '" + key + "'");
    }
    if (!p.eat(',')) {
      p.expect('}');
      break;
    }
  }
  if (!have_descr || !have_order || !have_shape) p.fail("missing 'descr', 'fortran_order' or 'shape'");
  int64_t numel = 0;
  try {
    numel = shape_numel(h.shape);
  } catch (const InputError&) {
    p.fail("shape too large");
  }
  if (file_size != UINT64_MAX) {
    const uint64_t want = h.data_offset + static_cast<uint64_t>(numel) * dtype_size(h.dtype);
    if (file_size < want)
      throw InputError(name + ": truncated .npy data: " + std::to_string(file_size) + " bytes, shape " +
                       shape_str(h.shape) + " " + dtype_name(h.dtype) + " needs " + std::to_string(want));
    if (file_size > want)
      throw InputError(name + ": .npy file has " + std::to_string(file_size - want) +
                       " bytes after the array data (corrupt?)");
  }
  return h;
}

NpyHeader read_npy_header(const std::string& path) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) throw InputError(path + ": cannot open: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open");
  const auto read_head = [&](size_t n) {
    std::string head(static_cast<size_t>(std::min<uint64_t>(size, n)), '\0');
    in.seekg(0);
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    if (!in) throw InputError(path + ": read error");
    return head;
  };
  std::string head = read_head(4096);
  // A longer header than the first read holds: read exactly the declared length.
  if (head.size() >= 12 && head.compare(0, kMagic.size(), kMagic) == 0) {
    const auto b = [&](size_t i) { return static_cast<size_t>(static_cast<unsigned char>(head[i])); };
    const size_t prefix = head[6] == 1 ? 10 : 12;
    const size_t len = prefix == 10 ? (b(8) | b(9) << 8) : (b(8) | b(9) << 8 | b(10) << 16 | b(11) << 24);
    if (prefix + len > head.size() && len <= kMaxHeader) head = read_head(prefix + len);
  }
  return parse_npy_header(head, path, size);
}

Tensor decode_npy(std::string_view bytes, const std::string& name, bool to_float) {
  const NpyHeader h = parse_npy_header(bytes, name, bytes.size());
  Tensor t = Tensor::from_bytes(h.dtype, h.shape, bytes.substr(h.data_offset));
  if (h.dtype == DType::kFloat64 || (to_float && h.dtype == DType::kUInt8)) t = t.cast(DType::kFloat32);
  return t;
}

Tensor read_npy(const std::string& path, bool to_float) {
  return decode_npy(read_file(path), path, to_float);
}

std::string encode_npy(const Tensor& tensor) {
  const char* descr = nullptr;
  switch (tensor.dtype()) {
    case DType::kFloat32: descr = "<f4"; break;
    case DType::kFloat64: descr = "<f8"; break;
    case DType::kUInt8: descr = "|u1"; break;
    default: throw InputError("cannot write " + dtype_name(tensor.dtype()) + " as .npy (float32, float64 or uint8)");
  }
  std::string shape = "(";
  for (size_t i = 0; i < tensor.rank(); ++i) shape += std::to_string(tensor.dim(i)) + (tensor.rank() == 1 ? "," : i + 1 < tensor.rank() ? ", " : "");
  shape += ")";
  std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string out(kMagic);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xFF);
  out += static_cast<char>((dict.size() >> 8) & 0xFF);
  out += dict;
  out.append(tensor.bytes());
  return out;
}

void write_npy(const std::string& path, const Tensor& tensor) { write_file_atomic(path, encode_npy(tensor)); }

}  // namespace repq::data
