// `repq eval`: accuracy of a model on a dataset and, with a reference model, agreement.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "repq/data/dataset.h"
#include "repq/runtime/executor.h"

namespace repq {

struct EvalOptions {
  int64_t batch = 32;
  // Name of the output holding the class scores; "" = the model's first output.
  std::string output;
  // Called after each batch with (samples done, samples in the dataset).
  std::function<void(int64_t, int64_t)> progress;
  // The models as errors name them (their paths): an InputError of a model on a batch reads
  // "<model_name>: <sample> | <first> .. <last> (batch of N): <problem>", as in calibration
  // (empty: "model" / "reference model").
  std::string model_name, reference_name;
};

struct EvalResult {
  int64_t samples = 0;    // samples evaluated
  int64_t labelled = 0;   // of which labelled
  int64_t skipped = 0;    // unreadable samples skipped (skip_bad)
  int64_t classes = 0;    // width of the score output
  double top1 = 0.0, top5 = 0.0;  // over labelled samples
  bool has_reference = false;
  double agreement = 0.0;      // top-1 agreement with the reference model
  double mean_sqnr_db = 0.0;   // mean per-sample SQNR of the scores against the reference
  double max_abs_diff = 0.0;   // largest score difference against the reference
  double ref_top1 = 0.0, ref_top5 = 0.0;  // the reference model's accuracy (labelled data)
  double model_seconds = 0.0;  // time spent in the model's forward passes
  double total_seconds = 0.0;  // everything: reading, decoding, both models
  double images_per_second() const { return model_seconds > 0 ? samples / model_seconds : 0.0; }
};

// Runs `model` (and `reference`, if not null) over the whole dataset. The model must have one
// runtime input; its output `options.output` must be [N, classes]. Throws InputError otherwise.
EvalResult evaluate(Executor& model, Executor* reference, const data::Dataset& dataset,
                    const EvalOptions& options = {});

struct EvalDescription {
  std::string model, reference, data;
  int64_t batch = 0;
  int threads = 0;
  std::string preprocess;  // Preprocess::describe()
};
// The JSON document of `repq eval --json` (schema repq.eval/1, docs/cli-json.md).
std::string eval_to_json(const EvalResult& r, const EvalDescription& d);
std::string eval_to_text(const EvalResult& r, const EvalDescription& d);

}  // namespace repq
