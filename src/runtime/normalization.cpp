// BatchNormalization in its inference form: y = (x - mean) / sqrt(var + epsilon) * scale + B.
#include <cmath>

#include "runtime/kernel_util.h"
#include "runtime/kernels.h"
#include "runtime/thread_pool.h"

namespace repq::runtime {
namespace {

void run_batch_norm(float epsilon, KernelCall& call) {
  const Tensor& x_ref = call.input(0);
  require_float(x_ref, "input X");
  if (x_ref.rank() < 2)
    throw InputError("input X has shape " + shape_str(x_ref.shape()) + "; expected [N,C,...]");
  const int64_t channels = x_ref.dim(1);
  const char* names[] = {"", "input scale", "input B", "input mean", "input var"};
  const float* p[5] = {};
  for (size_t i = 1; i < 5; ++i) {
    const Tensor& t = call.input(i);
    require_float(t, names[i]);
    if (t.numel() != channels)
      throw InputError(std::string(names[i]) + " has shape " + shape_str(t.shape()) +
                       "; expected [" + std::to_string(channels) + "]");
    p[i] = t.data<float>();
  }
  std::vector<float> a(static_cast<size_t>(channels)), b(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    a[c] = p[1][c] / std::sqrt(p[4][c] + epsilon);
    b[c] = p[2][c] - p[3][c] * a[c];
  }
  Tensor x = call.take_input(0);
  const int64_t plane = dims_product(x.shape(), 2, x.rank());
  float* d = x.mutable_data<float>();
  const int64_t planes = x.dim(0) * channels;
  const int64_t per_task = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(plane, 1));
  parallel_chunks(call.pool(), planes, per_task, [&](int64_t p0, int64_t p1) {
    for (int64_t pl = p0; pl < p1; ++pl) {
      const float ac = a[pl % channels], bc = b[pl % channels];
      float* v = d + pl * plane;
      for (int64_t i = 0; i < plane; ++i) v[i] = v[i] * ac + bc;
    }
  });
  call.set_output(0, std::move(x));
}

}  // namespace

Kernel make_batch_normalization(const NodeContext& ctx) {
  const Node& node = ctx.node;
  check_attributes(node, {"epsilon", "momentum", "spatial", "training_mode", "is_test"});
  if (node.attr_int("training_mode", 0) != 0)
    throw InputError("training_mode=1 is not supported; repq runs the inference form");
  if (node.attr_int("spatial", 1) != 1)
    throw InputError("spatial=0 is not supported by repq's executor");
  for (size_t i = 1; i < node.outputs.size(); ++i)
    if (!node.outputs[i].empty())
      throw InputError("the training outputs (running mean/var) are not supported");
  const float epsilon = node.attr_float("epsilon", 1e-5f);
  return [epsilon](KernelCall& call) { run_batch_norm(epsilon, call); };
}

}  // namespace repq::runtime
