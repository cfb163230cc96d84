// repq quantize: fuse, calibrate, plan and write a QDQ INT8 model (or export a stored plan).
// The summary goes to stderr (text) or stdout (--json, schema repq.quantize/1).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "model_errors.h"
#include "repq/common/atomic_file.h"
#include "repq/data/dataset.h"
#include "repq/error.h"
#include "repq/ir/onnx_io.h"
#include "repq/quant/quantize.h"
#include "repq/quant/refine.h"
#include "repq/report/fallback.h"

namespace repq::cli {

namespace {

using nlohmann::ordered_json;

// "a,b" and repeated flags -> one list, empty items dropped.
std::vector<std::string> split_list(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const auto& item : items) {
    std::stringstream ss(item);
    std::string part;
    while (std::getline(ss, part, ','))
      if (!part.empty()) out.push_back(part);
  }
  return out;
}

// Refuses an output whose folder does not exist before any work is done.
void check_folder(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec))
    throw InputError(path + ": folder " + parent.string() + " does not exist");
}

void check_paths(const QuantizeCmdOptions& o) {
  if (o.output.empty()) throw InputError("quantize: give -o OUTPUT.onnx");
  check_folder(o.output);
  if (!o.plan_out.empty()) check_folder(o.plan_out);
  if (o.calib.empty() && o.plan_in.empty())
    throw InputError("quantize: give --calib DIR (calibration images or .npy), or --plan-in PLAN.json");
  if (same_file(o.model, o.output))
    throw InputError(o.output + ": -o names the input model; write to another file");
  if (!o.plan_out.empty() && (same_file(o.model, o.plan_out) || o.plan_out == o.output))
    throw InputError(o.plan_out + ": --plan-out names the input model or the output model");
  if (!o.plan_in.empty() && same_file(o.plan_in, o.output))
    throw InputError(o.output + ": -o names the --plan-in file; write to another file");
}

quant::QuantizeOptions make_options(const QuantizeCmdOptions& o) {
  quant::QuantizeOptions q;
  quant::apply_method_preset(o.method, q);
  if (!o.act.empty()) q.act = calib::parse_method(o.act);
  if (!o.weights.empty()) q.weights = quant::parse_weight_mode(o.weights);
  q.target = quant::parse_target(o.target);
  if (!(o.percentile > 0 && o.percentile <= 100))
    throw InputError("--percentile must be in (0, 100], got " + std::to_string(o.percentile));
  q.percentile = o.percentile;
  q.exclude = split_list(o.exclude);
  q.fuse = !o.no_fuse;
  q.float_stem = o.float_stem;
  if (o.gptq_inputs != "float" && o.gptq_inputs != "quantized")
    throw InputError("--gptq-inputs: expected float or quantized, got '" + o.gptq_inputs + "'");
  if (!(o.gptq_damp > 0 && o.gptq_damp <= 10))
    throw InputError("--gptq-damp must be in (0, 10], got " + std::to_string(o.gptq_damp));
  q.gptq.quantized_inputs = o.gptq_inputs == "quantized";
  q.gptq.damp = o.gptq_damp;
  q.gptq.act_order = o.gptq_act_order;
  q.gptq.clip_search = o.gptq_clip_search;
  if (o.gptq_bias_correction) q.gptq.bias_correction = true;  // the gptq preset sets it too
  if (o.num_calib < 0) throw InputError("--num-calib must be >= 0");
  if (o.data.batch < 1) throw InputError("--batch must be at least 1");
  q.collect.batch = o.data.batch;
  q.collect.threads = o.data.threads;
  q.collect.num_samples = o.num_calib;
  q.collect.progress = !o.quiet && !o.json;
  q.collect.model_name = o.model;  // errors on a batch: "<model>: <samples>: <problem>"
  q.refine_act = o.refine_act && o.plan_in.empty();  // a stored plan holds the refined clips
  return q;
}

data::Dataset open_calib(const QuantizeCmdOptions& o, const Model& model) {
  data::DatasetOptions d;
  d.preprocess = data::Preprocess::from_args(o.data.preprocess_args);
  d.skip_bad = o.data.skip_bad;
  d.limit = o.num_calib;
  if (o.data.limit > 0 && (d.limit == 0 || o.data.limit < d.limit)) d.limit = o.data.limit;
  d.threads = o.data.threads;
  const auto ins = model.graph.runtime_inputs();
  if (ins.size() != 1)
    throw InputError(o.model + ": quantize needs a model with one runtime input, it has " +
                     std::to_string(ins.size()));
  if (ins[0]->has_shape) d.input_rank = static_cast<int>(ins[0]->dims.size());
  return data::Dataset::open(o.calib, d);
}

double finite_or(double v, double fallback) { return std::isfinite(v) ? v : fallback; }

ordered_json fallback_json(const report::FallbackResult* fb) {
  if (!fb) return nullptr;
  ordered_json kept = ordered_json::array();
  const auto num = [](double v) { return std::isfinite(v) ? ordered_json(v) : ordered_json(nullptr); };
  for (const auto& k : fb->kept_float)
    kept.push_back({{"layer", k.layer}, {"with", k.with.empty() ? ordered_json(nullptr) : ordered_json(k.with)},
                    {"step", k.step}, {"isolated_sqnr_db", num(k.isolated_sqnr_db)},
                    {"agreement_after", k.agreement_after}, {"logit_sqnr_after", num(k.logit_sqnr_after)}});
  ordered_json sqnr = ordered_json::array(), kl = ordered_json::array();
  for (double v : fb->logit_sqnr) sqnr.push_back(num(v));
  for (double v : fb->kl) kl.push_back(num(v));
  return {{"min_agreement", fb->min_agreement}, {"reached", fb->reached},
          {"samples", fb->samples}, {"agreement", fb->agreement}, {"logit_sqnr", sqnr},
          {"trials", fb->trials}, {"seconds", fb->seconds}, {"kept_float", kept},
          {"criterion", report::criterion_name(fb->criterion)}, {"margin_ratio", fb->margin_ratio},
          {"margin_agreement", fb->margin_agreement}, {"kl", kl},
          {"agreement_lower95", fb->agreement_lower95()}};
}

ordered_json summary_json(const QuantizeCmdOptions& o, const quant::QuantizeResult& r,
                          const std::string& method, int64_t calib_images,
                          const report::FallbackResult* fb, const quant::RefineResult* rf) {
  const auto null_if_empty = [](const std::string& s) {
    return s.empty() ? ordered_json(nullptr) : ordered_json(s);
  };
  const auto num = [](double v) { return std::isfinite(v) ? ordered_json(v) : ordered_json(nullptr); };
  ordered_json j;
  j["schema"] = "repq.quantize/1";
  j["model"] = o.model;
  j["output"] = o.output;
  j["plan_in"] = null_if_empty(o.plan_in);
  j["plan_out"] = null_if_empty(o.plan_out);
  j["method"] = method;
  j["act"] = r.plan.act_method;
  j["weights"] = r.plan.weight_mode;
  j["target"] = quant::target_name(r.plan.target);
  j["percentile"] = r.plan.percentile;
  j["fused"] = !o.no_fuse;
  j["fuse_summary"] = null_if_empty(r.fuse_summary);
  j["model_digest"] = r.plan.model_digest;
  j["calib"] = {{"data", null_if_empty(o.calib)}, {"samples", r.plan.calib_samples},
                {"images_read", calib_images}};
  j["layers_quantized"] = r.plan.layers.size();
  j["activations_quantized"] = r.plan.activations.size();
  ordered_json layers = ordered_json::array();
  for (const auto& l : r.plan.layers)
    layers.push_back({{"node", l.node}, {"op", l.op}, {"encoding", l.encoding},
                      {"cfws_of", null_if_empty(l.cfws_of)}, {"relu_fused", l.relu_fused},
                      {"weight_sqnr_db", num(l.weight_sqnr_db)}, {"note", null_if_empty(l.note)}});
  j["layers"] = layers;
  ordered_json cfws = ordered_json::array();
  for (const auto& c : r.cfws)
    cfws.push_back({{"node", c.node}, {"applied", c.applied},
                    {"sqnr_per_channel_db", num(c.sqnr_per_channel_db)},
                    {"sqnr_cfws_db", num(c.sqnr_cfws_db)},
                    {"centre_surround", num(c.centre_surround)}, {"reason", c.reason}});
  j["cfws"] = cfws;
  ordered_json fl = ordered_json::array();
  for (const auto& f : r.plan.float_nodes)
    fl.push_back({{"node", f.node}, {"op", f.op}, {"reason", f.reason}});
  j["float_nodes"] = fl;
  j["fallback"] = fallback_json(fb);
  if (rf) {
    ordered_json steps = ordered_json::array();
    for (const auto& s : rf->steps)
      steps.push_back({{"tensor", s.tensor}, {"threshold_before", s.threshold_before},
                       {"threshold_after", s.threshold_after}, {"logit_sqnr_db", num(s.sqnr_db)}});
    j["refine_act"] = {{"logit_sqnr_before", num(rf->sqnr_before)},
                       {"logit_sqnr_after", num(rf->sqnr_after)}, {"trials", rf->trials},
                       {"seconds", rf->seconds}, {"changed", steps}, {"samples", rf->samples},
                       {"trials_after_cut", rf->suffix_trials}, {"cut_fills", rf->cut_fills}};
  } else {
    j["refine_act"] = nullptr;
  }
  j["seconds"] = {{"forward", r.forward_seconds},
                  {"rest", finite_or(r.total_seconds - r.forward_seconds, 0)},
                  {"total", r.total_seconds}};
  return j;
}

void print_summary(const QuantizeCmdOptions& o, const quant::QuantizeResult& r,
                   const std::string& method) {
  std::string s = "quantized " + o.model + " -> " + o.output + "\n";
  s += "  method " + method + ": " + r.plan.act_method + " activations, " + r.plan.weight_mode +
       " weights, target " + quant::target_name(r.plan.target) + "\n";
  if (!r.fuse_summary.empty()) s += "  fuse: " + r.fuse_summary + "\n";
  if (!o.plan_in.empty())
    s += "  plan: from " + o.plan_in + " (no calibration)\n";
  else
    s += "  calibration: " + std::to_string(r.plan.calib_samples) + " samples from " + o.calib +
         ", " + std::to_string(r.plan.activations.size()) + " activation tensors\n";
  std::map<std::string, int> enc;
  for (const auto& l : r.plan.layers) ++enc[l.encoding];
  s += "  layers: " + std::to_string(r.plan.layers.size()) + " quantized (";
  bool first = true;
  for (const auto& [e, n] : enc) {
    s += (first ? "" : ", ") + std::to_string(n) + " " + e;
    first = false;
  }
  s += ")\n";
  int applied = 0;
  for (const auto& c : r.cfws) applied += c.applied ? 1 : 0;
  if (!r.cfws.empty()) {
    s += "  cfws: split " + std::to_string(applied) + " of " + std::to_string(r.cfws.size()) +
         " convs\n";
    for (const auto& c : r.cfws)
      s += std::string("    ") + (c.applied ? "split " : "kept  ") + c.node + ": " + c.reason + "\n";
  }
  if (!r.plan.float_nodes.empty()) {
    s += "  float: " + std::to_string(r.plan.float_nodes.size()) + " node(s) kept in float\n";
    for (const auto& f : r.plan.float_nodes)
      s += "    " + f.node + " (" + f.op + "): " + f.reason + "\n";
  }
  char t[160];
  std::snprintf(t, sizeof t, "  time: forward passes %.2f s, everything else %.2f s (total %.2f s)\n",
                r.forward_seconds, r.total_seconds - r.forward_seconds, r.total_seconds);
  s += t;
  std::fwrite(s.data(), 1, s.size(), stderr);
}

}  // namespace

int run_quantize(const QuantizeCmdOptions& o) {
  check_paths(o);
  if (o.fallback != "none" && o.fallback != "auto")
    throw InputError("--fallback: expected none or auto, got '" + o.fallback + "'");
  const bool fallback = o.fallback == "auto";
  if (fallback && !o.plan_in.empty())
    throw InputError("--fallback auto calibrates and measures: it cannot be used with --plan-in");
  if (fallback && !(o.min_agreement >= 0 && o.min_agreement <= 1))
    throw InputError("--min-agreement must be in [0, 1]");
  const quant::QuantizeOptions q = make_options(o);
  const Model model = load_model(o.model);
  quant::QuantizeResult r;
  std::unique_ptr<report::FallbackResult> fb;
  if (o.refine_act && !o.plan_in.empty() && !o.quiet && !o.json)
    std::fprintf(stderr, "repq: --refine-act: the clips of %s are used as they are (a plan written "
                         "with --refine-act holds the refined ones): no search\n", o.plan_in.c_str());
  int64_t images = 0;
  if (!o.plan_in.empty()) {
    const quant::QuantPlan plan = quant::plan_from_json(read_file(o.plan_in), o.plan_in);
    try {
      r = naming_model(o.model, [&] { return quant::quantize_with_plan(model, plan, q); });
    } catch (const InputError& e) {
      const std::string msg = e.what();
      if (msg.rfind("plan: ", 0) == 0) throw InputError(o.plan_in + msg.substr(4));
      throw;
    }
  } else {
    const data::Dataset calib = open_calib(o, model);
    images = static_cast<int64_t>(calib.size());
    if (fallback) {
      report::FallbackSearch search;
      search.criterion = report::parse_criterion(o.fallback_criterion);
      search.margin_ratio = o.fallback_margin;
      search.candidates = o.fallback_candidates;
      fb = std::make_unique<report::FallbackResult>(naming_model(
          o.model, [&] { return report::fallback_auto(model, calib, q, o.min_agreement, search); }));
      r = fb->result;
    } else {
      r = naming_model(o.model, [&] { return quant::quantize(model, calib, q); });
    }
  }
  const quant::RefineResult* rf = r.refine.ran ? &r.refine : nullptr;
  // The written file for ONNX Runtime gets its stem input padded to 4 channels (exact; ORT's
  // fast int8 conv kernels need it): 1.43x -> 1.70x over float at batch 1 (docs/calibration.md).
  // The plan and every measurement above are those of the same model without the padding.
  if (r.plan.target == quant::Target::kOrt) {
    quant::ExportOptions eo;
    eo.align_input_channels = true;
    r.qdq = quant::export_qdq(r.fused, r.plan, eo);
  }
  // Both files are written atomically; the plan first, so a model never appears without it.
  if (!o.plan_out.empty()) write_file_atomic(o.plan_out, quant::plan_to_json(r.plan));
  save_model(r.qdq, o.output);
  if (o.json) {
    const auto j = summary_json(o, r, o.method, images, fb.get(), rf);
    std::printf("%s\n", j.dump(2, ' ', false, ordered_json::error_handler_t::replace).c_str());
  } else if (!o.quiet) {
    print_summary(o, r, o.method);
    if (rf) {
      char t[200];
      std::snprintf(t, sizeof t, "  refine-act: %zu clip(s) changed, logit SQNR %.2f -> %.2f dB on the calibration samples (%d trials, %.1f s)%s\n",
                    rf->steps.size(), rf->sqnr_before, rf->sqnr_after, rf->trials, rf->seconds,
                    fb ? ", on the fully quantized model, before the fallback search" : "");
      std::fputs(t, stderr);
    }
    if (fb) {
      const std::string s = "  fallback auto:\n" + fb->summary();
      std::fwrite(s.data(), 1, s.size(), stderr);
    }
  }
  if (fb && !fb->reached) {
    std::fprintf(stderr,
                 "repq: error: --fallback auto: top-1 agreement%s %.4f is below --min-agreement %.4f "
                 "with every layer tried in float (the model was written)\n",
                 fb->margin_ratio > 0 ? " with the --fallback-margin" : "",
                 fb->margin_agreement.empty() ? 0.0 : fb->margin_agreement.back(), o.min_agreement);
    return static_cast<int>(ExitCode::kGateFailed);
  }
  return 0;
}

}  // namespace repq::cli
