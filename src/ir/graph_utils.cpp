#include "repq/ir/graph_utils.h"

#include <algorithm>
#include <queue>

#include "repq/error.h"

namespace repq {

GraphIndex::GraphIndex(const Graph& g) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (const auto& out : g.nodes[i].outputs)
      if (!out.empty()) producer.emplace(out, i);
    for (const auto& in : g.nodes[i].inputs) {
      if (in.empty()) continue;
      auto& list = consumers[in];
      if (list.empty() || list.back() != i) list.push_back(i);
    }
  }
  for (const auto& o : g.outputs) graph_outputs.insert(o.name);
}

size_t GraphIndex::use_count(std::string_view value) const {
  size_t n = graph_outputs.count(value);
  if (auto it = consumers.find(value); it != consumers.end()) n += it->second.size();
  return n;
}

std::vector<size_t> topo_order(const Graph& g) {
  const size_t n = g.nodes.size();
  GraphIndex idx(g);
  std::vector<size_t> pending(n, 0);
  std::vector<std::vector<size_t>> succ(n);
  for (size_t i = 0; i < n; ++i) {
    for (const auto& in : g.nodes[i].inputs) {
      if (in.empty()) continue;
      auto it = idx.producer.find(in);
      if (it == idx.producer.end()) continue;
      if (it->second == i)
        throw InputError("node " + g.nodes[i].describe() + " consumes its own output '" + in + "'");
      succ[it->second].push_back(i);
      ++pending[i];
    }
  }
  // Min-heap on the file index keeps the order stable where the graph allows it.
  std::priority_queue<size_t, std::vector<size_t>, std::greater<>> ready;
  for (size_t i = 0; i < n; ++i)
    if (pending[i] == 0) ready.push(i);
  std::vector<size_t> order;
  order.reserve(n);
  while (!ready.empty()) {
    const size_t i = ready.top();
    ready.pop();
    order.push_back(i);
    for (size_t s : succ[i])
      if (--pending[s] == 0) ready.push(s);
  }
  if (order.size() != n) {
    for (size_t i = 0; i < n; ++i)
      if (pending[i] != 0)
        throw InputError("graph has a cycle through node " + g.nodes[i].describe());
  }
  return order;
}

void topo_sort(Graph& g) {
  const auto order = topo_order(g);
  std::vector<Node> sorted;
  sorted.reserve(g.nodes.size());
  for (size_t i : order) sorted.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(sorted);
}

namespace {
// An initializer named like a graph input is that input's default value (ONNX IR >= 4): it
// must agree with the input's declared type and shape, or which one holds is ambiguous.
void check_input_default(const ValueInfo& vi, const Tensor& t) {
  bool agree = vi.elem_type == DType::kUndefined || vi.elem_type == t.dtype();
  if (vi.has_shape) {
    agree = agree && vi.dims.size() == t.rank();
    for (size_t i = 0; agree && i < vi.dims.size(); ++i)
      agree = !vi.dims[i].known() || vi.dims[i].value == t.dim(i);
  }
  if (!agree)
    throw InputError("graph input '" + vi.name + "' is declared " + dtype_name(vi.elem_type) +
                     (vi.has_shape ? " of rank " + std::to_string(vi.dims.size()) : "") +
                     " but its initializer (default value) is " + dtype_name(t.dtype()) +
                     shape_str(t.shape()) + "; ambiguous, refused");
}
}  // namespace

void validate_graph(const Graph& g) {
  std::set<std::string, std::less<>> defined;
  for (const auto& vi : g.inputs) {
    if (vi.name.empty()) throw InputError("graph input with an empty name");
    if (!defined.insert(vi.name).second)
      throw InputError("graph input '" + vi.name + "' is declared twice");
  }
  for (const auto& vi : g.inputs)
    if (const Tensor* t = g.initializer(vi.name)) check_input_default(vi, *t);
  for (const auto& name : g.initializer_names()) defined.insert(name);
  for (const auto& node : g.nodes) {
    for (const auto& out : node.outputs) {
      if (out.empty()) continue;
      if (!defined.insert(out).second)
        throw InputError("node " + node.describe() + " output '" + out +
                         "' is already defined by another node, an input or an initializer");
    }
  }
  for (const auto& node : g.nodes) {
    for (const auto& in : node.inputs) {
      if (!in.empty() && !defined.count(in))
        throw InputError("node " + node.describe() + " input '" + in +
                         "' is not produced by any node, initializer or graph input");
    }
  }
  std::set<std::string_view> listed;
  for (const auto& o : g.outputs)
    if (!listed.insert(o.name).second)
      throw InputError("graph output '" + o.name + "' is listed twice");
  for (const auto& o : g.outputs)
    if (!defined.count(o.name))
      throw InputError("graph output '" + o.name + "' is not produced by any node or input");
  (void)topo_order(g);  // throws on cycles
}

size_t remove_dead_nodes(Graph& g) {
  GraphIndex idx(g);
  std::vector<bool> live(g.nodes.size(), false);
  std::vector<std::string> work;
  for (const auto& o : g.outputs) work.push_back(o.name);
  std::set<std::string, std::less<>> seen;
  while (!work.empty()) {
    std::string v = std::move(work.back());
    work.pop_back();
    if (!seen.insert(v).second) continue;
    auto it = idx.producer.find(v);
    if (it == idx.producer.end() || live[it->second]) continue;
    live[it->second] = true;
    for (const auto& in : g.nodes[it->second].inputs)
      if (!in.empty()) work.push_back(in);
  }
  const size_t before = g.nodes.size();
  std::vector<Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (live[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);

  std::set<std::string, std::less<>> used;
  for (const auto& n : g.nodes)
    for (const auto& in : n.inputs) used.insert(in);
  for (const auto& o : g.outputs) used.insert(o.name);
  std::set<std::string, std::less<>> declared_inputs;
  for (const auto& in : g.inputs) declared_inputs.insert(in.name);
  const auto names = g.initializer_names();
  for (const auto& name : names)
    if (!used.count(name) && !declared_inputs.count(name)) g.remove_initializer(name);
  std::set<std::string, std::less<>> produced;
  for (const auto& n : g.nodes)
    for (const auto& o : n.outputs) produced.insert(o);
  std::erase_if(g.value_info, [&](const ValueInfo& vi) { return !produced.count(vi.name); });
  return before - g.nodes.size();
}

NameGen::NameGen(const Graph& g) {
  for (const auto& n : g.nodes) {
    used_.insert(n.name);
    for (const auto& v : n.inputs) used_.insert(v);
    for (const auto& v : n.outputs) used_.insert(v);
  }
  for (const auto& vi : g.inputs) used_.insert(vi.name);
  for (const auto& vi : g.outputs) used_.insert(vi.name);
  for (const auto& name : g.initializer_names()) used_.insert(name);
}

std::string NameGen::make(const std::string& base) {
  std::string candidate = base;
  for (int i = 1; used_.count(candidate); ++i) candidate = base + "_" + std::to_string(i);
  used_.insert(candidate);
  return candidate;
}

std::map<std::string, size_t> op_histogram(const Graph& g) {
  std::map<std::string, size_t> h;
  for (const auto& n : g.nodes) {
    const bool default_domain = n.domain.empty() || n.domain == "ai.onnx";
    ++h[default_domain ? n.op_type : n.domain + ":" + n.op_type];
  }
  return h;
}

}  // namespace repq
