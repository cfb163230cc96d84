// Softmax: opset < 13 coerces the input to 2-D at `axis` (default 1) and normalizes each row;
// opset >= 13 normalizes along the single axis `axis` (default -1).
#include <cmath>
#include <limits>

#include "runtime/kernel_util.h"
#include "runtime/kernels.h"
#include "runtime/thread_pool.h"

namespace repq::runtime {
namespace {

// Softmax over n values spaced `stride` apart.
void softmax_line(float* v, int64_t n, int64_t stride) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, v[i * stride]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float e = std::exp(v[i * stride] - mx);
    v[i * stride] = e;
    sum += e;
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) v[i * stride] *= inv;
}

void run_softmax(int64_t axis_attr, bool legacy, KernelCall& call) {
  Tensor x = call.take_input(0);
  require_float(x, "input");
  const int64_t rank = static_cast<int64_t>(x.rank());
  if (rank == 0) throw InputError("input must have rank 1 or more");
  const int64_t axis = normalize_axis(axis_attr, rank);
  const size_t ax = static_cast<size_t>(axis);
  int64_t outer = dims_product(x.shape(), 0, ax), n, inner;
  if (legacy) {
    n = dims_product(x.shape(), ax, x.rank());
    inner = 1;
  } else {
    n = x.dim(ax);
    inner = dims_product(x.shape(), ax + 1, x.rank());
  }
  float* d = x.mutable_data<float>();
  const int64_t lines = outer * inner;
  const int64_t per_task = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(n, 1));
  parallel_chunks(call.pool(), lines, per_task, [&](int64_t l0, int64_t l1) {
    for (int64_t l = l0; l < l1; ++l) {
      const int64_t o = l / inner, i = l % inner;
      softmax_line(d + o * n * inner + i, n, inner);
    }
  });
  call.set_output(0, std::move(x));
}

}  // namespace

Kernel make_softmax(const NodeContext& ctx) {
  check_attributes(ctx.node, {"axis"});
  const bool legacy = ctx.opset < 13;
  const int64_t axis = ctx.node.attr_int("axis", legacy ? 1 : -1);
  return [axis, legacy](KernelCall& call) { run_softmax(axis, legacy, call); };
}

}  // namespace repq::runtime
