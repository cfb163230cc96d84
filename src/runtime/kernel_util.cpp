#include "runtime/kernel_util.h"

#include <algorithm>

namespace repq::runtime {

void check_attributes(const Node& node, std::initializer_list<std::string_view> known) {
  for (const auto& a : node.attributes) {
    if (std::find(known.begin(), known.end(), a.name) == known.end())
      throw InputError("attribute '" + a.name + "' is not supported by repq's executor");
  }
}

int64_t normalize_axis(int64_t axis, int64_t rank, std::string_view what) {
  if (axis < -rank || axis >= rank)
    throw InputError(std::string(what) + " " + std::to_string(axis) + " is out of range for rank " +
                     std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

std::vector<int64_t> normalize_axes(const std::vector<int64_t>& axes, int64_t rank,
                                    std::string_view what) {
  std::vector<int64_t> out;
  out.reserve(axes.size());
  for (int64_t a : axes) {
    const int64_t n = normalize_axis(a, rank, what);
    if (std::find(out.begin(), out.end(), n) != out.end())
      throw InputError(std::string(what) + " lists axis " + std::to_string(a) + " twice");
    out.push_back(n);
  }
  return out;
}

std::vector<int64_t> int_values(const Tensor& t, std::string_view what) {
  if (t.dtype() != DType::kInt64 && t.dtype() != DType::kInt32)
    throw InputError(std::string(what) + " must be int64, not " + dtype_name(t.dtype()));
  return t.to_int64s();
}

void require_float(const Tensor& t, std::string_view what) {
  if (t.dtype() != DType::kFloat32)
    throw InputError(std::string(what) + " is " + dtype_name(t.dtype()) +
                     "; repq's executor only supports float32 here");
}

std::vector<int64_t> ints_attr(const Node& node, std::string_view name, size_t count,
                               std::vector<int64_t> fallback) {
  const Attribute* a = node.attr(name);
  if (!a) return fallback;
  if (a->kind != Attribute::Kind::kInts)
    throw InputError("attribute '" + std::string(name) + "' must be a list of ints");
  if (a->ints.size() != count)
    throw InputError("attribute '" + std::string(name) + "' has " + std::to_string(a->ints.size()) +
                     " values; expected " + std::to_string(count));
  return a->ints;
}

int64_t dims_product(const Shape& shape, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end && i < shape.size(); ++i) n *= shape[i];
  return n;
}

size_t element_size(const Tensor& t, std::string_view what) {
  const size_t s = dtype_size(t.dtype());
  if (s == 0)
    throw InputError(std::string(what) + " has type " + dtype_name(t.dtype()) +
                     ", which repq's executor does not support");
  return s;
}

std::string auto_pad_attr(const Node& node) {
  std::string ap = node.attr_string("auto_pad", "NOTSET");
  if (ap.empty()) ap = "NOTSET";
  if (ap != "NOTSET" && ap != "VALID" && ap != "SAME_UPPER" && ap != "SAME_LOWER")
    throw InputError("auto_pad '" + ap + "' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER");
  return ap;
}

void resolve_window(WindowAxis& a, const std::string& auto_pad, bool ceil_mode) {
  const int64_t span = (a.kernel - 1) * a.dilation + 1;
  if (auto_pad == "VALID") {
    a.pad_begin = a.pad_end = 0;
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    const int64_t target = (a.in + a.stride - 1) / a.stride;
    const int64_t total = std::max<int64_t>(0, (target - 1) * a.stride + span - a.in);
    const int64_t small = total / 2;
    a.pad_begin = auto_pad == "SAME_UPPER" ? small : total - small;
    a.pad_end = total - a.pad_begin;
  }
  const int64_t room = a.in + a.pad_begin + a.pad_end - span;
  if (room < 0)
    throw InputError("window of " + std::to_string(span) + " does not fit the input of " +
                     std::to_string(a.in) + " (with pads " + std::to_string(a.pad_begin) + "," +
                     std::to_string(a.pad_end) + ")");
  a.out = room / a.stride + 1;
  if (ceil_mode && room % a.stride != 0) {
    a.out += 1;
    // A last window starting inside the end padding is dropped.
    if ((a.out - 1) * a.stride >= a.in + a.pad_begin) a.out -= 1;
  }
}

void check_value_sized_output(const std::vector<int64_t>& dims, DType dtype, std::string_view what) {
  if (dims.size() > kMaxValueSizedRank)
    throw InputError(std::string(what) + " has " + std::to_string(dims.size()) +
                     " dims, over repq's limit of " + std::to_string(kMaxValueSizedRank));
  for (int64_t d : dims)
    if (d < 0) throw InputError(std::string(what) + " " + shape_str(dims) + " has a negative dim");
  const auto numel = static_cast<uint64_t>(shape_numel(dims));  // throws on int64 overflow
  const uint64_t es = dtype_size(dtype);
  if (es != 0 && numel > kMaxValueSizedBytes / es)
    throw InputError("output shape " + shape_str(dims) + " of " + dtype_name(dtype) + " needs " +
                     (numel > UINT64_MAX / es ? std::string("more than 2^64")
                                              : std::to_string(numel * es)) +
                     " bytes, over the executor's limit of " + std::to_string(kMaxValueSizedBytes) +
                     " for a tensor sized by values (8 GiB); refused");
}

int64_t checked_add(int64_t a, int64_t b, std::string_view what) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) throw InputError(std::string(what) + " overflows int64");
  return r;
}

int64_t checked_mul(int64_t a, int64_t b, std::string_view what) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) throw InputError(std::string(what) + " overflows int64");
  return r;
}

}  // namespace repq::runtime
