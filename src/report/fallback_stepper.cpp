// fallback_auto's partial-model pipeline and scores (fallback_stepper.h).
#include "fallback_stepper.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "repq/eval/metrics.h"
#include "repq/passes/fuse.h"
#include "repq/quant/refine.h"
#include "repq/report/compute.h"
#include "repq/runtime/executor.h"

namespace repq::report::detail {

namespace {

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

// Inputs kept in memory up to this size (the trials run them many times); beyond, re-read.
constexpr size_t kMaxCachedBytes = size_t{1} << 30;

// Index of the largest value (ties: the lower index) and the largest value elsewhere.
std::pair<size_t, double> top1(const float* v, size_t n) {
  size_t c = 0;
  for (size_t j = 1; j < n; ++j)
    if (v[j] > v[c]) c = j;
  return {c, static_cast<double>(v[c])};
}
double max_except(const float* v, size_t n, size_t c) {
  double m = -INFINITY;
  for (size_t j = 0; j < n; ++j)
    if (j != c) m = std::max(m, static_cast<double>(v[j]));
  return m;
}

}  // namespace

double Score::value(FallbackCriterion c) const {
  switch (c) {
    case FallbackCriterion::kAgreement: return static_cast<double>(agree);
    case FallbackCriterion::kSqnr: return sqnr;
    case FallbackCriterion::kKl: return -kl;
    case FallbackCriterion::kMargin: return margin;
  }
  return 0;
}

bool Score::better_than(const Score& o, FallbackCriterion c) const {
  if (c == FallbackCriterion::kAgreement)
    return agree != o.agree ? agree > o.agree : sqnr > o.sqnr;
  return value(c) > o.value(c);
}

void ScoreSums::add(const Tensor& ref, const Tensor& q) {
  if (ref.dtype() != DType::kFloat32 || q.dtype() != DType::kFloat32 || ref.numel() != q.numel() ||
      ref.shape().empty() || ref.dim(0) <= 0)
    return;
  const auto rows = static_cast<size_t>(ref.dim(0));
  const size_t n = static_cast<size_t>(ref.numel()) / rows;
  if (n == 0) return;
  const float* f = ref.data<float>();
  const float* y = q.data<float>();
  std::vector<double> pf(n), pq(n);
  for (size_t r = 0; r < rows; ++r, f += n, y += n) {
    const auto [c, fc] = top1(f, n);
    const double fm = n > 1 ? fc - max_except(f, n, c) : 0.0;
    const double qm = n > 1 ? static_cast<double>(y[c]) - max_except(y, n, c) : 0.0;
    const bool agree = top1(y, n).first == c;
    ++s_.count;
    s_.agree += agree ? 1 : 0;
    s_.strict += agree && qm >= ratio_ * fm ? 1 : 0;
    margin_sum_ += std::min(qm, fm);
    // KL(softmax f || softmax y), in doubles with the max subtracted.
    const double qmax = static_cast<double>(*std::max_element(y, y + n));
    double zf = 0, zq = 0;
    for (size_t j = 0; j < n; ++j) {
      zf += std::exp(static_cast<double>(f[j]) - fc);
      zq += std::exp(static_cast<double>(y[j]) - qmax);
    }
    double kl = 0;
    for (size_t j = 0; j < n; ++j) {
      const double lf = static_cast<double>(f[j]) - fc - std::log(zf);
      const double lq = static_cast<double>(y[j]) - qmax - std::log(zq);
      kl += std::exp(lf) * (lf - lq);
    }
    if (std::isfinite(kl)) kl_sum_ += std::max(0.0, kl);
    err_.add(f, y, n);
  }
}

Score ScoreSums::score() const {
  Score s = s_;
  if (s.count > 0) {
    s.kl = kl_sum_ / static_cast<double>(s.count);
    s.margin = margin_sum_ / static_cast<double>(s.count);
    s.sqnr = err_.sqnr_db();
    if (!std::isfinite(s.sqnr)) s.sqnr = std::isnan(s.sqnr) ? -1e300 : s.sqnr;
  }
  return s;
}

Stepper::Stepper(const Model& model, const data::Dataset& calib, const quant::QuantizeOptions& o)
    : calib_(calib), o_(o), base_(model) {
  if (o.fuse) fuse_summary_ = fuse_step(base_, o.collect.threads);
}

quant::QuantizeResult Stepper::run(const std::vector<std::string>& exclude) {
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
  if (so.weights == quant::WeightMode::kGptq) {
    // As quantize(): GPTQ rounding with the H of the float model's layer inputs. No exclusion
    // changes the float model (no CFWS split with gptq weights) nor so any H: collected once,
    // for the layers of the first plan (later plans have fewer).
    if (!have_hessians_) {
      hessians_ = quant::collect_hessians(r.fused, r.fused, calib_, r.plan.layers, so.collect);
      have_hessians_ = true;
    }
    // A layer's GPTQ result depends only on its weights, scales and H: rounded once, reused.
    quant::QuantPlan todo = r.plan;
    todo.layers.clear();
    for (const quant::LayerQuant& l : r.plan.layers) {
      const auto c = gptq_done_.find(l.node);
      if (c == gptq_done_.end() || c->second.first != l.scales) todo.layers.push_back(l);
    }
    if (!todo.layers.empty()) {
      quant::apply_gptq(r.fused, todo, hessians_, so.gptq);
      for (size_t i = 0; i < todo.layers.size(); ++i)
        gptq_done_[todo.layers[i].node] = {r.plan.layer(todo.layers[i].node)->scales, todo.layers[i]};
    }
    for (quant::LayerQuant& l : r.plan.layers) {
      const quant::LayerQuant& g = gptq_done_.at(l.node).second;
      if (g.qweight.empty()) continue;  // not rounded by GPTQ (unsupported layer)
      l.scales = g.scales;              // the fields apply_gptq sets
      l.bias_values = g.bias_values;
      l.weight_sqnr_db = g.weight_sqnr_db;
      l.qweight = g.qweight;
      l.note = g.note;
    }
  }
  if (have_refined_) quant::carry_refined_clips(refined_, r.plan);
  r.qdq = quant::export_qdq(r.fused, r.plan);
  return r;
}

void Stepper::refine(quant::QuantizeResult& r, const std::vector<std::string>& exclude) {
  quant::QuantizeOptions so = o_;
  so.exclude = exclude;
  const quant::QuantPoints pts = quant::pipeline_points(r.fused, so);
  const auto seen = quant::pipeline_stats(pts, stats_, so);
  r.refine = quant::refine_activation_clips(r.fused, r.plan, calib_, so, so.refine, &seen);
  r.qdq = quant::export_qdq(r.fused, r.plan);
  refined_ = r.plan;
  have_refined_ = true;
}

Score Stepper::score(const Model& qdq, bool exact, double margin_ratio) {
  ExecutorOptions eo{o_.collect.threads};
  eo.exact_qdq = true;
  if (ref_.empty()) {
    Executor fl(base_, eo);
    for_batches([&](const Tensor& x) {
      ref_.push_back(fl.run({{fl.input_names().at(0), x}}).at(fl.output_names().at(0)));
    });
  }
  Executor qx(exact ? qdq : float_sim_model(qdq), eo);
  ScoreSums sums(margin_ratio);
  size_t b = 0;
  for_batches([&](const Tensor& x) {
    const Tensor& ref = ref_.at(b++);
    sums.add(ref, qx.run({{qx.input_names().at(0), x}}).at(qx.output_names().at(0)));
  });
  return sums.score();
}

template <class F>
void Stepper::for_batches(F&& f) {
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

}  // namespace repq::report::detail
