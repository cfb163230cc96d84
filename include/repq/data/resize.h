// PIL-compatible resampling of 8-bit images (Pillow's libImaging/Resample.c, which
// Image.resize uses for BILINEAR and BICUBIC).
//
// The algorithm, reproduced exactly:
//  * Separable, two passes: horizontal first (only over the source rows the vertical pass
//    needs), then vertical. A pass is skipped when that dimension does not change.
//  * Output pixel i of a pass samples around center = (i + 0.5) * scale, scale = in / out.
//    When downscaling, the filter is stretched by scale (antialiasing): support = r * max(scale,
//    1) with r = 1 (bilinear, triangle filter) or 2 (bicubic, a = -0.5). The taps are the source
//    pixels j in [int(center - support + 0.5), int(center + support + 0.5)) clipped to the
//    image, with weight f((j - center + 0.5) / max(scale, 1)), normalized to sum 1.
//  * Weights are converted to 22-bit fixed point (rounded half away from zero); each output
//    value is (sum(w * p) + 2^21) >> 22 clamped to [0, 255]. So the intermediate image of the
//    horizontal pass is rounded to uint8, as in PIL.
#pragma once

#include <cstdint>
#include <vector>

#include "repq/data/image.h"

namespace repq::data {

enum class ResampleFilter { kBilinear, kBicubic };

// The taps of one pass: output pixel i reads source pixels start[i] .. start[i] + count[i] - 1
// with weights[i * ksize + k] (doubles, normalized) or fixed[i * ksize + k] (22-bit).
struct ResampleCoeffs {
  int ksize = 0;
  std::vector<int> start;
  std::vector<int> count;
  std::vector<double> weights;
  std::vector<int32_t> fixed;
};

inline constexpr int kResamplePrecisionBits = 22;

ResampleCoeffs pil_resample_coeffs(int in_size, int out_size, ResampleFilter filter);

// A rectangle of the resized image.
struct Window {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;
};

// PIL's image.resize((out_width, out_height), filter), restricted to `window` (which must lie
// inside the output; width/height 0 = the whole output). Computing only a window gives the
// same values as resizing everything and cropping, faster.
Image resize_pil(const Image& in, int out_width, int out_height, ResampleFilter filter,
                 Window window = {});

}  // namespace repq::data
