// Runs the float model over calibration data and collects TensorStats for chosen tensors:
// pass 1 records range/count/zeros, pass 2 fills the |x| histograms over the pass-1 range.
// Streams batches (memory: tensors x bins), uses the executor's threads, shows a progress bar.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "repq/calib/histogram.h"
#include "repq/data/dataset.h"
#include "repq/ir/graph.h"

namespace repq::calib {

struct CollectOptions {
  int bins = 2048;
  int64_t batch = 32;
  int64_t num_samples = 0;  // 0: every sample of the dataset
  int threads = 0;          // executor threads (0: all cores)
  bool progress = true;     // progress bar on a terminal
  // The model as errors name it: an error while running a batch reads
  // "<model_name>: <sample> | <first> .. <last> (batch of N): <problem>" (empty: "model").
  std::string model_name;
  // Decoded batches of pass 1 kept for pass 2, at most this many bytes (the most recent
  // batches; the earlier ones are decoded again). A fixed budget, whatever the number of
  // samples; 0: decode everything twice. 256 MiB holds about 440 224x224 RGB images.
  int64_t cache_bytes = int64_t{256} << 20;
  // When set: called in pass 2 with every tensor the executor produces (graph inputs included,
  // after the histograms), on the calling thread, batches in sample order. Its time counts as
  // statistics (stats_seconds), not forward. quantize() collects GPTQ's H here instead of
  // running a third pass.
  std::function<void(const std::string& name, const Tensor& value)> pass2_observer;
};

struct CollectResult {
  std::map<std::string, TensorStats> stats;  // by tensor name
  int64_t samples = 0;                       // samples used (per pass)
  double forward_seconds = 0;                // wall time spent in Executor::run (both passes),
                                             // minus the time inside the observer
  double stats_seconds = 0;                  // wall time inside the observer (statistics)
  int64_t cached_batches = 0;                // pass-2 batches taken from the decode cache
  double total_seconds = 0;                  // wall time of the whole collection
};

// `tensors`: value names of `model` (graph inputs or node outputs). Throws InputError when a
// name is not a value of the model, or for bad data (naming the file); an error of the model
// on a batch (a shape the model does not accept, ...) names the model and the batch's samples.
CollectResult collect_stats(const Model& model, const data::Dataset& dataset,
                            const std::vector<std::string>& tensors,
                            const CollectOptions& opts = {});

}  // namespace repq::calib
