// Streaming per-tensor statistics for activation calibration: running range (pass 1) and a
// histogram of |x| over a fixed range [0, amax] (pass 2). Memory is bins x tensors, never
// proportional to the number of images. See docs/calibration.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "repq/ir/tensor.h"

namespace repq::calib {

// Histogram of |x|: `counts[b]` holds values in [b*w, (b+1)*w), w = amax / bins; the last bin
// also holds amax itself. Counts are integers (exact, order independent). The bin index of a
// value is computed in float32 (|v| * bins / amax, truncated), so a value within float rounding
// of a bin edge may land in either neighbour, always the same one. amax <= 0: every value goes
// to the last bin. Set `amax` and resize `counts` (the bin count) before add().
struct AbsHistogram {
  double amax = 0;                 // upper edge of the last bin
  std::vector<uint64_t> counts;    // bins
  double bin_width() const;
  uint64_t total() const;
  // Adds |v| for every v (v NaN: ignored; |v| > amax: counted in the last bin).
  void add(const float* v, int64_t n);
  // Upper edge of bin b (b+1)*w.
  double edge(size_t b) const;
  // Adds the counts of `part` (same amax and bin count, else InternalError). Counts are
  // integers: filling parts of the data separately and merging them gives exactly add() of
  // the whole, in any order.
  void merge(const AbsHistogram& part);
};

struct TensorStats {
  std::string name;
  double min = 0, max = 0;         // over every value seen (pass 1)
  uint64_t count = 0;              // values seen (pass 1)
  uint64_t zeros = 0;              // exact zeros (pass 1)
  uint64_t nans = 0;               // NaN values (pass 1; included in count, not in min/max/hist)
  AbsHistogram hist;               // pass 2, range [0, max(|min|, |max|)]
  double amax() const;             // max(|min|, |max|)
  // Pass 1 on n values: updates min, max (NaN ignored), count, zeros, nans.
  void add_range(const float* v, int64_t n);
  // Pass 1 of `part` (a fresh TensorStats that saw other values with add_range) into this one:
  // the same min, max, count, zeros and nans as add_range of both value sets (min and max are
  // exact, the rest integers), whichever was seen first.
  void merge_range(const TensorStats& part);
};

}  // namespace repq::calib
