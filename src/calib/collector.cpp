// collect_stats: two streaming passes of the float model over the calibration data.
// Pass 1 records each requested tensor's range, count, zeros and NaNs; pass 2 fills its |x|
// histogram over [0, amax] from pass 1. The observer looks names up in a hash map and reads
// the executor's own tensors in place (nothing is copied); memory is tensors x bins.
// Timing: forward_seconds is Executor::run's wall time minus the time spent inside the
// observer, so it is the executor's own work; total_seconds - forward_seconds is everything
// else (reading and decoding the data, statistics (stats_seconds), progress).
// Pass 2 takes the most recent pass-1 batches from a decode cache of at most
// CollectOptions::cache_bytes (default 256 MiB: a fixed budget, not proportional to the number
// of samples); earlier batches are read and decoded again. An InputError of the model while
// running a batch becomes "<model>: <sample> | <first> .. <last> (batch of N): <problem>".
// The statistics run on the calling thread plus, with 2 or more executor threads, one helper
// thread kept for the whole collection that takes the second half of every tensor of at least
// 2^16 values (the executor's pool waits meanwhile). (Session 2 measured per-call
// std::threads slower; a persistent helper costs one hand-off per tensor instead.)
#include "repq/calib/collector.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
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

// The first `rows` rows of a batch tensor (a copy; only for the last, truncated batch).
Tensor first_rows(const Tensor& t, int64_t rows) {
  Shape shape = t.shape();
  const size_t row_bytes = t.nbytes() / static_cast<size_t>(shape.at(0));
  shape[0] = rows;
  return Tensor::from_bytes(t.dtype(), shape,
                            std::string_view(reinterpret_cast<const char*>(t.raw()),
                                             row_bytes * static_cast<size_t>(rows)));
}

// A second thread for the statistics of big tensors: the calling thread takes the first half of
// the values, the helper the second half into a partial result that is merged afterwards (the
// statistics are integer counts, min and max: the same result however the values are split).
class StatsHelper {
 public:
  StatsHelper() : thread_([this] { loop(); }) {}
  ~StatsHelper() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  StatsHelper(const StatsHelper&) = delete;
  StatsHelper& operator=(const StatsHelper&) = delete;
  // Runs `job` on the helper while `mine` runs here; returns when both are done.
  void run_both(const std::function<void()>& job, const std::function<void()>& mine) {
    {
      std::lock_guard<std::mutex> lock(m_);
      job_ = &job;
      done_ = false;
      error_ = nullptr;
    }
    cv_.notify_all();
    std::exception_ptr here;
    try {
      mine();
    } catch (...) {
      here = std::current_exception();
    }
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait(lock, [&] { return done_; });
    if (here) std::rethrow_exception(here);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || job_ != nullptr; });
      if (stop_) return;
      const std::function<void()>* job = job_;
      lock.unlock();
      std::exception_ptr err;
      try {
        (*job)();
      } catch (...) {
        err = std::current_exception();
      }
      lock.lock();
      job_ = nullptr;
      error_ = err;
      done_ = true;
      cv_.notify_all();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  const std::function<void()>* job_ = nullptr;
  bool done_ = true, stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;  // last: started after the other members exist
};

constexpr int64_t kSplitValues = int64_t{1} << 16;  // smaller tensors stay on one thread

// Adds the pass-1 range statistics of `part` (values seen after those of `s`) to `s`.
void merge_range(TensorStats& s, const TensorStats& part) {
  const bool s_has = s.count > s.nans, part_has = part.count > part.nans;
  if (part_has) {
    s.min = s_has ? std::min(s.min, part.min) : part.min;
    s.max = s_has ? std::max(s.max, part.max) : part.max;
  }
  s.count += part.count;
  s.zeros += part.zeros;
  s.nans += part.nans;
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
  // With 2 or more executor threads, big tensors' statistics use two threads (the executor's
  // pool waits meanwhile). The result does not depend on it.
  std::unique_ptr<StatsHelper> helper;
  if (ex.threads() >= 2) helper = std::make_unique<StatsHelper>();
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
        const float* v = value.data<float>();
        const int64_t n = value.numel(), half = n / 2;
        if (pass == 0) seen[it->second] = 1;
        if (helper && n >= kSplitValues) {
          if (pass == 0) {
            TensorStats part;
            helper->run_both([&] { part.add_range(v + half, n - half); }, [&] { s.add_range(v, half); });
            merge_range(s, part);
          } else {
            AbsHistogram part;
            part.amax = s.hist.amax;
            part.counts.assign(s.hist.counts.size(), 0);
            helper->run_both([&] { part.add(v + half, n - half); }, [&] { s.hist.add(v, half); });
            for (size_t b = 0; b < part.counts.size(); ++b) s.hist.counts[b] += part.counts[b];
          }
        } else if (pass == 0) {
          s.add_range(v, n);
        } else {
          s.hist.add(v, n);
        }
      }
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
          b.input = first_rows(b.input, b.rows);
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
