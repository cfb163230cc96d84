// Ops that only change the shape (no data copy): Identity, Dropout (inference), Reshape,
// Flatten, Squeeze, Unsqueeze; and Shape.
#include <algorithm>
#include <string>

#include "runtime/kernel_util.h"
#include "runtime/kernels.h"

namespace repq::runtime {
namespace {

// Output ranks taken from a tensor's values (a Reshape shape, Unsqueeze axes) are limited like
// the declared ranks of a model (LoadOptions::max_rank): a million axes would make the
// per-axis loops here and in later kernels quadratic.
constexpr size_t kMaxRank = 32;

void check_rank(size_t rank, const char* what) {
  if (rank > kMaxRank)
    throw InputError(std::string(what) + " rank " + std::to_string(rank) +
                     " is over repq's limit of " + std::to_string(kMaxRank));
}

// Axes from the attribute (before `input_from`) or from input 1 (from that opset on).
std::vector<int64_t> axes_of(const KernelCall& call, bool from_input,
                             const std::vector<int64_t>& attr) {
  if (!from_input) return attr;
  if (!call.has_input(1)) return {};
  return int_values(call.input(1), "input axes");
}

void run_reshape(bool allowzero, KernelCall& call) {
  const Tensor& x = call.input(0);
  const std::vector<int64_t> spec = int_values(call.input(1), "input shape");
  check_rank(spec.size(), "shape");
  Shape out(spec.size());
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < spec.size(); ++i) {
    int64_t d = spec[i];
    if (d == 0 && !allowzero) {
      if (i >= x.rank())
        throw InputError("shape " + shape_str(spec) + " copies dim " + std::to_string(i) +
                         " of an input of rank " + std::to_string(x.rank()));
      d = x.dim(i);
    }
    if (d == -1) {
      if (infer >= 0) throw InputError("shape " + shape_str(spec) + " has more than one -1");
      infer = static_cast<int64_t>(i);
      continue;
    }
    if (d < 0) throw InputError("shape " + shape_str(spec) + " has a negative dim");
    out[i] = d;
    if (__builtin_mul_overflow(known, d, &known))
      throw InputError("shape " + shape_str(spec) + " has more elements than int64 can count");
  }
  if (infer >= 0) {
    if (known == 0 || x.numel() % known != 0)
      throw InputError("cannot reshape " + shape_str(x.shape()) + " to " + shape_str(spec));
    out[static_cast<size_t>(infer)] = x.numel() / known;
  }
  if (shape_numel(out) != x.numel())
    throw InputError("cannot reshape " + shape_str(x.shape()) + " to " + shape_str(spec));
  call.set_output(0, call.take_input(0).reshaped(out));
}

void run_squeeze(bool from_input, const std::vector<int64_t>& attr, KernelCall& call) {
  const Tensor& x = call.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  std::vector<int64_t> axes = normalize_axes(axes_of(call, from_input, attr), rank);
  Shape out;
  for (int64_t i = 0; i < rank; ++i) {
    const bool listed = std::find(axes.begin(), axes.end(), i) != axes.end();
    if (listed && x.dim(i) != 1)
      throw InputError("cannot squeeze axis " + std::to_string(i) + " of shape " +
                       shape_str(x.shape()) + ": its size is not 1");
    const bool drop = axes.empty() ? x.dim(i) == 1 : listed;
    if (!drop) out.push_back(x.dim(i));
  }
  call.set_output(0, call.take_input(0).reshaped(out));
}

void run_unsqueeze(bool from_input, const std::vector<int64_t>& attr, KernelCall& call) {
  const Tensor& x = call.input(0);
  const std::vector<int64_t> raw = axes_of(call, from_input, attr);
  if (raw.empty()) throw InputError("axes are required");
  check_rank(x.rank() + raw.size(), "output");
  const int64_t rank = static_cast<int64_t>(x.rank() + raw.size());
  const std::vector<int64_t> axes = normalize_axes(raw, rank);
  Shape out;
  size_t next = 0;
  for (int64_t i = 0; i < rank; ++i) {
    if (std::find(axes.begin(), axes.end(), i) != axes.end()) {
      out.push_back(1);
    } else {
      out.push_back(x.dim(next++));
    }
  }
  call.set_output(0, call.take_input(0).reshaped(out));
}

}  // namespace

Kernel make_identity(const NodeContext& ctx) {
  check_attributes(ctx.node, {});
  return [](KernelCall& call) { call.set_output(0, call.take_input(0)); };
}

Kernel make_dropout(const NodeContext& ctx) {
  check_attributes(ctx.node, {"seed", "ratio", "is_test"});
  if (const Tensor* t = ctx.constant_input(2)) {
    if (t->numel() == 1 && t->to_doubles()[0] != 0.0)
      throw InputError("training_mode=true is not supported; repq runs the inference form");
  }
  return [](KernelCall& call) {
    if (call.has_input(2)) {
      const Tensor& t = call.input(2);
      if (t.numel() == 1 && t.to_doubles()[0] != 0.0)
        throw InputError("training_mode=true is not supported; repq runs the inference form");
    }
    if (call.wants_output(1)) {
      Tensor mask(DType::kBool, call.input(0).shape());
      std::fill(mask.mutable_raw(), mask.mutable_raw() + mask.nbytes(), std::byte{1});
      call.set_output(1, std::move(mask));
    }
    call.set_output(0, call.take_input(0));
  };
}

Kernel make_reshape(const NodeContext& ctx) {
  check_attributes(ctx.node, {"allowzero"});
  const bool allowzero = ctx.node.attr_int("allowzero", 0) != 0;
  return [allowzero](KernelCall& call) { run_reshape(allowzero, call); };
}

Kernel make_flatten(const NodeContext& ctx) {
  check_attributes(ctx.node, {"axis"});
  const int64_t axis_attr = ctx.node.attr_int("axis", 1);
  return [axis_attr](KernelCall& call) {
    const Tensor& x = call.input(0);
    const int64_t rank = static_cast<int64_t>(x.rank());
    if (axis_attr < -rank || axis_attr > rank)
      throw InputError("axis " + std::to_string(axis_attr) + " is out of range for rank " +
                       std::to_string(rank));
    const size_t axis = static_cast<size_t>(axis_attr < 0 ? axis_attr + rank : axis_attr);
    const Shape out = {dims_product(x.shape(), 0, axis), dims_product(x.shape(), axis, x.rank())};
    call.set_output(0, call.take_input(0).reshaped(out));
  };
}

Kernel make_squeeze(const NodeContext& ctx) {
  const bool from_input = ctx.opset >= 13;
  check_attributes(ctx.node, from_input ? std::initializer_list<std::string_view>{}
                                        : std::initializer_list<std::string_view>{"axes"});
  const std::vector<int64_t> attr = ctx.node.attr_ints("axes");
  return [from_input, attr](KernelCall& call) { run_squeeze(from_input, attr, call); };
}

Kernel make_unsqueeze(const NodeContext& ctx) {
  const bool from_input = ctx.opset >= 13;
  check_attributes(ctx.node, from_input ? std::initializer_list<std::string_view>{}
                                        : std::initializer_list<std::string_view>{"axes"});
  const std::vector<int64_t> attr = ctx.node.attr_ints("axes");
  return [from_input, attr](KernelCall& call) { run_unsqueeze(from_input, attr, call); };
}

Kernel make_shape(const NodeContext& ctx) {
  check_attributes(ctx.node, {"start", "end"});
  const int64_t start_attr = ctx.node.attr_int("start", 0);
  const bool has_end = ctx.node.has_attr("end");
  const int64_t end_attr = ctx.node.attr_int("end", 0);
  return [start_attr, has_end, end_attr](KernelCall& call) {
    const Shape& s = call.input(0).shape();
    const int64_t rank = static_cast<int64_t>(s.size());
    auto clampi = [rank](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + rank : v, 0, rank); };
    const int64_t b = clampi(start_attr), e = has_end ? clampi(end_attr) : rank;
    std::vector<int64_t> dims;
    for (int64_t i = b; i < e; ++i) dims.push_back(s[static_cast<size_t>(i)]);
    const int64_t n = static_cast<int64_t>(dims.size());
    call.set_output(0, Tensor::from_vector<int64_t>({n}, dims));
  };
}

}  // namespace repq::runtime
