// float_sim_model: the QDQ model as float arithmetic that the executor runs at about the float
// model's speed (see compute.h). Activation QuantizeLinear -> DequantizeLinear pairs become one
// FakeQuantizeLinear node (runtime/fake_quant.cpp, a repq-internal op), which computes the
// pair's value exactly in one pass: clamp(round_half_even(x / s), qmin - z, qmax - z) * s
// equals (clamp(round_half_even(x / s) + z, qmin, qmax) - z) * s for integer bounds.
// DequantizeLinear of constants (weights, int32 biases) become float constants.
#include <cmath>
#include <map>
#include <set>

#include "repq/report/compute.h"

namespace repq::report {

namespace {

// Per-tensor parameters of a Q or DQ node, when its scale (and zero point) are scalar constants.
struct QParams {
  float scale = 0;
  int64_t zero_point = 0;
  bool is_uint8 = true;
};
bool per_tensor_params(const Graph& g, const Node& n, QParams& p) {
  if (n.inputs.size() < 2) return false;
  const Tensor* s = g.initializer(n.inputs[1]);
  if (!s || s->numel() != 1 || s->dtype() != DType::kFloat32) return false;
  p.scale = s->data<float>()[0];
  if (!(p.scale > 0) || !std::isfinite(p.scale)) return false;
  if (n.inputs.size() < 3 || n.inputs[2].empty()) return true;  // uint8, zero point 0
  const Tensor* z = g.initializer(n.inputs[2]);
  if (!z || z->numel() != 1) return false;
  if (z->dtype() == DType::kUInt8) {
    p.zero_point = z->data<uint8_t>()[0];
  } else if (z->dtype() == DType::kInt8) {
    p.zero_point = z->data<int8_t>()[0];
    p.is_uint8 = false;
  } else {
    return false;
  }
  return true;
}

// DequantizeLinear of a constant: float(q - z) * s per index of `axis` (as the kernel does).
template <class Q>
bool dequant_const(const Tensor& q, const Tensor& s, const Tensor* z, int64_t axis, Tensor& out) {
  if (z && z->dtype() != q.dtype()) return false;
  int64_t channels = 1, inner = 1;
  if (s.numel() != 1) {
    const auto rank = static_cast<int64_t>(q.rank());
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank || q.dim(static_cast<size_t>(axis)) != s.numel()) return false;
    channels = q.dim(static_cast<size_t>(axis));
    for (int64_t d = axis + 1; d < rank; ++d) inner *= q.dim(static_cast<size_t>(d));
  }
  if (z && z->numel() != s.numel()) return false;
  out = Tensor(DType::kFloat32, q.shape());
  const Q* qd = q.data<Q>();
  const float* sd = s.data<float>();
  const Q* zd = z ? z->data<Q>() : nullptr;
  float* y = out.mutable_data<float>();
  for (int64_t i = 0; i < q.numel(); ++i) {
    const int64_t c = channels == 1 ? 0 : (i / inner) % channels;
    y[i] = static_cast<float>(static_cast<int64_t>(qd[i]) - (zd ? static_cast<int64_t>(zd[c]) : 0)) * sd[c];
  }
  return true;
}

bool fold_constant_dq(const Graph& g, const Node& n, Tensor& out) {
  if (n.inputs.size() < 2 || n.outputs.size() != 1) return false;
  const Tensor* q = g.initializer(n.inputs[0]);
  const Tensor* s = g.initializer(n.inputs[1]);
  const Tensor* z = n.inputs.size() >= 3 && !n.inputs[2].empty() ? g.initializer(n.inputs[2]) : nullptr;
  if (!q || !s || s->dtype() != DType::kFloat32) return false;
  if (n.inputs.size() >= 3 && !n.inputs[2].empty() && !z) return false;
  const int64_t axis = n.attr_int("axis", 1);
  switch (q->dtype()) {
    case DType::kInt8: return dequant_const<int8_t>(*q, *s, z, axis, out);
    case DType::kUInt8: return dequant_const<uint8_t>(*q, *s, z, axis, out);
    case DType::kInt32: return dequant_const<int32_t>(*q, *s, z, axis, out);
    default: return false;
  }
}

}  // namespace

Model float_sim_model(const Model& qdq) {
  Model m = qdq;
  Graph& g = m.graph;
  std::map<std::string, std::vector<size_t>> consumers;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const auto& in : g.nodes[i].inputs)
      if (!in.empty()) consumers[in].push_back(i);
  std::set<std::string> graph_outputs;
  for (const auto& o : g.outputs) graph_outputs.insert(o.name);

  std::vector<char> drop(g.nodes.size(), 0);
  std::map<size_t, std::vector<Node>> replace;  // Q node index -> its float chain
  std::set<std::string> gone;                   // values nobody produces any more
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (n.op_type == "DequantizeLinear") {
      Tensor f;
      if (!graph_outputs.count(n.inputs.empty() ? "" : n.inputs[0]) && fold_constant_dq(g, n, f)) {
        g.set_initializer(n.outputs[0], std::move(f));
        drop[i] = 1;
      }
      continue;
    }
    if (n.op_type != "QuantizeLinear" || n.outputs.size() != 1 || n.inputs.empty()) continue;
    const std::string& xq = n.outputs[0];
    QParams qp;
    if (graph_outputs.count(xq) || !per_tensor_params(g, n, qp)) continue;
    const auto& cons = consumers[xq];
    bool all_dq = !cons.empty();
    for (size_t c : cons) {
      const Node& d = g.nodes[c];
      QParams dp;
      all_dq = all_dq && d.op_type == "DequantizeLinear" && d.inputs[0] == xq && d.outputs.size() == 1 &&
               per_tensor_params(g, d, dp) && dp.scale == qp.scale && dp.zero_point == qp.zero_point &&
               dp.is_uint8 == qp.is_uint8 && !graph_outputs.count(xq);
    }
    if (!all_dq) continue;
    // One FakeQuantizeLinear node with the QuantizeLinear's own inputs (runtime/fake_quant.cpp).
    const std::string p = xq + "/fq";
    std::vector<Node> chain;
    Node fq;
    fq.op_type = "FakeQuantizeLinear";
    fq.name = p;
    fq.inputs = n.inputs;
    // In place over the Conv output it reads (not over a graph input, which the caller holds).
    bool graph_input = false;
    for (const auto& v : g.inputs) graph_input = graph_input || v.name == n.inputs[0];
    if (!graph_input) fq.set_attr(Attribute::make_int("in_place", 1));
    chain.push_back(fq);
    const std::string first = g.nodes[cons[0]].outputs[0];
    chain.back().outputs = {first};
    for (size_t k = 1; k < cons.size(); ++k) {
      Node id;
      id.op_type = "Identity";
      id.name = p + "/identity" + std::to_string(k);
      id.inputs = {first};
      id.outputs = {g.nodes[cons[k]].outputs[0]};
      chain.push_back(id);
    }
    replace[i] = std::move(chain);
    drop[i] = 1;
    gone.insert(xq);
    for (size_t c : cons) drop[c] = 1;
  }
  std::vector<Node> nodes;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (const auto it = replace.find(i); it != replace.end())
      for (Node& c : it->second) nodes.push_back(std::move(c));
    if (!drop[i]) nodes.push_back(std::move(g.nodes[i]));
  }
  g.nodes = std::move(nodes);
  std::vector<ValueInfo> vis;
  for (auto& v : g.value_info)
    if (!gone.count(v.name) && !g.has_initializer(v.name)) vis.push_back(std::move(v));
  g.value_info = std::move(vis);
  return m;
}

}  // namespace repq::report
