// Ops that move data without arithmetic, for any element type: Transpose, Concat, Split,
// Slice, Gather.
#include <algorithm>
#include <cstring>
#include <limits>

#include "runtime/kernel_util.h"
#include "runtime/kernels.h"

namespace repq::runtime {
namespace {

template <class T>
void strided_rows(const std::byte* src, std::byte* dst, const Shape& shape,
                  const std::vector<int64_t>& strides, int64_t rows) {
  const size_t r = shape.size();
  const int64_t inner = shape[r - 1], inner_stride = strides[r - 1];
  std::vector<int64_t> index(r - 1, 0);
  int64_t off = 0;
  T* d = reinterpret_cast<T*>(static_cast<void*>(dst));
  const T* s = reinterpret_cast<const T*>(static_cast<const void*>(src));
  for (int64_t row = 0; row < rows; ++row) {
    if (inner_stride == 1) {
      std::memcpy(d, s + off, static_cast<size_t>(inner) * sizeof(T));
    } else {
      for (int64_t i = 0; i < inner; ++i) d[i] = s[off + i * inner_stride];
    }
    d += inner;
    for (size_t k = r - 1; k-- > 0;) {
      off += strides[k];
      if (++index[k] < shape[k]) break;
      off -= strides[k] * shape[k];
      index[k] = 0;
    }
  }
}

// dst (contiguous, `shape`) [i...] = src[sum i_k * strides_k] (strides in elements).
void strided_copy(const std::byte* src, std::byte* dst, Shape shape, std::vector<int64_t> strides,
                  size_t es) {
  if (shape_numel(shape) == 0) return;
  // Drop size-1 dims and merge dims that are contiguous in the source.
  Shape s2;
  std::vector<int64_t> st2;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    if (!s2.empty() && st2.back() == strides[i] * shape[i]) {
      s2.back() *= shape[i];
      st2.back() = strides[i];
      continue;
    }
    s2.push_back(shape[i]);
    st2.push_back(strides[i]);
  }
  if (s2.empty()) {
    s2 = {1};
    st2 = {1};
  }
  const int64_t rows = shape_numel(s2) / s2.back();
  switch (es) {
    case 1: strided_rows<uint8_t>(src, dst, s2, st2, rows); break;
    case 2: strided_rows<uint16_t>(src, dst, s2, st2, rows); break;
    case 4: strided_rows<uint32_t>(src, dst, s2, st2, rows); break;
    case 8: strided_rows<uint64_t>(src, dst, s2, st2, rows); break;
    default: throw InputError("element size " + std::to_string(es) + " is not supported");
  }
}

std::vector<int64_t> contiguous_strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

void run_transpose(const std::vector<int64_t>& perm_attr, KernelCall& call) {
  const Tensor& x = call.input(0);
  const size_t es = element_size(x, "input");
  const size_t r = x.rank();
  std::vector<int64_t> perm = perm_attr;
  if (perm.empty())
    for (size_t i = 0; i < r; ++i) perm.push_back(static_cast<int64_t>(r - 1 - i));
  if (perm.size() != r)
    throw InputError("perm has " + std::to_string(perm.size()) + " values for an input of rank " +
                     std::to_string(r));
  perm = normalize_axes(perm, static_cast<int64_t>(r), "perm");
  const std::vector<int64_t> in_strides = contiguous_strides(x.shape());
  Shape out(r);
  std::vector<int64_t> strides(r);
  for (size_t i = 0; i < r; ++i) {
    out[i] = x.dim(static_cast<size_t>(perm[i]));
    strides[i] = in_strides[static_cast<size_t>(perm[i])];
  }
  Tensor y(x.dtype(), out);
  strided_copy(x.raw(), y.mutable_raw(), out, strides, es);
  call.set_output(0, std::move(y));
}

void run_concat(int64_t axis_attr, KernelCall& call) {
  const Tensor& first = call.input(0);
  const int64_t rank = static_cast<int64_t>(first.rank());
  const size_t axis = static_cast<size_t>(normalize_axis(axis_attr, rank));
  const size_t es = element_size(first, "input 0");
  Shape out = first.shape();
  out[axis] = 0;
  for (size_t i = 0; i < call.num_inputs(); ++i) {
    const Tensor& t = call.input(i);
    bool ok = t.dtype() == first.dtype() && t.rank() == first.rank();
    for (size_t d = 0; ok && d < t.rank(); ++d) ok = d == axis || t.dim(d) == first.dim(d);
    if (!ok)
      throw InputError("input " + std::to_string(i) + " (" + dtype_name(t.dtype()) +
                       shape_str(t.shape()) + ") does not match input 0 (" +
                       dtype_name(first.dtype()) + shape_str(first.shape()) + ") outside axis " +
                       std::to_string(axis));
    out[axis] += t.dim(axis);
  }
  Tensor y(first.dtype(), out);
  const int64_t outer = dims_product(out, 0, axis);
  const int64_t inner = dims_product(out, axis + 1, out.size()) * static_cast<int64_t>(es);
  std::byte* dst = y.mutable_raw();
  for (int64_t o = 0; o < outer; ++o) {
    for (size_t i = 0; i < call.num_inputs(); ++i) {
      const Tensor& t = call.input(i);
      const int64_t chunk = t.dim(axis) * inner;
      if (chunk == 0) continue;
      std::memcpy(dst, t.raw() + o * chunk, static_cast<size_t>(chunk));
      dst += chunk;
    }
  }
  call.set_output(0, std::move(y));
}

struct SplitAttrs {
  int64_t axis = 0;
  bool split_input = false;  // opset >= 13
  std::vector<int64_t> split;
  int64_t num_outputs = 0;  // opset >= 18
};

void run_split(const SplitAttrs& at, KernelCall& call) {
  const Tensor& x = call.input(0);
  const size_t es = element_size(x, "input");
  const size_t axis = static_cast<size_t>(normalize_axis(at.axis, static_cast<int64_t>(x.rank())));
  const int64_t dim = x.dim(axis);
  const int64_t n = static_cast<int64_t>(call.num_outputs());
  std::vector<int64_t> sizes = at.split;
  if (at.split_input && call.has_input(1)) sizes = int_values(call.input(1), "input split");
  if (sizes.empty()) {
    if (at.num_outputs > 0) {  // opset 18: ceil-sized chunks, the last one smaller
      const int64_t chunk = (dim + at.num_outputs - 1) / at.num_outputs;
      for (int64_t i = 0; i < n; ++i) sizes.push_back(std::max<int64_t>(0, std::min(chunk, dim - i * chunk)));
    } else {
      if (dim % n != 0)
        throw InputError("axis " + std::to_string(axis) + " of size " + std::to_string(dim) +
                         " does not split evenly into " + std::to_string(n) + " outputs");
      sizes.assign(static_cast<size_t>(n), dim / n);
    }
  }
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) throw InputError("split sizes must not be negative");
    total += s;
  }
  if (static_cast<int64_t>(sizes.size()) != n || total != dim)
    throw InputError("split sizes " + shape_str(sizes) + " do not cover axis " +
                     std::to_string(axis) + " of size " + std::to_string(dim) + " with " +
                     std::to_string(n) + " outputs");
  const int64_t outer = dims_product(x.shape(), 0, axis);
  const int64_t inner = dims_product(x.shape(), axis + 1, x.rank()) * static_cast<int64_t>(es);
  int64_t begin = 0;
  for (int64_t i = 0; i < n; ++i) {
    Shape s = x.shape();
    s[axis] = sizes[i];
    Tensor y(x.dtype(), s);
    std::byte* dst = y.mutable_raw();
    const int64_t chunk = sizes[i] * inner;
    for (int64_t o = 0; o < outer && chunk > 0; ++o)
      std::memcpy(dst + o * chunk, x.raw() + (o * dim + begin) * inner, static_cast<size_t>(chunk));
    begin += sizes[i];
    if (call.wants_output(static_cast<size_t>(i))) call.set_output(static_cast<size_t>(i), std::move(y));
  }
}

struct SliceAttrs {
  bool from_inputs = true;  // opset >= 10
  std::vector<int64_t> starts, ends, axes;
};

void run_slice(const SliceAttrs& at, KernelCall& call) {
  const Tensor& x = call.input(0);
  const size_t es = element_size(x, "input data");
  const int64_t rank = static_cast<int64_t>(x.rank());
  std::vector<int64_t> starts = at.starts, ends = at.ends, axes = at.axes, steps;
  if (at.from_inputs) {
    starts = int_values(call.input(1), "input starts");
    ends = int_values(call.input(2), "input ends");
    if (call.has_input(3)) axes = int_values(call.input(3), "input axes");
    if (call.has_input(4)) steps = int_values(call.input(4), "input steps");
  }
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    throw InputError("starts, ends, axes and steps must have the same length");
  axes = normalize_axes(axes, rank);
  Shape out = x.shape();
  std::vector<int64_t> strides = contiguous_strides(x.shape());
  int64_t offset = 0;
  for (size_t i = 0; i < axes.size(); ++i) {
    const size_t a = static_cast<size_t>(axes[i]);
    const int64_t d = x.dim(a), step = steps[i];
    if (step == 0) throw InputError("steps must not be 0");
    int64_t s = starts[i], e = ends[i];
    if (s < 0) s += d;
    if (e < 0) e += d;
    if (step > 0) {
      s = std::clamp<int64_t>(s, 0, d);
      e = std::clamp<int64_t>(e, 0, d);
    } else {
      s = std::clamp<int64_t>(s, 0, d - 1);
      e = std::clamp<int64_t>(e, -1, d - 1);
    }
    int64_t count = 0;
    if (step > 0 && e > s) count = (e - s + step - 1) / step;
    if (step < 0 && s > e) count = (s - e + (-step) - 1) / (-step);
    out[a] = count;
    if (count > 0) offset += s * strides[a];
    strides[a] *= step;
  }
  Tensor y(x.dtype(), out);
  if (y.numel() > 0)
    strided_copy(x.raw() + offset * static_cast<int64_t>(es), y.mutable_raw(), out, strides, es);
  call.set_output(0, std::move(y));
}

void run_gather(int64_t axis_attr, KernelCall& call) {
  const Tensor& x = call.input(0);
  const size_t es = element_size(x, "input data");
  const size_t axis = static_cast<size_t>(normalize_axis(axis_attr, static_cast<int64_t>(x.rank())));
  const Tensor& idx_t = call.input(1);
  const std::vector<int64_t> idx = int_values(idx_t, "input indices");
  const int64_t dim = x.dim(axis);
  Shape out(x.shape().begin(), x.shape().begin() + static_cast<std::ptrdiff_t>(axis));
  out.insert(out.end(), idx_t.shape().begin(), idx_t.shape().end());
  out.insert(out.end(), x.shape().begin() + static_cast<std::ptrdiff_t>(axis) + 1, x.shape().end());
  Tensor y(x.dtype(), out);
  const int64_t outer = dims_product(x.shape(), 0, axis);
  const int64_t inner = dims_product(x.shape(), axis + 1, x.rank()) * static_cast<int64_t>(es);
  std::byte* dst = y.mutable_raw();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t v : idx) {
      const int64_t i = v < 0 ? v + dim : v;
      if (i < 0 || i >= dim)
        throw InputError("index " + std::to_string(v) + " is out of range for axis " +
                         std::to_string(axis) + " of size " + std::to_string(dim));
      std::memcpy(dst, x.raw() + (o * dim + i) * inner, static_cast<size_t>(inner));
      dst += inner;
    }
  }
  call.set_output(0, std::move(y));
}

}  // namespace

Kernel make_transpose(const NodeContext& ctx) {
  check_attributes(ctx.node, {"perm"});
  const std::vector<int64_t> perm = ctx.node.attr_ints("perm");
  return [perm](KernelCall& call) { run_transpose(perm, call); };
}

Kernel make_concat(const NodeContext& ctx) {
  check_attributes(ctx.node, {"axis"});
  if (!ctx.node.has_attr("axis")) throw InputError("attribute 'axis' is required");
  const int64_t axis = ctx.node.attr_int("axis", 0);
  return [axis](KernelCall& call) { run_concat(axis, call); };
}

Kernel make_split(const NodeContext& ctx) {
  SplitAttrs at;
  at.split_input = ctx.opset >= 13;
  if (ctx.opset >= 18) {
    check_attributes(ctx.node, {"axis", "num_outputs"});
    at.num_outputs = ctx.node.attr_int("num_outputs", 0);
    if (at.num_outputs < 0 ||
        (at.num_outputs > 0 && static_cast<size_t>(at.num_outputs) != ctx.node.outputs.size()))
      throw InputError("num_outputs " + std::to_string(at.num_outputs) +
                       " does not match the node's " + std::to_string(ctx.node.outputs.size()) +
                       " outputs");
  } else if (at.split_input) {
    check_attributes(ctx.node, {"axis"});
  } else {
    check_attributes(ctx.node, {"axis", "split"});
    at.split = ctx.node.attr_ints("split");
  }
  at.axis = ctx.node.attr_int("axis", 0);
  return [at](KernelCall& call) { run_split(at, call); };
}

Kernel make_slice(const NodeContext& ctx) {
  SliceAttrs at;
  at.from_inputs = ctx.opset >= 10;
  if (at.from_inputs) {
    check_attributes(ctx.node, {});
  } else {
    check_attributes(ctx.node, {"starts", "ends", "axes"});
    at.starts = ctx.node.attr_ints("starts");
    at.ends = ctx.node.attr_ints("ends");
    at.axes = ctx.node.attr_ints("axes");
  }
  return [at](KernelCall& call) { run_slice(at, call); };
}

Kernel make_gather(const NodeContext& ctx) {
  check_attributes(ctx.node, {"axis"});
  const int64_t axis = ctx.node.attr_int("axis", 0);
  return [axis](KernelCall& call) { run_gather(axis, call); };
}

}  // namespace repq::runtime
