// The diagnosis of a report: for every row the likely causes of its quantization error in
// words and the repq options that help, and the ranking of the worst layers.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "repq/report/compute.h"

namespace repq::report {

namespace {

// Thresholds (documented in docs/report.md, "Diagnosis").
// Identity-BN factor gamma/sqrt(var+eps) above which the fused centre tap is an outlier:
// healthy blocks sit around 0.5-3 (models/README.md); QARepVGG's failing RepVGGs show hundreds.
constexpr double kIdentityBnOutlier = 10.0;
// The same for any BN of the block (branch BNs legitimately reach ~30 on a stem that sees
// the image, models/README.md: 16-33), so only well beyond that.
constexpr double kAnyBnOutlier = 50.0;
// max |centre| / max |surround| above which a per-channel int8 scale leaves the surround
// fewer than 127/8 ~ 16 levels (BASELINES.md): CFWS territory.
constexpr double kCentreSurround = 8.0;
// Largest per-channel max |W| over the median channel: one channel sets a per-tensor scale.
constexpr double kChannelOutlier = 10.0;
// Fraction of calibration values beyond the quantized range that counts as clipping.
constexpr double kClipped = 1e-3;
// A clip threshold below this fraction of max |x| while some values are clipped.
constexpr double kLowThreshold = 0.25;
constexpr double kSomeClipped = 1e-5;
// max |x| over the 99.99th percentile of |x| above which the range is "wide" (outliers)...
constexpr double kWideRange = 8.0;
// ...and it only hurts when the threshold keeps most of that range.
constexpr double kThresholdKeepsRange = 0.5;
// Weight SQNR gap (dB) between per-channel and per-tensor that makes per-tensor the cause.
constexpr double kPerTensorGap = 10.0;
// Isolated output SQNR (dB) below which keeping the layer in float is worth advising.
constexpr double kLowOutputSqnr = 20.0;

std::string num(double v) {
  char b[32];
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::snprintf(b, sizeof b, std::fabs(v) >= 100 ? "%.0f" : "%.3g", v);
  return b;
}

void add_unique(std::vector<std::string>& v, const std::string& s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

double chosen_weight_sqnr(const LayerRow& r) {
  if (r.encoding == "per-tensor") return r.w_sqnr_per_tensor;
  if (r.encoding == "cfws" && !std::isnan(r.w_sqnr_cfws)) return r.w_sqnr_cfws;
  return r.w_sqnr_per_channel;
}

void diagnose_row(const Report& rep, LayerRow& r) {
  const bool per_tensor = r.encoding == "per-tensor";
  const bool cfws = r.encoding == "cfws";
  if (r.identity_bn_factor > kIdentityBnOutlier) {
    r.causes.push_back("identity-BN outlier (factor " + num(r.identity_bn_factor) + ")");
    if (!cfws) add_unique(r.advice, "--weights cfws");
    if (per_tensor) add_unique(r.advice, "--weights per-channel");
  } else if (r.any_bn_factor > kAnyBnOutlier) {
    r.causes.push_back("branch-BN outlier (factor " + num(r.any_bn_factor) + ")");
    if (per_tensor) add_unique(r.advice, "--weights per-channel");
  }
  if (r.channel_outlier > kChannelOutlier) {
    std::string c = "one output channel dominates the weights (" + num(r.channel_outlier) +
                    "x the median channel";
    if (r.dead_input_channels > 0)
      c += "; " + std::to_string(r.dead_input_channels) + " dead input channel" +
           (r.dead_input_channels == 1 ? "" : "s");
    r.causes.push_back(c + ")");
    if (per_tensor) add_unique(r.advice, "--weights per-channel");
  }
  if (r.centre_surround > kCentreSurround && !r.kernel.empty()) {
    r.causes.push_back("dominant centre tap (centre/surround " + num(r.centre_surround) + ")");
    if (!cfws) add_unique(r.advice, "--weights cfws");
  }
  if (per_tensor && r.w_sqnr_per_channel - r.w_sqnr_per_tensor > kPerTensorGap) {
    r.causes.push_back("per-tensor weights lose " + num(r.w_sqnr_per_channel - r.w_sqnr_per_tensor) +
                       " dB against per-channel");
    add_unique(r.advice, "--weights per-channel");
  }
  const double amax = std::max(std::fabs(r.act_min), std::fabs(r.act_max));
  const bool clipped = r.act_clipped > kClipped ||
                       (r.act_threshold < kLowThreshold * amax && r.act_clipped > kSomeClipped);
  if (clipped) {
    r.causes.push_back("clipped activations (" + num(100.0 * r.act_clipped) + "% beyond the threshold " +
                       num(r.act_threshold) + ", max " + num(amax) + ")");
    add_unique(r.advice, rep.act_method == "mse" ? "--act minmax" : "--act mse");
  } else if (amax > kWideRange * r.act_p9999 && r.act_threshold > kThresholdKeepsRange * amax) {
    r.causes.push_back("wide activation range (max " + num(amax) + " = " + num(amax / r.act_p9999) +
                       "x the 99.99th percentile)");
    add_unique(r.advice, rep.act_method == "percentile" ? "--act kl" : "--act percentile");
  }
  if (r.out_sqnr_isolated < kLowOutputSqnr) {
    if (r.causes.empty())
      r.causes.push_back("low output SQNR (" + num(r.out_sqnr_isolated) + " dB), no single cause found");
    add_unique(r.advice, "--exclude " + r.name);
  }
}

}  // namespace

void diagnose(Report& rep) {
  for (LayerRow& r : rep.layers) {
    r.causes.clear();
    r.advice.clear();
    diagnose_row(rep, r);
  }
  // Worst first: isolated output SQNR (weight SQNR of the chosen encoding for --static);
  // unmeasured (NaN) rows last, ties in graph order.
  auto key = [&](const LayerRow& r) {
    return rep.static_only ? chosen_weight_sqnr(r) : r.out_sqnr_isolated;
  };
  rep.worst.resize(rep.layers.size());
  std::iota(rep.worst.begin(), rep.worst.end(), 0);
  std::stable_sort(rep.worst.begin(), rep.worst.end(), [&](int a, int b) {
    const double ka = key(rep.layers[static_cast<size_t>(a)]);
    const double kb = key(rep.layers[static_cast<size_t>(b)]);
    if (std::isnan(ka) || std::isnan(kb)) return !std::isnan(ka) && std::isnan(kb);
    return ka < kb;
  });
}

}  // namespace repq::report
