// Depthwise convolution kernels (conv_depthwise.cpp) and a window helper shared with im2col.
#pragma once

#include <cstdint>

#include "runtime/kernel_util.h"

namespace repq::runtime {

// Output columns [lo, hi) whose tap `tap` reads inside the input along axis a.
void valid_range(const WindowAxis& a, int64_t tap, int64_t& lo, int64_t& hi);

// out (ah.out x aw.out) = bias + the depthwise conv of one input plane (ah.in x aw.in) with the
// kernel w (ah.kernel x aw.kernel), pads, strides and dilations of ah/aw.
void depthwise_plane(const float* in, const float* w, float bias, float* out,
                     const WindowAxis& ah, const WindowAxis& aw);

}  // namespace repq::runtime
