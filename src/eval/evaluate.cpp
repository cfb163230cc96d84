#include "repq/eval/evaluate.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>

#include "repq/error.h"
#include "repq/eval/metrics.h"

namespace repq {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

const std::string& single_input(const Executor& e, const char* which) {
  if (e.input_names().size() != 1)
    throw InputError(std::string(which) + " has " + std::to_string(e.input_names().size()) +
                     " inputs; eval feeds exactly one");
  return e.input_names()[0];
}

std::string score_output(const Executor& e, const std::string& wanted, const char* which) {
  if (wanted.empty()) return e.output_names().at(0);
  for (const auto& n : e.output_names())
    if (n == wanted) return n;
  throw InputError(std::string(which) + " has no output named '" + wanted + "'");
}

Tensor as_scores(Tensor t, const std::string& name) {
  if (t.dtype() != DType::kFloat32 || t.rank() < 2)
    throw InputError("output '" + name + "' is " + dtype_name(t.dtype()) + shape_str(t.shape()) +
                     "; eval needs float32 scores [N, classes]");
  const int64_t n = t.dim(0);
  return t.reshaped({n, n ? t.numel() / n : 0});
}

// "<sample>" for one sample, "<first> .. <last> (batch of N)" for more (the wording of
// calib::collect_stats).
std::string samples_label(const std::vector<std::string>& names) {
  if (names.size() == 1) return names[0];
  if (names.empty()) return "empty batch";
  return names.front() + " .. " + names.back() + " (batch of " + std::to_string(names.size()) + ")";
}

// Runs `f`; an InputError becomes "<who>: <samples>: <problem>".
template <typename F>
auto naming_batch(const std::string& who, const data::Batch& b, F&& f) {
  try {
    return f();
  } catch (const InputError& e) {
    throw InputError(who + ": " + samples_label(b.names) + ": " + e.what());
  }
}

}  // namespace

EvalResult evaluate(Executor& model, Executor* reference, const data::Dataset& dataset,
                    const EvalOptions& options) {
  const auto t_total = Clock::now();
  const std::string& in_name = single_input(model, "the model");
  const std::string out_name = score_output(model, options.output, "the model");
  std::string ref_in, ref_out;
  if (reference) {
    ref_in = single_input(*reference, "the reference model");
    ref_out = score_output(*reference, "", "the reference model");
  }
  EvalResult r;
  r.has_reference = reference != nullptr;
  AccuracyMeter acc, ref_acc;
  AgreementMeter agree;
  data::BatchReader reader(dataset, options.batch);
  const std::string model_name = options.model_name.empty() ? "model" : options.model_name;
  const std::string ref_name = options.reference_name.empty() ? "reference model" : options.reference_name;
  while (auto batch = reader.next()) {
    const auto t_model = Clock::now();
    const Tensor scores = naming_batch(model_name, *batch, [&] {
      auto outs = model.run({{in_name, batch->input}});
      r.model_seconds += seconds_since(t_model);
      Tensor s = as_scores(outs.at(out_name), out_name);
      if (dataset.labelled()) acc.add(s, batch->labels);
      return s;
    });
    r.classes = scores.dim(1);
    if (reference) {
      naming_batch(ref_name, *batch, [&] {
        auto ref_outs = reference->run({{ref_in, batch->input}});
        const Tensor ref_scores = as_scores(ref_outs.at(ref_out), ref_out);
        agree.add(ref_scores, scores);
        if (dataset.labelled()) ref_acc.add(ref_scores, batch->labels);
        return 0;
      });
    }
    r.samples += static_cast<int64_t>(batch->labels.size());
    if (options.progress)
      options.progress(r.samples + reader.skipped(), static_cast<int64_t>(dataset.size()));
  }
  r.skipped = reader.skipped();
  r.labelled = acc.count();
  r.top1 = acc.top1();
  r.top5 = acc.top5();
  r.ref_top1 = ref_acc.top1();
  r.ref_top5 = ref_acc.top5();
  r.agreement = agree.top1_agreement();
  r.mean_sqnr_db = agree.mean_sqnr_db();
  r.max_abs_diff = agree.max_abs_diff();
  r.total_seconds = seconds_since(t_total);
  return r;
}

std::string eval_to_json(const EvalResult& r, const EvalDescription& d) {
  nlohmann::ordered_json j;
  j["schema"] = "repq.eval/1";
  j["model"] = d.model;
  j["reference"] = d.reference.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(d.reference);
  j["data"] = d.data;
  j["preprocess"] = d.preprocess;
  j["batch"] = d.batch;
  j["threads"] = d.threads;
  j["samples"] = r.samples;
  j["labelled"] = r.labelled;
  j["skipped"] = r.skipped;
  j["classes"] = r.classes;
  if (r.labelled > 0) {
    j["top1"] = r.top1;
    j["top5"] = r.top5;
  } else {
    j["top1"] = nullptr;
    j["top5"] = nullptr;
  }
  if (r.has_reference) {
    j["agreement"] = {{"top1", r.agreement},
                      {"mean_sqnr_db", r.mean_sqnr_db},
                      {"max_abs_diff", r.max_abs_diff},
                      {"reference_top1", r.labelled > 0 ? nlohmann::ordered_json(r.ref_top1) : nlohmann::ordered_json(nullptr)},
                      {"reference_top5", r.labelled > 0 ? nlohmann::ordered_json(r.ref_top5) : nlohmann::ordered_json(nullptr)}};
  } else {
    j["agreement"] = nullptr;
  }
  j["seconds"] = {{"model", r.model_seconds}, {"total", r.total_seconds}};
  j["images_per_second"] = r.images_per_second();
  // Paths and names need not be UTF-8: invalid bytes become U+FFFD instead of a type_error.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string eval_to_text(const EvalResult& r, const EvalDescription& d) {
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(2);
  os << "model:      " << d.model << "\n";
  if (!d.reference.empty()) os << "reference:  " << d.reference << "\n";
  os << "data:       " << d.data << " (" << r.samples << " samples";
  if (r.skipped) os << ", " << r.skipped << " skipped";
  os << ")\npreprocess: " << d.preprocess << "\n\n";
  if (r.labelled > 0) {
    os << "top-1 " << 100.0 * r.top1 << " %   top-5 " << 100.0 * r.top5 << " %   ("
       << r.labelled << " labelled)\n";
    if (r.has_reference)
      os << "reference:  top-1 " << 100.0 * r.ref_top1 << " %   top-5 " << 100.0 * r.ref_top5
         << " %\n";
  } else {
    os << "no labels: accuracy not measured\n";
  }
  if (r.has_reference) {
    os << "agreement with the reference: top-1 " << 100.0 * r.agreement << " %, mean SQNR "
       << r.mean_sqnr_db << " dB, max |diff| ";
    os.unsetf(std::ios::fixed);
    os.precision(3);
    os << r.max_abs_diff << "\n";
    os.setf(std::ios::fixed);
    os.precision(2);
  }
  os << "speed: " << r.images_per_second() << " images/s in the model (batch " << d.batch
     << ", " << d.threads << " threads); " << r.total_seconds << " s in all\n";
  return os.str();
}

}  // namespace repq
