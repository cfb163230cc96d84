// PIL-compatible two-pass resampling; see the header for the algorithm.
#include "repq/data/resize.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "repq/error.h"

namespace repq::data {

namespace {

double bilinear(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

inline uint8_t clip8(int32_t v) {
  v >>= kResamplePrecisionBits;  // arithmetic shift, as PIL's lookup table index
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

constexpr int32_t kHalf = int32_t{1} << (kResamplePrecisionBits - 1);

// Horizontal pass over rows [row0, row0 + rows) of `in`, output columns [col0, col0 + cols).
void horizontal(const Image& in, int row0, int rows, const ResampleCoeffs& co, int col0, int cols,
                Image& out) {
  const int ch = in.channels;
  out.width = cols;
  out.height = rows;
  out.channels = ch;
  out.pixels.assign(static_cast<size_t>(rows) * cols * ch, 0);
  for (int y = 0; y < rows; ++y) {
    const uint8_t* src = in.pixels.data() + static_cast<size_t>(row0 + y) * in.width * ch;
    uint8_t* dst = out.pixels.data() + static_cast<size_t>(y) * cols * ch;
    for (int x = 0; x < cols; ++x) {
      const int i = col0 + x;
      const int32_t* k = &co.fixed[static_cast<size_t>(i) * co.ksize];
      const uint8_t* s = src + static_cast<size_t>(co.start[i]) * ch;
      const int n = co.count[i];
      if (ch == 3) {
        int32_t s0 = kHalf, s1 = kHalf, s2 = kHalf;
        for (int t = 0; t < n; ++t) {
          s0 += s[t * 3] * k[t];
          s1 += s[t * 3 + 1] * k[t];
          s2 += s[t * 3 + 2] * k[t];
        }
        dst[x * 3] = clip8(s0);
        dst[x * 3 + 1] = clip8(s1);
        dst[x * 3 + 2] = clip8(s2);
      } else {
        for (int c = 0; c < ch; ++c) {
          int32_t acc = kHalf;
          for (int t = 0; t < n; ++t) acc += s[t * ch + c] * k[t];
          dst[x * ch + c] = clip8(acc);
        }
      }
    }
  }
}

// Vertical pass: output rows [row0, row0 + rows) of the resized image, reading `in` whose
// first row is source row `in_row0`, columns [col0, col0 + cols) of `in`.
void vertical(const Image& in, int in_row0, const ResampleCoeffs& co, int row0, int rows, int col0,
              int cols, Image& out) {
  const int ch = in.channels;
  out.width = cols;
  out.height = rows;
  out.channels = ch;
  out.pixels.assign(static_cast<size_t>(rows) * cols * ch, 0);
  const size_t stride = static_cast<size_t>(in.width) * ch;
  const size_t row_values = static_cast<size_t>(cols) * ch;
  std::vector<int32_t> acc(row_values);
  for (int y = 0; y < rows; ++y) {
    const int i = row0 + y;
    const int32_t* k = &co.fixed[static_cast<size_t>(i) * co.ksize];
    const uint8_t* base = in.pixels.data() + static_cast<size_t>(co.start[i] - in_row0) * stride +
                          static_cast<size_t>(col0) * ch;
    std::fill(acc.begin(), acc.end(), kHalf);
    for (int t = 0; t < co.count[i]; ++t) {
      const uint8_t* s = base + static_cast<size_t>(t) * stride;
      const int32_t w = k[t];
      for (size_t v = 0; v < row_values; ++v) acc[v] += s[v] * w;
    }
    uint8_t* dst = out.pixels.data() + static_cast<size_t>(y) * row_values;
    for (size_t v = 0; v < row_values; ++v) dst[v] = clip8(acc[v]);
  }
}

}  // namespace

ResampleCoeffs pil_resample_coeffs(int in_size, int out_size, ResampleFilter filter) {
  if (in_size <= 0 || out_size <= 0)
    throw InternalError("pil_resample_coeffs: sizes must be positive");
  double (*f)(double) = filter == ResampleFilter::kBilinear ? bilinear : bicubic;
  const double filter_support = filter == ResampleFilter::kBilinear ? 1.0 : 2.0;
  const double scale = static_cast<double>(static_cast<float>(in_size)) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = filter_support * filterscale;
  ResampleCoeffs co;
  co.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  const size_t total = static_cast<size_t>(out_size) * co.ksize;
  co.start.resize(out_size);
  co.count.resize(out_size);
  co.weights.assign(total, 0.0);
  co.fixed.assign(total, 0);
  for (int i = 0; i < out_size; ++i) {
    const double center = (i + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double* k = &co.weights[static_cast<size_t>(i) * co.ksize];
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double w = f((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x)
      if (ww != 0.0) k[x] /= ww;
    int32_t* q = &co.fixed[static_cast<size_t>(i) * co.ksize];
    for (int x = 0; x < co.ksize; ++x) {
      const double v = k[x] * (1 << kResamplePrecisionBits);
      q[x] = static_cast<int32_t>(k[x] < 0 ? -0.5 + v : 0.5 + v);
    }
    co.start[i] = xmin;
    co.count[i] = xmax;
  }
  return co;
}

Image resize_pil(const Image& in, int out_width, int out_height, ResampleFilter filter, Window window) {
  if (in.width <= 0 || in.height <= 0 || out_width <= 0 || out_height <= 0)
    throw InternalError("resize_pil: empty image or size");
  if (window.width == 0 && window.height == 0) window = {0, 0, out_width, out_height};
  if (window.x < 0 || window.y < 0 || window.width <= 0 || window.height <= 0 ||
      window.x + window.width > out_width || window.y + window.height > out_height)
    throw InternalError("resize_pil: window outside the output");
  const bool need_h = out_width != in.width;
  const bool need_v = out_height != in.height;
  Image temp;
  const Image* src = &in;
  int src_row0 = 0;     // source row of src's first row
  int src_col0 = window.x;  // column of src holding the window's first column
  ResampleCoeffs cv;
  int row_first = window.y, row_last = window.y + window.height;  // source rows needed
  if (need_v) {
    cv = pil_resample_coeffs(in.height, out_height, filter);
    row_first = cv.start[window.y];
    const int last = window.y + window.height - 1;
    row_last = cv.start[last] + cv.count[last];
  }
  if (need_h) {
    const ResampleCoeffs chz = pil_resample_coeffs(in.width, out_width, filter);
    horizontal(in, row_first, row_last - row_first, chz, window.x, window.width, temp);
    src = &temp;
    src_row0 = row_first;
    src_col0 = 0;
  }
  Image out;
  if (need_v) {
    vertical(*src, src_row0, cv, window.y, window.height, src_col0, window.width, out);
    return out;
  }
  if (need_h) return temp;  // rows row_first.. are exactly the window's rows
  // Neither pass: a plain crop of the input.
  out.width = window.width;
  out.height = window.height;
  out.channels = in.channels;
  out.pixels.resize(static_cast<size_t>(window.width) * window.height * in.channels);
  const size_t row_bytes = static_cast<size_t>(window.width) * in.channels;
  for (int y = 0; y < window.height; ++y)
    std::copy_n(in.pixels.data() + (static_cast<size_t>(window.y + y) * in.width + window.x) * in.channels,
                row_bytes, out.pixels.data() + static_cast<size_t>(y) * row_bytes);
  return out;
}

}  // namespace repq::data
