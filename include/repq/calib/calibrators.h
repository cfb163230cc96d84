// Activation calibrators: choose a clip threshold T (0 < T <= amax) for one tensor from its
// statistics. The exact formulas are in docs/calibration.md (ALGORITHMS.md section 4).
#pragma once

#include <string>
#include <string_view>

#include "repq/calib/histogram.h"

namespace repq::calib {

enum class Method { kMinMax, kPercentile, kMse, kEntropy, kKl };

std::string method_name(Method m);               // "minmax", "percentile", "mse", "entropy", "kl"
Method parse_method(std::string_view name);      // throws InputError listing the valid names

struct CalibParams {
  double percentile = 99.99;  // kPercentile: of |x|
  // Positive quantization levels of the grid the tensor will use: 127 for symmetric int8,
  // 255 for an unsigned tensor (only values >= 0, e.g. after a fused Relu). kMse uses it;
  // kKl uses 128 or 256 target levels accordingly; kEntropy always uses 128 (TensorRT).
  int levels = 127;
  // Threads for kEntropy / kKl's candidate screening (0: all cores); any count gives the same
  // threshold.
  int threads = 0;
};

// The threshold for `stats` (pass-2 histogram filled). A tensor that is all zeros (amax 0)
// gets T = 0; callers then use a tiny positive scale. Deterministic.
double choose_threshold(const TensorStats& stats, Method m, const CalibParams& p = {});

// Building blocks, exposed for tests.
double percentile_threshold(const AbsHistogram& h, double percentile);
double mse_threshold(const AbsHistogram& h, int levels);
// TensorRT IInt8EntropyCalibrator2 (start bin 128, 128 quantized levels, KL(P||Q)).
// `threads` (0: all cores) only splits the work: the result is the same for any count.
double entropy_threshold(const AbsHistogram& h, int quant_levels = 128, int threads = 1);
// CFWS paper's improved KL (numerically safe, integer counts in double, bins with P=0 skipped).
double kl_threshold(const AbsHistogram& h, int quant_levels = 128, int threads = 1);

// The objective each calibrator minimizes, for tests and reports.
// Expected squared error (rounding + clipping) per value of the histogram's distribution (each
// bin's mass uniform inside the bin) on the grid {0, s, ..., levels*s}, s = t / levels.
double expected_sq_error(const AbsHistogram& h, double t, int levels);
// KL(P||Q) of the entropy calibrator for candidate i (the first i bins kept, quant_levels <= i
// <= bins); +infinity when some P_j > 0 has Q_j = 0 (as TensorRT).
double entropy_divergence(const AbsHistogram& h, int64_t i, int quant_levels = 128);
// The kl calibrator's divergence for candidate i (never NaN; +infinity only when the top
// quantization level holds no in-range value while outliers are folded into it).
double kl_divergence(const AbsHistogram& h, int64_t i, int quant_levels = 128);

}  // namespace repq::calib
