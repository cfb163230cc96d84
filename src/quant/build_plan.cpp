// build_plan: quant points + calibration statistics + options -> QuantPlan (docs/plan.md has
// every formula used here).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "repq/calib/calibrators.h"
#include "repq/error.h"
#include "repq/eval/metrics.h"
#include "repq/quant/quantize.h"
#include "repq/quant/refine.h"

namespace repq::quant {

namespace {

// Scale of a tensor that was all zeros during calibration (threshold 0), or whose range is so
// small that its scale would fall below FLT_MIN: 2^-8, as if its range were [0, 1) in uint8
// (or [-0.5, 0.5) in int8). Zero stays exact; the int32 bias b / (s_in * s_w) stays in range.
constexpr float kZeroRangeScale = 0.00390625f;

// Fraction of the histogram's values with |x| > c; the bin holding c counts in proportion to
// the part of it above c (values taken as spread evenly within a bin).
double fraction_above(const calib::AbsHistogram& h, double c) {
  const uint64_t total = h.total();
  const double w = h.bin_width();
  if (total == 0 || h.counts.empty() || !(w > 0) || !(c < h.amax)) return 0;
  if (c < 0) c = 0;
  const size_t b = std::min(static_cast<size_t>(c / w), h.counts.size() - 1);
  double above = static_cast<double>(h.counts[b]) * std::clamp((h.edge(b) - c) / w, 0.0, 1.0);
  for (size_t k = b + 1; k < h.counts.size(); ++k) above += static_cast<double>(h.counts[k]);
  return above / static_cast<double>(total);
}

struct Range {
  double lo = 0, hi = 0, threshold = 0;
  bool non_negative = false;
};

// Scale / zero point / dtype of a clip range, per target.
void set_params(ActivationQuant& a, const Range& r, Target target) {
  double scale = 0;
  a.zero_point = 0;
  if (target == Target::kTensorRT) {
    a.dtype = DType::kInt8;
    scale = r.threshold / 127.0;
  } else {
    a.dtype = DType::kUInt8;
    scale = r.non_negative ? r.hi / 255.0 : (r.hi - r.lo) / 255.0;
  }
  a.scale = static_cast<float>(scale);
  if (!(a.scale >= FLT_MIN)) {
    a.scale = kZeroRangeScale;
    return;
  }
  if (target == Target::kOrt && !r.non_negative) {
    const double zp = std::nearbyint(-r.lo / static_cast<double>(a.scale));  // half to even
    a.zero_point = static_cast<int32_t>(std::clamp(zp, 0.0, 255.0));
  }
}

size_t find_root(std::vector<size_t>& parent, size_t i) {
  while (parent[i] != i) i = parent[i] = parent[parent[i]];
  return i;
}

void plan_activations(QuantPlan& plan, const QuantPoints& points,
                      const std::map<std::string, calib::TensorStats>& stats,
                      const QuantizeOptions& o) {
  const size_t n = points.activations.size();
  std::vector<Range> ranges(n);
  std::vector<const calib::TensorStats*> st(n);
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < n; ++i) {
    const QuantPoint& p = points.activations[i];
    index[p.tensor] = i;
    auto it = stats.find(p.calibrated_on);
    if (it == stats.end())
      throw InternalError("build_plan: no statistics for '" + p.calibrated_on + "'");
    const calib::TensorStats& s = it->second;
    st[i] = &s;
    const int levels = o.target == Target::kOrt && p.non_negative ? 255 : 127;
    const double t = calib::choose_threshold(s, o.act, {o.percentile, levels, o.collect.threads});
    if (!std::isfinite(t) || !std::isfinite(s.min) || !std::isfinite(s.max))
      throw InputError(p.calibrated_on + ": calibration values are not finite (range " +
                       std::to_string(s.min) + " .. " + std::to_string(s.max) +
                       "); cannot choose a scale");
    Range& r = ranges[i];
    r.threshold = t;
    r.non_negative = o.target == Target::kOrt && p.non_negative;
    if (o.target == Target::kTensorRT) {
      r.lo = -t;
      r.hi = t;
    } else if (r.non_negative) {
      r.lo = 0;
      r.hi = t;
    } else {  // clip to [-T, T] where the data reaches beyond, then include 0
      r.lo = std::min(std::max(s.min, -t), 0.0);
      r.hi = std::max(std::min(s.max, t), 0.0);
    }
    ActivationQuant a;
    a.tensor = p.tensor;
    a.calibrated_on = p.calibrated_on;
    a.method = calib::method_name(o.act);
    a.min = s.min;
    a.max = s.max;
    a.threshold = t;
    a.non_negative = p.non_negative;
    a.shared_with = p.shared_with;
    plan.activations.push_back(std::move(a));
  }
  // Shared scales (Concat inputs, ...): one group per connected set, the union of the ranges.
  std::vector<size_t> parent(n);
  std::iota(parent.begin(), parent.end(), size_t{0});
  for (size_t i = 0; i < n; ++i) {
    const std::string& other = plan.activations[i].shared_with;
    if (other.empty()) continue;
    auto it = index.find(other);
    if (it == index.end())
      throw InternalError("build_plan: '" + plan.activations[i].tensor + "' shares its scale with '" +
                          other + "', which is not a quant point");
    parent[find_root(parent, i)] = find_root(parent, it->second);
  }
  std::map<size_t, Range> groups;
  for (size_t i = 0; i < n; ++i) {
    const size_t g = find_root(parent, i);
    auto [it, fresh] = groups.emplace(g, ranges[i]);
    if (fresh) continue;
    Range& u = it->second;
    u.lo = std::min(u.lo, ranges[i].lo);
    u.hi = std::max(u.hi, ranges[i].hi);
    u.threshold = std::max(u.threshold, ranges[i].threshold);
    u.non_negative = u.non_negative && ranges[i].non_negative;
  }
  for (size_t i = 0; i < n; ++i) {
    ActivationQuant& a = plan.activations[i];
    const Range& r = groups.at(find_root(parent, i));
    set_params(a, r, o.target);
    a.non_negative = r.non_negative;
    a.clipped = clipped_fraction(*st[i], a);
  }
}

// [M..., N] -> [N, prod(M)]: the last axis first, so that quantize_weight's axis 0 is it.
Tensor last_axis_first(const Tensor& w) {
  const int64_t cols = w.shape().back(), rows = cols ? w.numel() / cols : 0;
  Tensor t(DType::kFloat32, {cols, rows});
  const float* src = w.data<float>();
  float* dst = t.mutable_data<float>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * cols + c];
  return t;
}

const Node* find_node(const Graph& g, const std::string& name) {
  for (const Node& n : g.nodes)
    if (n.name == name) return &n;
  return nullptr;
}

double sqnr(const Tensor& ref, const Tensor& approx) {
  return sqnr_db(ref.data<float>(), approx.data<float>(), static_cast<size_t>(ref.numel()));
}

// Float weight and its dequantized form, as laid out for quantization (axis 0 = channels).
struct WeightPair {
  Tensor w, dq;
};

void plan_layer(LayerQuant& l, const Model& fused, const QuantizeOptions& o,
                std::map<std::string, WeightPair>& pairs) {
  const Tensor* w0 = fused.graph.initializer(l.weight);
  if (!w0)
    throw InputError("node '" + l.node + "': weight '" + l.weight + "' is not an initializer");
  Tensor w = w0->dtype() == DType::kFloat32 ? *w0 : w0->cast(DType::kFloat32);
  static const std::string kCoarse = "/cfws_coarse", kFine = "/cfws_fine";
  bool per_channel = o.weights != WeightMode::kPerTensor;
  if (l.node.ends_with(kCoarse) || l.node.ends_with(kFine)) {
    const bool coarse = l.node.ends_with(kCoarse);
    l.encoding = coarse ? "cfws-coarse" : "cfws-fine";
    l.cfws_of = l.node.substr(0, l.node.size() - (coarse ? kCoarse : kFine).size());
    per_channel = true;
  }
  int axis = 0;
  if (l.op == "Gemm") {
    const Node* n = find_node(fused.graph, l.node);
    axis = n && n->attr_int("transB", 0) != 0 ? 0 : 1;
  } else if (l.op == "MatMul") {
    axis = static_cast<int>(w.rank()) - 1;
  }
  if (w.rank() < 2) {  // a vector weight has no output channels
    axis = 0;
    per_channel = false;
  }
  l.weight_axis = axis;
  if (axis != 0) w = last_axis_first(w);
  QuantizedWeight q = quantize_weight(w, per_channel);
  l.scales = q.scales;
  if (l.encoding.empty()) l.encoding = per_channel ? "per-channel" : "per-tensor";
  Tensor dq = q.dequantized();
  l.weight_sqnr_db = sqnr(w, dq);
  pairs[l.node] = {std::move(w), std::move(dq)};
}

// Both halves of a CFWS split get the SQNR of the whole kernel: (coarse centred + fine) against
// the same sum of the dequantized halves; comparable with the per-channel SQNR of a plain Conv.
void cfws_kernel_sqnr(std::vector<LayerQuant>& layers, const std::map<std::string, WeightPair>& pairs) {
  for (LayerQuant& l : layers) {
    if (l.encoding != "cfws-coarse" && l.encoding != "cfws-fine") continue;
    auto c = pairs.find(l.cfws_of + "/cfws_coarse"), f = pairs.find(l.cfws_of + "/cfws_fine");
    if (c == pairs.end() || f == pairs.end()) continue;
    const Shape& cs = c->second.w.shape();
    const Shape& fs = f->second.w.shape();
    if (cs.size() != 4 || fs.size() != 4 || cs[0] != fs[0] || cs[1] != fs[1] || cs[2] != 1 ||
        cs[3] != 1 || fs[2] != fs[3] || fs[2] % 2 == 0)
      continue;
    Tensor w = f->second.w, dq = f->second.dq;
    float* wp = w.mutable_data<float>();
    float* dp = dq.mutable_data<float>();
    const int64_t k = fs[2], centre = (k / 2) * k + k / 2;
    const float* cw = c->second.w.data<float>();
    const float* cd = c->second.dq.data<float>();
    for (int64_t oi = 0; oi < cs[0] * cs[1]; ++oi) {
      wp[oi * k * k + centre] += cw[oi];
      dp[oi * k * k + centre] += cd[oi];
    }
    l.weight_sqnr_db = sqnr(w, dq);
    l.note = std::string(l.encoding == "cfws-coarse" ? "CFWS coarse centre taps" : "CFWS fine residual") +
             " of '" + l.cfws_of + "'; weight SQNR of the whole split kernel";
  }
}

}  // namespace

// refine.h; also used by the clip refinement for the clips it changes.
double clipped_fraction(const calib::TensorStats& s, const ActivationQuant& a) {
  const bool u8 = a.dtype == DType::kUInt8;
  const double qmin = u8 ? 0 : -128, qmax = u8 ? 255 : 127, sc = a.scale;
  const double lo_r = (qmin - a.zero_point - 0.5) * sc, hi_r = (qmax - a.zero_point + 0.5) * sc;
  const bool pos = s.max > hi_r;
  // A non-negative tensor (Relu output) maps negatives to 0 by design: not counted.
  const bool neg = !a.non_negative && s.min < lo_r;
  if (!pos && !neg) return 0;
  // |x| histogram: a cut on one side is exact for the tensor's own range (the other side's
  // values are then all smaller); with both sides cut the smaller cut is used (an upper bound).
  const double cut = pos && neg ? std::min(hi_r, -lo_r) : (pos ? hi_r : -lo_r);
  return fraction_above(s.hist, cut);
}

QuantPlan build_plan(const Model& fused, const QuantPoints& points,
                     const std::map<std::string, calib::TensorStats>& stats,
                     const QuantizeOptions& o) {
  QuantPlan plan;
  plan.model_digest = model_digest(fused);
  plan.target = o.target;
  plan.act_method = calib::method_name(o.act);
  plan.weight_mode = weight_mode_name(o.weights);
  plan.percentile = o.percentile;
  plan_activations(plan, points, stats, o);
  std::map<std::string, WeightPair> pairs;
  for (LayerQuant l : points.layers) {
    plan_layer(l, fused, o, pairs);
    plan.layers.push_back(std::move(l));
  }
  cfws_kernel_sqnr(plan.layers, pairs);
  plan.float_nodes = points.float_nodes;
  return plan;
}

}  // namespace repq::quant
