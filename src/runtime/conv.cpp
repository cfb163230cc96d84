// Conv (1-D and 2-D): a direct loop for depthwise convs, a GEMM on the input for 1x1 stride-1
// convs, im2col + GEMM for the rest. Work is split into tasks by image, group and a tiling
// that depends on the shapes only, so results do not depend on the thread count.
#include <algorithm>
#include <cstring>
#include <vector>

#include "runtime/conv_common.h"
#include "runtime/conv_depthwise.h"
#include "runtime/gemm.h"
#include "runtime/kernel_util.h"
#include "runtime/kernels.h"
#include "runtime/thread_pool.h"

namespace repq::runtime {
namespace {

// Columns [p0, p1) of the im2col matrix of one image and group: row r = (c, ky, kx).
void im2col_tile(const float* in, int64_t channels, const WindowAxis& ah, const WindowAxis& aw,
                 int64_t p0, int64_t p1, float* col) {
  const int64_t t = p1 - p0;
  for (int64_t c = 0; c < channels; ++c) {
    const float* plane = in + c * ah.in * aw.in;
    for (int64_t ky = 0; ky < ah.kernel; ++ky) {
      for (int64_t kx = 0; kx < aw.kernel; ++kx) {
        float* dst = col + ((c * ah.kernel + ky) * aw.kernel + kx) * t;
        int64_t lo, hi;
        valid_range(aw, kx, lo, hi);
        const int64_t off = kx * aw.dilation - aw.pad_begin;
        int64_t p = p0;
        while (p < p1) {
          const int64_t oy = p / aw.out, ox0 = p % aw.out;
          const int64_t ox1 = std::min(aw.out, ox0 + (p1 - p));
          const int64_t iy = oy * ah.stride - ah.pad_begin + ky * ah.dilation;
          float* d = dst + (p - p0) - ox0;  // d[ox] is the slot of output column ox
          if (iy < 0 || iy >= ah.in) {
            std::fill(d + ox0, d + ox1, 0.0f);
          } else {
            const float* irow = plane + iy * aw.in;
            const int64_t a = std::clamp(lo, ox0, ox1), b = std::clamp(hi, a, ox1);
            std::fill(d + ox0, d + a, 0.0f);
            if (aw.stride == 1) {
              std::memcpy(d + a, irow + a + off, static_cast<size_t>(b - a) * sizeof(float));
            } else {
              for (int64_t ox = a; ox < b; ++ox) d[ox] = irow[ox * aw.stride + off];
            }
            std::fill(d + b, d + ox1, 0.0f);
          }
          p += ox1 - ox0;
        }
      }
    }
  }
}

// Y[rows x cols] (leading dim ld) = bias (per row; 0 without) + A * B, then the activation.
// Pre-filling with the bias lets the GEMM accumulate onto it (no zeroing, no bias pass).
void gemm_bias_act(int64_t rows, int64_t cols, int64_t depth, const float* a, int64_t lda,
                   const float* b, int64_t ldb, const float* bias, const Activation& act,
                   float* y, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = y + r * ld;
    std::fill(row, row + cols, bias ? bias[r] : 0.0f);
  }
  sgemm(false, false, rows, cols, depth, 1.0f, a, lda, b, ldb, 1.0f, y, ld);
  if (!act.none())
    for (int64_t r = 0; r < rows; ++r) act.apply(y + r * ld, cols);
}

struct ConvAttrs {
  std::string auto_pad;
  int64_t group = 1;
  std::vector<int64_t> kernel_shape, strides, dilations, pads;  // empty: defaults
};

void run_conv(const ConvAttrs& at, KernelCall& call) {
  const Tensor& x = call.input(0);
  const Tensor& w = call.input(1);
  require_float(x, "input X");
  require_float(w, "input W");
  ConvGeometry g = conv_geometry(x.shape(), w.shape(), at.group, at.kernel_shape, at.strides,
                                 at.dilations, at.pads, at.auto_pad);
  const float* bias = nullptr;
  if (call.has_input(2)) {
    const Tensor& b = call.input(2);
    require_float(b, "input B");
    if (b.numel() != g.out_channels)
      throw InputError("input B has shape " + shape_str(b.shape()) + "; expected [" +
                       std::to_string(g.out_channels) + "]");
    bias = b.data<float>();
  }
  Tensor y = call.alloc(DType::kFloat32, g.out_shape);
  const WindowAxis& ah = g.h;
  const WindowAxis& aw = g.w;
  const int64_t cin_g = g.in_channels / at.group, cout_g = g.out_channels / at.group;
  const int64_t in_plane = ah.in * aw.in, out_plane = ah.out * aw.out;
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  float* yd = y.mutable_data<float>();
  const int64_t kk = ah.kernel * aw.kernel;
  ThreadPool& pool = call.pool();
  const Activation act = call.fused_activation;

  if (cin_g == 1 && at.group == g.in_channels) {  // depthwise (channel multiplier cout_g)
    parallel_items(pool, g.batch * g.out_channels, out_plane * kk, [&](int64_t task) {
      const int64_t n = task / g.out_channels, m = task % g.out_channels;
      const int64_t c = m / cout_g;
      float* out = yd + (n * g.out_channels + m) * out_plane;
      depthwise_plane(xd + (n * g.in_channels + c) * in_plane, wd + m * kk, bias ? bias[m] : 0.0f,
                      out, ah, aw);
      act.apply(out, out_plane);
    });
  } else if (kk == 1 && ah.stride == 1 && aw.stride == 1 && ah.pad_begin == 0 &&
             ah.pad_end == 0 && aw.pad_begin == 0 && aw.pad_end == 0) {
    // 1x1 stride 1: Y_g[cout_g x P] = W_g[cout_g x cin_g] * X_g[cin_g x P]
    const GemmSplit split = plan_gemm_split(cout_g, out_plane, cin_g);
    pool.run(g.batch * at.group * split.parts, [&](int64_t task) {
      const int64_t part = task % split.parts, ng = task / split.parts;
      const int64_t n = ng / at.group, gi = ng % at.group;
      const float* xg = xd + (n * g.in_channels + gi * cin_g) * in_plane;
      const float* wg = wd + gi * cout_g * cin_g;
      float* yg = yd + (n * g.out_channels + gi * cout_g) * out_plane;
      const float* bg = bias ? bias + gi * cout_g : nullptr;
      int64_t b, e;
      if (split.by_rows) {
        split_range(cout_g, split.parts, part, b, e);
        gemm_bias_act(e - b, out_plane, cin_g, wg + b * cin_g, cin_g, xg, out_plane,
                      bg ? bg + b : nullptr, act, yg + b * out_plane, out_plane);
      } else {
        split_range(out_plane, split.parts, part, b, e);
        gemm_bias_act(cout_g, e - b, cin_g, wg, cin_g, xg + b, out_plane, bg, act, yg + b,
                      out_plane);
      }
    });
  } else {
    // im2col per tile of output positions, then Y_g[:, tile] = W_g * col.
    const int64_t depth = cin_g * kk;
    int64_t tile = std::max<int64_t>(64, (int64_t{1} << 16) / std::max<int64_t>(depth, 1));
    if (cout_g * out_plane * depth > (int64_t{1} << 22)) tile = std::min(tile, (out_plane + 1) / 2);
    tile = std::min(out_plane, (tile + 7) / 8 * 8);
    const int64_t tiles = (out_plane + tile - 1) / tile;
    pool.run(g.batch * at.group * tiles, [&](int64_t task) {
      const int64_t ti = task % tiles, ng = task / tiles;
      const int64_t n = ng / at.group, gi = ng % at.group;
      const int64_t p0 = ti * tile, p1 = std::min(out_plane, p0 + tile);
      thread_local std::vector<float> col;
      col.resize(static_cast<size_t>(depth * (p1 - p0)));
      im2col_tile(xd + (n * g.in_channels + gi * cin_g) * in_plane, cin_g, ah, aw, p0, p1,
                  col.data());
      float* yg = yd + (n * g.out_channels + gi * cout_g) * out_plane;
      gemm_bias_act(cout_g, p1 - p0, depth, wd + gi * cout_g * depth, depth, col.data(), p1 - p0,
                    bias ? bias + gi * cout_g : nullptr, act, yg + p0, out_plane);
    });
  }
  call.set_output(0, std::move(y));
}

}  // namespace

Kernel make_conv(const NodeContext& ctx) {
  const Node& node = ctx.node;
  check_attributes(node, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
  ConvAttrs at;
  at.auto_pad = auto_pad_attr(node);
  at.group = node.attr_int("group", 1);
  if (at.group < 1) throw InputError("group must be at least 1, not " + std::to_string(at.group));
  at.kernel_shape = node.attr_ints("kernel_shape");
  at.strides = node.attr_ints("strides");
  at.dilations = node.attr_ints("dilations");
  at.pads = node.attr_ints("pads");
  check_window_attrs(at.kernel_shape, at.strides, at.dilations, at.pads);
  if (const Tensor* w = ctx.constant_input(1)) {
    if (w->rank() != 3 && w->rank() != 4)
      throw InputError("weights " + shape_str(w->shape()) +
                       " are not those of a 1-D or 2-D conv; only 1-D and 2-D convs are supported");
  }
  return [at](KernelCall& call) { run_conv(at, call); };
}

}  // namespace repq::runtime
