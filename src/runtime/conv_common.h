// Shape logic shared by Conv, ConvTranspose and the pools: window attributes along 1 or 2
// spatial axes (a 1-D op is run as 2-D with a trivial height axis).
#pragma once

#include <string>
#include <vector>

#include "runtime/kernel_util.h"

namespace repq::runtime {

// Checks that the window attributes that are present agree in length and are positive
// (pads non-negative). Throws InputError.
void check_window_attrs(const std::vector<int64_t>& kernel_shape,
                        const std::vector<int64_t>& strides, const std::vector<int64_t>& dilations,
                        const std::vector<int64_t>& pads);

// The two spatial axes of a 1-D or 2-D window op, before auto_pad is resolved: in, kernel,
// stride, dilation and explicit pads filled from the attributes (empty: defaults).
// `spatial` and `kernel` are the input's and the kernel's spatial dims (1 or 2 of each).
void window_axes(const std::vector<int64_t>& spatial, const std::vector<int64_t>& kernel,
                 const std::vector<int64_t>& strides, const std::vector<int64_t>& dilations,
                 const std::vector<int64_t>& pads, WindowAxis& h, WindowAxis& w);

struct ConvGeometry {
  int64_t batch = 0, in_channels = 0, out_channels = 0;
  WindowAxis h, w;  // for 1-D, h is trivial: in = out = kernel = 1
  Shape out_shape;
};

// Conv: checks X [N,C,...] against W [M,C/group,...] and the attributes; resolves pads.
ConvGeometry conv_geometry(const Shape& x, const Shape& w, int64_t group,
                           const std::vector<int64_t>& kernel_shape,
                           const std::vector<int64_t>& strides,
                           const std::vector<int64_t>& dilations, const std::vector<int64_t>& pads,
                           const std::string& auto_pad);

}  // namespace repq::runtime
