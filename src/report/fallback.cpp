// fallback_auto: partial quantization until the top-1 agreement with float holds on the
// calibration samples (see fallback.h): greedy search with re-measurement of every candidate in
// the exact integer simulation. The pipeline is quantize()'s (fuse -> CFWS -> quant points ->
// plan -> export) with the statistics cached across the trials.
#include "repq/report/fallback.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

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

// How close a partial model is to float on the calibration samples.
struct Score {
  int64_t agree = 0, count = 0;
  double sqnr = -1e300;  // logits against float, pooled over every value (dB)
  double agreement() const { return count ? static_cast<double>(agree) / static_cast<double>(count) : 0.0; }
  bool better_than(const Score& o) const {
    return agree != o.agree ? agree > o.agree : sqnr > o.sqnr;
  }
};

// Inputs kept in memory up to this size (the trials run them many times); beyond, re-read.
constexpr size_t kMaxCachedBytes = size_t{1} << 30;

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

  // Top-1 agreement and logit SQNR of `qdq` against the float model on the calibration
  // samples, in the exact integer simulation.
  // exact: the QDQ model in the exact integer simulation (what ONNX Runtime computes); else
  // float_sim_model() of it (several times faster; differs only where sums round differently).
  Score score(const Model& qdq, bool exact) {
    ExecutorOptions eo{o_.collect.threads};
    eo.exact_qdq = true;
    if (ref_.empty()) {
      Executor fl(base_, eo);
      for_batches([&](const Tensor& x) { ref_.push_back(fl.run({{fl.input_names().at(0), x}}).at(fl.output_names().at(0))); });
    }
    Executor qx(exact ? qdq : float_sim_model(qdq), eo);
    AgreementMeter m;
    ErrorSums e;
    size_t b = 0;
    for_batches([&](const Tensor& x) {
      const Tensor& ref = ref_.at(b++);
      const Tensor y = qx.run({{qx.input_names().at(0), x}}).at(qx.output_names().at(0));
      m.add(ref, y);
      if (y.numel() == ref.numel() && y.dtype() == DType::kFloat32 && ref.dtype() == DType::kFloat32)
        e.add(ref.data<float>(), y.data<float>(), static_cast<size_t>(y.numel()));
    });
    Score s;
    s.count = m.count();
    s.agree = std::llround(m.top1_agreement() * static_cast<double>(s.count));
    s.sqnr = e.sqnr_db();
    if (!std::isfinite(s.sqnr)) s.sqnr = std::isnan(s.sqnr) ? -1e300 : s.sqnr;
    return s;
  }

 private:
  template <class F>
  void for_batches(F&& f) {
    if (cached_) {
      for (const Tensor& x : inputs_) f(x);
      return;
    }
    data::BatchReader reader(calib_, std::max<int64_t>(1, o_.collect.batch));
    int64_t done = 0;
    size_t bytes = 0;
    bool fits = true;
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
      bytes += x.nbytes();
      fits = fits && bytes <= kMaxCachedBytes;
      if (fits) inputs_.push_back(x);
      done += n;
      if (limit > 0 && done >= limit) break;
    }
    cached_ = fits;
    if (!fits) inputs_.clear();
  }

  const data::Dataset& calib_;
  quant::QuantizeOptions o_;
  Model base_;
  std::string fuse_summary_;
  std::map<std::string, calib::TensorStats> stats_;
  int64_t samples_ = 0;  // per collection pass (the same data every step)
  std::vector<Tensor> ref_;     // float logits per batch
  std::vector<Tensor> inputs_;  // the batches, when they fit
  bool cached_ = false;
};

// Isolated output SQNR of every row of the fully quantized model (for the reasons printed).
std::map<std::string, double> isolated_sqnr(const quant::QuantizeResult& q, const data::Dataset& calib,
                                            const quant::QuantizeOptions& o) {
  const std::vector<RowSpec> rows = row_specs(q.fused, q.plan);
  ReportOptions ro;
  ro.cumulative = false;
  ro.threads = o.collect.threads;
  ro.num_samples = o.collect.num_samples;
  const MeasureResult m = measure(q, rows, calib, ro);
  std::map<std::string, double> out;
  for (size_t i = 0; i < rows.size(); ++i) out[rows[i].name] = m.isolated[i].sqnr_db();
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

std::string FallbackLayer::reason() const {
  return (with.empty() ? "" : "with " + with + ", the activation between them float; ") + "isolated output SQNR " + fmt("%.1f", isolated_sqnr_db) + " dB; in float: agreement " +
         fmt("%.4f", agreement_before) + " -> " + fmt("%.4f", agreement_after) + ", logit SQNR " +
         fmt("%.1f", logit_sqnr_before) + " -> " + fmt("%.1f", logit_sqnr_after) + " dB (" +
         fmt("%+.1f", logit_sqnr_after - logit_sqnr_before) + " dB), best of " +
         std::to_string(tried) + " tried";
}

std::string FallbackResult::summary() const {
  std::string s = "fallback auto: top-1 agreement with float on " + std::to_string(samples) +
                  " calibration samples " + fmt("%.4f", agreement.empty() ? 0.0 : agreement.front()) +
                  " fully quantized (logit SQNR " + fmt("%.1f", logit_sqnr.empty() ? 0.0 : logit_sqnr.front()) +
                  " dB), target " + fmt("%.4f", min_agreement) + "\n";
  if (kept_float.empty()) return s + (reached ? "  no layer kept in float\n" : "  no layer could be kept in float\n");
  for (const auto& k : kept_float)
    s += "  kept in float: " + k.layer + " (" + k.reason() + ")\n";
  s += reached ? "  target reached with " + std::to_string(kept_float.size()) + " layer" +
                     (kept_float.size() == 1 ? "" : "s") + " in float"
               : "  target NOT reached with " + std::to_string(kept_float.size()) + " layer" +
                     (kept_float.size() == 1 ? "" : "s") + " in float";
  s += " (" + std::to_string(trials) + " partial models measured, " + fmt("%.1f", seconds) + " s)\n";
  return s;
}

FallbackResult fallback_auto(const Model& model, const data::Dataset& calib,
                             quant::QuantizeOptions o, double min_agreement,
                             const FallbackSearch& search) {
  if (!(min_agreement >= 0.0 && min_agreement <= 1.0))
    throw InputError("--min-agreement: " + fmt("%g", min_agreement) + " is not in [0, 1]");
  const auto t0 = std::chrono::steady_clock::now();
  FallbackResult fr;
  fr.min_agreement = min_agreement;
  Stepper st(model, calib, o);
  std::vector<std::string> exclude = o.exclude;
  fr.result = st.run(exclude);
  Score cur = st.score(fr.result.qdq, /*exact=*/true);
  fr.samples = cur.count;
  fr.agreement.push_back(cur.agreement());
  fr.logit_sqnr.push_back(cur.sqnr);
  fr.reached = fr.agreement.back() >= min_agreement;
  if (fr.reached) {
    fr.seconds = seconds_since(t0);
    fr.result.total_seconds = fr.seconds;
    return fr;
  }
  Score cur_fast = st.score(fr.result.qdq, /*exact=*/false);  // trials compare on this scale

  const std::map<std::string, double> iso = isolated_sqnr(fr.result, calib, o);
  const auto iso_of = [&](const std::string& name) {
    const auto it = iso.find(name);
    return it == iso.end() ? kNaN : it->second;
  };
  std::set<std::string> split_nodes;  // split by CFWS in the fully quantized model
  for (const quant::CfwsDecision& d : fr.result.cfws)
    if (d.applied) split_nodes.insert(d.node);
  // Moves: a layer alone, or a layer with the layer whose output is its input (then that
  // activation is float too: a layer kept float alone still reads, and its producer still
  // writes, the quantized activation, so a badly quantized activation needs both).
  const std::vector<RowSpec> rows = row_specs(fr.result.fused, fr.result.plan);
  std::map<std::string, std::string> producer_of;  // row output value -> row
  for (const RowSpec& r : rows) producer_of[r.output] = r.name;
  std::vector<std::string> remaining;
  for (const RowSpec& r : rows) remaining.push_back(r.name);
  auto moves_of = [&](const RowSpec& r) {
    std::vector<std::vector<std::string>> mv{{r.name}};
    const auto p = producer_of.find(r.input);
    if (p != producer_of.end() && p->second != r.name &&
        std::count(remaining.begin(), remaining.end(), p->second))
      mv.push_back({p->second, r.name});
    return mv;
  };
  const auto key = [](const std::vector<std::string>& mv) {
    std::string k;
    for (const auto& n : mv) k += (k.empty() ? "" : " + ") + n;
    return k;
  };
  // Gain of each move the last time it was tried (agreement count, then logit SQNR).
  std::map<std::string, std::pair<int64_t, double>> last_gain;
  const size_t max_float = search.max_float < 0 ? rows.size() : static_cast<size_t>(search.max_float);
  while (!remaining.empty() && fr.kept_float.size() < max_float) {
    // Candidates: the moves of the most sensitive layers alone (isolated output SQNR, lowest
    // first) and the moves that helped most the last time they were tried.
    std::vector<const RowSpec*> live;
    for (const RowSpec& r : rows)
      if (std::count(remaining.begin(), remaining.end(), r.name)) live.push_back(&r);
    const auto kc = static_cast<size_t>(std::max(0, search.candidates));
    if (kc > 0 && live.size() > kc) {
      std::stable_sort(live.begin(), live.end(), [&](const RowSpec* a, const RowSpec* b) {
        const double ia = iso_of(a->name), ib = iso_of(b->name);
        return std::isnan(ib) ? !std::isnan(ia) : ia < ib;
      });
      live.resize(kc);
    }
    std::vector<std::vector<std::string>> cands;
    std::set<std::string> seen;
    auto add = [&](const std::vector<std::string>& mv) {
      if (fr.kept_float.size() + mv.size() > max_float || !seen.insert(key(mv)).second) return;
      for (const auto& n : mv)
        if (!std::count(remaining.begin(), remaining.end(), n)) return;
      cands.push_back(mv);
    };
    for (const RowSpec* r : live)
      for (const auto& mv : moves_of(*r)) add(mv);
    if (kc > 0) {
      std::vector<std::pair<std::pair<int64_t, double>, std::vector<std::string>>> by_gain;
      for (const RowSpec& r : rows)
        if (std::count(remaining.begin(), remaining.end(), r.name))
          for (const auto& mv : moves_of(r))
            if (const auto g = last_gain.find(key(mv)); g != last_gain.end()) by_gain.emplace_back(g->second, mv);
      std::stable_sort(by_gain.begin(), by_gain.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
      for (size_t i = 0; i < by_gain.size() && i < kc; ++i) add(by_gain[i].second);
    }
    if (cands.empty()) break;
    std::vector<std::string> best;
    Score best_score;
    std::vector<std::pair<std::string, Score>> tried;
    for (const auto& mv : cands) {
      std::vector<std::string> ex = exclude;
      ex.insert(ex.end(), mv.begin(), mv.end());
      const Score sc = st.score(st.run(ex).qdq, /*exact=*/false);
      ++fr.trials;
      last_gain[key(mv)] = {sc.agree - cur_fast.agree, sc.sqnr - cur_fast.sqnr};
      tried.emplace_back(key(mv), sc);
      spdlog::debug("fallback: try {} in float: agreement {:.4f}, logit SQNR {:.2f} dB", key(mv), sc.agreement(), sc.sqnr);
      if (best.empty() || sc.better_than(best_score)) {
        best = mv;
        best_score = sc;
      }
    }
    if (fr.kept_float.empty()) {  // the moves tried at the first step, best first
      std::stable_sort(tried.begin(), tried.end(),
                       [](const auto& a, const auto& b) { return a.second.better_than(b.second); });
      for (const auto& t : tried) fr.ranking.push_back(t.first);
    }
    exclude.insert(exclude.end(), best.begin(), best.end());
    fr.result = st.run(exclude);
    const Score exact = st.score(fr.result.qdq, /*exact=*/true);
    for (const auto& name : best) {
      FallbackLayer k;
      k.layer = name;
      k.isolated_sqnr_db = iso_of(name);
      k.agreement_before = cur.agreement();
      k.agreement_after = exact.agreement();
      k.logit_sqnr_before = cur.sqnr;
      k.logit_sqnr_after = exact.sqnr;
      k.tried = static_cast<int>(cands.size());
      k.with = best.size() > 1 ? (name == best[0] ? best[1] : best[0]) : "";
      k.step = static_cast<int>(fr.agreement.size());
      spdlog::info("fallback: {} in float ({})", k.layer, k.reason());
      fr.kept_float.push_back(k);
      remaining.erase(std::find(remaining.begin(), remaining.end(), name));
    }
    cur = exact;
    cur_fast = best_score;
    fr.agreement.push_back(cur.agreement());
    fr.logit_sqnr.push_back(cur.sqnr);
    if (cur.agreement() >= min_agreement) {
      fr.reached = true;
      break;
    }
  }
  // With CFWS splits the cached statistics came from graphs that split layers now kept float
  // (float values downstream differ by rounding): quantize afresh, as `repq quantize --exclude`.
  const bool split = std::any_of(fr.kept_float.begin(), fr.kept_float.end(),
                                 [&](const FallbackLayer& k) { return split_nodes.count(k.layer) > 0; });
  if (split) {
    quant::QuantizeOptions so = o;
    so.exclude = exclude;
    fr.result = quant::quantize(model, calib, so);
    Stepper check(model, calib, o);
    const Score s = check.score(fr.result.qdq, /*exact=*/true);
    fr.agreement.back() = s.agreement();
    fr.logit_sqnr.back() = s.sqnr;
    for (auto& k : fr.kept_float)
      if (k.step == static_cast<int>(fr.agreement.size()) - 1) {
        k.agreement_after = s.agreement();
        k.logit_sqnr_after = s.sqnr;
      }
    fr.reached = s.agreement() >= min_agreement;
  }
  fr.seconds = seconds_since(t0);
  fr.result.total_seconds = fr.seconds;  // the whole search, for the CLI's time line
  return fr;
}

}  // namespace repq::report
