// fallback_auto: partial quantization until the top-1 agreement with float holds on the
// calibration samples (see fallback.h). The pipeline is quantize()'s (fuse -> CFWS -> quant
// points -> plan -> export) with the statistics cached across the steps.
#include "repq/report/fallback.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>

#include "repq/calib/collector.h"
#include "repq/error.h"
#include "repq/eval/metrics.h"
#include "repq/passes/fuse.h"
#include "repq/report/compute.h"
#include "repq/runtime/executor.h"

namespace repq::report {

namespace {

std::string fmt(const char* f, double v) {
  char b[48];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// As quantize()'s summary line.
std::string fuse_step(Model& m, int threads) {
  FuseOptions fo;
  fo.threads = threads <= 0 ? 1 : threads;
  const FuseReport rep = fuse_branches(m, fo);
  size_t applied = 0;
  for (const auto& f : rep.folds) applied += f.applied ? 1 : 0;
  if (rep.folds.empty()) return "";
  return "folded " + std::to_string(applied) + " block" + (applied == 1 ? "" : "s") + " (graph " +
         std::to_string(rep.nodes_before) + " -> " + std::to_string(rep.nodes_after) + " nodes)";
}

class Stepper {
 public:
  Stepper(const Model& model, const data::Dataset& calib, const quant::QuantizeOptions& o)
      : calib_(calib), o_(o), base_(model) {
    if (o.fuse) fuse_summary_ = fuse_step(base_, o.collect.threads);
  }

  quant::QuantizeResult run(const std::vector<std::string>& exclude) {
    quant::QuantizeOptions so = o_;
    so.exclude = exclude;
    quant::QuantizeResult r;
    r.fused = base_;
    r.fuse_summary = fuse_summary_;
    r.cfws = quant::apply_cfws(r.fused, so.weights, so.exclude);
    const quant::QuantPoints pts = quant::pipeline_points(r.fused, so);
    std::vector<std::string> missing;
    for (const auto& t : pts.stats_tensors())
      if (!stats_.count(t)) missing.push_back(t);
    if (!missing.empty()) {
      calib::CollectResult c = calib::collect_stats(r.fused, calib_, missing, so.collect);
      for (auto& [name, s] : c.stats) stats_[name] = std::move(s);
      r.forward_seconds = c.forward_seconds;
      samples_ = c.samples;
    }
    r.plan = quant::pipeline_plan(r.fused, pts, stats_, so, samples_);
    r.qdq = quant::export_qdq(r.fused, r.plan);
    return r;
  }

  // Top-1 agreement of `qdq` with the float model on the calibration samples.
  double agreement(const Model& qdq, int64_t* samples) {
    if (ref_.empty()) {
      Executor fl(base_, ExecutorOptions{o_.collect.threads});
      for_batches([&](const Tensor& x) { ref_.push_back(fl.run({{fl.input_names().at(0), x}}).at(fl.output_names().at(0))); });
    }
    Executor qx(qdq, ExecutorOptions{o_.collect.threads});
    AgreementMeter m;
    size_t b = 0;
    for_batches([&](const Tensor& x) { m.add(ref_.at(b++), qx.run({{qx.input_names().at(0), x}}).at(qx.output_names().at(0))); });
    if (samples) *samples = m.count();
    return m.top1_agreement();
  }

  const Model& fused_float() const { return base_; }

 private:
  template <class F>
  void for_batches(F&& f) {
    data::BatchReader reader(calib_, std::max<int64_t>(1, o_.collect.batch));
    int64_t done = 0;
    const int64_t limit = o_.collect.num_samples;
    while (auto batch = reader.next()) {
      Tensor x = batch->input;
      int64_t n = x.dim(0);
      if (limit > 0 && done + n > limit) {
        n = limit - done;
        Shape s = x.shape();
        s[0] = n;
        Tensor y(x.dtype(), s);
        std::copy_n(x.raw(), y.nbytes(), y.mutable_raw());
        x = y;
      }
      if (n <= 0) break;
      f(x);
      done += n;
      if (limit > 0 && done >= limit) break;
    }
  }

  const data::Dataset& calib_;
  quant::QuantizeOptions o_;
  Model base_;
  std::string fuse_summary_;
  std::map<std::string, calib::TensorStats> stats_;
  int64_t samples_ = 0;  // per collection pass (the same data every step)
  std::vector<Tensor> ref_;
};

}  // namespace

std::string FallbackLayer::reason() const {
  return "isolated output SQNR " + fmt("%.1f", isolated_sqnr_db) + " dB";
}

std::string FallbackResult::summary() const {
  std::string s = "fallback auto: top-1 agreement with float on " + std::to_string(samples) +
                  " calibration samples " + fmt("%.4f", agreement.empty() ? 0.0 : agreement.front()) +
                  " fully quantized, target " + fmt("%.4f", min_agreement) + "\n";
  if (kept_float.empty()) return s + (reached ? "  no layer kept in float\n" : "");
  for (const auto& k : kept_float)
    s += "  kept in float: " + k.layer + " (" + k.reason() + ") -> agreement " +
         fmt("%.4f", k.agreement_after) + "\n";
  s += reached ? "  target reached with " + std::to_string(kept_float.size()) + " layer" +
                     (kept_float.size() == 1 ? "" : "s") + " in float\n"
               : "  target NOT reached with every ranked layer in float\n";
  return s;
}

FallbackResult fallback_auto(const Model& model, const data::Dataset& calib,
                             quant::QuantizeOptions o, double min_agreement) {
  if (!(min_agreement >= 0.0 && min_agreement <= 1.0))
    throw InputError("--min-agreement: " + fmt("%g", min_agreement) + " is not in [0, 1]");
  FallbackResult fr;
  fr.min_agreement = min_agreement;
  Stepper st(model, calib, o);
  std::vector<std::string> exclude = o.exclude;
  fr.result = st.run(exclude);
  fr.agreement.push_back(st.agreement(fr.result.qdq, &fr.samples));
  fr.reached = fr.agreement.back() >= min_agreement;
  if (fr.reached) return fr;

  // Rank once: isolated output SQNR of every row of the fully quantized model.
  const std::vector<RowSpec> rows = row_specs(fr.result.fused, fr.result.plan);
  ReportOptions ro;
  ro.cumulative = false;
  ro.threads = o.collect.threads;
  ro.num_samples = o.collect.num_samples;
  const MeasureResult m = measure(fr.result, rows, calib, ro);
  std::vector<size_t> order(rows.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const double ka = m.isolated[a].sqnr_db(), kb = m.isolated[b].sqnr_db();
    if (std::isnan(ka) || std::isnan(kb)) return !std::isnan(ka) && std::isnan(kb);
    return ka < kb;
  });
  for (size_t i : order) fr.ranking.push_back(rows[i].name);

  for (size_t i : order) {
    exclude.push_back(rows[i].name);
    fr.result = st.run(exclude);
    const double a = st.agreement(fr.result.qdq, nullptr);
    fr.agreement.push_back(a);
    fr.kept_float.push_back({rows[i].name, m.isolated[i].sqnr_db(), a});
    if (a >= min_agreement) {
      fr.reached = true;
      break;
    }
  }
  return fr;
}

}  // namespace repq::report
