// Report building blocks that need no data: the blocks of the unfused model (identity-BN
// factors), the rows of the fused model (CFWS halves grouped), the weight columns, fake-quant
// helpers and SQNR / cosine accumulation.
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "repq/error.h"
#include "repq/eval/metrics.h"
#include "repq/ir/graph_utils.h"
#include "repq/passes/fuse.h"
#include "repq/report/compute.h"

namespace repq::report {

namespace {

std::string label(const Node& n) {
  return n.name.empty() ? (n.outputs.empty() ? "" : n.outputs[0]) : n.name;
}

// The constant value of `name`: an initializer, a Constant node's value, or either through
// Identity nodes (PRESERVE exports forward shared BN parameters with Identity).
const Tensor* constant_value(const Graph& g, const GraphIndex& idx, const std::string& name,
                             int depth = 0) {
  if (const Tensor* t = g.initializer(name)) return t;
  const auto p = idx.producer.find(name);
  if (p == idx.producer.end() || depth > 8) return nullptr;
  const Node& n = g.nodes[p->second];
  if (n.op_type == "Constant") {
    const Attribute* a = n.attr("value");
    return a && a->kind == Attribute::Kind::kTensor ? &a->t : nullptr;
  }
  if (n.op_type == "Identity" && !n.inputs.empty())
    return constant_value(g, idx, n.inputs[0], depth + 1);
  return nullptr;
}

// max |gamma / sqrt(var + eps)| of a BatchNormalization; NaN when its parameters are not
// constants.
double bn_factor(const Graph& g, const GraphIndex& idx, const Node& bn) {
  if (bn.inputs.size() < 5) return kNaN;
  const Tensor* gamma = constant_value(g, idx, bn.inputs[1]);
  const Tensor* var = constant_value(g, idx, bn.inputs[4]);
  if (!gamma || !var || gamma->numel() != var->numel()) return kNaN;
  const std::vector<double> gs = gamma->to_doubles(), vs = var->to_doubles();
  const double eps = bn.attr_float("epsilon", 1e-5f);
  double best = kNaN;
  for (size_t c = 0; c < gs.size(); ++c) {
    const double t = std::fabs(gs[c] / std::sqrt(vs[c] + eps));
    if (std::isnan(best) || t > best) best = t;
  }
  return best;
}

double nan_max(double a, double b) { return std::isnan(a) ? b : (std::isnan(b) ? a : std::max(a, b)); }

const Node* find_node(const Graph& g, const std::string& name, size_t* index = nullptr) {
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (g.nodes[i].name == name) {
      if (index) *index = i;
      return &g.nodes[i];
    }
  return nullptr;
}

// The output-channel axis `axis` of a tensor as (outer, channels, inner) extents.
void axis_extents(const Shape& s, int axis, int64_t& outer, int64_t& ch, int64_t& inner) {
  outer = 1, inner = 1, ch = s.empty() ? 1 : s.at(static_cast<size_t>(axis));
  for (int d = 0; d < static_cast<int>(s.size()); ++d) {
    if (d < axis) outer *= s[static_cast<size_t>(d)];
    if (d > axis) inner *= s[static_cast<size_t>(d)];
  }
}

// max over channels of max|W| divided by the median over channels.
double channel_outlier(const Tensor& w, int axis) {
  if (w.rank() < 2) return kNaN;
  int64_t outer = 1, ch = 1, inner = 1;
  axis_extents(w.shape(), axis, outer, ch, inner);
  std::vector<double> m(static_cast<size_t>(ch), 0.0);
  const float* p = w.data<float>();
  for (int64_t a = 0; a < outer; ++a)
    for (int64_t c = 0; c < ch; ++c)
      for (int64_t i = 0; i < inner; ++i)
        m[static_cast<size_t>(c)] = std::max(m[static_cast<size_t>(c)],
                                             static_cast<double>(std::fabs(p[(a * ch + c) * inner + i])));
  const double mx = *std::max_element(m.begin(), m.end());
  std::sort(m.begin(), m.end());
  const size_t h = m.size() / 2;
  const double med = m.size() % 2 ? m[h] : 0.5 * (m[h - 1] + m[h]);  // as numpy.median
  return med > 0 ? mx / med : (mx > 0 ? INFINITY : 1.0);
}

}  // namespace

std::map<std::string, BlockInfo> block_infos(const Model& original) {
  std::map<std::string, BlockInfo> out;
  const Graph& g = original.graph;
  const FuseReport rep = find_foldable_blocks(original);
  if (rep.folds.empty()) return out;
  const GraphIndex idx(g);
  std::map<std::string, size_t> by_label;
  for (size_t i = 0; i < g.nodes.size(); ++i) by_label.emplace(label(g.nodes[i]), i);
  for (const FoldRecord& f : rep.folds) {
    BlockInfo b;
    b.kind = f.kind;
    b.input = f.input;
    b.output = f.output;
    for (const std::string& l : f.nodes) {
      const auto it = by_label.find(l);
      if (it == by_label.end()) continue;
      const Node& n = g.nodes[it->second];
      if (n.op_type != "BatchNormalization") continue;
      const double t = bn_factor(g, idx, n);
      b.any_bn_factor = nan_max(b.any_bn_factor, t);
      if (!n.inputs.empty() && n.inputs[0] == f.input)
        b.identity_bn_factor = nan_max(b.identity_bn_factor, t);
    }
    out[f.conv_name] = b;
  }
  return out;
}

std::vector<RowSpec> row_specs(const Model& fused, const quant::QuantPlan& plan) {
  const Graph& g = fused.graph;
  const GraphIndex idx(g);
  std::vector<RowSpec> rows;
  std::map<std::string, size_t> cfws_row;
  for (const quant::LayerQuant& l : plan.layers) {
    if (!l.cfws_of.empty()) {
      const auto it = cfws_row.find(l.cfws_of);
      if (it != cfws_row.end()) {
        rows[it->second].parts.push_back(&l);
        continue;
      }
      cfws_row[l.cfws_of] = rows.size();
    }
    RowSpec r;
    r.name = l.cfws_of.empty() ? l.node : l.cfws_of;
    r.parts.push_back(&l);
    r.input = l.input;
    rows.push_back(std::move(r));
  }
  for (RowSpec& r : rows) {
    std::stable_sort(r.parts.begin(), r.parts.end(), [](const auto* a, const auto* b) {
      return a->encoding == "cfws-coarse" && b->encoding != "cfws-coarse";
    });
    std::set<size_t> nodes;
    for (const auto* l : r.parts) {
      size_t i = 0;
      if (!find_node(g, l->node, &i))
        throw InputError("plan: layer '" + l->node + "' is not a node of the model");
      nodes.insert(i);
    }
    const quant::LayerQuant& first = *r.parts.front();
    if (r.parts.size() == 1 && first.cfws_of.empty()) {
      r.output = first.output;
      const Node& conv = g.nodes[*nodes.begin()];
      // The Relu absorbed into the output QuantizeLinear runs with the layer.
      if (!conv.outputs.empty() && conv.outputs[0] != first.output) {
        const auto p = idx.producer.find(first.output);
        if (p != idx.producer.end() && g.nodes[p->second].op_type == "Relu") nodes.insert(p->second);
      }
    } else {
      // CFWS: the Add reading every half's output, then a Relu when it is the only consumer.
      std::vector<std::string> outs;
      for (size_t i : nodes) outs.push_back(g.nodes[i].outputs.at(0));
      std::string add_out;
      const auto cs = idx.consumers.find(outs.front());
      if (cs != idx.consumers.end())
        for (size_t c : cs->second) {
          const Node& n = g.nodes[c];
          if (n.op_type != "Add") continue;
          bool all = true;
          for (const auto& o : outs)
            all = all && std::find(n.inputs.begin(), n.inputs.end(), o) != n.inputs.end();
          if (all) {
            nodes.insert(c);
            add_out = n.outputs.at(0);
            break;
          }
        }
      if (add_out.empty())
        throw InputError("plan: the CFWS halves of '" + r.name + "' do not meet in an Add");
      r.output = add_out;
      const auto rc = idx.consumers.find(add_out);
      if (rc != idx.consumers.end() && rc->second.size() == 1 && !idx.graph_outputs.count(add_out) &&
          g.nodes[rc->second[0]].op_type == "Relu") {
        nodes.insert(rc->second[0]);
        r.output = g.nodes[rc->second[0]].outputs.at(0);
      }
    }
    r.nodes.assign(nodes.begin(), nodes.end());
  }
  return rows;
}

void fill_weight_columns(const Model& fused, const RowSpec& spec, LayerRow& row) {
  const Graph& g = fused.graph;
  const quant::LayerQuant& first = *spec.parts.front();
  const Node* node = find_node(g, first.node);
  const Tensor* w0 = g.initializer(first.weight);
  if (!node || !w0) throw InputError("plan: layer '" + first.node + "' has no weight initializer");
  row.name = spec.name;
  row.op = node->op_type;
  row.act_tensor = spec.input;
  Tensor w = w0->cast(DType::kFloat32);
  if (spec.parts.size() > 1 || !first.cfws_of.empty()) {
    // CFWS: the original kernel = fine (kxk) + coarse (1x1) added at the centre.
    const quant::LayerQuant* coarse = nullptr;
    const quant::LayerQuant* fine = nullptr;
    for (const auto* l : spec.parts) (l->encoding == "cfws-coarse" ? coarse : fine) = l;
    if (fine) {
      w = g.initializer(fine->weight)->cast(DType::kFloat32);
      node = find_node(g, fine->node);
    }
    if (coarse && fine && w.rank() == 4) {
      const Tensor c = g.initializer(coarse->weight)->cast(DType::kFloat32);
      const int64_t o = w.dim(0), i = w.dim(1), kh = w.dim(2), kw = w.dim(3);
      if (c.numel() == o * i) {
        float* p = w.mutable_data<float>();
        const float* q = c.data<float>();
        for (int64_t k = 0; k < o * i; ++k) p[k * kh * kw + (kh / 2) * kw + kw / 2] += q[k];
      }
    }
    row.encoding = "cfws";
  } else {
    row.encoding = first.encoding;
  }
  const int axis = spec.parts.size() > 1 ? 0 : first.weight_axis;
  if (row.op == "Conv" && w.rank() >= 3) {
    row.kernel.assign(w.shape().begin() + 2, w.shape().end());
    row.strides = node->attr_ints("strides", std::vector<int64_t>(w.rank() - 2, 1));
    row.groups = node->attr_int("group", 1);
    row.out_channels = w.dim(0);
    row.in_channels = w.dim(1) * row.groups;
  } else if (w.rank() >= 2) {
    row.out_channels = w.dim(static_cast<size_t>(axis));
    row.in_channels = w.dim(axis == 0 ? 1 : 0);
  }
  const quant::WeightErrors e = quant::weight_errors(w);
  row.weight_min = e.min;
  row.weight_max = e.max;
  row.centre_surround = e.centre_surround;
  row.w_sqnr_per_tensor = e.sqnr_per_tensor_db;
  row.w_sqnr_per_channel = e.sqnr_per_channel_db;
  row.w_sqnr_cfws = e.sqnr_cfws_db;
  row.channel_outlier = channel_outlier(w, axis);
}

float fake_quant(float x, const quant::ActivationQuant& a) {
  const bool u8 = a.dtype == DType::kUInt8;
  const float lo = u8 ? 0.0f : -128.0f, hi = u8 ? 255.0f : 127.0f;
  float q = std::nearbyint(x / a.scale) + static_cast<float>(a.zero_point);
  q = std::min(hi, std::max(lo, q));
  return (q - static_cast<float>(a.zero_point)) * a.scale;
}

Tensor fake_quant_weight(const Tensor& w, const std::vector<float>& scales, int axis) {
  Tensor out = w.cast(DType::kFloat32);
  if (scales.empty()) return out;
  int64_t outer = 1, ch = 1, inner = out.numel();
  if (scales.size() > 1) {
    axis_extents(out.shape(), axis, outer, ch, inner);
    if (ch != static_cast<int64_t>(scales.size()))
      throw InputError("plan: " + std::to_string(scales.size()) + " weight scales for a weight of shape " +
                       shape_str(w.shape()));
  }
  float* p = out.mutable_data<float>();
  for (int64_t a = 0; a < outer; ++a)
    for (int64_t c = 0; c < ch; ++c) {
      const float s = scales[static_cast<size_t>(c)];
      float* q = p + (a * ch + c) * inner;
      for (int64_t i = 0; i < inner; ++i)
        q[i] = std::min(127.0f, std::max(-127.0f, std::nearbyint(q[i] / s))) * s;
    }
  return out;
}

void ErrorSums::add(const float* ref, const float* approx, size_t n) {
  // Vectorized float sums (Eigen packets) over short blocks that stay in L1, added to the
  // double totals after each block.
  constexpr size_t kBlock = 4096;
  for (size_t i = 0; i < n; i += kBlock) {
    const auto m = static_cast<Eigen::Index>(std::min(kBlock, n - i));
    const Eigen::Map<const Eigen::ArrayXf> a(ref + i, m), b(approx + i, m);
    ref2 += a.square().sum();
    approx2 += b.square().sum();
    err2 += (a - b).square().sum();
    dot += (a * b).sum();
  }
  count += n;
}

double ErrorSums::sqnr_db() const {
  if (count == 0) return kNaN;
  if (err2 == 0) return kMaxSqnrDb;
  if (ref2 == 0) return -kMaxSqnrDb;
  return std::min(kMaxSqnrDb, 10.0 * std::log10(ref2 / err2));
}

double ErrorSums::cosine() const {
  if (count == 0) return kNaN;
  if (ref2 == 0 && approx2 == 0) return 1.0;
  if (ref2 == 0 || approx2 == 0) return 0.0;
  return dot / std::sqrt(ref2 * approx2);
}

}  // namespace repq::report
