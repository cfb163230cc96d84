// ConvTranspose (1-D and 2-D; groups, strides, dilations, pads, output_padding, output_shape,
// auto_pad): col = W_g^T * X_g by GEMM, then col2im accumulation onto the bias.
#include <algorithm>
#include <vector>

#include "runtime/conv_common.h"
#include "runtime/gemm.h"
#include "runtime/kernel_util.h"
#include "runtime/kernels.h"
#include "runtime/thread_pool.h"

namespace repq::runtime {
namespace {

struct ConvTransposeAttrs {
  std::string auto_pad;
  int64_t group = 1;
  std::vector<int64_t> kernel_shape, strides, dilations, pads, output_padding, output_shape;
};

int64_t floor_div2(int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

// Fills pads and out of one axis; `adj` is the output_padding, `target` the requested output
// size (-1: none).
void transpose_axis(WindowAxis& a, int64_t adj, int64_t target, const std::string& auto_pad) {
  const int64_t span = (a.kernel - 1) * a.dilation + 1;
  const int64_t natural = a.stride * (a.in - 1) + adj + span;
  const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
  if (target < 0 && same) target = a.in * a.stride;
  if (auto_pad == "VALID") a.pad_begin = a.pad_end = 0;
  if (target >= 0) {
    const int64_t total = natural - target;
    if (auto_pad == "SAME_UPPER") {
      a.pad_begin = floor_div2(total);
      a.pad_end = total - a.pad_begin;
    } else {
      a.pad_end = floor_div2(total);
      a.pad_begin = total - a.pad_end;
    }
    a.out = target;
  } else {
    a.out = natural - a.pad_begin - a.pad_end;
  }
  if (a.out <= 0)
    throw InputError("output size " + std::to_string(a.out) + " is not positive");
}

void col2im_plane(const float* col, const WindowAxis& ah, const WindowAxis& aw, float* out) {
  const int64_t pin = ah.in * aw.in;
  for (int64_t ky = 0; ky < ah.kernel; ++ky) {
    for (int64_t kx = 0; kx < aw.kernel; ++kx) {
      const float* src = col + (ky * aw.kernel + kx) * pin;
      for (int64_t iy = 0; iy < ah.in; ++iy) {
        const int64_t oy = iy * ah.stride - ah.pad_begin + ky * ah.dilation;
        if (oy < 0 || oy >= ah.out) continue;
        float* orow = out + oy * aw.out;
        const float* srow = src + iy * aw.in;
        for (int64_t ix = 0; ix < aw.in; ++ix) {
          const int64_t ox = ix * aw.stride - aw.pad_begin + kx * aw.dilation;
          if (ox >= 0 && ox < aw.out) orow[ox] += srow[ix];
        }
      }
    }
  }
}

void run_conv_transpose(const ConvTransposeAttrs& at, KernelCall& call) {
  const Tensor& x = call.input(0);
  const Tensor& w = call.input(1);
  require_float(x, "input X");
  require_float(w, "input W");
  const Shape& xs = x.shape();
  const Shape& ws = w.shape();
  if (xs.size() != 3 && xs.size() != 4)
    throw InputError("input X has shape " + shape_str(xs) +
                     "; only 1-D and 2-D ConvTranspose is supported");
  if (ws.size() != xs.size() || ws[0] != xs[1] || xs[1] % at.group != 0)
    throw InputError("input W has shape " + shape_str(ws) + ", which does not match X " +
                     shape_str(xs) + " with group " + std::to_string(at.group));
  const size_t r = xs.size() - 2;
  const std::vector<int64_t> spatial(xs.begin() + 2, xs.end()), kernel(ws.begin() + 2, ws.end());
  if (!at.kernel_shape.empty() && at.kernel_shape != kernel)
    throw InputError("kernel_shape does not match the weights " + shape_str(ws));
  WindowAxis ah, aw;
  window_axes(spatial, kernel, at.strides, at.dilations, at.pads, ah, aw);
  if (!at.output_padding.empty() && at.output_padding.size() != r)
    throw InputError("attribute 'output_padding' has " + std::to_string(at.output_padding.size()) +
                     " values; expected " + std::to_string(r));
  std::vector<int64_t> targets(r, -1);
  if (!at.output_shape.empty()) {
    if (at.output_shape.size() != r && at.output_shape.size() != r + 2)
      throw InputError("attribute 'output_shape' has " + std::to_string(at.output_shape.size()) +
                       " values; expected " + std::to_string(r));
    targets.assign(at.output_shape.end() - static_cast<std::ptrdiff_t>(r), at.output_shape.end());
  }
  WindowAxis* axes[2] = {&ah, &aw};
  for (size_t i = 0; i < r; ++i) {
    WindowAxis& a = *axes[2 - r + i];
    const int64_t adj = at.output_padding.empty() ? 0 : at.output_padding[i];
    if (adj < 0 || (adj >= a.stride && adj >= a.dilation))
      throw InputError("output_padding must be smaller than the stride or the dilation");
    transpose_axis(a, adj, targets[i], at.auto_pad);
  }

  const int64_t batch = xs[0], cin = xs[1], cin_g = cin / at.group, cout_g = ws[1];
  const int64_t cout = cout_g * at.group;
  const float* bias = nullptr;
  if (call.has_input(2)) {
    const Tensor& b = call.input(2);
    require_float(b, "input B");
    if (b.numel() != cout)
      throw InputError("input B has shape " + shape_str(b.shape()) + "; expected [" +
                       std::to_string(cout) + "]");
    bias = b.data<float>();
  }
  Shape out_shape = {batch, cout};
  if (r == 2) out_shape.push_back(ah.out);
  out_shape.push_back(aw.out);
  Tensor y = call.alloc(DType::kFloat32, out_shape);
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  float* yd = y.mutable_data<float>();
  const int64_t kk = ah.kernel * aw.kernel, pin = ah.in * aw.in, pout = ah.out * aw.out;
  const int64_t row_len = cout_g * kk;  // one input channel's row of W
  const int64_t chunks = std::clamp<int64_t>((cout_g * kk * pin * cin_g) >> 20, 1, cout_g);
  call.pool().run(batch * at.group * chunks, [&](int64_t task) {
    const int64_t chunk = task % chunks, ng = task / chunks;
    const int64_t n = ng / at.group, gi = ng % at.group;
    int64_t m0, m1;
    split_range(cout_g, chunks, chunk, m0, m1);
    thread_local std::vector<float> col;
    col.resize(static_cast<size_t>((m1 - m0) * kk * pin));
    // col[(m,ky,kx), p] = sum_c W[c, m, ky, kx] * X[c, p] over the group's channels.
    sgemm(true, false, (m1 - m0) * kk, pin, cin_g, 1.0f, wd + gi * cin_g * row_len + m0 * kk,
          row_len, xd + (n * cin + gi * cin_g) * pin, pin, 0.0f, col.data(), pin);
    for (int64_t m = m0; m < m1; ++m) {
      const int64_t oc = gi * cout_g + m;
      float* out = yd + (n * cout + oc) * pout;
      std::fill(out, out + pout, bias ? bias[oc] : 0.0f);
      col2im_plane(col.data() + (m - m0) * kk * pin, ah, aw, out);
    }
  });
  call.set_output(0, std::move(y));
}

}  // namespace

Kernel make_conv_transpose(const NodeContext& ctx) {
  const Node& node = ctx.node;
  check_attributes(node, {"auto_pad", "dilations", "group", "kernel_shape", "output_padding",
                          "output_shape", "pads", "strides"});
  ConvTransposeAttrs at;
  at.auto_pad = auto_pad_attr(node);
  at.group = node.attr_int("group", 1);
  if (at.group < 1) throw InputError("group must be at least 1, not " + std::to_string(at.group));
  at.kernel_shape = node.attr_ints("kernel_shape");
  at.strides = node.attr_ints("strides");
  at.dilations = node.attr_ints("dilations");
  at.pads = node.attr_ints("pads");
  at.output_padding = node.attr_ints("output_padding");
  at.output_shape = node.attr_ints("output_shape");
  check_window_attrs(at.kernel_shape, at.strides, at.dilations, at.pads);
  return [at](KernelCall& call) { run_conv_transpose(at, call); };
}

}  // namespace repq::runtime
