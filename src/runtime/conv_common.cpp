#include "runtime/conv_common.h"

namespace repq::runtime {
namespace {

void require_len(const std::vector<int64_t>& v, size_t n, const char* name) {
  if (!v.empty() && v.size() != n)
    throw InputError(std::string("attribute '") + name + "' has " + std::to_string(v.size()) +
                     " values; expected " + std::to_string(n));
}

}  // namespace

void check_window_attrs(const std::vector<int64_t>& kernel_shape,
                        const std::vector<int64_t>& strides, const std::vector<int64_t>& dilations,
                        const std::vector<int64_t>& pads) {
  for (int64_t k : kernel_shape)
    if (k < 1) throw InputError("kernel_shape values must be positive");
  for (int64_t s : strides)
    if (s < 1) throw InputError("strides must be positive");
  for (int64_t d : dilations)
    if (d < 1) throw InputError("dilations must be positive");
  for (int64_t p : pads)
    if (p < 0) throw InputError("pads must not be negative");
  if (pads.size() % 2 != 0) throw InputError("attribute 'pads' must have an even length");
  size_t rank = 0;
  for (size_t n : {kernel_shape.size(), strides.size(), dilations.size(), pads.size() / 2}) {
    if (n == 0) continue;
    if (rank != 0 && n != rank)
      throw InputError("kernel_shape, strides, dilations and pads disagree on the spatial rank");
    rank = n;
  }
  if (rank > 2)
    throw InputError("has " + std::to_string(rank) +
                     " spatial dims; repq's executor supports 1-D and 2-D windows");
}

void window_axes(const std::vector<int64_t>& spatial, const std::vector<int64_t>& kernel,
                 const std::vector<int64_t>& strides, const std::vector<int64_t>& dilations,
                 const std::vector<int64_t>& pads, WindowAxis& h, WindowAxis& w) {
  const size_t r = spatial.size();
  if (r != 1 && r != 2)
    throw InputError("input has " + std::to_string(r) +
                     " spatial dims; repq's executor supports 1-D and 2-D windows");
  require_len(kernel, r, "kernel_shape");
  require_len(strides, r, "strides");
  require_len(dilations, r, "dilations");
  require_len(pads, 2 * r, "pads");
  WindowAxis* axes[2] = {&h, &w};
  h = WindowAxis{1, 1, 1, 1, 1, 0, 0};
  w = WindowAxis{};
  const size_t first = 2 - r;  // 1-D: only the w axis is real
  for (size_t i = 0; i < r; ++i) {
    WindowAxis& a = *axes[first + i];
    a.in = spatial[i];
    a.kernel = kernel[i];
    a.stride = strides.empty() ? 1 : strides[i];
    a.dilation = dilations.empty() ? 1 : dilations[i];
    a.pad_begin = pads.empty() ? 0 : pads[i];
    a.pad_end = pads.empty() ? 0 : pads[i + r];
  }
}

ConvGeometry conv_geometry(const Shape& x, const Shape& w, int64_t group,
                           const std::vector<int64_t>& kernel_shape,
                           const std::vector<int64_t>& strides,
                           const std::vector<int64_t>& dilations, const std::vector<int64_t>& pads,
                           const std::string& auto_pad) {
  if (x.size() != 3 && x.size() != 4)
    throw InputError("input X has shape " + shape_str(x) +
                     "; only 1-D and 2-D convs ([N,C,W] or [N,C,H,W]) are supported");
  if (w.size() != x.size())
    throw InputError("input W has shape " + shape_str(w) + ", which does not match X " +
                     shape_str(x));
  ConvGeometry g;
  g.batch = x[0];
  g.in_channels = x[1];
  g.out_channels = w[0];
  if (g.in_channels != w[1] * group)
    throw InputError("input X has " + std::to_string(g.in_channels) + " channels but W " +
                     shape_str(w) + " with group " + std::to_string(group) + " expects " +
                     std::to_string(w[1] * group));
  if (g.out_channels % group != 0)
    throw InputError("W has " + std::to_string(g.out_channels) +
                     " output channels, not a multiple of group " + std::to_string(group));
  const std::vector<int64_t> spatial(x.begin() + 2, x.end());
  const std::vector<int64_t> kernel(w.begin() + 2, w.end());
  if (!kernel_shape.empty() && kernel_shape != kernel)
    throw InputError("kernel_shape does not match the weights " + shape_str(w));
  window_axes(spatial, kernel, strides, dilations, pads, g.h, g.w);
  resolve_window(g.h, auto_pad, false);
  resolve_window(g.w, auto_pad, false);
  g.out_shape = {g.batch, g.out_channels};
  if (x.size() == 4) g.out_shape.push_back(g.h.out);
  g.out_shape.push_back(g.w.out);
  return g;
}

}  // namespace repq::runtime
