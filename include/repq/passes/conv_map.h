// A linear (affine) map on NCHW tensors, in the kernel domain of a 2-D convolution: a kernel
// [Cout, Cin/groups, kh, kw] with a bias and the geometry (strides, pads, dilations, groups).
// Every op the branch-fusion pass folds (Conv, BatchNormalization, Identity, AveragePool with
// count_include_pad, per-channel Mul/Add) is one of these; two maps of the same input can be
// summed, and two maps in sequence composed, when the result is again exactly one convolution.
// The maths is ALGORITHMS.md section 1; docs/fuse.md states the exactness rules.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace repq::passes {

// y[o, p] = b[o] + sum_{i in group(o), u} w[o, i', u] * xpad[i, s * p + d * u - pad_begin]
// with xpad = x inside and 0 outside. Weights are kept in double while folding.
struct ConvMap {
  int64_t cout = 0, cin = 0, groups = 1;
  std::array<int64_t, 2> kernel{1, 1};
  std::array<int64_t, 2> strides{1, 1};
  std::array<int64_t, 2> dilations{1, 1};
  std::array<int64_t, 4> pads{0, 0, 0, 0};  // ONNX order: top, left, bottom, right
  std::vector<double> w;                    // [cout, cin / groups, kh, kw]
  std::vector<double> b;                    // [cout]

  int64_t cin_per_group() const { return cin / groups; }
  size_t index(int64_t o, int64_t i, int64_t u, int64_t v) const {
    return static_cast<size_t>(((o * cin_per_group() + i) * kernel[0] + u) * kernel[1] + v);
  }
  bool has_padding() const { return pads[0] || pads[1] || pads[2] || pads[3]; }
  bool zero_bias() const;
  // groups == cin == cout, 1x1, stride 1, no padding: y = scale[c] * x + shift[c].
  bool is_diagonal() const;

  // y = scale * x + shift, per channel.
  static ConvMap diagonal(const std::vector<double>& scale, const std::vector<double>& shift);
  static ConvMap identity(int64_t channels);
};

// Bounds on what a fold may allocate, checked (with overflow-checked arithmetic) before any
// kernel is built; FuseOptions carries them (docs/hostile-inputs.md).
struct MapLimits {
  int64_t max_kernel_size = 64;                    // taps per spatial axis of a folded kernel
  int64_t max_kernel_elements = int64_t{1} << 26;  // weights of a folded (or regrouped) kernel
  int64_t max_check_elements = int64_t{1} << 24;   // one tensor of a fold's numerical check
};

// The same map with fewer groups (`groups` must divide m.groups): the kernel gains the zero
// blocks between the old groups.
ConvMap regroup(const ConvMap& m, int64_t groups);

// a(x) + b(x) as one map. False (with `why`) when it is not exactly one convolution:
// different strides, dilations, taps that do not line up, or output sizes that differ.
// Also false when the sum's kernel would exceed `lim` or its geometry overflow int64; then
// *over_limit (when given) is set: the caller lists such a block as a near-miss.
bool sum_maps(const ConvMap& a, const ConvMap& b, ConvMap& out, std::string& why,
              const MapLimits& lim = {}, bool* over_limit = nullptr);

// second(first(x)) as one map. Exact when `second` has no padding (the composed conv keeps
// first's padding; first's bias flows through every tap of second), or when `first` is a 1x1,
// stride-1, unpadded map with zero bias (its output is zero where second pads). False (with
// `why`) otherwise.
// Limits and *over_limit as for sum_maps (a stride-2000 conv followed by a 3x3 conv would be
// one 4003x4003 kernel).
bool compose_maps(const ConvMap& first, const ConvMap& second, ConvMap& out, std::string& why,
                  const MapLimits& lim = {}, bool* over_limit = nullptr);

// The input [H, W] of the numerical check of a fold of `m` (docs/fuse.md): 2 * extent + 11 +
// stride rows, 3 more columns. False (with `why`) when the arithmetic overflows or the check's
// input (m.cin channels), output (m.cout) or widest intermediate (`widest` channels, padded)
// would hold more than lim.max_check_elements values.
bool fold_check_size(const ConvMap& m, int64_t widest, const MapLimits& lim,
                     std::array<int64_t, 2>& hw, std::string& why);

// "3x3 s2 g4 pads 1,1,1,1"
std::string geometry_str(const ConvMap& m);

}  // namespace repq::passes
