// find_quant_points: which layers are quantized and which tensors get QuantizeLinear ->
// DequantizeLinear, following ONNX Runtime's QDQ rules so that every quantized Conv runs as
// QLinearConv (docs/quantize.md, "Where the Q/DQ pairs go").
#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "repq/error.h"
#include "repq/ir/graph_utils.h"
#include "repq/quant/quantize.h"

namespace repq::quant {

namespace {

// Ops ONNX Runtime runs on the 8-bit integers unchanged once DequantizeLinear -> op ->
// QuantizeLinear use the same scale and zero point (its "drop QDQ" rules).
bool is_pass_through(const Node& n) {
  static const std::set<std::string, std::less<>> ops = {"MaxPool", "Flatten",   "Reshape",
                                                         "Squeeze", "Unsqueeze", "Transpose"};
  if (!n.domain.empty() || !ops.count(n.op_type) || n.inputs.empty()) return false;
  // MaxPool with its optional Indices output is not a pure data movement.
  return std::count_if(n.outputs.begin(), n.outputs.end(), [](auto& o) { return !o.empty(); }) == 1;
}

// Ops with an integer kernel of their own (QLinearAdd, QLinearMul, QLinearConcat,
// QLinearGlobalAveragePool, QLinearAveragePool): inputs and output each have their own scale.
bool is_own_scale(const Node& n) {
  static const std::set<std::string, std::less<>> ops = {"Add", "Mul", "Concat",
                                                         "GlobalAveragePool", "AveragePool"};
  return n.domain.empty() && ops.count(n.op_type) && n.outputs.size() == 1;
}

// The inputs of an integer-capable op that carry activations (pass-through: input 0 only;
// shape / axes inputs stay as they are).
std::vector<std::string> activation_inputs(const Node& n) {
  if (is_pass_through(n) || n.op_type == "GlobalAveragePool" || n.op_type == "AveragePool")
    return {n.inputs[0]};
  std::vector<std::string> v;
  for (const auto& i : n.inputs)
    if (!i.empty()) v.push_back(i);
  return v;
}

bool scalar_init_equals(const Graph& g, const std::string& name, float want) {
  const Tensor* t = g.initializer(name);
  if (!t || t->numel() != 1) return false;
  return t->to_doubles()[0] == double(want);
}

// Relu, or Clip with min 0 and no upper bound: exactly what a QuantizeLinear with zero point
// at the type's minimum does by itself.
bool is_relu_like(const Graph& g, const Node& n) {
  if (!n.domain.empty() || n.inputs.empty() || n.outputs.size() != 1) return false;
  if (n.op_type == "Relu") return true;
  if (n.op_type != "Clip") return false;
  if (n.inputs.size() >= 2 && !n.inputs[1].empty()) {  // opset >= 11: min, max as inputs
    if (!scalar_init_equals(g, n.inputs[1], 0.0f)) return false;
    return n.inputs.size() < 3 || n.inputs[2].empty();
  }
  if (n.inputs.size() >= 3 && !n.inputs[2].empty()) return false;
  return n.has_attr("min") && n.attr_float("min", -1) == 0.0f &&
         n.attr_float("max", std::numeric_limits<float>::max()) >= std::numeric_limits<float>::max();
}

bool is_float_init(const Graph& g, const std::string& name, size_t rank) {
  const Tensor* t = g.initializer(name);
  return t && t->dtype() == DType::kFloat32 && t->rank() == rank;
}

// A quantizable layer, or the reason it stays float ("" with nullopt: not a layer at all).
std::optional<LayerQuant> as_layer(const Graph& g, const Node& n, std::string& why) {
  why.clear();
  if (!n.domain.empty() || (n.op_type != "Conv" && n.op_type != "Gemm" && n.op_type != "MatMul"))
    return std::nullopt;
  if (n.inputs.size() < 2 || n.outputs.size() != 1 || n.inputs[0].empty() ||
      g.has_initializer(n.inputs[0])) {
    why = "its data input is a constant";
    return std::nullopt;
  }
  LayerQuant l;
  l.node = n.name;
  l.op = n.op_type;
  l.input = n.inputs[0];
  l.weight = n.inputs[1];
  l.bias = n.inputs.size() > 2 ? n.inputs[2] : "";
  l.output = n.outputs[0];
  int64_t channels = 0;
  if (n.op_type == "Conv") {
    const Tensor* w = g.initializer(l.weight);
    if (!w || w->dtype() != DType::kFloat32) {
      why = "the weight is not a constant float32 initializer";
      return std::nullopt;
    }
    if (w->rank() != 4) {
      why = "only 2-D convs are quantized";
      return std::nullopt;
    }
    channels = g.initializer(l.weight)->dim(0);
    l.weight_axis = 0;
  } else {
    if (!is_float_init(g, l.weight, 2)) {
      why = "the weight is not a constant 2-D float32 initializer";
      return std::nullopt;
    }
    const Tensor& w = *g.initializer(l.weight);
    if (n.op_type == "Gemm") {
      if (n.attr_int("transA", 0) != 0) {
        why = "Gemm with transA=1";
        return std::nullopt;
      }
      if (n.attr_float("alpha", 1.0f) != 1.0f) {
        why = "Gemm with alpha != 1";
        return std::nullopt;
      }
      if (!l.bias.empty() && n.attr_float("beta", 1.0f) != 1.0f) {
        why = "Gemm with beta != 1";
        return std::nullopt;
      }
      l.weight_axis = n.attr_int("transB", 0) != 0 ? 0 : 1;
    } else {
      l.weight_axis = 1;  // MatMul weight [K, N]
    }
    channels = w.dim(static_cast<size_t>(l.weight_axis));
  }
  if (!l.bias.empty()) {
    const Tensor* b = g.initializer(l.bias);
    if (!b || b->dtype() != DType::kFloat32 || b->rank() != 1 || b->dim(0) != channels) {
      why = "the bias is not a constant float32 vector of " + std::to_string(channels) + " values";
      return std::nullopt;
    }
  }
  if (n.name.empty()) {
    why = "the node has no name (plans refer to layers by name)";
    return std::nullopt;
  }
  return l;
}

// The number of input channels of a Conv fed directly by a graph input when it has at most
// 4 of them (an RGB or grey stem), else 0. With QuantizeOptions::float_stem (target ort) such a
// conv stays float: ORT's int8 conv with 3 input channels is slow at batch 1 (MobileOne-S0:
// int8 model 5 % faster with a float stem at batch 1, but 6-20 % slower at batch 8-32).
int64_t small_stem_channels(const Graph& g, const Node& n) {
  if (!n.domain.empty() || n.op_type != "Conv" || n.inputs.size() < 2) return 0;
  const bool from_input = std::any_of(g.inputs.begin(), g.inputs.end(), [&](const ValueInfo& v) {
    return v.name == n.inputs[0];
  });
  const Tensor* w = g.initializer(n.inputs[1]);
  if (!from_input || g.has_initializer(n.inputs[0]) || !w || w->rank() != 4) return 0;
  const int64_t channels = w->dim(1) * n.attr_int("group", 1);
  return channels <= 4 ? channels : 0;
}

}  // namespace

std::vector<std::string> QuantPoints::stats_tensors() const {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& p : activations)
    if (seen.insert(p.calibrated_on).second) out.push_back(p.calibrated_on);
  return out;
}

QuantPoints find_quant_points(const Model& fused, const QuantizeOptions& o) {
  const Graph& g = fused.graph;
  const GraphIndex idx(g);
  const std::vector<size_t> order = topo_order(g);

  std::set<std::string, std::less<>> exclude(o.exclude.begin(), o.exclude.end());
  // A Conv split by CFWS (quant/cfws_pass.h) is still excluded by its original name: both
  // halves and their Add.
  auto cfws_original = [](const std::string& name) {
    const size_t k = name.rfind("/cfws_");
    return k == std::string::npos ? std::string() : name.substr(0, k);
  };
  auto by_exclude = [&](const Node& n) {
    return exclude.count(n.name) || exclude.count(n.op_type) || exclude.count(cfws_original(n.name));
  };
  const bool float_stem = o.target == Target::kOrt && o.float_stem;
  auto excluded = [&](const Node& n) {
    return by_exclude(n) || (float_stem && small_stem_channels(g, n) > 0);
  };
  for (const auto& e : o.exclude) {
    const bool hit = std::any_of(g.nodes.begin(), g.nodes.end(), [&](const Node& n) {
      return n.name == e || n.op_type == e || cfws_original(n.name) == e;
    });
    if (!hit) throw InputError("--exclude: '" + e + "' is neither a node name nor an op type of the model");
  }

  QuantPoints out;
  std::map<std::string, QuantPoint> pts;
  auto add = [&](const std::string& t, bool non_negative, const std::string& shared) {
    QuantPoint& p = pts[t];
    p.tensor = p.calibrated_on = t;
    p.non_negative = p.non_negative || non_negative;
    if (!shared.empty() && shared != t) p.shared_with = shared;
  };
  auto root = [&](const std::string& t) {
    const auto& p = pts.at(t);
    return p.shared_with.empty() ? t : p.shared_with;
  };

  // The only consumer of `v`, when it is a Relu-like node we may absorb.
  std::set<size_t> absorbed;  // Relu nodes whose output became the quantized tensor
  auto sole_relu = [&](const std::string& v) -> std::optional<size_t> {
    if (idx.graph_outputs.count(v)) return std::nullopt;
    const auto it = idx.consumers.find(v);
    if (it == idx.consumers.end() || it->second.size() != 1) return std::nullopt;
    const Node& c = g.nodes[it->second[0]];
    if (!is_relu_like(g, c) || excluded(c) || c.inputs[0] != v) return std::nullopt;
    return it->second[0];
  };
  // Whether some consumer of `v` can take it quantized (a layer, an integer-capable op, a Relu).
  auto wanted_quantized = [&](const std::string& v) {
    const auto it = idx.consumers.find(v);
    if (it == idx.consumers.end()) return false;
    for (size_t c : it->second) {
      const Node& n = g.nodes[c];
      std::string why;
      if (excluded(n)) continue;
      if (as_layer(g, n, why) || is_pass_through(n) || is_own_scale(n) || is_relu_like(g, n))
        return true;
    }
    return false;
  };
  // Quantizes the output of node `n` (a layer or an own-scale op), absorbing a sole Relu.
  auto quantize_output = [&](const Node& n) -> std::pair<std::string, std::optional<size_t>> {
    const std::string& v = n.outputs[0];
    if (const auto r = sole_relu(v)) {
      absorbed.insert(*r);
      add(g.nodes[*r].outputs[0], true, "");
      return {g.nodes[*r].outputs[0], r};
    }
    add(v, false, "");
    return {v, std::nullopt};
  };

  // 1. Layers: their input and their (Relu-absorbing) output.
  std::set<size_t> layer_nodes;
  for (size_t i : order) {
    const Node& n = g.nodes[i];
    std::string why;
    auto layer = as_layer(g, n, why);
    if (by_exclude(n)) {
      if (layer || !why.empty() || is_pass_through(n) || is_own_scale(n) || is_relu_like(g, n))
        out.float_nodes.push_back({n.name, n.op_type, "--exclude"});
      continue;
    }
    if (excluded(n)) {  // the reason must not say "exclude": plans re-split CFWS by that word
      if (layer)
        out.float_nodes.push_back(
            {n.name, n.op_type,
             "stem conv with " + std::to_string(small_stem_channels(g, n)) +
                 " input channels kept float (--float-stem)"});
      continue;
    }
    if (!layer) {
      if (!why.empty()) out.float_nodes.push_back({n.name, n.op_type, why});
      continue;
    }
    layer_nodes.insert(i);
    add(layer->input, false, "");
    const bool float_output =
        layer->op != "Conv" && (idx.graph_outputs.count(layer->output) || !wanted_quantized(layer->output));
    if (!float_output) {
      const auto [q, relu] = quantize_output(n);
      layer->output = q;
      if (relu && o.target == Target::kOrt) {
        layer->relu_fused = true;
        layer->relu_node = g.nodes[*relu].name;
      }
    }
    out.layers.push_back(std::move(*layer));
  }

  // 2. Integer-capable ops whose activation inputs are all quantized, in graph order.
  for (size_t i : order) {
    const Node& n = g.nodes[i];
    if (layer_nodes.count(i) || absorbed.count(i) || excluded(n) || n.outputs.empty()) continue;
    const bool relu = is_relu_like(g, n);
    if (!relu && !is_pass_through(n) && !is_own_scale(n)) continue;
    const auto ins = relu ? std::vector<std::string>{n.inputs[0]} : activation_inputs(n);
    const bool all_quantized = !ins.empty() && std::all_of(ins.begin(), ins.end(), [&](auto& t) {
      return pts.count(t) && !g.has_initializer(t);
    });
    const std::string& v = n.outputs[0];
    if (!all_quantized || idx.graph_outputs.count(v)) continue;
    if (!pts.count(v) && !wanted_quantized(v)) continue;
    if (relu)
      add(v, true, "");
    else if (is_pass_through(n))
      add(v, pts.at(ins[0]).non_negative, root(ins[0]));
    else
      quantize_output(n);
  }

  // Graph order: graph inputs first, then by producing node.
  std::map<std::string, size_t> rank;
  size_t r = 0;
  for (const auto& in : g.inputs) rank.emplace(in.name, r++);
  for (size_t i : order)
    for (const auto& v : g.nodes[i].outputs) rank.emplace(v, r++);
  for (auto& [t, p] : pts) out.activations.push_back(p);
  std::stable_sort(out.activations.begin(), out.activations.end(),
                   [&](const QuantPoint& a, const QuantPoint& b) { return rank[a.tensor] < rank[b.tensor]; });
  return out;
}

}  // namespace repq::quant
