// Helpers shared by the kernels: attribute checks, axis handling, typed dispatch.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "repq/error.h"
#include "repq/ir/graph.h"

namespace repq::runtime {

// Throws InputError when the node has an attribute not in `known` (an attribute repq does not
// interpret could change the result silently).
void check_attributes(const Node& node, std::initializer_list<std::string_view> known);

// Normalizes an axis in [-rank, rank) to [0, rank); throws InputError naming `what` otherwise.
int64_t normalize_axis(int64_t axis, int64_t rank, std::string_view what = "axis");
// The same for a list; throws on duplicates.
std::vector<int64_t> normalize_axes(const std::vector<int64_t>& axes, int64_t rank,
                                    std::string_view what = "axes");

// Values of an integer tensor (int32/int64) used as a shape, axes or indices.
std::vector<int64_t> int_values(const Tensor& t, std::string_view what);

// Throws InputError unless t is float32; `what` names the input ("input X").
void require_float(const Tensor& t, std::string_view what);

// Reads the ints attribute `name`, requiring `count` values when it is present (count >= 0).
std::vector<int64_t> ints_attr(const Node& node, std::string_view name, size_t count,
                               std::vector<int64_t> fallback);

// Outputs whose size comes from a tensor's VALUES rather than from the model's bytes
// (ConstantOfShape's shape, Resize's scales/sizes, Pad's pads): a 100-byte model could ask for
// terabytes. They are limited like one tensor of a model file (LoadOptions::max_tensor_bytes,
// 8 GiB) and its rank (LoadOptions::max_rank, 32). Throws InputError (the executor prefixes
// the node) on a negative dim, an element count over int64, or a size over the limit; `what`
// names the shape in the rank message.
inline constexpr uint64_t kMaxValueSizedBytes = uint64_t{8} << 30;
inline constexpr size_t kMaxValueSizedRank = 32;
void check_value_sized_output(const std::vector<int64_t>& dims, DType dtype,
                              std::string_view what = "input shape");

// a + b and a * b, or InputError "<what> overflows int64" (shape arithmetic on values).
int64_t checked_add(int64_t a, int64_t b, std::string_view what);
int64_t checked_mul(int64_t a, int64_t b, std::string_view what);

// Product of shape[begin, end).
int64_t dims_product(const Shape& shape, size_t begin, size_t end);

// Raw bytes per element, with a clear error for strings.
size_t element_size(const Tensor& t, std::string_view what);

// Parameters of a sliding window along one spatial axis (conv and pool).
struct WindowAxis {
  int64_t in = 0, out = 0, kernel = 1, stride = 1, dilation = 1, pad_begin = 0, pad_end = 0;
};

// auto_pad handling shared by Conv and the pools: fills pad_begin/pad_end and out.
// `auto_pad` is "NOTSET", "VALID", "SAME_UPPER" or "SAME_LOWER" (checked by the factory).
// ceil_mode drops a last window that would start in the end padding, as PyTorch does.
void resolve_window(WindowAxis& a, const std::string& auto_pad, bool ceil_mode);

// Checks an auto_pad attribute value; returns it.
std::string auto_pad_attr(const Node& node);

}  // namespace repq::runtime
