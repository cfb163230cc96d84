// Resize (opset 11+): nearest (any axes, any element type; nearest_mode round_prefer_floor,
// round_prefer_ceil, floor, ceil) and linear (over the last one or two axes, float32), with
// the coordinate transformations half_pixel, pytorch_half_pixel, align_corners, asymmetric,
// tf_half_pixel_for_nn and half_pixel_symmetric. Scales or sizes; axes from opset 18.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/kernel_util.h"
#include "runtime/kernels.h"
#include "runtime/thread_pool.h"

namespace repq::runtime {
namespace {

enum class Coord { kHalfPixel, kPytorchHalfPixel, kAlignCorners, kAsymmetric, kTfHalfPixelForNn,
                   kHalfPixelSymmetric };
enum class Nearest { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };

struct ResizeAttrs {
  bool linear = false;
  Coord coord = Coord::kHalfPixel;
  Nearest nearest = Nearest::kRoundPreferFloor;
  std::vector<int64_t> axes;
};

float original_coord(Coord c, float x, float scale, int64_t in, int64_t out) {
  switch (c) {
    case Coord::kHalfPixel: return (x + 0.5f) / scale - 0.5f;
    case Coord::kPytorchHalfPixel: return out > 1 ? (x + 0.5f) / scale - 0.5f : 0.0f;
    case Coord::kAlignCorners:
      return out == 1 ? 0.0f
                      : x * static_cast<float>(in - 1) / static_cast<float>(out - 1);
    case Coord::kAsymmetric: return x / scale;
    case Coord::kTfHalfPixelForNn: return (x + 0.5f) / scale;
    case Coord::kHalfPixelSymmetric: {
      const float adjustment = static_cast<float>(out) / (scale * static_cast<float>(in));
      const float center = static_cast<float>(in) / 2.0f;
      const float offset = center * (1.0f - adjustment);
      return offset + (x + 0.5f) / scale - 0.5f;
    }
  }
  return 0.0f;
}

int64_t nearest_index(Nearest mode, float v, int64_t in) {
  float r;
  switch (mode) {
    case Nearest::kFloor: r = std::floor(v); break;
    case Nearest::kCeil: r = std::ceil(v); break;
    case Nearest::kRoundPreferCeil: r = v == std::floor(v) + 0.5f ? std::ceil(v) : std::round(v); break;
    default: r = v == std::floor(v) + 0.5f ? std::floor(v) : std::round(v); break;
  }
  return std::clamp<int64_t>(static_cast<int64_t>(r), 0, in - 1);
}

template <class T>
void nearest_copy(const Tensor& x, Tensor& y, const std::vector<std::vector<int64_t>>& maps) {
  const Shape& os = y.shape();
  const size_t r = os.size();
  const T* src = reinterpret_cast<const T*>(static_cast<const void*>(x.raw()));
  T* dst = reinterpret_cast<T*>(static_cast<void*>(y.mutable_raw()));
  std::vector<int64_t> in_strides(r, 1);
  for (size_t i = r; i-- > 1;) in_strides[i - 1] = in_strides[i] * x.dim(i);
  const int64_t inner = os[r - 1];
  const int64_t rows = inner == 0 ? 0 : y.numel() / inner;
  std::vector<int64_t> index(r - 1, 0);
  for (int64_t row = 0; row < rows; ++row) {
    int64_t off = 0;
    for (size_t k = 0; k + 1 < r; ++k) off += maps[k][index[k]] * in_strides[k];
    T* d = dst + row * inner;
    for (int64_t o = 0; o < inner; ++o) d[o] = src[off + maps[r - 1][o]];
    for (size_t k = r - 1; k-- > 0;) {
      if (++index[k] < os[k]) break;
      index[k] = 0;
    }
  }
}

struct LinearTap {
  int64_t i0 = 0, i1 = 0;
  float w0 = 1.0f, w1 = 0.0f;
};

std::vector<LinearTap> linear_taps(Coord c, float scale, int64_t in, int64_t out) {
  std::vector<LinearTap> taps(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    float v = original_coord(c, static_cast<float>(o), scale, in, out);
    v = std::clamp(v, 0.0f, static_cast<float>(in - 1));
    LinearTap& t = taps[static_cast<size_t>(o)];
    t.i0 = std::min<int64_t>(static_cast<int64_t>(v), in - 1);
    t.i1 = std::min<int64_t>(t.i0 + 1, in - 1);
    t.w1 = v - static_cast<float>(t.i0);
    t.w0 = 1.0f - t.w1;
  }
  return taps;
}

void run_resize(const ResizeAttrs& at, KernelCall& call) {
  const Tensor& x = call.input(0);
  const size_t rank = x.rank();
  if (rank == 0) throw InputError("input X must have rank 1 or more");
  const std::vector<int64_t> axes =
      at.axes.empty() ? std::vector<int64_t>{} : normalize_axes(at.axes, static_cast<int64_t>(rank));
  auto axis_of = [&](size_t i) { return axes.empty() ? i : static_cast<size_t>(axes[i]); };
  const size_t listed = axes.empty() ? rank : axes.size();
  std::vector<float> scales(rank, 1.0f);
  Shape out = x.shape();
  const bool has_scales = call.has_input(2) && call.input(2).numel() > 0;
  const bool has_sizes = call.has_input(3) && call.input(3).numel() > 0;
  if (has_scales == has_sizes)
    throw InputError("exactly one of the inputs scales and sizes must be given");
  if (has_scales) {
    const Tensor& s = call.input(2);
    require_float(s, "input scales");
    if (static_cast<size_t>(s.numel()) != listed)
      throw InputError("input scales has " + std::to_string(s.numel()) + " values for " +
                       std::to_string(listed) + " axes");
    for (size_t i = 0; i < listed; ++i) {
      const float sc = s.data<float>()[i];
      if (!(sc > 0.0f)) throw InputError("scales must be positive");
      const size_t a = axis_of(i);
      scales[a] = sc;
      const double o = std::floor(static_cast<double>(x.dim(a)) * sc);
      if (!(o < 9.2e18))  // also inf: the cast to int64 would be undefined
        throw InputError("scales[" + std::to_string(i) + "] = " + std::to_string(sc) + " makes axis " +
                         std::to_string(a) + " (" + std::to_string(x.dim(a)) +
                         ") longer than int64 can count");
      out[a] = static_cast<int64_t>(o);
    }
  } else {
    const std::vector<int64_t> sizes = int_values(call.input(3), "input sizes");
    if (sizes.size() != listed)
      throw InputError("input sizes has " + std::to_string(sizes.size()) + " values for " +
                       std::to_string(listed) + " axes");
    for (size_t i = 0; i < listed; ++i) {
      const size_t a = axis_of(i);
      if (sizes[i] <= 0) throw InputError("sizes must be positive");
      out[a] = sizes[i];
      scales[a] = static_cast<float>(sizes[i]) / static_cast<float>(x.dim(a));
    }
  }
  for (size_t a = 0; a < rank; ++a)
    if (x.dim(a) == 0 && out[a] > 0) throw InputError("cannot resize an empty axis");
  check_value_sized_output(out, x.dtype(), "output shape");  // sizes/scales are values: limited
  Tensor y(x.dtype(), out);
  if (y.numel() == 0) {
    call.set_output(0, std::move(y));
    return;
  }

  if (!at.linear) {
    std::vector<std::vector<int64_t>> maps(rank);
    for (size_t a = 0; a < rank; ++a) {
      for (int64_t o = 0; o < out[a]; ++o) {
        const float v = original_coord(at.coord, static_cast<float>(o), scales[a], x.dim(a), out[a]);
        maps[a].push_back(nearest_index(at.nearest, v, x.dim(a)));
      }
    }
    switch (element_size(x, "input X")) {
      case 1: nearest_copy<uint8_t>(x, y, maps); break;
      case 2: nearest_copy<uint16_t>(x, y, maps); break;
      case 4: nearest_copy<uint32_t>(x, y, maps); break;
      case 8: nearest_copy<uint64_t>(x, y, maps); break;
      default: throw InputError("input X has an unsupported element size");
    }
    call.set_output(0, std::move(y));
    return;
  }

  require_float(x, "input X");
  const size_t lin_axes = rank >= 2 ? 2 : 1;
  for (size_t a = 0; a + lin_axes < rank; ++a)
    if (out[a] != x.dim(a))
      throw InputError("linear resize of axis " + std::to_string(a) +
                       " is not supported; only the last two axes can be resized");
  const int64_t in_w = x.dim(rank - 1), out_w = out[rank - 1];
  const int64_t in_h = lin_axes == 2 ? x.dim(rank - 2) : 1, out_h = lin_axes == 2 ? out[rank - 2] : 1;
  const std::vector<LinearTap> tx = linear_taps(at.coord, scales[rank - 1], in_w, out_w);
  const std::vector<LinearTap> ty = lin_axes == 2 ? linear_taps(at.coord, scales[rank - 2], in_h, out_h)
                                                  : std::vector<LinearTap>(1);
  const int64_t planes = x.numel() / (in_w * in_h);
  const float* xd = x.data<float>();
  float* yd = y.mutable_data<float>();
  parallel_items(call.pool(), planes, out_h * out_w * 4, [&](int64_t p) {
    const float* src = xd + p * in_h * in_w;
    float* dst = yd + p * out_h * out_w;
    for (int64_t oy = 0; oy < out_h; ++oy) {
      const LinearTap& t = ty[static_cast<size_t>(oy)];
      const float* r0 = src + t.i0 * in_w;
      const float* r1 = src + t.i1 * in_w;
      for (int64_t ox = 0; ox < out_w; ++ox) {
        const LinearTap& u = tx[static_cast<size_t>(ox)];
        dst[oy * out_w + ox] = r0[u.i0] * u.w0 * t.w0 + r0[u.i1] * u.w1 * t.w0 +
                               r1[u.i0] * u.w0 * t.w1 + r1[u.i1] * u.w1 * t.w1;
      }
    }
  });
  call.set_output(0, std::move(y));
}

}  // namespace

Kernel make_resize(const NodeContext& ctx) {
  const Node& node = ctx.node;
  if (ctx.opset < 11) throw InputError("Resize before opset 11 is not supported by repq's executor");
  if (ctx.opset >= 18) {
    check_attributes(node, {"antialias", "axes", "coordinate_transformation_mode", "cubic_coeff_a",
                            "exclude_outside", "extrapolation_value", "keep_aspect_ratio_policy",
                            "mode", "nearest_mode"});
  } else {
    check_attributes(node, {"coordinate_transformation_mode", "cubic_coeff_a", "exclude_outside",
                            "extrapolation_value", "mode", "nearest_mode"});
  }
  ResizeAttrs at;
  const std::string mode = node.attr_string("mode", "nearest");
  if (mode == "linear") {
    at.linear = true;
  } else if (mode != "nearest") {
    throw InputError("mode '" + mode + "' is not supported (nearest and linear are)");
  }
  const std::string coord = node.attr_string("coordinate_transformation_mode", "half_pixel");
  if (coord == "half_pixel") at.coord = Coord::kHalfPixel;
  else if (coord == "pytorch_half_pixel") at.coord = Coord::kPytorchHalfPixel;
  else if (coord == "align_corners") at.coord = Coord::kAlignCorners;
  else if (coord == "asymmetric") at.coord = Coord::kAsymmetric;
  else if (coord == "tf_half_pixel_for_nn") at.coord = Coord::kTfHalfPixelForNn;
  else if (coord == "half_pixel_symmetric" && ctx.opset >= 19) at.coord = Coord::kHalfPixelSymmetric;
  else throw InputError("coordinate_transformation_mode '" + coord + "' is not supported");
  const std::string nearest = node.attr_string("nearest_mode", "round_prefer_floor");
  if (nearest == "round_prefer_floor") at.nearest = Nearest::kRoundPreferFloor;
  else if (nearest == "round_prefer_ceil") at.nearest = Nearest::kRoundPreferCeil;
  else if (nearest == "floor") at.nearest = Nearest::kFloor;
  else if (nearest == "ceil") at.nearest = Nearest::kCeil;
  else throw InputError("nearest_mode '" + nearest + "' is not supported");
  if (node.attr_int("antialias", 0) != 0) throw InputError("antialias=1 is not supported");
  const std::string policy = node.attr_string("keep_aspect_ratio_policy", "stretch");
  if (policy != "stretch")
    throw InputError("keep_aspect_ratio_policy '" + policy + "' is not supported");
  at.axes = node.attr_ints("axes");
  return [at](KernelCall& call) { run_resize(at, call); };
}

}  // namespace repq::runtime
