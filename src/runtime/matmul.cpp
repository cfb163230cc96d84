// Gemm (transA, transB, alpha, beta, broadcast C) and MatMul (numpy semantics: 1-D operands,
// batched and broadcast leading dims). Tasks split the output columns by a shape-only plan.
#include <algorithm>

#include "runtime/broadcast.h"
#include "runtime/gemm.h"
#include "runtime/kernel_util.h"
#include "runtime/kernels.h"
#include "runtime/thread_pool.h"

namespace repq::runtime {
namespace {

// Column parts for an [m x n] = [m x k] * [k x n] product; depends on the shape only.
int64_t column_parts(int64_t m, int64_t n, int64_t k) {
  // About 256K multiply-adds per task: a matrix-vector product is bound by reading B, which
  // the tasks then share out.
  const int64_t parts = std::clamp<int64_t>((m * n * k) >> 18, 1, 16);
  return std::min(parts, std::max<int64_t>(1, n / 16));
}

struct GemmAttrs {
  bool trans_a = false, trans_b = false;
  float alpha = 1.0f, beta = 1.0f;
};

void run_gemm(const GemmAttrs& at, KernelCall& call) {
  const Tensor& a = call.input(0);
  const Tensor& b = call.input(1);
  require_float(a, "input A");
  require_float(b, "input B");
  if (a.rank() != 2 || b.rank() != 2)
    throw InputError("inputs A " + shape_str(a.shape()) + " and B " + shape_str(b.shape()) +
                     " must both be 2-D");
  const int64_t m = at.trans_a ? a.dim(1) : a.dim(0), k = at.trans_a ? a.dim(0) : a.dim(1);
  const int64_t kb = at.trans_b ? b.dim(1) : b.dim(0), n = at.trans_b ? b.dim(0) : b.dim(1);
  if (k != kb)
    throw InputError("inputs A " + shape_str(a.shape()) + " and B " + shape_str(b.shape()) +
                     " do not agree on the inner dimension (transA=" + std::to_string(at.trans_a) +
                     ", transB=" + std::to_string(at.trans_b) + ")");
  Tensor y = call.alloc(DType::kFloat32, {m, n});
  float* yd = y.mutable_data<float>();
  float beta = 0.0f;
  if (call.has_input(2) && at.beta != 0.0f) {
    const Tensor& c = call.input(2);
    require_float(c, "input C");
    const BroadcastPlan plan = plan_broadcast(c.shape(), c.shape(), y.shape());
    const float* cd = c.data<float>();
    BroadcastCursor cur(plan, 0);
    for (int64_t r = 0; r < plan.outer; ++r, cur.next())
      for (int64_t i = 0; i < plan.inner; ++i)
        yd[r * plan.inner + i] = at.beta * cd[cur.offset_a + i * plan.inner_stride_a];
    beta = 1.0f;
  }
  const float* ad = a.data<float>();
  const float* bd = b.data<float>();
  const int64_t parts = column_parts(m, n, k);
  call.pool().run(parts, [&](int64_t part) {
    int64_t c0, c1;
    split_range(n, parts, part, c0, c1);
    sgemm(at.trans_a, at.trans_b, m, c1 - c0, k, at.alpha, ad, a.dim(1),
          bd + (at.trans_b ? c0 * b.dim(1) : c0), b.dim(1), beta, yd + c0, n);
  });
  call.set_output(0, std::move(y));
}

void run_matmul(KernelCall& call) {
  const Tensor& a = call.input(0);
  const Tensor& b = call.input(1);
  require_float(a, "input A");
  require_float(b, "input B");
  if (a.rank() == 0 || b.rank() == 0) throw InputError("MatMul inputs must have rank 1 or more");
  Shape as = a.shape(), bs = b.shape();
  const bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
  if (a_vec) as.insert(as.begin(), 1);
  if (b_vec) bs.push_back(1);
  const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  if (bs[bs.size() - 2] != k)
    throw InputError("inputs A " + shape_str(a.shape()) + " and B " + shape_str(b.shape()) +
                     " do not agree on the inner dimension");
  const Shape a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
  const Shape batch = broadcast_shapes(a_batch, b_batch);
  Shape out = batch;
  if (!a_vec) out.push_back(m);
  if (!b_vec) out.push_back(n);
  Tensor y = call.alloc(DType::kFloat32, out);
  // Offsets of each batch entry: walk the broadcast plan element by element.
  const BroadcastPlan plan = plan_broadcast(a_batch, b_batch, batch);
  const int64_t nb = shape_numel(batch);
  std::vector<int64_t> off_a, off_b;
  off_a.reserve(static_cast<size_t>(nb));
  off_b.reserve(static_cast<size_t>(nb));
  BroadcastCursor cur(plan, 0);
  for (int64_t r = 0; r < plan.outer; ++r, cur.next())
    for (int64_t i = 0; i < plan.inner; ++i) {
      off_a.push_back((cur.offset_a + i * plan.inner_stride_a) * m * k);
      off_b.push_back((cur.offset_b + i * plan.inner_stride_b) * k * n);
    }
  const float* ad = a.data<float>();
  const float* bd = b.data<float>();
  float* yd = y.mutable_data<float>();
  const int64_t parts = column_parts(m, n, k);
  call.pool().run(nb * parts, [&](int64_t task) {
    const int64_t bi = task / parts, part = task % parts;
    int64_t c0, c1;
    split_range(n, parts, part, c0, c1);
    sgemm(false, false, m, c1 - c0, k, 1.0f, ad + off_a[bi], k, bd + off_b[bi] + c0, n, 0.0f,
          yd + bi * m * n + c0, n);
  });
  call.set_output(0, std::move(y));
}

}  // namespace

Kernel make_gemm(const NodeContext& ctx) {
  check_attributes(ctx.node, {"alpha", "beta", "transA", "transB", "broadcast"});
  GemmAttrs at;
  at.trans_a = ctx.node.attr_int("transA", 0) != 0;
  at.trans_b = ctx.node.attr_int("transB", 0) != 0;
  at.alpha = ctx.node.attr_float("alpha", 1.0f);
  at.beta = ctx.node.attr_float("beta", 1.0f);
  return [at](KernelCall& call) { run_gemm(at, call); };
}

Kernel make_matmul(const NodeContext& ctx) {
  check_attributes(ctx.node, {});
  return run_matmul;
}

}  // namespace repq::runtime
