// ReduceMean (axes as an attribute before opset 18, as an input from 18; keepdims;
// noop_with_empty_axes). Sums in double.
#include <algorithm>

#include "runtime/broadcast.h"
#include "runtime/kernel_util.h"
#include "runtime/kernels.h"

namespace repq::runtime {
namespace {

struct ReduceAttrs {
  bool axes_input = false;
  std::vector<int64_t> axes;
  bool keepdims = true;
  bool noop_with_empty_axes = false;
};

void run_reduce_mean(const ReduceAttrs& at, KernelCall& call) {
  const Tensor& x = call.input(0);
  require_float(x, "input data");
  std::vector<int64_t> axes = at.axes;
  if (at.axes_input && call.has_input(1)) axes = int_values(call.input(1), "input axes");
  const int64_t rank = static_cast<int64_t>(x.rank());
  if (axes.empty()) {
    if (at.noop_with_empty_axes) {
      call.set_output(0, x);
      return;
    }
    for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
  }
  axes = normalize_axes(axes, rank);
  Shape kept = x.shape();
  for (int64_t a : axes) kept[a] = 1;
  const int64_t out_n = shape_numel(kept);
  const int64_t count = out_n == 0 ? 0 : x.numel() / std::max<int64_t>(out_n, 1);
  std::vector<double> sums(static_cast<size_t>(out_n), 0.0);
  const BroadcastPlan plan = plan_broadcast(kept, kept, x.shape());
  const float* xd = x.data<float>();
  BroadcastCursor cur(plan, 0);
  for (int64_t r = 0; r < plan.outer; ++r, cur.next()) {
    const float* row = xd + r * plan.inner;
    if (plan.inner_stride_a == 0) {
      double s = 0.0;
      for (int64_t i = 0; i < plan.inner; ++i) s += row[i];
      sums[cur.offset_a] += s;
    } else {
      for (int64_t i = 0; i < plan.inner; ++i) sums[cur.offset_a + i] += row[i];
    }
  }
  Shape out_shape;
  for (int64_t i = 0; i < rank; ++i) {
    const bool reduced = std::find(axes.begin(), axes.end(), i) != axes.end();
    if (!reduced || at.keepdims) out_shape.push_back(reduced ? 1 : x.dim(i));
  }
  Tensor y = call.alloc(DType::kFloat32, out_shape);
  float* yd = y.mutable_data<float>();
  for (int64_t i = 0; i < out_n; ++i)
    yd[i] = static_cast<float>(sums[i] / static_cast<double>(count));
  call.set_output(0, std::move(y));
}

}  // namespace

Kernel make_reduce_mean(const NodeContext& ctx) {
  ReduceAttrs at;
  at.axes_input = ctx.opset >= 18;
  if (at.axes_input) {
    check_attributes(ctx.node, {"keepdims", "noop_with_empty_axes"});
  } else {
    check_attributes(ctx.node, {"axes", "keepdims"});
    at.axes = ctx.node.attr_ints("axes");
  }
  at.keepdims = ctx.node.attr_int("keepdims", 1) != 0;
  at.noop_with_empty_axes = ctx.node.attr_int("noop_with_empty_axes", 0) != 0;
  return [at](KernelCall& call) { run_reduce_mean(at, call); };
}

}  // namespace repq::runtime
