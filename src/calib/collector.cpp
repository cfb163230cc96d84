// collect_stats: two streaming passes of the float model over the calibration data.
// Pass 1 records each requested tensor's range, count, zeros and NaNs; pass 2 fills its |x|
// histogram over [0, amax] from pass 1. The observer looks names up in a hash map and reads
// the executor's own tensors in place (nothing is copied); memory is tensors x bins.
// Timing: forward_seconds is Executor::run's wall time minus the time spent inside the
// observer, so it is the executor's own work; total_seconds - forward_seconds is everything
// else (reading and decoding the data, statistics (stats_seconds), progress).
#include "repq/calib/collector.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "repq/common/progress.h"
#include "repq/error.h"
#include "repq/runtime/executor.h"

namespace repq::calib {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Tensors at least this large are split over a few threads (each part into its own partial
// statistics, merged in a fixed order: integer counts and min/max, so the result does not
// depend on the split).
constexpr int64_t kSplitAbove = int64_t{1} << 19;

int split_threads(int64_t n, int max_threads) {
  if (n < kSplitAbove || max_threads <= 1) return 1;
  return static_cast<int>(std::min<int64_t>(max_threads, n / (kSplitAbove / 2)));
}

// Runs f(part, begin, end) over `parts` contiguous ranges of [0, n), part 0 on this thread.
template <class F>
void for_parts(int64_t n, int parts, F&& f) {
  if (parts <= 1) {
    f(0, int64_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(parts - 1));
  const int64_t step = (n + parts - 1) / parts;
  for (int p = 1; p < parts; ++p) {
    pool.emplace_back([&f, p, step, n] { f(p, std::min(n, p * step), std::min(n, (p + 1) * step)); });
  }
  f(0, int64_t{0}, std::min(n, step));
  for (auto& t : pool) t.join();
}

void observe_range(TensorStats& s, const float* v, int64_t n, int max_threads) {
  const int parts = split_threads(n, max_threads);
  if (parts == 1) {
    s.add_range(v, n);
    return;
  }
  std::vector<TensorStats> part(static_cast<size_t>(parts));
  for_parts(n, parts, [&](int p, int64_t b, int64_t e) { part[static_cast<size_t>(p)].add_range(v + b, e - b); });
  for (const auto& ps : part) {
    // Merge: the same as one add_range over everything.
    const bool mine = s.count > s.nans, theirs = ps.count > ps.nans;
    if (theirs) {
      s.min = mine ? std::min(s.min, ps.min) : ps.min;
      s.max = mine ? std::max(s.max, ps.max) : ps.max;
    }
    s.count += ps.count;
    s.zeros += ps.zeros;
    s.nans += ps.nans;
  }
}

void observe_hist(AbsHistogram& h, const float* v, int64_t n, int max_threads) {
  const int parts = split_threads(n, max_threads);
  if (parts == 1) {
    h.add(v, n);
    return;
  }
  std::vector<AbsHistogram> part(static_cast<size_t>(parts));
  for (auto& ph : part) {
    ph.amax = h.amax;
    ph.counts.assign(h.counts.size(), 0);
  }
  for_parts(n, parts, [&](int p, int64_t b, int64_t e) { part[static_cast<size_t>(p)].add(v + b, e - b); });
  for (const auto& ph : part)
    for (size_t b = 0; b < h.counts.size(); ++b) h.counts[b] += ph.counts[b];
}

// The first `rows` rows of a batch tensor (a copy; only for the last, truncated batch).
Tensor first_rows(const Tensor& t, int64_t rows) {
  Shape shape = t.shape();
  const size_t row_bytes = t.nbytes() / static_cast<size_t>(shape.at(0));
  shape[0] = rows;
  return Tensor::from_bytes(t.dtype(), shape,
                            std::string_view(reinterpret_cast<const char*>(t.raw()),
                                             row_bytes * static_cast<size_t>(rows)));
}

}  // namespace

CollectResult collect_stats(const Model& model, const data::Dataset& dataset,
                            const std::vector<std::string>& tensors, const CollectOptions& opts) {
  const auto t_start = Clock::now();
  if (opts.bins < 1) throw InputError("histogram bins must be at least 1, got " + std::to_string(opts.bins));
  if (opts.batch < 1) throw InputError("batch size must be at least 1, got " + std::to_string(opts.batch));
  if (opts.num_samples < 0)
    throw InputError("number of calibration samples must be >= 0, got " + std::to_string(opts.num_samples));

  // Requested names: graph inputs or node outputs.
  std::unordered_map<std::string_view, int> known;
  for (const auto* vi : model.graph.runtime_inputs()) known.emplace(vi->name, 0);
  for (const auto& node : model.graph.nodes)
    for (const auto& out : node.outputs)
      if (!out.empty()) known.emplace(out, 0);
  std::vector<TensorStats> stats;
  std::unordered_map<std::string, size_t> slot;
  for (const auto& name : tensors) {
    if (!known.count(name))
      throw InputError("'" + name + "' is not a value of the model (a graph input or a node output)");
    if (slot.emplace(name, stats.size()).second) {
      stats.emplace_back();
      stats.back().name = name;
    }
  }

  Executor ex(model, ExecutorOptions{opts.threads});
  if (ex.input_names().size() != 1)
    throw InputError("the model has " + std::to_string(ex.input_names().size()) +
                     " inputs; calibration feeds exactly one");
  const std::string& input_name = ex.input_names()[0];
  const int stat_threads = std::max(1, std::min(ex.threads(), 4));
  const auto available = static_cast<int64_t>(dataset.size());
  const int64_t limit = opts.num_samples > 0 ? std::min(opts.num_samples, available) : available;

  CollectResult result;
  ProgressBar bar("calibrating", 2 * limit, opts.progress);
  std::vector<char> seen(stats.size(), 0);

  auto run_pass = [&](int pass) {
    data::BatchReader reader(dataset, opts.batch);
    int64_t done = 0;
    double in_observer = 0;
    const Observer observer = [&](const std::string& name, const Tensor& value) {
      const auto t0 = Clock::now();
      const auto it = slot.find(name);
      if (it != slot.end()) {
        TensorStats& s = stats[it->second];
        if (value.dtype() != DType::kFloat32)
          throw InputError("tensor '" + name + "' is " + dtype_name(value.dtype()) +
                           "; only float32 tensors can be calibrated");
        if (pass == 0) {
          seen[it->second] = 1;
          observe_range(s, value.data<float>(), value.numel(), stat_threads);
        } else {
          observe_hist(s.hist, value.data<float>(), value.numel(), stat_threads);
        }
      }
      in_observer += seconds_since(t0);
    };
    while (done < limit) {
      auto batch = reader.next();
      if (!batch) break;
      Tensor input = std::move(batch->input);
      int64_t rows = input.dim(0);
      if (done + rows > limit) {
        rows = limit - done;
        input = first_rows(input, rows);
      }
      in_observer = 0;
      const auto t0 = Clock::now();
      ex.run({{input_name, input}}, observer);
      result.forward_seconds += seconds_since(t0) - in_observer;
      result.stats_seconds += in_observer;
      done += rows;
      bar.update(pass * limit + done);
    }
    return done;
  };

  result.samples = run_pass(0);
  if (result.samples == 0) throw InputError(dataset.root() + ": no calibration samples could be read");
  for (size_t k = 0; k < stats.size(); ++k) {
    TensorStats& s = stats[k];
    if (!seen[k])
      throw InputError("'" + s.name + "' is not computed when the model runs (a constant?); it cannot be calibrated");
    if (!std::isfinite(s.amax()))
      throw InputError("tensor '" + s.name + "' holds infinite values on the calibration data");
    s.hist.amax = s.amax();
    s.hist.counts.assign(static_cast<size_t>(opts.bins), 0);
  }
  run_pass(1);
  bar.finish();

  for (auto& s : stats) {
    std::string name = s.name;
    result.stats.emplace(std::move(name), std::move(s));
  }
  result.total_seconds = seconds_since(t_start);
  return result;
}

}  // namespace repq::calib
