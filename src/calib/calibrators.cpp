// Activation calibrators: names, the dispatcher, and the minmax / percentile / mse methods
// (entropy and kl are in calibrators_kl.cpp). Formulas: docs/calibration.md.
#include "repq/calib/calibrators.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "repq/error.h"

namespace repq::calib {

std::string method_name(Method m) {
  switch (m) {
    case Method::kMinMax: return "minmax";
    case Method::kPercentile: return "percentile";
    case Method::kMse: return "mse";
    case Method::kEntropy: return "entropy";
    case Method::kKl: return "kl";
  }
  return "unknown";
}

Method parse_method(std::string_view name) {
  for (Method m : {Method::kMinMax, Method::kPercentile, Method::kMse, Method::kEntropy,
                   Method::kKl}) {
    if (name == method_name(m)) return m;
  }
  throw InputError("activation calibrator '" + std::string(name) +
                   "' is unknown (valid: minmax, percentile, mse, entropy, kl)");
}

double percentile_threshold(const AbsHistogram& h, double percentile) {
  if (!(percentile > 0 && percentile <= 100))
    throw InputError("percentile " + std::to_string(percentile) + ": must be in (0, 100]");
  const uint64_t total = h.total();
  if (total == 0 || !(h.amax > 0)) return 0;
  // The empirical CDF of |x| with each bin's values spread evenly over the bin: the threshold
  // is where it reaches percentile/100 (linear inside the bin that crosses the rank).
  const double rank = percentile / 100.0 * static_cast<double>(total);
  const double w = h.bin_width();
  double below = 0;  // values in the bins before b
  for (size_t b = 0; b < h.counts.size(); ++b) {
    const auto c = static_cast<double>(h.counts[b]);
    if (c == 0) continue;
    if (below + c >= rank) {
      const double frac = std::clamp((rank - below) / c, 0.0, 1.0);
      return std::min(h.amax, (static_cast<double>(b) + frac) * w);
    }
    below += c;
  }
  return h.amax;
}

namespace {

// ∫_0^x r(u)^2 du for the rounding residue r(u) = u - s*round(u/s), x >= 0:
// with m = round(x/s) and d = x - m*s, G(x) = (m - 1/2) s^3/12 + (d^3 + s^3/8) / 3.
inline double rounding_integral(double x, double s, double inv_s, double s3) {
  const double m = std::nearbyint(x * inv_s);
  const double d = x - m * s;
  return (m - 0.5) * s3 / 12.0 + (d * d * d + s3 / 8.0) / 3.0;
}

void check_levels(int levels) {
  if (levels < 1) throw InputError("quantization levels " + std::to_string(levels) + ": must be >= 1");
}

}  // namespace

double expected_sq_error(const AbsHistogram& h, double t, int levels) {
  check_levels(levels);
  const uint64_t total = h.total();
  if (total == 0 || !(h.amax > 0)) return 0;
  const double w = h.bin_width();
  const double s = t / levels;
  const double inv_s = s > 0 ? 1.0 / s : 0.0;
  const double s3 = s * s * s;
  double err = 0;
  for (size_t j = 0; j < h.counts.size(); ++j) {
    if (h.counts[j] == 0) continue;
    const double a = static_cast<double>(j) * w, b = a + w;
    double integral = 0;  // ∫_a^b (x - q(x))^2 dx
    if (a < t && s > 0) {
      const double hi = std::min(b, t);
      integral += rounding_integral(hi, s, inv_s, s3) - rounding_integral(a, s, inv_s, s3);
    }
    if (b > t) {  // clipped to t
      const double lo = std::max(a, t) - t, hi = b - t;
      integral += (hi * hi * hi - lo * lo * lo) / 3.0;
    }
    err += static_cast<double>(h.counts[j]) * integral / w;
  }
  return err / static_cast<double>(total);
}

double mse_threshold(const AbsHistogram& h, int levels) {
  check_levels(levels);
  const size_t nb = h.counts.size();
  const uint64_t total = h.total();
  if (total == 0 || !(h.amax > 0)) return 0;
  const double w = h.bin_width();
  std::vector<double> c(nb);
  for (size_t j = 0; j < nb; ++j) c[j] = static_cast<double>(h.counts[j]);
  // Clipping error of the bins above candidate edge e = k*w, from suffix sums over j >= k of
  // c_j * ∫_{a_j}^{b_j} (x - e)^2 dx / w = c_j * ((b_j-e)^3 - (a_j-e)^3) / (3w), expanded in
  // powers of e: sum c_j (A3_j - 3 e A2_j + 3 e^2 A1_j)/(3w) with A_n = b^n - a^n.
  std::vector<double> s3(nb + 1, 0), s2(nb + 1, 0), s1(nb + 1, 0);
  for (size_t j = nb; j-- > 0;) {
    const double a = static_cast<double>(j) * w, b = a + w;
    s3[j] = s3[j + 1] + c[j] * (b * b * b - a * a * a);
    s2[j] = s2[j + 1] + c[j] * (b * b - a * a);
    s1[j] = s1[j + 1] + c[j] * (b - a);
  }
  // Rounding error below e = (k+1)w: sum_{j<=k} c_j (G(e_{j+1}) - G(e_j)) / w, regrouped by
  // edge: sum_{j=1}^{k+1} G(j*w) * (c_{j-1} - c_j [j <= k]) / w  (G(0) = 0).
  double best_err = std::numeric_limits<double>::infinity();
  size_t best_k = nb - 1;
  for (size_t k = 0; k < nb; ++k) {
    const double t = static_cast<double>(k + 1) * w;
    const double s = t / levels, inv_s = 1.0 / s, cube = s * s * s;
    double rounding = 0;
    for (size_t j = 1; j <= k; ++j) {
      rounding += rounding_integral(static_cast<double>(j) * w, s, inv_s, cube) * (c[j - 1] - c[j]);
    }
    rounding += rounding_integral(t, s, inv_s, cube) * c[k];
    const double e = t;
    const double clip = s3[k + 1] - 3 * e * s2[k + 1] + 3 * e * e * s1[k + 1];
    const double err = (rounding + clip / 3.0) / w;
    if (err < best_err) {  // smallest error; the smallest threshold on ties
      best_err = err;
      best_k = k;
    }
  }
  return std::min(h.amax, static_cast<double>(best_k + 1) * w);
}

double choose_threshold(const TensorStats& stats, Method m, const CalibParams& p) {
  const double amax = stats.amax();
  if (!(amax > 0)) return 0;
  if (!std::isfinite(amax))
    throw InputError("tensor '" + stats.name + "': infinite values; it cannot be calibrated");
  if (m == Method::kMinMax) return amax;
  const AbsHistogram& h = stats.hist;
  if (h.counts.empty() || h.total() == 0)
    throw InternalError("tensor '" + stats.name + "': the " + method_name(m) +
                        " calibrator needs the pass-2 histogram");
  check_levels(p.levels);
  double t = amax;
  switch (m) {
    case Method::kMinMax: break;
    case Method::kPercentile: t = percentile_threshold(h, p.percentile); break;
    case Method::kMse: t = mse_threshold(h, p.levels); break;
    case Method::kEntropy: t = entropy_threshold(h, 128, p.threads); break;
    case Method::kKl: t = kl_threshold(h, p.levels + 1, p.threads); break;
  }
  return std::clamp(t, 0.0, amax);
}

}  // namespace repq::calib
