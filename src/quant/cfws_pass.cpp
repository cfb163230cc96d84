// CFWS as a graph transform: Conv(kxk) -> Conv(1x1 coarse centre) + Conv(kxk fine residual)
// -> Add. See include/repq/quant/cfws_pass.h and docs/cfws.md.
#include "repq/quant/cfws_pass.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

#include "repq/error.h"
#include "repq/eval/metrics.h"
#include "repq/ir/graph_utils.h"

namespace repq::quant {
namespace {

std::string fmt_db(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// Why a Conv cannot be split ("" when it can).
std::string unsplittable(const Graph& g, const Node& n, bool identity_1x1) {
  if (n.inputs.size() < 2 || n.inputs[1].empty()) return "no weight input";
  const Tensor* w = g.initializer(n.inputs[1]);
  if (!w) return "weight is not a constant initializer";
  if (std::any_of(g.inputs.begin(), g.inputs.end(),
                  [&](const ValueInfo& v) { return v.name == n.inputs[1]; }))
    return "weight is a graph input (can be overridden)";
  if (w->rank() != 4) return "not a 2-D convolution";
  if (w->dtype() != DType::kFloat32) return "weight is " + dtype_name(w->dtype());
  const bool kxk = w->dim(2) == w->dim(3) && w->dim(2) % 2 == 1 && w->dim(2) >= 3;
  const bool pointwise = w->dim(2) == 1 && w->dim(3) == 1;
  if (identity_1x1 && pointwise) {
    if (!identity_split_applicable(*w) || n.attr_int("group", 1) != 1)
      return "1x1 kernel, not square or grouped";
  } else if (!kxk) {
    return std::to_string(w->dim(2)) + "x" + std::to_string(w->dim(3)) + " kernel";
  }
  const std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET") return "auto_pad " + auto_pad;
  const auto dil = n.attr_ints("dilations", {1, 1});
  const auto pads = n.attr_ints("pads", {0, 0, 0, 0});
  if (dil.size() != 2 || pads.size() != 4) return "malformed dilations or pads";
  const int64_t half = w->dim(2) / 2;
  for (size_t a = 0; a < 4; ++a)
    if (pads[a] < dil[a % 2] * half)
      return "pads smaller than dilation*(k-1)/2 (the 1x1 half would need negative pads)";
  return "";
}

double sqnr_of(const Tensor& w, const CfwsWeight& split) {
  const Tensor r = split.reconstructed();
  return sqnr_db(w.data<float>(), r.data<float>(), static_cast<size_t>(w.numel()));
}

// Max over o of |W[o, o]| / max_{i != o} |W[o, i]| of a [c, c, 1, 1] kernel.
double diagonal_ratio(const Tensor& w) {
  const int64_t c = w.dim(0);
  const float* p = w.data<float>();
  double best = 0;
  for (int64_t o = 0; o < c; ++o) {
    double rest = 0;
    for (int64_t i = 0; i < c; ++i)
      if (i != o) rest = std::max(rest, std::fabs(static_cast<double>(p[o * c + i])));
    const double d = std::fabs(static_cast<double>(p[o * c + o]));
    best = std::max(best, rest > 0 ? d / rest : (d > 0 ? std::numeric_limits<double>::infinity() : 0));
  }
  return best;
}

// Replaces node `idx` by the coarse / fine Convs and the Add.
void split_node(Graph& g, size_t idx, const CfwsWeight& split, NameGen& gen) {
  const Node conv = g.nodes[idx];
  const std::string base = conv.name.empty() ? conv.outputs.at(0) : conv.name;
  const Tensor& w = *g.initializer(conv.inputs[1]);
  const int64_t half = w.dim(2) / 2;

  Node coarse;
  coarse.name = gen.make(base + "/cfws_coarse");
  coarse.op_type = "Conv";
  coarse.domain = conv.domain;
  const std::string coarse_w = gen.make(base + "/cfws_coarse.weight");
  g.set_initializer(coarse_w, split.coarse.dequantized());
  coarse.inputs = {conv.inputs[0], coarse_w};
  coarse.outputs = {gen.make(base + "/cfws_coarse_output_0")};
  // The centre tap of a dilated kxk conv at output y reads input y*stride - pad + dil*half:
  // a 1x1 conv (dilation 1) with pad - dil*half reads the same pixel, and the output size
  // (H + pads - dil*(k-1) - 1) / stride + 1 is the same.
  const auto dil = conv.attr_ints("dilations", {1, 1});
  auto pads = conv.attr_ints("pads", {0, 0, 0, 0});
  for (size_t a = 0; a < 4; ++a) pads[a] -= dil[a % 2] * half;
  // The identity split's coarse half is depthwise: one diagonal weight per channel.
  coarse.attributes = {Attribute::make_ints("kernel_shape", {1, 1}),
                       Attribute::make_ints("strides", conv.attr_ints("strides", {1, 1})),
                       Attribute::make_ints("pads", pads),
                       Attribute::make_ints("dilations", {1, 1}),
                       Attribute::make_int("group", split.diagonal ? w.dim(0)
                                                                   : conv.attr_int("group", 1))};

  Node fine = conv;
  fine.name = gen.make(base + "/cfws_fine");
  const std::string fine_w = gen.make(base + "/cfws_fine.weight");
  g.set_initializer(fine_w, split.fine_float);
  fine.inputs[1] = fine_w;
  fine.outputs = {gen.make(base + "/cfws_fine_output_0")};

  Node add;
  add.name = gen.make(base + "/cfws_add");
  add.op_type = "Add";
  add.inputs = {coarse.outputs[0], fine.outputs[0]};
  add.outputs = {conv.outputs.at(0)};

  // Both halves have the original output's type and shape.
  if (const ValueInfo* vi = g.find_value_info(conv.outputs[0])) {
    const ValueInfo type = *vi;  // copied: push_back below may move value_info's elements
    for (const Node* half_node : {&coarse, &fine}) {
      ValueInfo copy = type;
      copy.name = half_node->outputs[0];
      g.value_info.push_back(std::move(copy));
    }
  }
  const auto pos = g.nodes.begin() + static_cast<std::ptrdiff_t>(idx);
  *pos = std::move(coarse);
  g.nodes.insert(g.nodes.begin() + static_cast<std::ptrdiff_t>(idx) + 1,
                 {std::move(fine), std::move(add)});
}

}  // namespace

std::vector<CfwsDecision> apply_cfws(Model& model, WeightMode mode,
                                     const std::vector<std::string>& exclude, bool identity_1x1) {
  std::vector<CfwsDecision> out;
  if (mode != WeightMode::kCfws && mode != WeightMode::kCfwsAuto) return out;
  Graph& g = model.graph;
  const std::set<std::string> excluded(exclude.begin(), exclude.end());
  NameGen gen(g);
  std::set<std::string> old_weights;
  for (size_t idx = 0; idx < g.nodes.size(); ++idx) {
    const Node& n = g.nodes[idx];
    if (n.op_type != "Conv" || !n.domain.empty()) continue;
    CfwsDecision d;
    d.node = n.name.empty() ? n.outputs.at(0) : n.name;
    if (excluded.count(d.node) || excluded.count(n.op_type)) {
      d.reason = "excluded";
      out.push_back(std::move(d));
      continue;
    }
    d.reason = unsplittable(g, n, identity_1x1);
    if (!d.reason.empty()) {
      out.push_back(std::move(d));
      continue;
    }
    const Tensor& w = *g.initializer(n.inputs[1]);
    const bool diagonal = !cfws_applicable(w);  // unsplittable() let only square 1x1 through
    CfwsWeight split;
    try {
      split = diagonal ? identity_split(w) : cfws_split(w);
      const WeightErrors e = weight_errors(w);
      d.sqnr_per_channel_db = e.sqnr_per_channel_db;
      d.sqnr_cfws_db = diagonal ? sqnr_of(w, split) : e.sqnr_cfws_db;
      d.centre_surround = diagonal ? diagonal_ratio(w) : e.centre_surround;
    } catch (const InputError& err) {
      throw InputError(n.describe() + ": " + err.what());
    }
    const std::string change = fmt_db(d.sqnr_per_channel_db) + " -> " + fmt_db(d.sqnr_cfws_db) +
                                (diagonal ? " dB, identity split, diagonal/rest "
                                          : " dB, centre/surround ") +
                                fmt_db(d.centre_surround);
    if (mode == WeightMode::kCfwsAuto &&
        !(d.sqnr_cfws_db >= d.sqnr_per_channel_db + kCfwsAutoMinGainDb)) {
      d.reason = "cfws does not lower the weight error enough (" + change + ", needs +" +
                 fmt_db(kCfwsAutoMinGainDb) + " dB)";
      out.push_back(std::move(d));
      continue;
    }
    d.applied = true;
    d.reason = mode == WeightMode::kCfws ? "--weights cfws (" + change + ")"
                                         : "cfws lowers the weight error (" + change + ")";
    old_weights.insert(n.inputs[1]);
    split_node(g, idx, split, gen);
    idx += 2;  // past the fine Conv and the Add
    out.push_back(std::move(d));
  }
  // Drop the original kernels that nothing uses any more.
  if (!old_weights.empty()) {
    const GraphIndex index(g);
    for (const std::string& w : old_weights)
      if (index.use_count(w) == 0) g.remove_initializer(w);
  }
  return out;
}

}  // namespace repq::quant
