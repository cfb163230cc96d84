// Pad: constant, reflect, edge and wrap modes, any element type; pads (negative ones crop),
// constant_value and axes as inputs from opset 11 (axes from 18), as attributes before.
#include <cstring>

#include "runtime/kernel_util.h"
#include "runtime/kernels.h"

namespace repq::runtime {
namespace {

enum class PadMode { kConstant, kReflect, kEdge, kWrap };

struct PadAttrs {
  PadMode mode = PadMode::kConstant;
  bool from_inputs = true;  // opset >= 11
  std::vector<int64_t> pads;
  float value = 0.0f;
};

// Input index for output index o along an axis of size d padded by `before`; -1: constant.
int64_t source_index(int64_t o, int64_t d, int64_t before, PadMode mode) {
  int64_t i = o - before;
  if (i >= 0 && i < d) return i;
  switch (mode) {
    case PadMode::kConstant: return -1;
    case PadMode::kEdge: return i < 0 ? 0 : d - 1;
    case PadMode::kWrap: return ((i % d) + d) % d;
    case PadMode::kReflect:
      if (d == 1) return 0;
      while (i < 0 || i >= d) i = i < 0 ? -i : 2 * (d - 1) - i;
      return i;
  }
  return -1;
}

template <class T>
void pad_typed(const Tensor& x, Tensor& y, const std::vector<std::vector<int64_t>>& maps, T value) {
  const Shape& os = y.shape();
  const size_t r = os.size();
  const T* src = x.data<T>();
  T* dst = y.mutable_data<T>();
  std::vector<int64_t> in_strides(r, 1);
  for (size_t i = r; i-- > 1;) in_strides[i - 1] = in_strides[i] * x.dim(i);
  const int64_t inner = os[r - 1];
  const int64_t rows = inner == 0 ? 0 : y.numel() / inner;
  const std::vector<int64_t>& last = maps[r - 1];
  std::vector<int64_t> index(r - 1, 0);
  for (int64_t row = 0; row < rows; ++row) {
    int64_t off = 0;
    bool constant_row = false;
    for (size_t k = 0; k + 1 < r; ++k) {
      const int64_t i = maps[k][index[k]];
      if (i < 0) constant_row = true;
      off += i * in_strides[k];
    }
    T* d = dst + row * inner;
    if (constant_row) {
      std::fill(d, d + inner, value);
    } else {
      for (int64_t o = 0; o < inner; ++o) d[o] = last[o] < 0 ? value : src[off + last[o]];
    }
    for (size_t k = r - 1; k-- > 0;) {
      if (++index[k] < os[k]) break;
      index[k] = 0;
    }
  }
}

void run_pad(const PadAttrs& at, KernelCall& call) {
  const Tensor& x = call.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  std::vector<int64_t> pads = at.pads;
  double value = at.value;
  std::vector<int64_t> axes;
  if (at.from_inputs) {
    pads = int_values(call.input(1), "input pads");
    if (call.has_input(2)) {
      const Tensor& v = call.input(2);
      if (v.numel() > 1) throw InputError("input constant_value must be a scalar");
      if (v.numel() == 1) {
        if (v.dtype() != x.dtype())
          throw InputError("input constant_value is " + dtype_name(v.dtype()) + ", data is " +
                           dtype_name(x.dtype()));
        value = v.to_doubles()[0];
      }
    }
    if (call.has_input(3)) axes = normalize_axes(int_values(call.input(3), "input axes"), rank);
  }
  if (axes.empty())
    for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
  const size_t na = axes.size();
  if (pads.size() != 2 * na)
    throw InputError("pads has " + std::to_string(pads.size()) + " values; expected " +
                     std::to_string(2 * na));
  if (rank == 0) {
    call.set_output(0, x);
    return;
  }
  Shape out = x.shape();
  std::vector<int64_t> before(static_cast<size_t>(rank), 0);
  for (size_t i = 0; i < na; ++i) {
    const size_t a = static_cast<size_t>(axes[i]);
    before[a] = pads[i];
    const std::string what = "pads " + shape_str(pads) + ": the output size";
    out[a] = checked_add(checked_add(x.dim(a), pads[i], what), pads[i + na], what);
    if (out[a] < 0) throw InputError("pads " + shape_str(pads) + " crop more than the input has");
    if (at.mode != PadMode::kConstant && x.dim(a) == 0 && out[a] > 0)
      throw InputError("cannot pad an empty axis in this mode");
  }
  check_value_sized_output(out, x.dtype(), "output shape");  // pads are values: limited
  if (shape_numel(out) == 0) {  // no per-axis maps for an empty output (an axis may be huge)
    call.set_output(0, Tensor(x.dtype(), out));
    return;
  }
  std::vector<std::vector<int64_t>> maps(static_cast<size_t>(rank));
  for (size_t a = 0; a < maps.size(); ++a) {
    maps[a].resize(static_cast<size_t>(out[a]));
    for (int64_t o = 0; o < out[a]; ++o)
      maps[a][static_cast<size_t>(o)] = source_index(o, x.dim(a), before[a], at.mode);
  }
  Tensor y(x.dtype(), out);
  switch (x.dtype()) {
    case DType::kFloat32: pad_typed<float>(x, y, maps, static_cast<float>(value)); break;
    case DType::kInt64: pad_typed<int64_t>(x, y, maps, static_cast<int64_t>(value)); break;
    case DType::kInt32: pad_typed<int32_t>(x, y, maps, static_cast<int32_t>(value)); break;
    case DType::kInt8: pad_typed<int8_t>(x, y, maps, static_cast<int8_t>(value)); break;
    case DType::kUInt8: pad_typed<uint8_t>(x, y, maps, static_cast<uint8_t>(value)); break;
    default:
      throw InputError("data is " + dtype_name(x.dtype()) +
                       "; repq's executor pads float32, int64, int32, int8 and uint8");
  }
  call.set_output(0, std::move(y));
}

}  // namespace

Kernel make_pad(const NodeContext& ctx) {
  PadAttrs at;
  at.from_inputs = ctx.opset >= 11;
  if (at.from_inputs) {
    check_attributes(ctx.node, {"mode"});
  } else {
    check_attributes(ctx.node, {"mode", "pads", "value"});
    at.pads = ctx.node.attr_ints("pads");
    at.value = ctx.node.attr_float("value", 0.0f);
  }
  const std::string mode = ctx.node.attr_string("mode", "constant");
  if (mode == "constant") {
    at.mode = PadMode::kConstant;
  } else if (mode == "reflect") {
    at.mode = PadMode::kReflect;
  } else if (mode == "edge") {
    at.mode = PadMode::kEdge;
  } else if (mode == "wrap" && ctx.opset >= 19) {
    at.mode = PadMode::kWrap;
  } else {
    throw InputError("mode '" + mode + "' is not supported");
  }
  return [at](KernelCall& call) { run_pad(at, call); };
}

}  // namespace repq::runtime
