// Element-wise activations on float32: Relu, LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish.
// They write in place when the executor hands over the input (its last use).
#include <cmath>
#include <limits>

#include "runtime/kernel_util.h"
#include "runtime/kernels.h"
#include "runtime/thread_pool.h"

namespace repq::runtime {
namespace {

constexpr int64_t kChunk = int64_t{1} << 16;

template <class F>
void apply_unary(KernelCall& call, const F& f) {
  Tensor x = call.take_input(0);
  require_float(x, "input X");
  float* p = x.mutable_data<float>();
  parallel_chunks(call.pool(), x.numel(), kChunk, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) p[i] = f(p[i]);
  });
  call.set_output(0, std::move(x));
}

float clamp_nan_safe(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

float scalar_input(const KernelCall& call, size_t i, float fallback, const char* what) {
  if (!call.has_input(i)) return fallback;
  const Tensor& t = call.input(i);
  if (t.numel() != 1) throw InputError(std::string(what) + " must be a scalar");
  require_float(t, what);
  return t.data<float>()[0];
}

}  // namespace

Kernel make_relu(const NodeContext& ctx) {
  check_attributes(ctx.node, {});
  return [](KernelCall& call) {
    apply_unary(call, [](float v) { return v < 0.0f ? 0.0f : v; });
  };
}

Kernel make_leaky_relu(const NodeContext& ctx) {
  check_attributes(ctx.node, {"alpha"});
  const float alpha = ctx.node.attr_float("alpha", 0.01f);
  return [alpha](KernelCall& call) {
    apply_unary(call, [alpha](float v) { return v < 0.0f ? v * alpha : v; });
  };
}

Kernel make_clip(const NodeContext& ctx) {
  if (ctx.opset < 11) {
    check_attributes(ctx.node, {"min", "max"});
    const float lo = ctx.node.attr_float("min", std::numeric_limits<float>::lowest());
    const float hi = ctx.node.attr_float("max", std::numeric_limits<float>::max());
    return [lo, hi](KernelCall& call) {
      apply_unary(call, [lo, hi](float v) { return clamp_nan_safe(v, lo, hi); });
    };
  }
  check_attributes(ctx.node, {});
  return [](KernelCall& call) {
    const float lo = scalar_input(call, 1, -std::numeric_limits<float>::infinity(), "input min");
    const float hi = scalar_input(call, 2, std::numeric_limits<float>::infinity(), "input max");
    apply_unary(call, [lo, hi](float v) { return clamp_nan_safe(v, lo, hi); });
  };
}

Kernel make_sigmoid(const NodeContext& ctx) {
  check_attributes(ctx.node, {});
  return [](KernelCall& call) {
    apply_unary(call, [](float v) { return 1.0f / (1.0f + std::exp(-v)); });
  };
}

Kernel make_hard_sigmoid(const NodeContext& ctx) {
  check_attributes(ctx.node, {"alpha", "beta"});
  const float alpha = ctx.node.attr_float("alpha", 0.2f);
  const float beta = ctx.node.attr_float("beta", 0.5f);
  return [alpha, beta](KernelCall& call) {
    apply_unary(call, [alpha, beta](float v) { return clamp_nan_safe(alpha * v + beta, 0.0f, 1.0f); });
  };
}

Kernel make_hard_swish(const NodeContext& ctx) {
  check_attributes(ctx.node, {});
  return [](KernelCall& call) {
    apply_unary(call, [](float v) {
      return v * clamp_nan_safe(v * (1.0f / 6.0f) + 0.5f, 0.0f, 1.0f);
    });
  };
}

}  // namespace repq::runtime
