// Image preprocessing: decoded 8-bit image -> normalized float32 CHW, exactly as
//   PIL Image.convert("RGB") -> torchvision Resize(S) -> CenterCrop(C) -> ToTensor() -> Normalize
// (Resize on a PIL image = PIL's antialiased Image.resize; see resize.h).
//
// Steps, in order:
//  1. colour: 3 channels (greyscale replicated) or 1 channel (PIL "L" formula).
//  2. resize (optional): either the short side to `resize` keeping the aspect ratio, the long
//     side = S * long / short rounded to nearest (ties to even, Python's round) or truncated
//     (torchvision's int()), or to exactly resize_height x resize_width. PIL's BILINEAR (default)
//     or BICUBIC, antialiased when downscaling.
//  3. centre crop (optional) crop_height x crop_width at offset ((W - cw) // 2, (H - ch) // 2)
//     ("floor", default), or round((W - cw) / 2) with ties to even ("round", torchvision's
//     CenterCrop). An image smaller than the crop is padded with pixel value 0 the way
//     torchvision pads (left/top (c - W) // 2, the rest right/bottom).
//  4. value = (pixel / divisor - mean[c]) / std[c] in float32, in that operation order (ToTensor
//     then Normalize). mean and std are listed in R,G,B order (one value for grey) and follow
//     their channel when channel_order is BGR.
//  5. output channels RGB or BGR, layout CHW (a batch is NCHW).
//
// Presets:
//   imagenet   : resize 256 (bilinear, long side rounded), crop 224 (floor), divisor 255,
//                mean 0.485,0.456,0.406, std 0.229,0.224,0.225, RGB.
//   torchvision: the same with torchvision's own rounding: long side truncated, crop offset
//                rounded (identical to imagenet for most images).
//   none       : no resize, no crop; divisor 255, mean 0, std 1 (values in [0, 1]), RGB.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "repq/data/image.h"
#include "repq/data/resize.h"
#include "repq/ir/tensor.h"

namespace repq::data {

enum class LongSide { kRound, kTruncate };
enum class CropOffset { kFloor, kRound };
enum class ChannelOrder { kRGB, kBGR };

// One settable option, for a CLI to register generically.
struct PreprocessOption {
  const char* key;    // "mean" -> --mean
  const char* value;  // value syntax, e.g. "M[,M,M]"
  const char* help;
};

struct Preprocess {
  std::string preset = "imagenet";  // the preset the fields started from (for describe())
  int resize = 256;                 // short side; 0 = no aspect-preserving resize
  int resize_height = 0;            // exact size when both > 0 (overrides `resize`)
  int resize_width = 0;
  LongSide long_side = LongSide::kRound;
  ResampleFilter filter = ResampleFilter::kBilinear;
  int crop_height = 224;  // 0 = no crop
  int crop_width = 224;
  CropOffset crop_offset = CropOffset::kFloor;
  float divisor = 255.0f;
  std::vector<float> mean = {0.485f, 0.456f, 0.406f};
  std::vector<float> std_dev = {0.229f, 0.224f, 0.225f};
  ChannelOrder channel_order = ChannelOrder::kRGB;
  ColorMode color = ColorMode::kRGB;
  int64_t max_pixels = kDefaultMaxPixels;  // decompression-bomb limit, 0 = none

  // "imagenet", "torchvision" or "none"; throws InputError for other names.
  static Preprocess from_preset(std::string_view name);
  // Sets one option from its string form: set("mean", "0.5,0.5,0.5"), set("resize", "256"),
  // set("crop", "224" or "224,192" (height,width)), set("preset", "none") (resets everything).
  // Throws InputError("--key: problem") for unknown keys and malformed values.
  void set(std::string_view key, std::string_view value);
  // Parses "--key value" / "--key=value" pairs; --preset is applied first wherever it appears.
  static Preprocess from_args(const std::vector<std::string>& args);
  static const std::vector<PreprocessOption>& options();

  // Throws InputError when the fields are inconsistent (mean/std size vs channels, std 0, ...).
  void validate() const;
  int channels() const { return color == ColorMode::kRGB ? 3 : 1; }
  // Size after resize and crop, [C, H, W], for a source image of the given size.
  std::array<int64_t, 3> output_shape(int width, int height) const;
  // One line, e.g. "resize short side 256 (bilinear, long side rounded), centre crop 224x224
  // (floor offsets), /255, mean 0.485,0.456,0.406, std 0.229,0.224,0.225, RGB, CHW float32".
  std::string describe() const;
};

// Size (width, height) after the resize step.
std::array<int, 2> resized_size(int width, int height, const Preprocess& pp);

// Decoded image -> CHW float32 written to `out` (output_shape() elements). The image must have
// pp.channels() channels (decode with pp.color).
void preprocess_into(const Image& image, const Preprocess& pp, float* out);
// The same as a [C, H, W] tensor.
Tensor preprocess_image(const Image& image, const Preprocess& pp);
// Read + decode + preprocess one file: a [1, C, H, W] tensor.
Tensor load_preprocessed(const std::string& path, const Preprocess& pp);

}  // namespace repq::data
