#include "repq/ir/tensor.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "repq/error.h"

namespace repq {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kFloat32: case DType::kInt32: case DType::kUInt32: return 4;
    case DType::kUInt8: case DType::kInt8: case DType::kBool: return 1;
    case DType::kUInt16: case DType::kInt16: case DType::kFloat16: case DType::kBFloat16: return 2;
    case DType::kInt64: case DType::kFloat64: case DType::kUInt64: case DType::kComplex64: return 8;
    case DType::kComplex128: return 16;
    case DType::kString: case DType::kUndefined: return 0;
  }
  return 0;
}

bool dtype_known(int32_t v) { return v >= 0 && v <= 16; }

std::string dtype_name(DType t) {
  switch (t) {
    case DType::kUndefined: return "undefined";
    case DType::kFloat32: return "float32";
    case DType::kUInt8: return "uint8";
    case DType::kInt8: return "int8";
    case DType::kUInt16: return "uint16";
    case DType::kInt16: return "int16";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kString: return "string";
    case DType::kBool: return "bool";
    case DType::kFloat16: return "float16";
    case DType::kFloat64: return "float64";
    case DType::kUInt32: return "uint32";
    case DType::kUInt64: return "uint64";
    case DType::kComplex64: return "complex64";
    case DType::kComplex128: return "complex128";
    case DType::kBFloat16: return "bfloat16";
  }
  return "dtype(" + std::to_string(static_cast<int>(t)) + ")";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw InputError("negative dimension in shape " + shape_str(shape));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      throw InputError("shape " + shape_str(shape) + " has more elements than int64 can count");
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  numel_ = shape_numel(shape_);
  const size_t es = dtype_size(dtype_);
  if (es != 0 && static_cast<uint64_t>(numel_) > std::numeric_limits<uint64_t>::max() / es)
    throw InputError("tensor of shape " + shape_str(shape_) + " is too large");
  if (dtype_ == DType::kString) {
    strings_.resize(static_cast<size_t>(numel_));
  } else {
    buf_ = std::make_shared<std::vector<std::byte>>(nbytes());
  }
}

Tensor Tensor::from_bytes(DType dtype, Shape shape, std::string_view bytes) {
  const int64_t n = shape_numel(shape);
  const size_t need = static_cast<size_t>(n) * dtype_size(dtype);
  if (bytes.size() != need)
    throw InputError("has " + std::to_string(bytes.size()) + " bytes of data but shape " +
                     shape_str(shape) + " of " + dtype_name(dtype) + " needs " +
                     std::to_string(need));
  Tensor t(dtype, std::move(shape));
  if (need) std::memcpy(t.mutable_raw(), bytes.data(), need);
  return t;
}

Tensor Tensor::strings(Shape shape, std::vector<std::string> values) {
  Tensor t(DType::kString, std::move(shape));
  if (values.size() != static_cast<size_t>(t.numel_))
    throw InputError("has " + std::to_string(values.size()) + " strings but shape " +
                     shape_str(t.shape_) + " needs " + std::to_string(t.numel_));
  t.strings_ = std::move(values);
  return t;
}

std::byte* Tensor::mutable_raw() {
  if (!buf_) return nullptr;
  if (buf_.use_count() > 1) buf_ = std::make_shared<std::vector<std::byte>>(*buf_);
  return buf_->data();
}

void Tensor::check_type(DType want) const {
  if (want != dtype_)
    throw InternalError("tensor of type " + dtype_name(dtype_) + " accessed as " +
                        dtype_name(want));
}

Tensor Tensor::reshaped(Shape shape) const {
  if (shape_numel(shape) != numel_)
    throw InputError("cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t float_to_half(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u)  // inf or nan
    return static_cast<uint16_t>(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0u));
  if (absx >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (absx < 0x38800000u) {  // subnormal or zero in half
    const float a = std::bit_cast<float>(absx);
    // scale so that the subnormal step (2^-24) becomes 1, round to nearest even
    const float scaled = a * 16777216.0f;
    const auto r = static_cast<uint32_t>(std::nearbyint(scaled));
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t mant = absx & 0x7fffffu;
  uint32_t exp = (absx >> 23) - 127 + 15;
  uint32_t h = (exp << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

float bfloat16_to_float(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

namespace {

template <class Fn>
void for_each_value(const Tensor& t, Fn&& fn) {
  const std::byte* p = t.raw();
  const auto n = static_cast<size_t>(t.numel());
  auto load = [&]<class T>(T*) {
    for (size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, p + i * sizeof(T), sizeof(T));
      fn(i, static_cast<double>(v));
    }
  };
  switch (t.dtype()) {
    case DType::kFloat32: load(static_cast<float*>(nullptr)); break;
    case DType::kFloat64: load(static_cast<double*>(nullptr)); break;
    case DType::kInt8: load(static_cast<int8_t*>(nullptr)); break;
    case DType::kUInt8: load(static_cast<uint8_t*>(nullptr)); break;
    case DType::kBool: load(static_cast<uint8_t*>(nullptr)); break;
    case DType::kInt16: load(static_cast<int16_t*>(nullptr)); break;
    case DType::kUInt16: load(static_cast<uint16_t*>(nullptr)); break;
    case DType::kInt32: load(static_cast<int32_t*>(nullptr)); break;
    case DType::kUInt32: load(static_cast<uint32_t*>(nullptr)); break;
    case DType::kInt64: load(static_cast<int64_t*>(nullptr)); break;
    case DType::kUInt64: load(static_cast<uint64_t*>(nullptr)); break;
    case DType::kFloat16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + i * 2, 2);
        fn(i, static_cast<double>(half_to_float(h)));
      }
      break;
    case DType::kBFloat16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + i * 2, 2);
        fn(i, static_cast<double>(bfloat16_to_float(h)));
      }
      break;
    default:
      throw InputError("cannot convert a " + dtype_name(t.dtype()) + " tensor to numbers");
  }
}

}  // namespace

std::vector<double> Tensor::to_doubles() const {
  std::vector<double> out(static_cast<size_t>(numel_));
  for_each_value(*this, [&](size_t i, double v) { out[i] = v; });
  return out;
}

std::vector<int64_t> Tensor::to_int64s() const {
  if (dtype_ == DType::kInt64) return {data<int64_t>(), data<int64_t>() + numel_};
  std::vector<int64_t> out(static_cast<size_t>(numel_));
  for_each_value(*this, [&](size_t i, double v) { out[i] = static_cast<int64_t>(v); });
  return out;
}

Tensor Tensor::cast(DType to) const {
  if (to == dtype_) return *this;
  Tensor out(to, shape_);
  std::byte* o = out.mutable_raw();
  auto store = [&]<class T>(T*) {
    for_each_value(*this, [&](size_t i, double v) {
      const T x = static_cast<T>(v);
      std::memcpy(o + i * sizeof(T), &x, sizeof(T));
    });
  };
  switch (to) {
    case DType::kFloat32: store(static_cast<float*>(nullptr)); break;
    case DType::kFloat64: store(static_cast<double*>(nullptr)); break;
    case DType::kInt8: store(static_cast<int8_t*>(nullptr)); break;
    case DType::kUInt8: store(static_cast<uint8_t*>(nullptr)); break;
    case DType::kInt32: store(static_cast<int32_t*>(nullptr)); break;
    case DType::kInt64: store(static_cast<int64_t*>(nullptr)); break;
    case DType::kBool:
      for_each_value(*this, [&](size_t i, double v) { o[i] = std::byte{v != 0.0}; });
      break;
    case DType::kFloat16:
      for_each_value(*this, [&](size_t i, double v) {
        const uint16_t h = float_to_half(static_cast<float>(v));
        std::memcpy(o + i * 2, &h, 2);
      });
      break;
    default:
      throw InputError("cannot convert a tensor to " + dtype_name(to));
  }
  return out;
}

bool Tensor::equals(const Tensor& other) const {
  if (dtype_ != other.dtype_ || shape_ != other.shape_) return false;
  if (dtype_ == DType::kString) return strings_ == other.strings_;
  return nbytes() == 0 || std::memcmp(raw(), other.raw(), nbytes()) == 0;
}

}  // namespace repq
