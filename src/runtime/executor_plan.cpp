// Executor planning: which Conv steps run fused with their activation, and which QDQ groups
// run as one exact integer kernel with ONNX Runtime's arithmetic (the groups ORT's QDQ
// selectors turn into QLinearConv, QLinearAdd, QLinearGlobalAveragePool and QGemm).
#include <algorithm>
#include <limits>

#include "repq/error.h"
#include "runtime/executor_impl.h"

namespace repq {

namespace {

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

// Finds the QDQ groups ORT's selectors turn into integer ops and gives the step holding the
// group's result the exact integer kernel, reading the integer inputs directly:
//   DQ(x) -> Conv(DQ(w), DQ(b)) -> Q       QLinearConv
//   DQ(a), DQ(b) -> Add -> Q               QLinearAdd
//   DQ(x) -> GlobalAveragePool -> Q        QLinearGlobalAveragePool
//   Gemm(DQ(a), DQ(b), DQ(c)) (float out)  QGemm
// The op's output must feed only the Q (and be no graph output); integer inputs must be
// 8-bit values (a QuantizeLinear output, a graph input or an initializer of that type, or a Pad
// of one).
void Executor::Impl::plan_qdq(const runtime::ConstantFn& constant) {
  const size_t nv = names.size();
  std::vector<int> producer(nv, -1), consumers(nv, 0), consumer_step(nv, -1);
  for (size_t s = 0; s < steps.size(); ++s) {
    for (int id : steps[s].outputs)
      if (id >= 0) producer[id] = static_cast<int>(s);
    for (int id : steps[s].inputs)
      if (id >= 0) {
        ++consumers[id];
        consumer_step[id] = static_cast<int>(s);
      }
  }
  for (int id : output_ids) ++consumers[id];
  // The 8-bit type of an integer value, kUndefined when it is not one. A Pad keeps its data's
  // type (its constant value must have it too), so a Pad of a QuantizeLinear's output is looked
  // through: the padded stem input export_qdq writes (ExportOptions::align_input_channels).
  auto int_type = [&](int id) {
    DType t = DType::kUndefined;
    for (int p = producer[id]; p >= 0 && steps[p].node->op_type == "Pad" && steps[p].node->domain.empty();
         p = producer[id]) {
      if (steps[p].inputs.empty() || steps[p].inputs[0] < 0) return DType::kUndefined;
      id = steps[p].inputs[0];
    }
    if (const int p = producer[id]; p >= 0) {
      const Node& n = *steps[p].node;
      if (n.op_type != "QuantizeLinear") return DType::kUndefined;
      if (n.inputs.size() < 3 || n.inputs[2].empty()) return DType::kUInt8;
      const Tensor* zp = constant(n.inputs[2]);
      t = zp ? zp->dtype() : DType::kUndefined;
    } else {
      bool fed = false;
      for (const auto& vi : graph.inputs)  // a fed input wins over an initializer of its name
        if (vi.name == names[id]) {
          t = vi.elem_type;
          fed = true;
        }
      if (!fed) {
        const Tensor* c = constant(names[id]);
        t = c ? c->dtype() : DType::kUndefined;
      }
    }
    return runtime::is_int8_type(t) ? t : DType::kUndefined;
  };
  // The DequantizeLinear step producing input i of `st` (-2: input omitted, -1: no DQ).
  auto dq_of = [&](const Step& st, size_t i) {
    if (i >= st.inputs.size() || st.inputs[i] < 0) return -2;
    const int p = producer[st.inputs[i]];
    return p >= 0 && steps[p].node->op_type == "DequantizeLinear" ? p : -1;
  };
  // x_q of a DQ step, when it is an 8-bit value of the type its zero point declares.
  auto dq_input = [&](int d) {
    const Step& dq = steps[d];
    if (dq.inputs.empty() || dq.inputs[0] < 0) return -1;
    const DType t = int_type(dq.inputs[0]);
    if (t == DType::kUndefined) return -1;
    const Node& n = *dq.node;
    const Tensor* zp = n.inputs.size() > 2 && !n.inputs[2].empty() ? constant(n.inputs[2]) : nullptr;
    if (zp && zp->dtype() != t) return -1;
    return dq.inputs[0];
  };
  auto add_group = [&](std::vector<int> group, std::initializer_list<int> dqs) {
    for (int d : dqs)
      if (d >= 0 && steps[d].outputs.size() == 1 && consumers[steps[d].outputs[0]] == 1)
        group.push_back(d);
    qdq_groups.push_back(std::move(group));
  };

  for (size_t s = 0; s < steps.size(); ++s) {
    Step& st = steps[s];
    const std::string& op = st.node->op_type;
    if (op == "Gemm") {  // QGemm with a float output: no QuantizeLinear after it
      if (st.outputs.size() != 1 || st.outputs[0] < 0) continue;
      const int out = st.outputs[0], next = consumer_step[out];
      if (consumers[out] == 1 && next >= 0 && steps[next].node->op_type == "QuantizeLinear")
        continue;
      const int da = dq_of(st, 0), db = dq_of(st, 1), dc = dq_of(st, 2);
      if (da < 0 || db < 0 || dc == -1) continue;
      const int aq = dq_input(da);
      if (aq < 0) continue;
      runtime::Kernel k = runtime::make_qdq_gemm(*steps[da].node, *steps[db].node,
                                                 dc >= 0 ? steps[dc].node : nullptr, *st.node,
                                                 constant);
      if (!k) continue;
      st.kernel = std::move(k);
      st.inputs = {aq};
      add_group({}, {da, db, dc});
      continue;
    }
    if (op != "QuantizeLinear" || st.inputs.empty() || st.inputs[0] < 0) continue;
    const int op_out = st.inputs[0];
    if (consumers[op_out] != 1 || producer[op_out] < 0) continue;
    const int os = producer[op_out];
    const Step& target = steps[os];
    const std::string& top = target.node->op_type;
    if (target.outputs.size() != 1) continue;
    runtime::Kernel k;
    std::vector<int> new_inputs;
    if (top == "Conv") {
      const int dx = dq_of(target, 0), dw = dq_of(target, 1), db = dq_of(target, 2);
      if (target.inputs.size() < 2 || dx < 0 || dw < 0 || db == -1) continue;
      const int xq = dq_input(dx);
      if (xq < 0) continue;
      k = runtime::make_qdq_conv(*steps[dx].node, *target.node, steps[dw].node,
                                 db >= 0 ? steps[db].node : nullptr, *st.node, constant);
      if (!k) continue;
      new_inputs = {xq};
      add_group({os}, {dx, dw, db});
    } else if (top == "Add") {
      const int da = dq_of(target, 0), db = dq_of(target, 1);
      if (target.inputs.size() != 2 || da < 0 || db < 0) continue;
      const int aq = dq_input(da), bq = dq_input(db);
      if (aq < 0 || bq < 0) continue;
      k = runtime::make_qdq_add(*steps[da].node, *steps[db].node, *st.node, constant);
      if (!k) continue;
      new_inputs = {aq, bq};
      add_group({os}, {da, db});
    } else if (top == "GlobalAveragePool") {
      const int dx = dq_of(target, 0);
      if (dx < 0) continue;
      const int xq = dq_input(dx);
      if (xq < 0) continue;
      k = runtime::make_qdq_global_average_pool(*steps[dx].node, *st.node, constant);
      if (!k) continue;
      new_inputs = {xq};
      add_group({os}, {dx});
    } else {
      continue;
    }
    st.kernel = std::move(k);
    st.inputs = std::move(new_inputs);
  }
}

}  // namespace repq
