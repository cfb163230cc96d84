// A dense tensor: element type, shape and a shared, copy-on-write byte buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace repq {

// Element types; the numeric values are ONNX's TensorProto::DataType.
enum class DType : int32_t {
  kUndefined = 0,
  kFloat32 = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kUInt16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kUInt32 = 12,
  kUInt64 = 13,
  kComplex64 = 14,
  kComplex128 = 15,
  kBFloat16 = 16,
};

// Bytes per element; 0 for kString and kUndefined.
size_t dtype_size(DType t);
// "float32", "int8", ... ("dtype(99)" for unknown values).
std::string dtype_name(DType t);
// True when the value is one of the enumerators above.
bool dtype_known(int32_t v);

template <class T>
constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::kFloat32; }
template <> constexpr DType dtype_of<double>() { return DType::kFloat64; }
template <> constexpr DType dtype_of<int8_t>() { return DType::kInt8; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::kUInt8; }
template <> constexpr DType dtype_of<int32_t>() { return DType::kInt32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::kInt64; }

using Shape = std::vector<int64_t>;

// Product of the dims; throws InputError when a dim is negative or the product overflows.
int64_t shape_numel(const Shape& shape);
// "[1,3,224,224]"
std::string shape_str(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled tensor.
  Tensor(DType dtype, Shape shape);
  // Copies `bytes` (must be numel * dtype_size bytes; throws InputError otherwise).
  static Tensor from_bytes(DType dtype, Shape shape, std::string_view bytes);
  template <class T>
  static Tensor from_vector(Shape shape, const std::vector<T>& values) {
    Tensor t(dtype_of<T>(), std::move(shape));
    std::copy(values.begin(), values.end(), t.mutable_data<T>());
    return t;
  }
  static Tensor scalar(float v) { return from_vector<float>({}, {v}); }
  static Tensor strings(Shape shape, std::vector<std::string> values);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  size_t rank() const { return shape_.size(); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  bool empty() const { return dtype_ == DType::kUndefined; }

  // Raw bytes (little endian, C order).
  const std::byte* raw() const { return buf_ ? buf_->data() : nullptr; }
  std::string_view bytes() const {
    return {reinterpret_cast<const char*>(raw()), nbytes()};
  }
  // Copy-on-write: clones the buffer first when it is shared with another Tensor.
  std::byte* mutable_raw();

  template <class T>
  const T* data() const {
    check_type(dtype_of<T>());
    return reinterpret_cast<const T*>(raw());
  }
  template <class T>
  T* mutable_data() {
    check_type(dtype_of<T>());
    return reinterpret_cast<T*>(mutable_raw());
  }
  template <class T>
  std::span<const T> span() const {
    return {data<T>(), static_cast<size_t>(numel_)};
  }
  template <class T>
  std::span<T> mutable_span() {
    return {mutable_data<T>(), static_cast<size_t>(numel_)};
  }
  const std::vector<std::string>& string_data() const { return strings_; }

  // Same data, new shape (numel must match; throws InputError otherwise).
  Tensor reshaped(Shape shape) const;
  // Converted to another numeric type (float16 / bfloat16 / float64 / ints -> float32 etc).
  Tensor cast(DType to) const;
  // Element values as double, whatever the numeric type (for small tensors: shapes, axes).
  std::vector<double> to_doubles() const;
  std::vector<int64_t> to_int64s() const;

  // Same dtype, shape and bytes.
  bool equals(const Tensor& other) const;

 private:
  void check_type(DType want) const;

  DType dtype_ = DType::kUndefined;
  Shape shape_;
  int64_t numel_ = 0;
  std::shared_ptr<std::vector<std::byte>> buf_;
  std::vector<std::string> strings_;
};

// IEEE half <-> float, round to nearest even.
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
float bfloat16_to_float(uint16_t h);

}  // namespace repq
