// MaxPool, AveragePool (1-D and 2-D; pads, strides, dilations, ceil_mode, auto_pad,
// count_include_pad), GlobalAveragePool and GlobalMaxPool. One task per (image, channel).
#include <algorithm>
#include <limits>

#include "runtime/conv_common.h"
#include "runtime/kernel_util.h"
#include "runtime/kernels.h"
#include "runtime/thread_pool.h"

namespace repq::runtime {
namespace {

struct PoolAttrs {
  bool is_max = true;
  std::string auto_pad;
  bool ceil_mode = false;
  bool count_include_pad = false;
  std::vector<int64_t> kernel_shape, strides, dilations, pads;
};

void max_plane(const float* in, float* out, const WindowAxis& ah, const WindowAxis& aw) {
  for (int64_t oy = 0; oy < ah.out; ++oy) {
    const int64_t hs = oy * ah.stride - ah.pad_begin;
    for (int64_t ox = 0; ox < aw.out; ++ox) {
      const int64_t ws = ox * aw.stride - aw.pad_begin;
      float m = std::numeric_limits<float>::lowest();
      for (int64_t ky = 0; ky < ah.kernel; ++ky) {
        const int64_t iy = hs + ky * ah.dilation;
        if (iy < 0 || iy >= ah.in) continue;
        const float* row = in + iy * aw.in;
        for (int64_t kx = 0; kx < aw.kernel; ++kx) {
          const int64_t ix = ws + kx * aw.dilation;
          if (ix >= 0 && ix < aw.in && row[ix] > m) m = row[ix];
        }
      }
      out[oy * aw.out + ox] = m;
    }
  }
}

// Taps of a window starting at `start` that lie within the padded input (the part of a
// ceil_mode window beyond the end padding does not count).
int64_t padded_taps(const WindowAxis& a, int64_t start) {
  const int64_t end = std::min(start + a.kernel * a.dilation, a.in + a.pad_end);
  return end <= start ? 0 : 1 + (end - start - 1) / a.dilation;
}

void average_plane(const float* in, float* out, const WindowAxis& ah, const WindowAxis& aw,
                   bool count_include_pad) {
  for (int64_t oy = 0; oy < ah.out; ++oy) {
    const int64_t hs = oy * ah.stride - ah.pad_begin;
    for (int64_t ox = 0; ox < aw.out; ++ox) {
      const int64_t ws = ox * aw.stride - aw.pad_begin;
      float sum = 0.0f;
      int64_t valid = 0;
      for (int64_t ky = 0; ky < ah.kernel; ++ky) {
        const int64_t iy = hs + ky * ah.dilation;
        if (iy < 0 || iy >= ah.in) continue;
        const float* row = in + iy * aw.in;
        for (int64_t kx = 0; kx < aw.kernel; ++kx) {
          const int64_t ix = ws + kx * aw.dilation;
          if (ix < 0 || ix >= aw.in) continue;
          sum += row[ix];
          ++valid;
        }
      }
      const int64_t count = count_include_pad ? padded_taps(ah, hs) * padded_taps(aw, ws) : valid;
      out[oy * aw.out + ox] = valid == 0 ? 0.0f : sum / static_cast<float>(count);
    }
  }
}

void run_pool(const PoolAttrs& at, KernelCall& call) {
  const Tensor& x = call.input(0);
  require_float(x, "input X");
  if (x.rank() != 3 && x.rank() != 4)
    throw InputError("input X has shape " + shape_str(x.shape()) +
                     "; only 1-D and 2-D pools ([N,C,W] or [N,C,H,W]) are supported");
  const std::vector<int64_t> spatial(x.shape().begin() + 2, x.shape().end());
  WindowAxis ah, aw;
  window_axes(spatial, at.kernel_shape, at.strides, at.dilations, at.pads, ah, aw);
  resolve_window(ah, at.auto_pad, at.ceil_mode);
  resolve_window(aw, at.auto_pad, at.ceil_mode);
  Shape out_shape = {x.dim(0), x.dim(1)};
  if (x.rank() == 4) out_shape.push_back(ah.out);
  out_shape.push_back(aw.out);
  Tensor y = call.alloc(DType::kFloat32, out_shape);
  const float* xd = x.data<float>();
  float* yd = y.mutable_data<float>();
  const int64_t in_plane = ah.in * aw.in, out_plane = ah.out * aw.out;
  const int64_t cost = out_plane * ah.kernel * aw.kernel;
  parallel_items(call.pool(), x.dim(0) * x.dim(1), cost, [&](int64_t p) {
    if (at.is_max) {
      max_plane(xd + p * in_plane, yd + p * out_plane, ah, aw);
    } else {
      average_plane(xd + p * in_plane, yd + p * out_plane, ah, aw, at.count_include_pad);
    }
  });
  call.set_output(0, std::move(y));
}

PoolAttrs pool_attrs(const NodeContext& ctx, bool is_max) {
  const Node& node = ctx.node;
  if (is_max) {
    check_attributes(node, {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                            "storage_order", "strides"});
    if (node.outputs.size() > 1 && !node.outputs[1].empty())
      throw InputError("the Indices output of MaxPool is not supported by repq's executor");
  } else {
    check_attributes(node, {"auto_pad", "ceil_mode", "count_include_pad", "dilations",
                            "kernel_shape", "pads", "strides"});
  }
  PoolAttrs at;
  at.is_max = is_max;
  at.auto_pad = auto_pad_attr(node);
  at.ceil_mode = node.attr_int("ceil_mode", 0) != 0;
  at.count_include_pad = node.attr_int("count_include_pad", 0) != 0;
  at.kernel_shape = node.attr_ints("kernel_shape");
  if (at.kernel_shape.empty()) throw InputError("attribute 'kernel_shape' is required");
  at.strides = node.attr_ints("strides");
  at.dilations = node.attr_ints("dilations");
  at.pads = node.attr_ints("pads");
  check_window_attrs(at.kernel_shape, at.strides, at.dilations, at.pads);
  return at;
}

template <bool kMax>
void run_global_pool(KernelCall& call) {
  const Tensor& x = call.input(0);
  require_float(x, "input X");
  if (x.rank() < 3)
    throw InputError("input X has shape " + shape_str(x.shape()) + "; expected [N,C,...]");
  Shape out_shape = x.shape();
  std::fill(out_shape.begin() + 2, out_shape.end(), 1);
  Tensor y = call.alloc(DType::kFloat32, out_shape);
  const int64_t plane = dims_product(x.shape(), 2, x.rank());
  const float* xd = x.data<float>();
  float* yd = y.mutable_data<float>();
  const int64_t per_task = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(plane, 1));
  parallel_chunks(call.pool(), x.dim(0) * x.dim(1), per_task, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      const float* src = xd + p * plane;
      if constexpr (kMax) {
        float m = std::numeric_limits<float>::lowest();
        for (int64_t i = 0; i < plane; ++i) m = src[i] > m ? src[i] : m;
        yd[p] = m;
      } else {
        double s = 0.0;
        for (int64_t i = 0; i < plane; ++i) s += src[i];
        yd[p] = static_cast<float>(s / static_cast<double>(plane));
      }
    }
  });
  call.set_output(0, std::move(y));
}

}  // namespace

Kernel make_max_pool(const NodeContext& ctx) {
  const PoolAttrs at = pool_attrs(ctx, true);
  return [at](KernelCall& call) { run_pool(at, call); };
}

Kernel make_average_pool(const NodeContext& ctx) {
  const PoolAttrs at = pool_attrs(ctx, false);
  return [at](KernelCall& call) { run_pool(at, call); };
}

Kernel make_global_average_pool(const NodeContext& ctx) {
  check_attributes(ctx.node, {});
  return run_global_pool<false>;
}

Kernel make_global_max_pool(const NodeContext& ctx) {
  check_attributes(ctx.node, {});
  return run_global_pool<true>;
}

}  // namespace repq::runtime
