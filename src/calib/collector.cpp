// collect_stats: two streaming passes of the float model over the calibration data.
// Pass 1 records each requested tensor's range, count, zeros and NaNs; pass 2 fills its |x|
// histogram over [0, amax] from pass 1. The observer looks names up in a hash map and reads
// the executor's own tensors in place (nothing is copied); memory is tensors x bins.
// Timing: forward_seconds is Executor::run's wall time minus the time spent inside the
// observer, so it is the executor's own work; total_seconds - forward_seconds is everything
// else (reading and decoding the data, statistics (stats_seconds), progress). An optional
// pass-2 observer (CollectOptions::pass2_observer; GPTQ's H) sees every tensor of pass 2.
// Pass 2 takes the most recent pass-1 batches from a decode cache of at most
// CollectOptions::cache_bytes (default 256 MiB: a fixed budget, not proportional to the number
// of samples); earlier batches are read and decoded again. An InputError of the model while
// running a batch becomes "<model>: <sample> | <first> .. <last> (batch of N): <problem>".
// The statistics run on the calling thread (the executor's pool waits meanwhile). Splitting big
// tensors over per-call std::threads was measured slower on the shared 2-core machine
// (MobileOne-S0, 32 images: 1.0 s of statistics split vs 0.43 s not split), so it is not done;
// nor over a ThreadPool (parts of 256K values merged with AbsHistogram::merge /
// TensorStats::merge_range, results identical): under a load average of 8-9, cfws statistics
// 0.68 s vs 0.52 s and process CPU 2.19 s vs 1.95 s (best of 5; the executor's spinning workers
// and the pool's compete for the 2 cores).
#include "repq/calib/collector.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <string_view>
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

// "<sample>" for one sample, "<first> .. <last> (batch of N)" for more.
std::string samples_label(const std::vector<std::string>& names, int64_t rows) {
  if (names.empty() || rows < 1) return "batch of " + std::to_string(rows);
  const auto last = static_cast<size_t>(std::min<int64_t>(rows, static_cast<int64_t>(names.size())) - 1);
  if (rows == 1) return names[0];
  return names[0] + " .. " + names[last] + " (batch of " + std::to_string(rows) + ")";
}

// A batch as the two passes see it (pass 2 may take it from the decode cache).
struct CalibBatch {
  Tensor input;
  int64_t rows = 0;
  std::vector<std::string> names;
};

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
  const auto available = static_cast<int64_t>(dataset.size());
  const int64_t limit = opts.num_samples > 0 ? std::min(opts.num_samples, available) : available;

  CollectResult result;
  ProgressBar bar("calibrating", 2 * limit, opts.progress);
  std::vector<char> seen(stats.size(), 0);

  // Decode cache: the most recent pass-1 batches within opts.cache_bytes; pass 2 decodes the
  // batches before them again and then switches to the cache (same batches, same order).
  std::deque<CalibBatch> cache;
  int64_t cache_bytes = 0, dropped = 0;  // dropped: pass-1 batches that left the cache
  const std::string model_name = opts.model_name.empty() ? "model" : opts.model_name;

  auto run_pass = [&](int pass) {
    data::BatchReader reader(dataset, opts.batch);
    int64_t done = 0, ordinal = 0;
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
          s.add_range(value.data<float>(), value.numel());
        } else {
          s.hist.add(value.data<float>(), value.numel());
        }
      }
      if (pass == 1 && opts.pass2_observer) opts.pass2_observer(name, value);
      in_observer += seconds_since(t0);
    };
    while (done < limit) {
      CalibBatch b;
      if (pass == 1 && ordinal >= dropped) {
        if (cache.empty()) break;
        b = std::move(cache.front());
        cache.pop_front();
        ++result.cached_batches;
      } else {
        auto batch = reader.next();
        if (!batch) break;
        b.input = std::move(batch->input);
        b.rows = b.input.dim(0);
        b.names = std::move(batch->names);
        if (done + b.rows > limit) {
          b.rows = limit - done;
          b.input = data::first_rows(b.input, b.rows);
        }
      }
      ++ordinal;
      in_observer = 0;
      const auto t0 = Clock::now();
      try {
        ex.run({{input_name, b.input}}, observer);
      } catch (const InputError& e) {
        throw InputError(model_name + ": " + samples_label(b.names, b.rows) + ": " + e.what());
      }
      result.forward_seconds += seconds_since(t0) - in_observer;
      result.stats_seconds += in_observer;
      done += b.rows;
      bar.update(pass * limit + done);
      if (pass == 0 && opts.cache_bytes > 0) {
        cache_bytes += static_cast<int64_t>(b.input.nbytes());
        cache.push_back(std::move(b));
        while (!cache.empty() && cache_bytes > opts.cache_bytes) {
          cache_bytes -= static_cast<int64_t>(cache.front().input.nbytes());
          cache.pop_front();
          ++dropped;
        }
      } else if (pass == 0) {
        ++dropped;
      }
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
