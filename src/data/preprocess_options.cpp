// Presets, string options and the description of Preprocess.
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <sstream>
#include <type_traits>

#include "repq/data/preprocess.h"
#include "repq/error.h"

namespace repq::data {

namespace {

[[noreturn]] void bad(std::string_view key, const std::string& problem) {
  throw InputError("--" + std::string(key) + ": " + problem);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

template <class T>
T parse_number(std::string_view key, std::string_view text) {
  text = trim(text);
  T v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size())
    bad(key, "expected a number, got '" + std::string(text) + "'");
  if constexpr (std::is_floating_point_v<T>)
    if (!std::isfinite(v)) bad(key, "expected a finite number, got '" + std::string(text) + "'");
  return v;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (true) {
    const size_t next = s.find(sep, pos);
    parts.push_back(s.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  return parts;
}

std::vector<float> parse_floats(std::string_view key, std::string_view text) {
  std::vector<float> v;
  for (std::string_view part : split(text, ',')) v.push_back(parse_number<float>(key, part));
  if (v.size() != 1 && v.size() != 3) bad(key, "expected 1 or 3 comma-separated numbers, got '" + std::string(text) + "'");
  return v;
}

int parse_size(std::string_view key, std::string_view text) {
  const int v = parse_number<int>(key, text);
  if (v < 0 || v > 65536) bad(key, "expected a size in 0..65536, got '" + std::string(text) + "'");
  return v;
}

// "N" -> (N, N); "H,W" -> (H, W).
std::array<int, 2> parse_hw(std::string_view key, std::string_view text) {
  const auto parts = split(text, ',');
  if (parts.size() == 1) {
    const int n = parse_size(key, parts[0]);
    return {n, n};
  }
  if (parts.size() != 2) bad(key, "expected N or H,W, got '" + std::string(text) + "'");
  return {parse_size(key, parts[0]), parse_size(key, parts[1])};
}

template <class E>
E parse_choice(std::string_view key, std::string_view text, std::initializer_list<std::pair<const char*, E>> choices) {
  std::string names;
  for (const auto& [name, value] : choices) {
    if (trim(text) == name) return value;
    names += names.empty() ? name : std::string("|") + name;
  }
  bad(key, "expected " + names + ", got '" + std::string(text) + "'");
}

std::string join(const std::vector<float>& v) {
  std::ostringstream os;
  for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  return os.str();
}

}  // namespace

Preprocess Preprocess::from_preset(std::string_view name) {
  Preprocess pp;  // the defaults are the imagenet preset
  if (name == "imagenet") return pp;
  if (name == "torchvision") {
    pp.preset = "torchvision";
    pp.long_side = LongSide::kTruncate;
    pp.crop_offset = CropOffset::kRound;
    return pp;
  }
  if (name == "none") {
    pp.preset = "none";
    pp.resize = 0;
    pp.crop_height = pp.crop_width = 0;
    pp.mean = {0.0f};
    pp.std_dev = {1.0f};
    return pp;
  }
  bad("preset", "expected imagenet|torchvision|none, got '" + std::string(name) + "'");
}

const std::vector<PreprocessOption>& Preprocess::options() {
  static const std::vector<PreprocessOption> kOptions = {
      {"preset", "imagenet|torchvision|none", "start from a preset (applied before the other options)"},
      {"resize", "S|H,W", "resize the short side to S keeping the aspect ratio, or to exactly H x W; 0 = no resize"},
      {"resize-long", "round|trunc", "long side after a short-side resize: S*long/short rounded (default) or truncated (torchvision)"},
      {"interpolation", "bilinear|bicubic", "PIL-compatible antialiased resampling filter"},
      {"crop", "C|H,W", "centre crop C x C or H x W after the resize; 0 = no crop"},
      {"crop-offset", "floor|round", "crop offset (W-C)//2 (default) or round((W-C)/2) (torchvision)"},
      {"divisor", "D", "pixel values are divided by D first (default 255)"},
      {"mean", "M|R,G,B", "subtracted after the division, per channel in R,G,B order"},
      {"std", "S|R,G,B", "divides after the mean, per channel in R,G,B order"},
      {"channel-order", "rgb|bgr", "channel order of the model input"},
      {"color", "rgb|grey", "3 channels (greyscale replicated) or 1 channel (colour converted to grey)"},
      {"max-pixels", "N", "refuse images declaring more than N pixels before decoding (0 = no limit)"},
  };
  return kOptions;
}

void Preprocess::set(std::string_view key, std::string_view value) {
  if (key == "preset") {
    *this = from_preset(trim(value));
  } else if (key == "resize") {
    const auto parts = split(value, ',');
    if (parts.size() == 1) {
      resize = parse_size(key, value);
      resize_height = resize_width = 0;
    } else {
      const auto [h, w] = parse_hw(key, value);
      if (h == 0 || w == 0) bad(key, "an exact size needs H and W above 0");
      resize_height = h;
      resize_width = w;
    }
  } else if (key == "resize-long") {
    long_side = parse_choice<LongSide>(key, value, {{"round", LongSide::kRound}, {"trunc", LongSide::kTruncate}});
  } else if (key == "interpolation") {
    filter = parse_choice<ResampleFilter>(key, value, {{"bilinear", ResampleFilter::kBilinear}, {"bicubic", ResampleFilter::kBicubic}});
  } else if (key == "crop") {
    const auto [h, w] = parse_hw(key, value);
    if ((h == 0) != (w == 0)) bad(key, "H and W must both be 0 or both above 0");
    crop_height = h;
    crop_width = w;
  } else if (key == "crop-offset") {
    crop_offset = parse_choice<CropOffset>(key, value, {{"floor", CropOffset::kFloor}, {"round", CropOffset::kRound}});
  } else if (key == "divisor") {
    divisor = parse_number<float>(key, value);
    if (!(divisor > 0)) bad(key, "must be above 0");
  } else if (key == "mean") {
    mean = parse_floats(key, value);
  } else if (key == "std") {
    std_dev = parse_floats(key, value);
    for (float s : std_dev)
      if (s == 0) bad(key, "must not be 0");
  } else if (key == "channel-order") {
    channel_order = parse_choice<ChannelOrder>(key, value, {{"rgb", ChannelOrder::kRGB}, {"bgr", ChannelOrder::kBGR}});
  } else if (key == "color") {
    color = parse_choice<ColorMode>(key, value, {{"rgb", ColorMode::kRGB}, {"grey", ColorMode::kGrey}, {"gray", ColorMode::kGrey}});
  } else if (key == "max-pixels") {
    max_pixels = parse_number<int64_t>(key, value);
    if (max_pixels < 0) bad(key, "must be 0 (no limit) or above");
  } else {
    throw InputError("--" + std::string(key) + ": unknown preprocessing option");
  }
}

Preprocess Preprocess::from_args(const std::vector<std::string>& args) {
  std::vector<std::pair<std::string, std::string>> kv;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (a.substr(0, 2) != "--") throw InputError("'" + args[i] + "': expected --option value");
    a.remove_prefix(2);
    const size_t eq = a.find('=');
    if (eq != std::string_view::npos) {
      kv.emplace_back(std::string(a.substr(0, eq)), std::string(a.substr(eq + 1)));
    } else {
      if (i + 1 >= args.size()) throw InputError("--" + std::string(a) + ": missing value");
      kv.emplace_back(std::string(a), args[++i]);
    }
  }
  Preprocess pp;
  for (const auto& [k, v] : kv)
    if (k == "preset") pp.set(k, v);
  for (const auto& [k, v] : kv)
    if (k != "preset") pp.set(k, v);
  pp.validate();
  return pp;
}

void Preprocess::validate() const {
  const size_t c = static_cast<size_t>(channels());
  if (mean.size() != 1 && mean.size() != c)
    bad("mean", "has " + std::to_string(mean.size()) + " values but the images have " + std::to_string(c) + " channel(s)");
  if (std_dev.size() != 1 && std_dev.size() != c)
    bad("std", "has " + std::to_string(std_dev.size()) + " values but the images have " + std::to_string(c) + " channel(s)");
  for (float s : std_dev)
    if (!(s != 0) || !std::isfinite(s)) bad("std", "must be finite and not 0");
  if (!(divisor > 0) || !std::isfinite(divisor)) bad("divisor", "must be finite and above 0");
  if (resize < 0 || crop_height < 0 || crop_width < 0 || resize_height < 0 || resize_width < 0)
    bad("resize", "sizes must not be negative");
}

std::string Preprocess::describe() const {
  std::ostringstream os;
  os << preset << ": ";
  const char* filt = filter == ResampleFilter::kBilinear ? "bilinear" : "bicubic";
  if (resize_height > 0 && resize_width > 0)
    os << "resize to " << resize_height << "x" << resize_width << " (" << filt << "), ";
  else if (resize > 0)
    os << "resize short side " << resize << " (" << filt << ", long side "
       << (long_side == LongSide::kRound ? "rounded" : "truncated") << "), ";
  if (crop_height > 0)
    os << "centre crop " << crop_height << "x" << crop_width << " ("
       << (crop_offset == CropOffset::kFloor ? "floor" : "rounded") << " offsets), ";
  os << "/" << divisor << ", mean " << join(mean) << ", std " << join(std_dev) << ", "
     << (color == ColorMode::kGrey ? "grey" : channel_order == ChannelOrder::kRGB ? "RGB" : "BGR")
     << ", CHW float32";
  return os.str();
}

}  // namespace repq::data
