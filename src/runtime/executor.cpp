#include "repq/runtime/executor.h"

#include <algorithm>
#include <limits>
#include <thread>
#include <unordered_map>

#include "repq/error.h"
#include "repq/ir/graph_utils.h"
#include "runtime/kernel.h"
#include "runtime/tensor_cache.h"
#include "runtime/thread_pool.h"

namespace repq {

using runtime::Kernel;
using runtime::KernelCall;
using runtime::TensorCache;
using runtime::ThreadPool;

namespace runtime {
// src/runtime/qdq_conv.cpp: DQ(x) -> Conv -> Q as one integer kernel (empty when not applicable).
Kernel make_qdq_conv(const Node& dq_x, const Node& conv, const Node* dq_w, const Node* dq_b,
                     const Node& q_node,
                     const std::function<const Tensor*(const std::string&)>& constant);
}  // namespace runtime

namespace {

// Adds "node 'x' (Op): " to a message that does not name the node yet.
std::string with_node(const Node& node, const std::string& msg) {
  if (msg.rfind("node ", 0) == 0) return msg;
  return "node " + node.describe() + ": " + msg;
}

int resolve_threads(int requested) {
  if (requested < 0)
    throw InputError("threads must be 0 (all cores) or more, not " + std::to_string(requested));
  if (requested > 0) return requested;
  const unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

void check_input(const ValueInfo& vi, const Tensor& t) {
  if (vi.elem_type != DType::kUndefined && t.dtype() != vi.elem_type)
    throw InputError("input '" + vi.name + "' is " + dtype_name(t.dtype()) + "; the model expects " +
                     vi.type_str());
  if (!vi.has_shape) return;
  bool ok = t.rank() == vi.dims.size();
  for (size_t i = 0; ok && i < vi.dims.size(); ++i)
    ok = !vi.dims[i].known() || vi.dims[i].value == t.dim(i);
  if (!ok)
    throw InputError("input '" + vi.name + "' has shape " + shape_str(t.shape()) +
                     "; the model expects " + vi.type_str());
}

// What a Relu or Clip node computes as a fusable activation; kNone when it cannot be fused
// (Clip bounds computed at run time).
runtime::Activation activation_of(const Node& node, int64_t opset, const Graph& g) {
  runtime::Activation a;
  if (node.op_type == "Relu") {
    a.kind = runtime::Activation::Kind::kRelu;
  } else if (node.op_type == "Clip") {
    a.lo = -std::numeric_limits<float>::infinity();
    a.hi = std::numeric_limits<float>::infinity();
    if (opset < 11) {
      a.lo = node.attr_float("min", std::numeric_limits<float>::lowest());
      a.hi = node.attr_float("max", std::numeric_limits<float>::max());
    } else {
      for (size_t i = 1; i < 3 && i < node.inputs.size(); ++i) {
        if (node.inputs[i].empty()) continue;
        const Tensor* t = g.initializer(node.inputs[i]);
        const bool fed = std::any_of(g.inputs.begin(), g.inputs.end(),
                                     [&](const ValueInfo& vi) { return vi.name == node.inputs[i]; });
        if (!t || fed || t->dtype() != DType::kFloat32 || t->numel() != 1) return {};
        (i == 1 ? a.lo : a.hi) = t->data<float>()[0];
      }
    }
    a.kind = runtime::Activation::Kind::kClip;
  }
  return a;
}

}  // namespace

struct Executor::Impl {
  struct Step {
    const Node* node = nullptr;
    Kernel kernel;
    std::vector<int> inputs;      // value ids, -1: omitted
    std::vector<int> outputs;     // value ids, -1: omitted
    std::vector<int> last_use;    // values no later step reads
    // Conv whose only consumer is an activation step: its index (fused when nobody observes).
    int fuse_with = -1;
    runtime::Activation activation;  // for Relu / Clip steps: what they compute
  };

  Graph graph;  // own copy: nodes and initializers (buffers are shared, not copied)
  std::vector<Step> steps;
  std::unordered_map<std::string, int> ids;
  std::vector<std::string> names;
  std::vector<std::pair<int, Tensor>> constants;  // initializers (a fed input of that name wins)
  std::vector<int> feedable;                      // value id -> index into graph.inputs or -1
  std::vector<std::string> input_names, output_names;
  std::vector<int> output_ids;
  // Values whose buffer nothing else can hold when they are freed (not inputs, initializers
  // or outputs of ops that may hand out views), so it can be recycled.
  std::vector<char> recyclable;
  // DQ -> Conv -> Q groups run by the exact integer kernel (on the Q step): the other steps of
  // each group, skipped when nobody observes or asks for their outputs.
  std::vector<std::vector<int>> qdq_groups;
  TensorCache cache;
  std::unique_ptr<ThreadPool> pool;
  int threads = 1;

  int id_of(const std::string& name) {
    auto [it, added] = ids.emplace(name, static_cast<int>(names.size()));
    if (added) names.push_back(name);
    return it->second;
  }
  void plan_fusions(const Model& model);
  void plan_qdq(const std::function<const Tensor*(const std::string&)>& constant);
  int find_id(const std::string& name) const {
    auto it = ids.find(name);
    return it == ids.end() ? -1 : it->second;
  }
};

Executor::Executor(const Model& model, ExecutorOptions opts) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.threads = resolve_threads(opts.threads);
  m.graph = model.graph;
  const Graph& g = m.graph;
  validate_graph(g);
  const int64_t opset = model.opset();

  for (const auto& vi : g.inputs) m.id_of(vi.name);
  for (const auto& name : g.initializer_names()) m.id_of(name);
  for (const auto* vi : g.runtime_inputs()) m.input_names.push_back(vi->name);
  for (const auto& vi : g.outputs) {
    m.output_names.push_back(vi.name);
  }

  auto is_graph_input = [&](const std::string& n) {
    return std::any_of(g.inputs.begin(), g.inputs.end(),
                       [&](const ValueInfo& vi) { return vi.name == n; });
  };
  const std::function<const Tensor*(const std::string&)> constant =
      [&](const std::string& n) -> const Tensor* {
    return is_graph_input(n) ? nullptr : g.initializer(n);
  };

  for (size_t idx : topo_order(g)) {
    const Node& node = g.nodes[idx];
    if (!node.domain.empty() && node.domain != "ai.onnx")
      throw InputError("node " + node.describe() + ": op is not supported by repq's executor");
    runtime::KernelFactory factory = runtime::find_kernel(node.domain, node.op_type);
    if (!factory)
      throw InputError("node " + node.describe() + ": op is not supported by repq's executor");
    Impl::Step step;
    step.node = &node;
    try {
      step.kernel = factory(runtime::NodeContext{node, opset, constant});
    } catch (const InputError& e) {
      throw InputError(with_node(node, e.what()));
    }
    for (const auto& in : node.inputs) step.inputs.push_back(in.empty() ? -1 : m.id_of(in));
    for (const auto& out : node.outputs) step.outputs.push_back(out.empty() ? -1 : m.id_of(out));
    m.steps.push_back(std::move(step));
  }
  for (const auto& name : m.output_names) m.output_ids.push_back(m.id_of(name));
  if (opts.exact_qdq) m.plan_qdq(constant);

  const size_t nvalues = m.names.size();
  m.feedable.assign(nvalues, -1);
  for (size_t i = 0; i < g.inputs.size(); ++i) m.feedable[m.find_id(g.inputs[i].name)] = static_cast<int>(i);
  for (const auto& name : g.initializer_names())
    m.constants.emplace_back(m.find_id(name), *g.initializer(name));

  // Last use of every value: the step after which it can be freed (values never read are
  // freed right after the step producing them).
  std::vector<int> last(nvalues, -1);
  for (size_t s = 0; s < m.steps.size(); ++s) {
    for (int id : m.steps[s].inputs)
      if (id >= 0) last[id] = static_cast<int>(s);
    for (int id : m.steps[s].outputs)
      if (id >= 0 && last[id] < static_cast<int>(s)) last[id] = static_cast<int>(s);
  }
  for (size_t v = 0; v < nvalues; ++v)
    if (last[v] >= 0) m.steps[last[v]].last_use.push_back(static_cast<int>(v));

  m.plan_fusions(model);

  // Ops whose output may share its input's buffer (or a kernel's constant).
  auto may_alias = [](const std::string& op) {
    static const char* const ops[] = {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
                                      "Dropout", "Constant", "Cast", "ReduceMean", "Pad"};
    return std::any_of(std::begin(ops), std::end(ops), [&](const char* o) { return op == o; });
  };
  m.recyclable.assign(nvalues, 0);
  for (const auto& step : m.steps)
    if (!may_alias(step.node->op_type))
      for (int id : step.outputs)
        if (id >= 0) m.recyclable[id] = 1;
  for (const auto& step : m.steps)
    if (may_alias(step.node->op_type))
      for (int id : step.inputs)
        if (id >= 0) m.recyclable[id] = 0;

  m.pool = std::make_unique<ThreadPool>(m.threads);
}

// Marks Conv steps whose output feeds only a Relu/Clip step (and is no graph output).
void Executor::Impl::plan_fusions(const Model& model) {
  Impl& m = *this;
  std::vector<int> consumers(m.names.size(), 0), consumer_step(m.names.size(), -1);
  for (size_t s = 0; s < m.steps.size(); ++s)
    for (int id : m.steps[s].inputs)
      if (id >= 0) {
        ++consumers[id];
        consumer_step[id] = static_cast<int>(s);
      }
  for (int id : m.output_ids) consumers[id] += 1;
  for (auto& step : m.steps) {
    if (step.node->op_type == "Relu" || step.node->op_type == "Clip")
      step.activation = activation_of(*step.node, model.opset(), m.graph);
  }
  for (auto& step : m.steps) {
    if (step.node->op_type != "Conv" || step.outputs.empty() || step.outputs[0] < 0) continue;
    const int out = step.outputs[0];
    if (consumers[out] != 1 || consumer_step[out] < 0) continue;
    const auto& next = m.steps[consumer_step[out]];
    if (next.activation.none() || next.inputs.empty() || next.inputs[0] != out) continue;
    if (next.outputs.empty() || next.outputs[0] < 0) continue;
    step.fuse_with = consumer_step[out];
  }
}

// Finds QuantizeLinear steps fed by a Conv (its only consumer) whose inputs are
// DequantizeLinear of integer tensors, and gives them the exact integer kernel reading x_q.
void Executor::Impl::plan_qdq(const std::function<const Tensor*(const std::string&)>& constant) {
  const size_t nv = names.size();
  std::vector<int> producer(nv, -1), consumers(nv, 0);
  for (size_t s = 0; s < steps.size(); ++s) {
    for (int id : steps[s].outputs)
      if (id >= 0) producer[id] = static_cast<int>(s);
    for (int id : steps[s].inputs)
      if (id >= 0) ++consumers[id];
  }
  for (int id : output_ids) ++consumers[id];
  auto int8_type = [](DType t) { return t == DType::kUInt8 || t == DType::kInt8; };
  // x_q must be uint8/int8: a QuantizeLinear output, a graph input or an initializer of that type.
  auto integer_value = [&](int id) {
    if (const int p = producer[id]; p >= 0) {
      const Node& n = *steps[p].node;
      if (n.op_type != "QuantizeLinear") return false;
      if (n.inputs.size() < 3 || n.inputs[2].empty()) return true;  // uint8
      const Tensor* zp = constant(n.inputs[2]);
      return zp && int8_type(zp->dtype());
    }
    for (const auto& vi : graph.inputs)  // a fed input wins over an initializer of its name
      if (vi.name == names[id]) return int8_type(vi.elem_type);
    const Tensor* t = constant(names[id]);
    return t && int8_type(t->dtype());
  };
  for (size_t s = 0; s < steps.size(); ++s) {
    Step& qs = steps[s];
    if (qs.node->op_type != "QuantizeLinear" || qs.inputs.empty() || qs.inputs[0] < 0) continue;
    const int conv_out = qs.inputs[0];
    if (consumers[conv_out] != 1 || producer[conv_out] < 0) continue;
    const int cs = producer[conv_out];
    const Step& conv = steps[cs];
    if (conv.node->op_type != "Conv" || conv.inputs.size() < 2 || conv.outputs.size() != 1) continue;
    auto dq_of = [&](size_t i) {
      if (i >= conv.inputs.size() || conv.inputs[i] < 0) return -2;  // omitted
      const int p = producer[conv.inputs[i]];
      return p >= 0 && steps[p].node->op_type == "DequantizeLinear" ? p : -1;
    };
    const int dx = dq_of(0), dw = dq_of(1), db = dq_of(2);
    if (dx < 0 || dw < 0 || db == -1) continue;
    const int xq = steps[dx].inputs.empty() ? -1 : steps[dx].inputs[0];
    if (xq < 0 || !integer_value(xq)) continue;
    Kernel k = runtime::make_qdq_conv(*steps[dx].node, *conv.node, steps[dw].node,
                                      db >= 0 ? steps[db].node : nullptr, *qs.node, constant);
    if (!k) continue;
    qs.kernel = std::move(k);
    qs.inputs = {xq};
    std::vector<int> group = {cs};
    for (int d : {dx, dw, db})
      if (d >= 0 && steps[d].outputs.size() == 1 && consumers[steps[d].outputs[0]] == 1)
        group.push_back(d);
    qdq_groups.push_back(std::move(group));
  }
}

Executor::~Executor() = default;

const std::vector<std::string>& Executor::input_names() const { return impl_->input_names; }
const std::vector<std::string>& Executor::output_names() const { return impl_->output_names; }
int Executor::threads() const { return impl_->threads; }

std::map<std::string, Tensor> Executor::run(const std::map<std::string, Tensor>& inputs,
                                            const Observer& observer,
                                            const std::vector<std::string>& extra_outputs) {
  Impl& m = *impl_;
  const Graph& g = m.graph;
  std::vector<Tensor> values(m.names.size());
  std::vector<char> pinned(m.names.size(), 0);
  for (int id : m.output_ids) pinned[id] = 1;
  std::vector<int> extra_ids;
  for (const auto& name : extra_outputs) {
    const int id = m.find_id(name);
    if (id < 0) throw InputError("extra output '" + name + "' is not a value of the model");
    pinned[id] = 1;
    extra_ids.push_back(id);
  }

  for (const auto& [id, t] : m.constants) values[id] = t;
  for (const auto& [name, t] : inputs) {
    const int id = m.find_id(name);
    if (id < 0 || m.feedable[id] < 0) {
      std::string list;
      for (const auto& n : m.input_names) list += (list.empty() ? "" : ", ") + n;
      throw InputError("'" + name + "' is not an input of the model (its inputs: " + list + ")");
    }
    check_input(g.inputs[m.feedable[id]], t);
    values[id] = t;
  }
  for (const auto& name : m.input_names) {
    if (!inputs.count(name))
      throw InputError("input '" + name + "' is missing; the model expects " +
                       g.find_value_info(name)->type_str());
  }
  if (observer) {
    for (const auto& vi : g.inputs)
      if (inputs.count(vi.name)) observer(vi.name, values[m.find_id(vi.name)]);
  }

  std::vector<char> fused_away(m.steps.size(), 0);
  if (!observer) {  // exact QDQ convs: their float steps only run when someone looks
    for (const auto& group : m.qdq_groups) {
      bool wanted = false;
      for (int s : group)
        for (int id : m.steps[s].outputs) wanted = wanted || (id >= 0 && pinned[id]);
      if (!wanted)
        for (int s : group) fused_away[s] = 1;
    }
  }
  for (size_t si = 0; si < m.steps.size(); ++si) {
    const auto& step = m.steps[si];
    if (fused_away[si]) {
      for (int id : step.last_use)
        if (!pinned[id]) values[id] = Tensor();
      continue;
    }
    const size_t nin = step.inputs.size();
    std::vector<const Tensor*> ins(nin, nullptr);
    std::vector<Tensor*> dying(nin, nullptr);
    for (size_t i = 0; i < nin; ++i) {
      const int id = step.inputs[i];
      if (id < 0) continue;
      ins[i] = &values[id];
      const bool last = std::find(step.last_use.begin(), step.last_use.end(), id) !=
                        step.last_use.end();
      const bool once = std::count(step.inputs.begin(), step.inputs.end(), id) == 1;
      if (last && once && !pinned[id]) dying[i] = &values[id];
    }
    KernelCall call(*step.node, std::move(ins), std::move(dying), *m.pool, &m.cache);
    // Conv -> activation in one pass, when nobody can see the Conv's own output.
    const bool fuse = step.fuse_with >= 0 && !observer && !pinned[step.outputs[0]];
    if (fuse) call.fused_activation = m.steps[step.fuse_with].activation;
    try {
      step.kernel(call);
    } catch (const InputError& e) {
      throw InputError(with_node(*step.node, e.what()));
    }
    auto& outs = call.outputs();
    for (size_t o = 0; o < step.outputs.size(); ++o) {
      const int id = step.outputs[o];
      if (id < 0) continue;
      if (outs[o].empty())
        throw InternalError("node " + step.node->describe() + " did not produce output '" +
                            m.names[id] + "'");
      values[id] = std::move(outs[o]);
      if (observer) observer(m.names[id], values[id]);
    }
    if (fuse) {  // the activation's output is the Conv's; the activation step is skipped
      const int conv_out = step.outputs[0];
      values[m.steps[step.fuse_with].outputs[0]] = std::move(values[conv_out]);
      values[conv_out] = Tensor();
      fused_away[step.fuse_with] = 1;
    }
    for (int id : step.last_use) {
      if (pinned[id]) continue;
      if (m.recyclable[id]) m.cache.give(std::move(values[id]));
      values[id] = Tensor();
    }
  }

  std::map<std::string, Tensor> result;
  for (size_t i = 0; i < m.output_ids.size(); ++i)
    result[m.output_names[i]] = values[m.output_ids[i]];
  for (size_t i = 0; i < extra_ids.size(); ++i) result[extra_outputs[i]] = values[extra_ids[i]];
  return result;
}

bool executor_supports(const std::string& domain, const std::string& op_type) {
  return (domain.empty() || domain == "ai.onnx") &&
         runtime::find_kernel(domain, op_type) != nullptr;
}

}  // namespace repq
