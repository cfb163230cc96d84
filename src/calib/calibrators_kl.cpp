// The two divergence calibrators: entropy (TensorRT's IInt8EntropyCalibrator2) and kl (the
// CFWS paper's improved KL, numerically safe). Exact formulas: docs/calibration.md.
//
// Both scan the candidates i = L..bins (L quantized levels). For candidate i, P is the first
// i bins with the mass of bins >= i ("outliers") folded into bin i-1; Q merges the ORIGINAL
// first i bins into L levels (bin j belongs to level floor(j*L/i), integer arithmetic) and
// spreads each level's sum evenly over the level's non-empty bins; both are normalized.
// Q misses the folded mass, which is what penalizes clipping. They differ in "non-empty":
//   entropy: non-empty in the original bins (TensorRT). A bin i-1 that was empty but receives
//            outliers has P > 0 and Q = 0: KL = +infinity, the candidate is never chosen.
//   kl:      non-empty in P (outliers folded, MXNet's rule), so bin i-1 gets its level's share.
//            Only when the whole top level holds no in-range value (its sum is 0) is
//            P_{i-1} > 0 with Q_{i-1} = 0; that candidate is rejected (+infinity) explicitly.
// The divergence is evaluated from integer counts held in double: terms with P_j = 0 are
// skipped, ln is taken of counts >= 1 and of level averages >= 1/bins, never of a tiny float:
//   D = (1/n) sum_{P_j>0} P_j (ln P_j - ln Q_j) + ln((n - outliers) / n),   n = sum P.
// Work per candidate is O(i) multiply-adds plus one log per level: ln c_j is computed once
// per bin (and once for the folded bin), never inside the scan. The scan first screens every
// candidate with prefix sums (O(levels) each) and evaluates exactly only the few that can be
// the minimum (best_candidate): same result as the exact scan, about 10x less work. The
// screening of a 2048-bin histogram is split into candidate ranges over CalibParams::threads
// threads (each value computed alone: the same threshold for any count).
#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "repq/calib/calibrators.h"
#include "repq/error.h"

namespace repq::calib {

namespace {

enum class Variant { kTensorRt, kSafe };

struct Counts {
  std::vector<double> c;       // bin counts (integers, exact in double up to 2^53)
  std::vector<double> logc;    // ln c_j, 0 where c_j = 0 (never used there)
  std::vector<double> suffix;  // suffix[k] = sum_{j >= k} c_j, suffix[bins] = 0
  std::vector<uint64_t> prefix;     // prefix[k] = sum_{j < k} c_j (exact integers)
  std::vector<int64_t> prefix_nz;   // prefix_nz[k] = #{j < k : c_j > 0}
  std::vector<double> prefix_clogc;  // sum_{j < k} c_j ln c_j (the screening pass only)
  std::vector<double> log_int;       // log_int[k] = ln k (k <= bins; [0] unused)
  double total = 0;

  explicit Counts(const AbsHistogram& h) {
    const size_t nb = h.counts.size();
    c.resize(nb);
    logc.resize(nb);
    suffix.assign(nb + 1, 0);
    for (size_t j = 0; j < nb; ++j) {
      c[j] = static_cast<double>(h.counts[j]);
      logc[j] = c[j] > 0 ? std::log(c[j]) : 0;
    }
    for (size_t j = nb; j-- > 0;) suffix[j] = suffix[j + 1] + c[j];
    prefix.assign(nb + 1, 0);
    prefix_nz.assign(nb + 1, 0);
    prefix_clogc.assign(nb + 1, 0);
    for (size_t j = 0; j < nb; ++j) {
      prefix[j + 1] = prefix[j] + h.counts[j];
      prefix_nz[j + 1] = prefix_nz[j] + (h.counts[j] > 0);
      prefix_clogc[j + 1] = prefix_clogc[j] + c[j] * logc[j];
    }
    log_int.assign(nb + 1, 0);
    for (size_t k = 1; k <= nb; ++k) log_int[k] = std::log(static_cast<double>(k));
    total = suffix[0];
  }
};

double divergence(const Counts& x, int64_t i, int levels, Variant v) {
  const auto nb = static_cast<int64_t>(x.c.size());
  if (levels < 1 || i < levels || i > nb)
    throw InternalError("divergence: candidate " + std::to_string(i) + " outside [" +
                        std::to_string(levels) + ", " + std::to_string(nb) + "]");
  const double n = x.total;
  if (!(n > 0)) return 0;
  const double fold = x.suffix[static_cast<size_t>(i)];    // mass beyond the kept bins
  const double p_last = x.c[static_cast<size_t>(i - 1)] + fold;  // P_{i-1}
  const double log_p_last = p_last > 0 ? std::log(p_last) : 0;
  const double inf = std::numeric_limits<double>::infinity();
  double sum = 0;  // sum_j P_j (ln P_j - ln Q_j), Q_j unnormalized
  for (int64_t l = 0; l < levels; ++l) {
    const int64_t lo = (l * i + levels - 1) / levels;
    const int64_t hi = ((l + 1) * i + levels - 1) / levels;  // bins [lo, hi) form level l
    const bool has_last = hi == i;
    // The level's sum (original bins) and its non-empty bins (see the variants above).
    const auto ulo = static_cast<size_t>(lo), uhi = static_cast<size_t>(hi);
    const auto level_sum = static_cast<double>(x.prefix[uhi] - x.prefix[ulo]);
    int64_t non_empty = x.prefix_nz[uhi] - x.prefix_nz[ulo];
    if (has_last && v == Variant::kSafe && x.c[static_cast<size_t>(i - 1)] == 0 && p_last > 0)
      ++non_empty;  // the folded bin is non-empty in P
    if (level_sum == 0) {
      if (has_last && p_last > 0) return inf;  // P > 0 where Q = 0
      continue;                                // P = 0 on the whole level
    }
    const double log_q = std::log(level_sum / static_cast<double>(non_empty));
    // Bins with c_j = 0 add 0 * (0 - log_q) = 0: no branch. Four partial sums break the
    // dependency chain (a fixed order: deterministic).
    const auto plain_end = static_cast<size_t>(has_last ? hi - 1 : hi);
    double acc[4] = {0, 0, 0, 0};
    size_t j = ulo;
    for (; j + 4 <= plain_end; j += 4) {
      for (size_t k = 0; k < 4; ++k) acc[k] += x.c[j + k] * (x.logc[j + k] - log_q);
    }
    for (; j < plain_end; ++j) acc[0] += x.c[j] * (x.logc[j] - log_q);
    sum += (acc[0] + acc[1]) + (acc[2] + acc[3]);
    if (has_last && p_last > 0) {
      if (v == Variant::kTensorRt && x.c[static_cast<size_t>(i - 1)] == 0) return inf;
      sum += p_last * (log_p_last - log_q);
    }
  }
  // Q normalized by its own sum n - fold (every level's sum lands on its bins), P by n.
  return sum / n + std::log1p(-fold / n);
}

// The screening pass: divergence() with each level's sum_j c_j (ln c_j - ln q) taken from
// prefix sums (O(1) per level instead of O(bins in the level)) and the level bounds stepped
// without divisions. It differs from divergence() by rounding only (see screening_margin); the
// +infinity cases are the same integer tests.
// ln of the count of bins [lo, lo + w) for every lo and 1 <= w <= max_width (0 where the count
// is 0): a level of any candidate is such a range, so the scan takes no logarithm per level.
struct LevelLogs {
  int64_t max_width = 0;
  std::vector<double> table;  // [lo * (max_width + 1) + w]
  LevelLogs(const Counts& x, int levels) {
    const auto nb = static_cast<int64_t>(x.c.size());
    max_width = (nb + levels - 1) / levels;
    table.assign(static_cast<size_t>(nb * (max_width + 1)), 0);
    for (int64_t lo = 0; lo < nb; ++lo)
      for (int64_t w = 1; w <= max_width && lo + w <= nb; ++w) {
        const uint64_t count = x.prefix[static_cast<size_t>(lo + w)] - x.prefix[static_cast<size_t>(lo)];
        if (count > 0)
          table[static_cast<size_t>(lo * (max_width + 1) + w)] = std::log(static_cast<double>(count));
      }
  }
  double at(int64_t lo, int64_t hi) const {
    return table[static_cast<size_t>(lo * (max_width + 1) + (hi - lo))];
  }
};

double screened_divergence(const Counts& x, const LevelLogs& logs, int64_t i, int levels, Variant v) {
  const double n = x.total;
  if (!(n > 0)) return 0;
  const double fold = x.suffix[static_cast<size_t>(i)];
  const double p_last = x.c[static_cast<size_t>(i - 1)] + fold;
  const bool last_empty = x.c[static_cast<size_t>(i - 1)] == 0;
  const double inf = std::numeric_limits<double>::infinity();
  // hi(l) = ceil((l + 1) * i / levels) = q + (r > 0), stepped as quotient q and remainder r.
  const int64_t step_q = i / levels, step_r = i % levels;
  int64_t q = 0, r = levels - 1;  // (l + 1) * i + levels - 1 = q * levels + r, for l = -1
  int64_t lo = 0;
  double sum = 0;
  for (int l = 0; l < levels; ++l) {
    q += step_q;
    r += step_r;
    if (r >= levels) {
      r -= levels;
      ++q;
    }
    const int64_t hi = q;
    const bool has_last = hi == i;
    const auto ulo = static_cast<size_t>(lo), uhi = static_cast<size_t>(hi);
    lo = hi;
    const uint64_t level_count = x.prefix[uhi] - x.prefix[ulo];
    int64_t non_empty = x.prefix_nz[uhi] - x.prefix_nz[ulo];
    if (has_last && v == Variant::kSafe && last_empty && p_last > 0) ++non_empty;
    if (level_count == 0) {
      if (has_last && p_last > 0) return inf;
      continue;
    }
    const double log_q = logs.at(static_cast<int64_t>(ulo), hi) - x.log_int[static_cast<size_t>(non_empty)];
    const auto plain_end = has_last ? uhi - 1 : uhi;
    sum += (x.prefix_clogc[plain_end] - x.prefix_clogc[ulo]) -
           static_cast<double>(x.prefix[plain_end] - x.prefix[ulo]) * log_q;
    if (has_last && p_last > 0) {
      if (v == Variant::kTensorRt && last_empty) return inf;
      sum += p_last * (std::log(p_last) - log_q);
    }
  }
  return sum / n + std::log1p(-fold / n);
}

// A bound on |screened - exact| (worst-case rounding, not an estimate). Every prefix sum and
// every level term is at most S = n (1 + ln(n + 1)) in magnitude; a prefix sum of up to `bins`
// terms is off by at most bins * eps * S, a level uses two of them, and there are `levels`
// levels plus the direct sums of the exact pass (another bins * eps * S); all is divided by n.
double screening_margin(const Counts& x, int levels) {
  const auto nb = static_cast<double>(x.c.size());
  const double per_n = 1.0 + std::log1p(x.total);
  return 4.0 * (2.0 * levels + 2.0) * nb * std::numeric_limits<double>::epsilon() * per_n;
}

double best_candidate(const AbsHistogram& h, int levels, Variant v, int threads) {
  if (levels < 1) throw InputError("quantization levels " + std::to_string(levels) + ": must be >= 1");
  const auto nb = static_cast<int64_t>(h.counts.size());
  if (!(h.amax > 0) || nb == 0) return 0;
  if (nb < levels) return h.amax;  // fewer bins than levels: nothing to clip
  const Counts x(h);
  if (!(x.total > 0)) return 0;
  // Screening: every candidate's divergence from prefix sums (O(levels) each), then the exact
  // divergence (the reference summation, O(i)) only for the candidates within
  // screening_margin of the smallest screened value. Both computations differ from the true
  // value by less than half the margin, so every candidate that can be the exact argmin is
  // re-evaluated exactly and the result is the one of the plain exact scan, bit for bit.
  // The screening is split into contiguous candidate ranges over up to `threads` threads when
  // it is big enough; every screened value is computed alone, so the split changes no bit.
  const LevelLogs logs(x, levels);
  std::vector<double> screened(static_cast<size_t>(nb + 1), 0);
  const int64_t candidates = nb - levels + 1;
  int64_t parts = threads > 0 ? threads : std::max(1u, std::thread::hardware_concurrency());
  parts = std::clamp<int64_t>(candidates * levels / (int64_t{1} << 16), 1, parts);
  std::vector<double> part_lowest(static_cast<size_t>(parts), std::numeric_limits<double>::infinity());
  const auto screen = [&](int64_t k) {
    double lo = std::numeric_limits<double>::infinity();
    const int64_t b = levels + candidates * k / parts, e = levels + candidates * (k + 1) / parts;
    for (int64_t i = b; i < e; ++i) {
      screened[static_cast<size_t>(i)] = screened_divergence(x, logs, i, levels, v);
      lo = std::min(lo, screened[static_cast<size_t>(i)]);
    }
    part_lowest[static_cast<size_t>(k)] = lo;
  };
  {
    std::vector<std::thread> helpers;
    for (int64_t k = 1; k < parts; ++k) helpers.emplace_back(screen, k);
    screen(0);
    for (auto& t : helpers) t.join();
  }
  double lowest = std::numeric_limits<double>::infinity();
  for (double lo : part_lowest) lowest = std::min(lowest, lo);
  if (!std::isfinite(lowest))  // every candidate +infinity: the last one (as the exact scan)
    return std::min(h.amax, static_cast<double>(nb) * h.bin_width());
  const double margin = screening_margin(x, levels);
  double best = std::numeric_limits<double>::infinity();
  int64_t best_i = nb;
  for (int64_t i = levels; i <= nb; ++i) {
    if (!(screened[static_cast<size_t>(i)] <= lowest + margin)) continue;
    const double d = divergence(x, i, levels, v);
    if (d <= best) {  // the largest i on ties
      best = d;
      best_i = i;
    }
  }
  return std::min(h.amax, static_cast<double>(best_i) * h.bin_width());
}

}  // namespace

double entropy_divergence(const AbsHistogram& h, int64_t i, int quant_levels) {
  return divergence(Counts(h), i, quant_levels, Variant::kTensorRt);
}

double kl_divergence(const AbsHistogram& h, int64_t i, int quant_levels) {
  return divergence(Counts(h), i, quant_levels, Variant::kSafe);
}

double entropy_threshold(const AbsHistogram& h, int quant_levels, int threads) {
  return best_candidate(h, quant_levels, Variant::kTensorRt, threads);
}

double kl_threshold(const AbsHistogram& h, int quant_levels, int threads) {
  return best_candidate(h, quant_levels, Variant::kSafe, threads);
}

}  // namespace repq::calib
