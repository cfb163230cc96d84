// The quantization pipeline end to end: fuse -> CFWS split -> quant points -> calibration ->
// plan -> QDQ export (quantize), or the same without calibration from a stored plan
// (quantize_with_plan). The stages themselves live in their own files; this one only chains
// them, times them and applies the pipeline-level choices (which tensor a calibrator sees).
#include "repq/quant/quantize.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "repq/error.h"
#include "repq/ir/graph_utils.h"
#include "repq/passes/fuse.h"
#include "repq/quant/refine.h"

namespace repq::quant {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Folds the branches (as `repq fuse`: every fold verified numerically, a fold that misses the
// tolerance is left unfolded) and returns the one-line summary ("" when nothing folded).
std::string fuse_step(Model& m, int threads) {
  FuseOptions fo;
  fo.threads = threads <= 0 ? 1 : threads;
  const FuseReport rep = fuse_branches(m, fo);
  size_t applied = 0, missed = 0;
  for (const auto& f : rep.folds) {
    applied += f.applied ? 1 : 0;
    missed += f.applied ? 0 : 1;
  }
  if (applied == 0 && missed == 0) return "";
  std::string line = "folded " + std::to_string(applied) + " block" + (applied == 1 ? "" : "s") +
                     " (graph " + std::to_string(rep.nodes_before) + " -> " +
                     std::to_string(rep.nodes_after) + " nodes)";
  if (missed > 0)
    line += ", " + std::to_string(missed) + " left unfolded (check failed or missed the tolerance)";
  return line;
}

// The entropy calibrator is the naive TensorRT-style baseline of the CFWS paper: a Conv whose
// Relu is absorbed is calibrated on the Conv's own (pre-Relu) output, so the |x| histogram
// also holds the negative half that the Relu removes. kl does the same (measured: on the
// post-Relu statistics its divergence clipped up to 5.8 % of a layer, docs/calibration.md)
// but keeps the post-Relu level count (255 for a uint8 tensor). Only points whose tensor is
// the output of a Relu fed by a quantized layer's Conv change.
void calibrate_entropy_before_relu(const Model& fused, QuantPoints& points) {
  std::map<std::string, std::string> pre_relu;  // post-Relu tensor -> Conv output
  const GraphIndex idx(fused.graph);
  for (const auto& l : points.layers) {
    if (!l.relu_fused || l.relu_node.empty()) continue;
    for (const auto& n : fused.graph.nodes) {
      if (n.name != l.relu_node || n.op_type != "Relu" || n.inputs.empty()) continue;
      if (n.outputs.empty() || n.outputs[0] != l.output) continue;
      const auto p = idx.producer.find(n.inputs[0]);
      if (p == idx.producer.end() || fused.graph.nodes[p->second].name != l.node) continue;
      pre_relu[l.output] = n.inputs[0];
    }
  }
  for (auto& q : points.activations) {
    const auto it = pre_relu.find(q.calibrated_on);
    if (it != pre_relu.end()) q.calibrated_on = it->second;
  }
}

// kl on a non-negative point whose statistics are still post-Relu (a Relu not fed by a
// quantized Conv): its exact zeros are the Relu's clamped negatives. With the zero point at 0 they are exact on any grid,
// whatever the threshold, so they are taken out of the histogram (bin 0) before the
// divergence is computed; left in, that spike (often half the values) dominates KL(P||Q) and
// drives the threshold to the smallest candidate (measured: 35% top-1 agreement instead of
// 99% on the bundled MobileOne). Only points that hold Relu outputs (non_negative).
void drop_relu_zeros(const QuantPoints& points, std::map<std::string, calib::TensorStats>& stats) {
  for (const auto& q : points.activations) {
    if (!q.non_negative) continue;
    auto it = stats.find(q.calibrated_on);
    if (it == stats.end() || it->second.hist.counts.empty()) continue;
    uint64_t& bin0 = it->second.hist.counts[0];
    bin0 -= std::min(bin0, it->second.zeros);
  }
}

// Tensors that keep their whole observed range (min-max) whatever the activation method:
//  * the network's inputs (the preprocessed image, a known fixed range): the divergence
//    calibrators and mse clip them at the spike of the background value (on Fashion-MNIST,
//    T = 0.81 of a 2.02 range: 27% of the pixels clipped);
//  * the outputs of the two halves of a CFWS-split conv: they only feed the Add that rebuilds
//    the conv's output, and clipping either half breaks W = C^ + W_f (kl clipped 19% of a
//    coarse half's values: 36% top-1 agreement instead of 91%). The sum after the Add is
//    calibrated with the chosen method like any conv output.
// Their parameters come from a min-max plan of the same statistics.
void keep_full_range(const Model& fused, const QuantPoints& points,
                     const std::map<std::string, calib::TensorStats>& stats,
                     const QuantizeOptions& o, QuantPlan& plan) {
  if (o.act == calib::Method::kMinMax) return;
  std::set<std::string> keep;
  for (const auto* v : fused.graph.runtime_inputs()) keep.insert(v->name);
  for (const auto& l : plan.layers)
    if (!l.cfws_of.empty()) keep.insert(l.output);
  bool any = false;
  for (const auto& a : plan.activations) any |= keep.count(a.tensor) > 0 && a.shared_with.empty();
  if (!any) return;
  QuantizeOptions mo = o;
  mo.act = calib::Method::kMinMax;
  const QuantPlan mm = build_plan(fused, points, stats, mo);
  for (auto& a : plan.activations) {
    if (!keep.count(a.tensor) || !a.shared_with.empty()) continue;
    const ActivationQuant* m = mm.activation(a.tensor);
    if (m) a = *m;
  }
}

// The exclusions a plan was made with: --exclude names given now plus the nodes the plan
// keeps in float because of --exclude (so the CFWS split is the same as when it was made).
std::vector<std::string> plan_exclusions(const QuantPlan& plan, std::vector<std::string> ex) {
  std::set<std::string> seen(ex.begin(), ex.end());
  for (const auto& f : plan.float_nodes)
    if (f.reason.find("exclude") != std::string::npos && seen.insert(f.node).second)
      ex.push_back(f.node);
  return ex;
}

}  // namespace

QuantPoints pipeline_points(const Model& fused, const QuantizeOptions& o) {
  QuantPoints points = find_quant_points(fused, o);
  // kl measures its divergence on the pre-Relu statistics too (docs/calibration.md, "kl:
  // pre-Relu statistics"): on the post-Relu ones it clipped up to 5.8 % of a layer.
  if (o.act == calib::Method::kEntropy || o.act == calib::Method::kKl)
    calibrate_entropy_before_relu(fused, points);
  return points;
}

std::map<std::string, calib::TensorStats> pipeline_stats(
    const QuantPoints& points, std::map<std::string, calib::TensorStats> stats, const QuantizeOptions& o) {
  if (o.act == calib::Method::kKl) drop_relu_zeros(points, stats);
  return stats;
}

QuantPlan pipeline_plan(const Model& fused, const QuantPoints& points,
                        std::map<std::string, calib::TensorStats> stats, const QuantizeOptions& o,
                        int64_t samples) {
  if (o.act == calib::Method::kKl) drop_relu_zeros(points, stats);
  QuantPlan plan = build_plan(fused, points, stats, o);
  plan.calib_samples = samples;
  keep_full_range(fused, points, stats, o, plan);
  return plan;
}

QuantizeResult quantize(const Model& model, const data::Dataset& calib, const QuantizeOptions& o) {
  const auto t0 = Clock::now();
  auto stage = t0;
  const auto lap = [&stage](const char* what) {  // stage timings, for `repq -v quantize`
    spdlog::debug("quantize: {} {:.3f} s", what, seconds_since(stage));
    stage = Clock::now();
  };
  QuantizeResult r;
  r.fused = model;
  if (o.fuse) r.fuse_summary = fuse_step(r.fused, o.collect.threads);
  lap("fuse");
  r.cfws = apply_cfws(r.fused, o.weights, o.exclude);
  lap("cfws split");
  const QuantPoints points = pipeline_points(r.fused, o);
  lap("quant points");
  // GPTQ's H of the float inputs is summed during calibration's second pass (no third pass).
  std::unique_ptr<HessianAccumulator> hacc;
  calib::CollectOptions co = o.collect;
  if (o.weights == WeightMode::kGptq) {
    hacc = std::make_unique<HessianAccumulator>(r.fused, r.fused, points.layers, o.collect.threads);
    if (!hacc->empty()) co.pass2_observer = [&](const std::string& n, const Tensor& v) { hacc->observe(n, v); };
  }
  const calib::CollectResult stats = calib::collect_stats(r.fused, calib, points.stats_tensors(), co);
  spdlog::debug("quantize: calibration {:.3f} s: forward passes {:.3f} s, statistics {:.3f} s, "
                "the rest (reading and decoding the samples, twice) {:.3f} s",
                stats.total_seconds, stats.forward_seconds, stats.stats_seconds,
                stats.total_seconds - stats.forward_seconds - stats.stats_seconds);
  lap("calibration");
  r.plan = pipeline_plan(r.fused, points, stats.stats, o, stats.samples);
  lap("plan");
  if (o.weights == WeightMode::kGptq) {
    const QuantPlan rtn = r.plan;
    spdlog::debug("quantize: gptq statistics (float inputs, in calibration) {:.3f} s", hacc->seconds());
    GptqOptions go = o.gptq;  // --threads bounds the rounding's threads too
    if (go.threads == 0) go.threads = o.collect.threads;
    apply_gptq(r.fused, r.plan, hacc->finish(), go);
    lap("gptq rounding");
    if (o.gptq.quantized_inputs) {  // again, on the inputs of the QDQ model just made
      const Model q = export_qdq(r.fused, r.plan);
      const auto hq = collect_hessians(q, r.fused, calib, r.plan.layers, o.collect);
      r.plan = rtn;
      apply_gptq(r.fused, r.plan, hq, go);
      lap("gptq (quantized inputs)");
    }
  }
  if (o.refine_act) {
    // The statistics as the calibrator saw them (kl: without the Relu zeros), for the
    // recomputed clipped fractions.
    const auto seen = pipeline_stats(points, stats.stats, o);
    r.refine = refine_activation_clips(r.fused, r.plan, calib, o, o.refine, &seen);
    lap("refine-act");
  }
  r.qdq = export_qdq(r.fused, r.plan);
  lap("export");
  r.forward_seconds = stats.forward_seconds;
  r.total_seconds = seconds_since(t0);
  return r;
}

QuantizeResult quantize_with_plan(const Model& model, const QuantPlan& plan,
                                  const QuantizeOptions& o) {
  const auto t0 = Clock::now();
  QuantizeResult r;
  r.fused = model;
  if (o.fuse) r.fuse_summary = fuse_step(r.fused, o.collect.threads);
  r.cfws = apply_cfws(r.fused, parse_weight_mode(plan.weight_mode),
                      plan_exclusions(plan, o.exclude));
  const std::string digest = model_digest(r.fused);
  if (digest != plan.model_digest)
    throw InputError("plan: made for another model (digest " + plan.model_digest +
                     "; this model, " + (o.fuse ? "fused" : "not fused") + ", with " +
                     plan.weight_mode + " weights: " + digest + ")");
  r.plan = plan;
  r.qdq = export_qdq(r.fused, r.plan);
  r.total_seconds = seconds_since(t0);
  return r;
}

}  // namespace repq::quant
