// isolated_model (compute_isolated.h): all rows' isolated runs as one model.
#include "report/compute_isolated.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "repq/error.h"

namespace repq::report {

namespace {

ValueInfo value(const std::string& name, DType t) {
  ValueInfo v;
  v.name = name;
  v.elem_type = t;
  return v;
}

// Row r's nodes and constants into `m`, every name but the row input renamed by `ren`; the row
// input becomes `src`. Weights are fake-quantized with the plan's scales, the bias rounded to
// int32 at s_input * s_weight. Throws InputError when a node reads a non-constant value from
// outside the row.
void add_row(Model& m, const Model& fused, const RowSpec& row, const quant::ActivationQuant* act,
             const std::string& prefix, const std::string& src) {
  auto ren = [&](const std::string& n) { return n.empty() ? n : (n == row.input ? src : prefix + n); };
  std::set<std::string> produced{row.input};
  for (size_t i : row.nodes)
    for (const auto& o : fused.graph.nodes[i].outputs) produced.insert(o);
  std::map<std::string, Tensor> consts;
  for (size_t i : row.nodes)
    for (const std::string& in : fused.graph.nodes[i].inputs) {
      if (in.empty() || produced.count(in) || consts.count(in)) continue;
      const Tensor* t = fused.graph.initializer(in);
      if (!t) throw InputError("report: '" + in + "' of layer '" + row.name + "' is not a constant");
      consts[in] = *t;
    }
  for (const quant::LayerQuant* l : row.parts) {
    const auto w = consts.find(l->weight);
    if (w == consts.end()) continue;
    w->second = fake_quant_weight(w->second, l->scales, l->weight_axis);
    const auto b = l->bias.empty() ? consts.end() : consts.find(l->bias);
    if (b == consts.end() || !act || l->scales.empty()) continue;
    Tensor q = b->second.cast(DType::kFloat32);
    float* p = q.mutable_data<float>();
    for (int64_t o = 0; o < q.numel(); ++o) {
      const float sw = l->scales.size() == 1 ? l->scales[0] : l->scales.at(static_cast<size_t>(o));
      const double s = static_cast<double>(act->scale) * sw;
      if (s > 0) p[o] = static_cast<float>(std::nearbyint(p[o] / s) * s);
    }
    b->second = q;
  }
  for (auto& [name, t] : consts) m.graph.set_initializer(ren(name), std::move(t));
  for (size_t i : row.nodes) {
    Node n = fused.graph.nodes[i];
    n.name = prefix + n.name;
    for (auto& in : n.inputs) in = ren(in);
    for (auto& o : n.outputs) o = ren(o);
    m.graph.nodes.push_back(std::move(n));
  }
  Node tail;
  tail.op_type = "Shape";
  tail.name = prefix + "shape";
  tail.inputs = {ren(row.output)};
  tail.outputs = {prefix + "shape"};
  m.graph.nodes.push_back(tail);
  m.graph.outputs.push_back(value(tail.outputs[0], DType::kInt64));
}

// The FakeQuantizeLinear of a row input with the plan's parameters; false when they are not
// ones the kernel takes (then the row is measured without it, see isolated_model).
bool add_fake_quant(Model& m, const std::string& input, const quant::ActivationQuant& a,
                    const std::string& out) {
  const bool u8 = a.dtype == DType::kUInt8;
  if (!(a.scale > 0.0f) || !std::isfinite(a.scale) || a.zero_point < (u8 ? 0 : -128) ||
      a.zero_point > (u8 ? 255 : 127))
    return false;
  Tensor s(DType::kFloat32, Shape{});
  s.mutable_data<float>()[0] = a.scale;
  Tensor z(u8 ? DType::kUInt8 : DType::kInt8, Shape{});
  if (u8)
    z.mutable_data<uint8_t>()[0] = static_cast<uint8_t>(a.zero_point);
  else
    z.mutable_data<int8_t>()[0] = static_cast<int8_t>(a.zero_point);
  m.graph.set_initializer(out + "/scale", std::move(s));
  m.graph.set_initializer(out + "/zero_point", std::move(z));
  Node n;
  n.op_type = "FakeQuantizeLinear";
  n.name = out;
  n.inputs = {input, out + "/scale", out + "/zero_point"};
  n.outputs = {out};
  m.graph.nodes.push_back(std::move(n));
  return true;
}

}  // namespace

IsolatedModel isolated_model(const Model& fused, const std::vector<RowSpec>& rows,
                             const quant::QuantPlan& plan) {
  IsolatedModel iso;
  Model& m = iso.model;
  m.ir_version = fused.ir_version;
  m.opsets = fused.opsets;
  m.graph.name = "isolated";
  std::map<std::string, std::string> fq_of;  // row input -> its fake-quantized value
  for (size_t r = 0; r < rows.size(); ++r) {
    const RowSpec& row = rows[r];
    const quant::ActivationQuant* act = plan.activation(row.input);
    const std::string prefix = "isolated/" + std::to_string(r) + "/";
    Model one;  // built apart first: a row that fails leaves nothing behind
    std::string src = row.input;
    if (act) {
      const auto it = fq_of.find(row.input);
      if (it != fq_of.end()) {
        src = it->second;
      } else if (add_fake_quant(one, row.input, *act, "isolated/fq/" + row.input)) {
        src = "isolated/fq/" + row.input;
      } else {
        spdlog::warn("report: isolated error of '{}' not measured: its input's scale / zero point", row.name);
        continue;
      }
    }
    try {
      add_row(one, fused, row, act, prefix, src);
    } catch (const std::exception& e) {
      spdlog::warn("report: isolated error of '{}' not measured: {}", row.name, e.what());
      continue;
    }
    if (act && !fq_of.count(row.input)) {
      fq_of[row.input] = src;
      iso.fq_input[src] = row.input;
    }
    for (const std::string& name : one.graph.initializer_names())
      m.graph.set_initializer(name, *one.graph.initializer(name));
    for (Node& n : one.graph.nodes) m.graph.nodes.push_back(std::move(n));
    for (ValueInfo& v : one.graph.outputs) m.graph.outputs.push_back(std::move(v));
    if (std::find(iso.inputs.begin(), iso.inputs.end(), row.input) == iso.inputs.end()) {
      iso.inputs.push_back(row.input);
      m.graph.inputs.push_back(value(row.input, DType::kFloat32));
    }
    iso.out_row[prefix + row.output] = r;
  }
  return iso;
}

}  // namespace repq::report
