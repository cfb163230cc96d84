// repq report: per-layer quantization error tables with the diagnosis (docs/report.md), in
// table / csv / json / md / html, and the CI gates (--fail-under-sqnr, --fail-under-agreement:
// exit code 3). --static: the weight-only columns, no data.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>

#include "commands.h"
#include "model_errors.h"
#include "repq/calib/calibrators.h"
#include "repq/common/atomic_file.h"
#include "repq/data/dataset.h"
#include "repq/error.h"
#include "repq/ir/onnx_io.h"
#include "repq/quant/quantize.h"
#include "repq/report/compute.h"
#include "repq/report/format.h"

namespace repq::cli {
namespace {

bool gate_on(double limit) { return std::isfinite(limit) && limit > -1e299; }

// Refuses contradictory or out-of-range flags before any work.
void check_flags(const ReportCmdOptions& o) {
  if (o.top < 0) throw InputError("--top: must be 0 or more");
  if (o.num_calib < 0) throw InputError("--num-calib: must be 0 (all) or more");
  if (o.data.batch < 1) throw InputError("--batch: must be at least 1");
  const bool agreement_gate = o.fail_under_agreement >= 0;
  if (agreement_gate && !(o.fail_under_agreement <= 1))
    throw InputError("--fail-under-agreement: " + std::to_string(o.fail_under_agreement) +
                     " is not a fraction in [0, 1]");
  if (std::isnan(o.fail_under_sqnr)) throw InputError("--fail-under-sqnr: not a number");
  if (o.static_only) {
    if (gate_on(o.fail_under_sqnr) || agreement_gate)
      throw InputError("--fail-under-sqnr / --fail-under-agreement need data: they cannot be used "
                       "with --static");
    if (!o.plan_in.empty()) throw InputError("--plan-in: not used by --static (weights only)");
    if (o.refine_act) throw InputError("--refine-act: not used by --static (weights only)");
    if (!o.labels.empty() || !o.eval_data.empty())
      throw InputError("--data / --labels: not used by --static (weights only)");
    return;
  }
  if (o.calib.empty() && o.plan_in.empty())
    throw InputError("--calib DIR is required (or --plan-in with --data, or --static for the "
                     "weight-only report without data)");
  if (o.calib.empty() && o.eval_data.empty())
    throw InputError("--plan-in needs images to measure the errors on: give --data DIR or --calib DIR");
}

quant::QuantizeOptions quantize_options(const ReportCmdOptions& o) {
  quant::QuantizeOptions q;
  quant::apply_method_preset(o.method, q);
  if (!o.act.empty()) q.act = calib::parse_method(o.act);
  if (!o.weights.empty()) q.weights = quant::parse_weight_mode(o.weights);
  q.target = quant::parse_target(o.target);
  q.percentile = o.percentile;
  q.exclude = o.exclude;
  q.fuse = !o.no_fuse;
  q.collect.num_samples = o.num_calib;
  q.collect.batch = o.data.batch;
  q.collect.threads = o.data.threads;
  q.collect.progress = !o.quiet;
  q.collect.model_name = o.model;  // errors on a batch: "<model>: <samples>: <problem>"
  q.refine_act = o.refine_act && o.plan_in.empty();  // a stored plan holds its clips
  return q;
}

data::Dataset open_data(const std::string& dir, const std::string& labels, const Model& model,
                        const DataFlags& f) {
  data::DatasetOptions d;
  d.preprocess = data::Preprocess::from_args(f.preprocess_args);
  d.set_labels(labels);
  d.skip_bad = f.skip_bad;
  d.limit = f.limit;
  d.threads = f.threads;
  const auto inputs = model.graph.runtime_inputs();
  if (!inputs.empty() && inputs.front()->has_shape)
    d.input_rank = static_cast<int>(inputs.front()->dims.size());
  return data::Dataset::open(dir, d);
}

}  // namespace

int run_report(const ReportCmdOptions& o) {
  check_flags(o);
  const report::Format format = report::parse_format(o.format);
  const Model model = load_model(o.model);
  const quant::QuantizeOptions qo = quantize_options(o);

  report::ReportOptions ro;
  ro.model_path = o.model;
  ro.method = o.method;
  ro.threads = o.data.threads;
  ro.batch = std::min<int64_t>(o.data.batch, 32);
  ro.exact = o.exact;

  report::Report rep;
  if (o.static_only) {
    rep = naming_model(o.model, [&] { return report::make_static_report(model, qo, ro); });
  } else {
    std::optional<quant::QuantPlan> plan;
    if (!o.plan_in.empty()) {
      plan = quant::plan_from_json(read_file(o.plan_in), o.plan_in);
      ro.plan = &*plan;
    }
    std::unique_ptr<data::Dataset> calib, eval;
    // Labels belong to the images the errors are measured on: --data, else the calibration set.
    if (!o.calib.empty())
      calib = std::make_unique<data::Dataset>(
          open_data(o.calib, o.eval_data.empty() ? o.labels : "", model, o.data));
    if (!o.eval_data.empty())
      eval = std::make_unique<data::Dataset>(open_data(o.eval_data, o.labels, model, o.data));
    // Measured on the calibration images: the same --num-calib samples the calibration used.
    if (!eval) ro.num_samples = o.num_calib;
    rep = naming_model(o.model,
                       [&] { return report::make_report(model, qo, calib.get(), eval.get(), ro); });
  }

  const std::string text = report::format_report(rep, format, report::FormatOptions{o.top});
  if (o.output.empty() || o.output == "-") {
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
      throw InternalError("stdout: write failed");
  } else {
    write_file_atomic(o.output, text);
    spdlog::info("wrote the {} report ({} layers) to {}", report::format_name(format), rep.layers.size(),
                 o.output);
  }

  if (o.static_only) return 0;
  report::Gates g;
  g.min_output_sqnr = o.fail_under_sqnr;
  g.min_agreement = o.fail_under_agreement;
  if (const auto failed = report::check_gates(rep, g)) {
    spdlog::error("{}", *failed);
    return static_cast<int>(ExitCode::kGateFailed);
  }
  return 0;
}

}  // namespace repq::cli
