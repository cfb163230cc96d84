// Activation clip refinement on the logits (docs/calibration.md, "Logit refinement"): after
// the plan is made (calibrator clips, GPTQ weights), each activation tensor's clip is
// rescaled by factors from a fixed ladder, one tensor at a time, and a change is kept when the
// mean per-sample logit SQNR of the exact QDQ simulation against the float model on the
// calibration samples rises. Greedy coordinate descent, deterministic. A trial re-runs only
// the graph after the changed tensor (refine_cut.h).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "repq/common/progress.h"
#include "repq/error.h"
#include "repq/eval/metrics.h"
#include "repq/quant/quantize.h"
#include "repq/quant/refine.h"
#include "repq/runtime/executor.h"
#include "refine_cut.h"

namespace repq::quant {

void set_activation_clip(ActivationQuant& a, double t, Target target) {
  a.threshold = t;
  a.zero_point = 0;
  double scale = 0;
  if (target == Target::kTensorRT) {
    scale = t / 127.0;
  } else if (a.non_negative) {
    scale = t / 255.0;
  } else {
    const double lo = std::min(std::max(a.min, -t), 0.0), hi = std::max(std::min(a.max, t), 0.0);
    scale = (hi - lo) / 255.0;
    a.scale = static_cast<float>(scale);
    if (a.scale > 0) {
      const double zp = std::nearbyint(-lo / static_cast<double>(a.scale));
      a.zero_point = static_cast<int32_t>(std::clamp(zp, 0.0, 255.0));
    }
  }
  a.scale = static_cast<float>(scale);
  if (!(a.scale > 0)) a.scale = 0.00390625f;  // as build_plan's all-zero tensors
}

namespace {

// The calibration samples as batches of at most `batch` rows, `limit` samples in all.
std::vector<Tensor> load_batches(const data::Dataset& ds, int64_t limit, int64_t batch) {
  std::vector<Tensor> out;
  data::BatchReader reader(ds, batch);
  int64_t done = 0;
  while (done < limit) {
    auto b = reader.next();
    if (!b) break;
    Tensor input = std::move(b->input);
    if (done + input.dim(0) > limit) input = data::first_rows(input, limit - done);
    done += input.dim(0);
    out.push_back(std::move(input));
  }
  return out;
}

std::vector<Tensor> first_outputs(const Model& m, const std::vector<Tensor>& batches, int threads) {
  Executor ex(m, ExecutorOptions{threads});
  if (ex.input_names().size() != 1)
    throw InputError("--refine-act: the model has " + std::to_string(ex.input_names().size()) +
                     " inputs; calibration feeds exactly one");
  std::vector<Tensor> out;
  for (const Tensor& b : batches)
    out.push_back(ex.run({{ex.input_names()[0], b}}).at(ex.output_names()[0]));
  return out;
}

}  // namespace

double plan_logit_sqnr(const Model& fused, const QuantPlan& plan, const std::vector<Tensor>& batches,
                       const std::vector<Tensor>& ref, int threads) {
  const std::vector<Tensor> q = first_outputs(export_qdq(fused, plan), batches, threads);
  AgreementMeter m;
  for (size_t i = 0; i < q.size(); ++i) m.add(ref[i], q[i]);
  return m.mean_sqnr_db();
}

RefineResult refine_activation_clips(const Model& fused, QuantPlan& plan, const data::Dataset& calib,
                                     const QuantizeOptions& o, const RefineOptions& ro,
                                     const std::map<std::string, calib::TensorStats>* stats) {
  const auto t0 = std::chrono::steady_clock::now();
  RefineResult r;
  r.ran = true;
  const int64_t available = static_cast<int64_t>(calib.size());
  const int64_t limit = std::min(
      o.collect.num_samples > 0 ? std::min(o.collect.num_samples, available) : available,
      std::max<int64_t>(ro.max_samples, 1));
  const std::vector<Tensor> batches = load_batches(calib, limit, o.collect.batch);
  for (const Tensor& b : batches) r.samples += b.dim(0);
  const int threads = o.collect.threads;
  const std::vector<Tensor> ref = first_outputs(fused, batches, threads);
  // Tensors that keep their range: the graph inputs, the CFWS halves' outputs, and the
  // tensors that take another's scale (they follow it).
  std::set<std::string> fixed;
  for (const auto* v : fused.graph.runtime_inputs()) fixed.insert(v->name);
  for (const LayerQuant& l : plan.layers)
    if (!l.cfws_of.empty()) fixed.insert(l.output);
  std::vector<size_t> order;
  for (size_t i = 0; i < plan.activations.size(); ++i) {
    const ActivationQuant& a = plan.activations[i];
    if (a.shared_with.empty() && !fixed.count(a.tensor) && a.threshold > 0) order.push_back(i);
  }
  std::reverse(order.begin(), order.end());  // the last tensors first (docs/calibration.md)
  const auto clipped_of = [&](const ActivationQuant& a, double keep) {
    if (!stats) return keep;
    const auto it = stats->find(a.calibrated_on);
    return it == stats->end() ? keep : clipped_fraction(it->second, a);
  };
  const auto apply = [&](QuantPlan& p, size_t i, double t) {
    set_activation_clip(p.activations[i], t, o.target);
    p.activations[i].clipped = clipped_of(p.activations[i], p.activations[i].clipped);
    for (ActivationQuant& b : p.activations)
      if (b.shared_with == p.activations[i].tensor) {
        const std::string keep_name = b.tensor, keep_cal = b.calibrated_on, keep_share = b.shared_with;
        const double bmin = b.min, bmax = b.max, bclip = b.clipped;
        b = p.activations[i];
        b.tensor = keep_name;
        b.calibrated_on = keep_cal;
        b.shared_with = keep_share;
        b.min = bmin;
        b.max = bmax;
        b.clipped = clipped_of(b, bclip);
      }
  };
  const auto sqnr_of = [&](const std::vector<Tensor>& q) {
    AgreementMeter m;
    for (size_t k = 0; k < q.size(); ++k) m.add(ref[k], q[k]);
    return m.mean_sqnr_db();
  };
  detail::CutRunner runner(batches, threads, ro.cache_bytes, ro.verify_suffix);
  Model current = export_qdq(fused, plan);
  std::vector<Tensor> current_out = runner.full(current);
  double best = sqnr_of(current_out);
  r.sqnr_before = best;
  r.trials = 1;
  if (ro.cache_bytes > 0) {  // each tensor's cut, from a probe change of its clip
    std::vector<detail::Cut> cuts;
    for (size_t i : order) {
      QuantPlan probe = plan;
      apply(probe, i, plan.activations[i].threshold * 0.8);
      cuts.push_back(detail::find_cut(current, export_qdq(fused, probe)));
    }
    runner.set_schedule(current, std::move(cuts));
  }
  ProgressBar bar("refine activation clips", static_cast<int64_t>(order.size()), o.collect.progress);
  int64_t done = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const size_t i = order[k];
    const ActivationQuant a0 = plan.activations[i];
    const double t0v = a0.threshold, amax = std::max(std::fabs(a0.min), std::fabs(a0.max));
    double best_t = t0v;
    // Ladder: down by x0.8 while it improves; if the first step down does not, up by x1.25
    // (capped at the tensor's observed |x| max) while it improves.
    for (const double f : {0.8, 1.25}) {
      int improved = 0;
      for (int step = 0; step < ro.max_steps; ++step) {
        double cand = best_t * f;
        if (f > 1) cand = std::min(cand, amax);
        if (!(cand > 0) || std::fabs(cand - best_t) <= 1e-6 * best_t) break;
        QuantPlan trial = plan;
        apply(trial, i, cand);
        Model trial_model = export_qdq(fused, trial);
        std::vector<Tensor> out = runner.outputs(k, current, trial_model, current_out);
        const double s = sqnr_of(out);
        ++r.trials;
        if (!(s > best + ro.min_gain_db)) break;
        runner.accepted();
        best = s;
        best_t = cand;
        plan = std::move(trial);
        current = std::move(trial_model);
        current_out = std::move(out);
        ++improved;
      }
      if (improved > 0) break;  // improved going down: up is not tried
    }
    if (best_t != t0v)
      r.steps.push_back({a0.tensor, t0v, best_t, best});
    bar.update(++done);
  }
  r.sqnr_after = best;
  r.suffix_trials = runner.suffix_runs();
  r.cut_fills = runner.fills();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spdlog::debug("refine: {} trials ({} after the cut, {} cache fills), logit SQNR {:.2f} -> {:.2f} dB "
                "on {} samples, {:.1f} s",
                r.trials, r.suffix_trials, r.cut_fills, r.sqnr_before, r.sqnr_after, limit, r.seconds);
  return r;
}

size_t carry_refined_clips(const QuantPlan& refined, QuantPlan& plan) {
  size_t n = 0;
  for (ActivationQuant& a : plan.activations) {
    const ActivationQuant* r = refined.activation(a.tensor);
    if (!r || r->calibrated_on != a.calibrated_on || r->shared_with != a.shared_with ||
        r->non_negative != a.non_negative || r->dtype != a.dtype || r->method != a.method)
      continue;
    a.threshold = r->threshold;
    a.scale = r->scale;
    a.zero_point = r->zero_point;
    a.clipped = r->clipped;
    ++n;
  }
  return n;
}

}  // namespace repq::quant
