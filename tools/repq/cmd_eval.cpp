// repq eval: accuracy on labelled images, agreement with a reference model, speed.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "repq/common/progress.h"
#include "repq/data/dataset.h"
#include "repq/error.h"
#include "repq/eval/evaluate.h"
#include "repq/ir/onnx_io.h"
#include "repq/runtime/executor.h"

namespace repq::cli {

int run_eval(const EvalOptions& o) {
  if (o.flags.batch < 1) throw InputError("--batch must be at least 1");
  const Model model = load_model(o.model);
  ExecutorOptions eo;
  eo.threads = o.flags.threads;
  // Errors of a model (an op the executor lacks, a shape it refuses) name the model's file.
  const auto executor = [&](const Model& m, const std::string& path) {
    try {
      return std::make_unique<Executor>(m, eo);
    } catch (const InputError& e) {
      throw InputError(path + ": " + e.what());
    }
  };
  const std::unique_ptr<Executor> exp = executor(model, o.model);
  Executor& ex = *exp;
  std::unique_ptr<Executor> ref;
  if (!o.reference.empty()) ref = executor(load_model(o.reference), o.reference);

  data::DatasetOptions dopt;
  dopt.preprocess = data::Preprocess::from_args(o.flags.preprocess_args);
  dopt.set_labels(o.labels);
  dopt.skip_bad = o.flags.skip_bad;
  dopt.limit = o.flags.limit;
  dopt.threads = o.flags.threads;
  const ValueInfo* in = model.graph.find_value_info(ex.input_names().at(0));
  if (in && in->has_shape) dopt.input_rank = static_cast<int>(in->dims.size());
  const data::Dataset ds = data::Dataset::open(o.data, dopt);

  ProgressBar bar("eval", static_cast<int64_t>(ds.size()), !o.quiet);
  repq::EvalOptions opts;
  opts.batch = o.flags.batch;
  opts.output = o.output;
  opts.model_name = o.model;
  opts.reference_name = o.reference;
  opts.progress = [&](int64_t done, int64_t) { bar.update(done); };
  const EvalResult r = evaluate(ex, ref.get(), ds, opts);
  bar.finish();

  EvalDescription d{o.model, o.reference, o.data, o.flags.batch, ex.threads(),
                    ds.is_npy() ? std::string("none (.npy values used as they are)")
                                : dopt.preprocess.describe()};
  const std::string out = o.json ? eval_to_json(r, d) : eval_to_text(r, d);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace repq::cli
