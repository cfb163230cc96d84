// Add, Sub, Mul, Div with numpy broadcasting, on float32, int64 and int32 (int64 is what
// shape arithmetic uses). Writes in place into an input the executor hands over when it
// already has the output's shape.
#include <algorithm>

#include "runtime/broadcast.h"
#include "runtime/kernel_util.h"
#include "runtime/kernels.h"
#include "runtime/thread_pool.h"

namespace repq::runtime {
namespace {

enum class BinOp { kAdd, kSub, kMul, kDiv };

template <class T, BinOp op>
inline T apply(T a, T b) {
  if constexpr (op == BinOp::kAdd) return a + b;
  if constexpr (op == BinOp::kSub) return a - b;
  if constexpr (op == BinOp::kMul) return a * b;
  if constexpr (op == BinOp::kDiv) {
    if constexpr (std::is_integral_v<T>) {
      if (b == 0) throw InputError("integer division by zero");
    }
    return a / b;
  }
}

template <class T, BinOp op>
void inner_loop(const T* a, int64_t sa, const T* b, int64_t sb, T* y, int64_t n) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) y[i] = apply<T, op>(a[i], b[i]);
  } else if (sa == 0 && sb == 1) {
    const T av = a[0];
    for (int64_t i = 0; i < n; ++i) y[i] = apply<T, op>(av, b[i]);
  } else if (sa == 1 && sb == 0) {
    const T bv = b[0];
    for (int64_t i = 0; i < n; ++i) y[i] = apply<T, op>(a[i], bv);
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = apply<T, op>(a[i * sa], b[i * sb]);
  }
}

// `in_place`: 0 none, 1 a is y, 2 b is y (y then holds that input's values).
template <class T, BinOp op>
void run_typed(const Tensor& a, const Tensor& b, Tensor& y, int in_place, ThreadPool& pool) {
  const BroadcastPlan plan = plan_broadcast(a.shape(), b.shape(), y.shape());
  T* yd = y.mutable_data<T>();  // after this, reading through yd sees the input's values
  const T* ad = in_place == 1 ? yd : a.data<T>();
  const T* bd = in_place == 2 ? yd : b.data<T>();
  const int64_t rows_per_task =
      std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(plan.inner, 1));
  parallel_chunks(pool, plan.outer, rows_per_task, [&](int64_t r0, int64_t r1) {
    BroadcastCursor cur(plan, r0);
    for (int64_t r = r0; r < r1; ++r, cur.next()) {
      inner_loop<T, op>(ad + cur.offset_a, plan.inner_stride_a, bd + cur.offset_b,
                        plan.inner_stride_b, yd + r * plan.inner, plan.inner);
    }
  });
}

template <BinOp op>
void run_binary(KernelCall& call) {
  const DType dt = call.input(0).dtype();
  if (dt != call.input(1).dtype())
    throw InputError("inputs have different types (" + dtype_name(dt) + " and " +
                     dtype_name(call.input(1).dtype()) + ")");
  if (dt != DType::kFloat32 && dt != DType::kInt64 && dt != DType::kInt32)
    throw InputError("inputs are " + dtype_name(dt) +
                     "; repq's executor supports float32, int64 and int32 here");
  const Shape out_shape = broadcast_shapes(call.input(0).shape(), call.input(1).shape());
  Tensor a = call.take_input(0);
  Tensor b = call.take_input(1);
  // The output takes over an input of its shape (in place when the executor handed it over;
  // otherwise copy-on-write copies it first).
  Tensor y;
  int in_place = 0;
  if (a.shape() == out_shape) {
    y = std::move(a);
    a = Tensor(dt, {0});
    in_place = 1;
  } else if (b.shape() == out_shape) {
    y = std::move(b);
    b = Tensor(dt, {0});
    in_place = 2;
  } else {
    y = call.alloc(dt, out_shape);
  }
  const Tensor& as = in_place == 1 ? y : a;
  const Tensor& bs = in_place == 2 ? y : b;
  switch (dt) {
    case DType::kFloat32: run_typed<float, op>(as, bs, y, in_place, call.pool()); break;
    case DType::kInt64: run_typed<int64_t, op>(as, bs, y, in_place, call.pool()); break;
    default: run_typed<int32_t, op>(as, bs, y, in_place, call.pool()); break;
  }
  call.set_output(0, std::move(y));
}

}  // namespace

Kernel make_add(const NodeContext& ctx) {
  check_attributes(ctx.node, {});
  return run_binary<BinOp::kAdd>;
}
Kernel make_sub(const NodeContext& ctx) {
  check_attributes(ctx.node, {});
  return run_binary<BinOp::kSub>;
}
Kernel make_mul(const NodeContext& ctx) {
  check_attributes(ctx.node, {});
  return run_binary<BinOp::kMul>;
}
Kernel make_div(const NodeContext& ctx) {
  check_attributes(ctx.node, {});
  return run_binary<BinOp::kDiv>;
}

}  // namespace repq::runtime
