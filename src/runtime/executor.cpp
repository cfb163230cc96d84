#include "repq/runtime/executor.h"

#include <algorithm>
#include <limits>
#include <thread>
#include <unordered_map>

#include "repq/error.h"
#include "repq/ir/graph_utils.h"
#include "runtime/executor_impl.h"
#include "runtime/thread_pool.h"

namespace repq {

using runtime::Kernel;
using runtime::KernelCall;
using runtime::TensorCache;
using runtime::ThreadPool;

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

}  // namespace


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
