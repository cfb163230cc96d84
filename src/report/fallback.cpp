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

#include "fallback_stepper.h"
#include "repq/error.h"
#include "repq/quant/refine.h"
#include "repq/report/compute.h"

namespace repq::report {

namespace {

std::string fmt(const char* f, double v) {
  char b[48];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

using detail::Score;
using detail::Stepper;

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

// The trials reuse statistics that are exact only when excluding a layer changes nothing but
// the plan. Two cases quantize afresh with the chosen exclusions, so the result always equals
// `repq quantize --exclude`, and re-measure the last step:
//  * CFWS: a layer kept float is not split any more, which changes the float values after it
//    by rounding (the cached statistics came from graphs that split it);
//  * GPTQ with quantized inputs: H depends on the other layers' quantization (the trials used
//    the float-input H).
// With --refine-act the fresh plan takes the refined clips as the trials did.
void requantize_if_needed(FallbackResult& fr, const Model& model, const data::Dataset& calib,
                          const quant::QuantizeOptions& o, const std::vector<std::string>& exclude,
                          const std::set<std::string>& split_nodes, double ratio,
                          const quant::QuantPlan* refined) {
  const bool split = std::any_of(fr.kept_float.begin(), fr.kept_float.end(),
                                 [&](const FallbackLayer& k) { return split_nodes.count(k.layer) > 0; });
  const bool gptq_q = o.weights == quant::WeightMode::kGptq && o.gptq.quantized_inputs;
  if (!split && !gptq_q) return;
  quant::QuantizeOptions so = o;
  so.exclude = exclude;
  so.refine_act = false;
  fr.result = quant::quantize(model, calib, so);
  if (refined) {
    quant::carry_refined_clips(*refined, fr.result.plan);
    fr.result.qdq = quant::export_qdq(fr.result.fused, fr.result.plan);
  }
  Stepper check(model, calib, o);
  const Score s = check.score(fr.result.qdq, /*exact=*/true, ratio);
  fr.agreement.back() = s.agreement();
  fr.logit_sqnr.back() = s.sqnr;
  fr.kl.back() = s.kl;
  fr.margin_agreement.back() = s.strict_agreement();
  for (auto& k : fr.kept_float)
    if (k.step == static_cast<int>(fr.agreement.size()) - 1) {
      k.agreement_after = s.agreement();
      k.logit_sqnr_after = s.sqnr;
    }
  fr.reached = s.strict_agreement() >= fr.min_agreement;
}

}  // namespace

const char* criterion_name(FallbackCriterion c) {
  switch (c) {
    case FallbackCriterion::kAgreement: return "agreement";
    case FallbackCriterion::kSqnr: return "sqnr";
    case FallbackCriterion::kKl: return "kl";
    case FallbackCriterion::kMargin: return "margin";
  }
  return "?";
}

FallbackCriterion parse_criterion(const std::string& name) {
  for (const FallbackCriterion c : {FallbackCriterion::kAgreement, FallbackCriterion::kSqnr,
                                    FallbackCriterion::kKl, FallbackCriterion::kMargin})
    if (name == criterion_name(c)) return c;
  throw InputError("--fallback-criterion: expected agreement, sqnr, kl or margin, got '" + name + "'");
}

std::string FallbackLayer::reason() const {
  return (with.empty() ? "" : "with " + with + ", the activation between them float; ") + "isolated output SQNR " + fmt("%.1f", isolated_sqnr_db) + " dB; in float: agreement " +
         fmt("%.4f", agreement_before) + " -> " + fmt("%.4f", agreement_after) + ", logit SQNR " +
         fmt("%.1f", logit_sqnr_before) + " -> " + fmt("%.1f", logit_sqnr_after) + " dB (" +
         fmt("%+.1f", logit_sqnr_after - logit_sqnr_before) + " dB), best of " +
         std::to_string(tried) + " tried";
}

double binomial_lower_bound(int64_t k, int64_t n, double alpha) {
  if (n <= 0 || k <= 0) return 0.0;
  k = std::min(k, n);
  // P(X >= k | p) rises with p: bisect. Terms in logs (n up to millions stays finite).
  const auto tail = [&](double p) {
    double t = 0;
    for (int64_t i = k; i <= n; ++i)
      t += std::exp(std::lgamma(static_cast<double>(n) + 1) - std::lgamma(static_cast<double>(i) + 1) -
                    std::lgamma(static_cast<double>(n - i) + 1) + static_cast<double>(i) * std::log(p) +
                    static_cast<double>(n - i) * std::log1p(-p));
    return t;
  };
  double lo = 0, hi = 1;
  for (int it = 0; it < 60; ++it) {
    const double mid = 0.5 * (lo + hi);
    (tail(mid) < alpha ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

double FallbackResult::agreement_lower95() const {
  if (margin_agreement.empty() || samples <= 0) return 0.0;
  return binomial_lower_bound(std::llround(margin_agreement.back() * static_cast<double>(samples)), samples, 0.05);
}

std::string FallbackResult::summary() const {
  std::string s = "fallback auto: top-1 agreement with float on " + std::to_string(samples) +
                  " calibration samples " + fmt("%.4f", agreement.empty() ? 0.0 : agreement.front()) +
                  " fully quantized (logit SQNR " + fmt("%.1f", logit_sqnr.empty() ? 0.0 : logit_sqnr.front()) +
                  " dB), target " + fmt("%.4f", min_agreement) +
                  (margin_ratio > 0 ? " of samples keeping the float top-1 with >= " +
                                          fmt("%.2f", margin_ratio) + " of its margin (now " +
                                          fmt("%.4f", margin_agreement.empty() ? 0.0 : margin_agreement.front()) + ")"
                                    : std::string()) +
                  ", moves chosen by " + criterion_name(criterion) + "\n";
  if (kept_float.empty()) return s + (reached ? "  no layer kept in float\n" : "  no layer could be kept in float\n");
  for (const auto& k : kept_float)
    s += "  kept in float: " + k.layer + " (" + k.reason() + ")\n";
  s += reached ? "  target reached with " + std::to_string(kept_float.size()) + " layer" +
                     (kept_float.size() == 1 ? "" : "s") + " in float"
               : "  target NOT reached with " + std::to_string(kept_float.size()) + " layer" +
                     (kept_float.size() == 1 ? "" : "s") + " in float";
  s += " (" + std::to_string(trials) + " partial models measured, " + fmt("%.1f", seconds) + " s)\n";
  s += "  on unseen samples expect less: " + std::to_string(samples) + " samples bound the agreement only to >= " +
       fmt("%.3f", agreement_lower95()) + " (95 % confidence, before the search's own selection)\n";
  return s;
}

FallbackResult fallback_auto(const Model& model, const data::Dataset& calib,
                             quant::QuantizeOptions o, double min_agreement,
                             const FallbackSearch& search) {
  if (!(min_agreement >= 0.0 && min_agreement <= 1.0))
    throw InputError("--min-agreement: " + fmt("%g", min_agreement) + " is not in [0, 1]");
  if (!(search.margin_ratio >= 0.0 && search.margin_ratio <= 1.0))
    throw InputError("--fallback-margin: " + fmt("%g", search.margin_ratio) + " is not in [0, 1]");
  const auto t0 = std::chrono::steady_clock::now();
  FallbackResult fr;
  fr.min_agreement = min_agreement;
  Stepper st(model, calib, o);
  std::vector<std::string> exclude = o.exclude;
  fr.result = st.run(exclude);
  // --refine-act: the clips are refined once, on the fully quantized model; every partial
  // model of the search (and the result) keeps them for the tensors it still quantizes.
  if (o.refine_act) st.refine(fr.result, exclude);
  const quant::RefineResult refine = fr.result.refine;  // kept in the result returned
  const FallbackCriterion crit = search.criterion;
  const double ratio = search.margin_ratio;
  fr.criterion = crit;
  fr.margin_ratio = ratio;
  const auto push_step = [&fr](const Score& s) {
    fr.agreement.push_back(s.agreement());
    fr.logit_sqnr.push_back(s.sqnr);
    fr.kl.push_back(s.kl);
    fr.margin_agreement.push_back(s.strict_agreement());
  };
  Score cur = st.score(fr.result.qdq, /*exact=*/true, ratio);
  fr.samples = cur.count;
  push_step(cur);
  fr.reached = cur.strict_agreement() >= min_agreement;
  if (fr.reached) {
    requantize_if_needed(fr, model, calib, o, exclude, {}, ratio, st.refined());
    fr.result.refine = refine;
    fr.seconds = seconds_since(t0);
    fr.result.total_seconds = fr.seconds;
    return fr;
  }
  Score cur_fast = st.score(fr.result.qdq, /*exact=*/false, ratio);  // trials compare on this scale

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
      const Score sc = st.score(st.run(ex).qdq, /*exact=*/false, ratio);
      ++fr.trials;
      last_gain[key(mv)] = crit == FallbackCriterion::kAgreement
                               ? std::pair<int64_t, double>{sc.agree - cur_fast.agree, sc.sqnr - cur_fast.sqnr}
                               : std::pair<int64_t, double>{0, sc.value(crit) - cur_fast.value(crit)};
      tried.emplace_back(key(mv), sc);
      spdlog::debug("fallback: try {} in float: agreement {:.4f}, logit SQNR {:.2f} dB", key(mv), sc.agreement(), sc.sqnr);
      if (best.empty() || sc.better_than(best_score, crit)) {
        best = mv;
        best_score = sc;
      }
    }
    if (fr.kept_float.empty()) {  // the moves tried at the first step, best first
      std::stable_sort(tried.begin(), tried.end(),
                       [crit](const auto& a, const auto& b) { return a.second.better_than(b.second, crit); });
      for (const auto& t : tried) fr.ranking.push_back(t.first);
    }
    exclude.insert(exclude.end(), best.begin(), best.end());
    fr.result = st.run(exclude);
    const Score exact = st.score(fr.result.qdq, /*exact=*/true, ratio);
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
    push_step(cur);
    if (cur.strict_agreement() >= min_agreement) {
      fr.reached = true;
      break;
    }
  }
  requantize_if_needed(fr, model, calib, o, exclude, split_nodes, ratio, st.refined());
  fr.result.refine = refine;
  fr.seconds = seconds_since(t0);
  fr.result.total_seconds = fr.seconds;  // the whole search, for the CLI's time line
  return fr;
}

}  // namespace repq::report
