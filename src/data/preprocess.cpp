// Resize, centre crop and normalization of decoded images (see preprocess.h).
#include "repq/data/preprocess.h"

#include <algorithm>

#include "repq/error.h"

namespace repq::data {

namespace {

// Python's round(n / d) for n, d > 0: to nearest, ties to even. Exact integer arithmetic.
int64_t round_half_even_div(int64_t n, int64_t d) {
  const int64_t q = n / d, r = n % d;
  if (2 * r > d || (2 * r == d && (q % 2) == 1)) return q + 1;
  return q;
}

// Start of the crop window along one axis (negative when the image is padded).
int crop_start(int size, int crop, CropOffset mode) {
  if (size < crop) return -((crop - size) / 2);  // torchvision's padding: left = (c - s) // 2
  const int d = size - crop;
  return mode == CropOffset::kFloor ? d / 2 : static_cast<int>(round_half_even_div(d, 2));
}

}  // namespace

std::array<int, 2> resized_size(int width, int height, const Preprocess& pp) {
  if (pp.resize_height > 0 && pp.resize_width > 0) return {pp.resize_width, pp.resize_height};
  if (pp.resize <= 0) return {width, height};
  const bool wide = width >= height;
  const int64_t shrt = wide ? height : width, lng = wide ? width : height;
  const int64_t num = int64_t{pp.resize} * lng;
  int64_t other = pp.long_side == LongSide::kRound ? round_half_even_div(num, shrt) : num / shrt;
  other = std::max<int64_t>(other, 1);
  if (other > (int64_t{1} << 30)) throw InputError("resize: the resized image would be too large");
  return wide ? std::array<int, 2>{static_cast<int>(other), pp.resize}
              : std::array<int, 2>{pp.resize, static_cast<int>(other)};
}

std::array<int64_t, 3> Preprocess::output_shape(int width, int height) const {
  const auto [w, h] = resized_size(width, height, *this);
  return {channels(), crop_height > 0 ? crop_height : h, crop_width > 0 ? crop_width : w};
}

void preprocess_into(const Image& image, const Preprocess& pp, float* out) {
  const int ch = pp.channels();
  if (image.channels != ch)
    throw InternalError("preprocess: image has " + std::to_string(image.channels) +
                        " channels, expected " + std::to_string(ch));
  const auto [rw, rh] = resized_size(image.width, image.height, pp);
  const int ow = pp.crop_width > 0 ? pp.crop_width : rw;
  const int oh = pp.crop_height > 0 ? pp.crop_height : rh;
  const int x0 = pp.crop_width > 0 ? crop_start(rw, ow, pp.crop_offset) : 0;
  const int y0 = pp.crop_height > 0 ? crop_start(rh, oh, pp.crop_offset) : 0;
  // The part of the crop window that lies inside the resized image.
  const Window win{std::max(x0, 0), std::max(y0, 0), std::min(x0 + ow, rw) - std::max(x0, 0),
                   std::min(y0 + oh, rh) - std::max(y0, 0)};
  const Image part = resize_pil(image, rw, rh, pp.filter, win);

  // value = (p / divisor - mean) / std, in float32 as torchvision computes it; a table per
  // output channel.
  std::vector<float> lut(static_cast<size_t>(ch) * 256);
  for (int c = 0; c < ch; ++c) {
    const int src = pp.channel_order == ChannelOrder::kBGR && ch == 3 ? 2 - c : c;
    const float mean = pp.mean.size() == 1 ? pp.mean[0] : pp.mean[src];
    const float sd = pp.std_dev.size() == 1 ? pp.std_dev[0] : pp.std_dev[src];
    for (int p = 0; p < 256; ++p) lut[c * 256 + p] = (static_cast<float>(p) / pp.divisor - mean) / sd;
  }
  const size_t plane = static_cast<size_t>(ow) * oh;
  const int dx = win.x - x0, dy = win.y - y0;  // where the inside part lands in the output
  for (int c = 0; c < ch; ++c) {
    const int src = pp.channel_order == ChannelOrder::kBGR && ch == 3 ? 2 - c : c;
    const float* table = &lut[c * 256];
    float* dst = out + c * plane;
    if (win.width != ow || win.height != oh) std::fill(dst, dst + plane, table[0]);  // padding
    for (int y = 0; y < win.height; ++y) {
      const uint8_t* s = part.pixels.data() + static_cast<size_t>(y) * win.width * ch + src;
      float* d = dst + static_cast<size_t>(y + dy) * ow + dx;
      for (int x = 0; x < win.width; ++x) d[x] = table[s[static_cast<size_t>(x) * ch]];
    }
  }
}

Tensor preprocess_image(const Image& image, const Preprocess& pp) {
  const auto shape = pp.output_shape(image.width, image.height);
  Tensor t(DType::kFloat32, {shape[0], shape[1], shape[2]});
  preprocess_into(image, pp, t.mutable_data<float>());
  return t;
}

Tensor load_preprocessed(const std::string& path, const Preprocess& pp) {
  pp.validate();
  const Image img = load_image(path, {pp.color, pp.max_pixels});
  Tensor t = preprocess_image(img, pp);
  Shape s = t.shape();
  s.insert(s.begin(), 1);
  return t.reshaped(s);
}

}  // namespace repq::data
