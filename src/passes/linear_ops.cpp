#include "passes/linear_ops.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace repq::passes {

namespace {

// Ops whose output has the channels of their (non-constant) inputs.
const std::set<std::string, std::less<>>& channel_preserving() {
  static const std::set<std::string, std::less<>> ops = {
      "Identity", "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSwish", "HardSigmoid", "Tanh",
      "Elu", "Selu", "BatchNormalization", "AveragePool", "MaxPool", "Add", "Sub", "Mul", "Div",
      "Dropout", "Neg", "Abs", "Softplus", "Mish", "Gelu", "Pad"};
  return ops;
}

std::vector<double> doubles(const Tensor& t) {
  const auto s = t.span<float>();
  return {s.begin(), s.end()};
}

// The fused Conv is written in float32, so only float32 parameters are folded.
bool is_float(const Tensor& t) { return t.dtype() == DType::kFloat32; }

// Per-channel values of a constant that broadcasts against [N, C, H, W] along C only.
bool per_channel(const Tensor& t, int64_t channels, std::vector<double>& out) {
  if (!is_float(t)) return false;
  Shape s = t.shape();
  while (!s.empty() && s.front() == 1 && s.size() > 3) s.erase(s.begin());
  const std::vector<double> v = doubles(t);
  if (t.numel() == 1 && s.size() <= 4) {
    if (channels <= 0) return false;
    out.assign(static_cast<size_t>(channels), v[0]);
    return true;
  }
  if (s.size() != 3 || s[1] != 1 || s[2] != 1 || s[0] != channels) return false;
  out = v;
  return true;
}

LinearOp none(std::string reason) {
  LinearOp op;
  op.reason = std::move(reason);
  return op;
}

LinearOp unary(const std::string& input, ConvMap map) {
  LinearOp op;
  op.kind = LinearOp::Kind::kUnary;
  op.data = {input};
  op.map = std::move(map);
  return op;
}

std::array<int64_t, 4> pads4(const Node& n) {
  const auto p = n.attr_ints("pads", {0, 0, 0, 0});
  return p.size() == 4 ? std::array<int64_t, 4>{p[0], p[1], p[2], p[3]} : std::array<int64_t, 4>{-1, -1, -1, -1};
}

bool positive(const std::vector<int64_t>& v) {
  return std::all_of(v.begin(), v.end(), [](int64_t x) { return x >= 1; });
}

bool pads_ok(const std::array<int64_t, 4>& p) { return p[0] >= 0 && p[1] >= 0 && p[2] >= 0 && p[3] >= 0; }

LinearOp conv_op(const GraphFacts& f, const Node& n) {
  if (n.inputs.size() < 2 || f.constant(n.inputs[0])) return none("Conv input is not a tensor value");
  const Tensor* w = f.constant(n.inputs[1]);
  const Tensor* b = n.inputs.size() > 2 && !n.inputs[2].empty() ? f.constant(n.inputs[2]) : nullptr;
  if (!w || (n.inputs.size() > 2 && !n.inputs[2].empty() && !b)) return none("Conv weights are not constant");
  if (w->rank() != 4 || !is_float(*w) || (b && !is_float(*b))) return none("only 2-D float32 Conv is folded");
  const std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID")
    return none("Conv auto_pad=" + auto_pad + " (pads depend on the input size)");
  ConvMap m;
  m.groups = n.attr_int("group", 1);
  m.cout = w->dim(0);
  m.cin = w->dim(1) * m.groups;
  m.kernel = {w->dim(2), w->dim(3)};
  const auto st = n.attr_ints("strides", {1, 1}), dl = n.attr_ints("dilations", {1, 1});
  if (st.size() != 2 || dl.size() != 2 || m.groups <= 0 || m.cout % m.groups != 0 || !positive(st) ||
      !positive(dl) || m.kernel[0] < 1 || m.kernel[1] < 1)
    return none("Conv attributes are not those of a 2-D convolution");
  m.strides = {st[0], st[1]};
  m.dilations = {dl[0], dl[1]};
  m.pads = auto_pad == "VALID" ? std::array<int64_t, 4>{0, 0, 0, 0} : pads4(n);
  if (!pads_ok(m.pads)) return none("Conv pads are not 4 non-negative values");
  m.w = doubles(*w);
  m.b = b ? doubles(*b) : std::vector<double>(static_cast<size_t>(m.cout), 0.0);
  if (m.b.size() != static_cast<size_t>(m.cout)) return none("Conv bias size does not match its weights");
  return unary(n.inputs[0], std::move(m));
}

LinearOp batch_norm_op(const GraphFacts& f, const Node& n) {
  if (n.inputs.size() != 5) return none("BatchNormalization without its 4 parameters");
  if (n.attr_int("training_mode", 0) != 0) return none("BatchNormalization in training mode");
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (!n.outputs[i].empty()) return none("BatchNormalization with training outputs");
  std::vector<std::vector<double>> p;
  for (size_t i = 1; i < 5; ++i) {
    const Tensor* t = f.constant(n.inputs[i]);
    if (!t || !is_float(*t)) return none("BatchNormalization parameters are not constant");
    p.push_back(doubles(*t));
  }
  const size_t c = p[0].size();
  for (const auto& v : p)
    if (v.size() != c) return none("BatchNormalization parameters differ in size");
  const double eps = n.attr_float("epsilon", 1e-5f);
  std::vector<double> scale(c), shift(c);
  for (size_t i = 0; i < c; ++i) {
    scale[i] = p[0][i] / std::sqrt(p[3][i] + eps);
    shift[i] = p[1][i] - p[2][i] * scale[i];
  }
  return unary(n.inputs[0], ConvMap::diagonal(scale, shift));
}

LinearOp average_pool_op(const GraphFacts& f, const Node& n) {
  const int64_t c = f.channels(n.inputs[0]);
  const auto k = n.attr_ints("kernel_shape");
  if (k.size() != 2) return none("only 2-D AveragePool is folded");
  const std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID")
    return none("AveragePool auto_pad=" + auto_pad + " (pads depend on the input size)");
  if (n.attr_int("ceil_mode", 0) != 0) return none("AveragePool ceil_mode=1 (partial windows at the border)");
  ConvMap m = ConvMap::identity(c > 0 ? c : 1);
  m.pads = auto_pad == "VALID" ? std::array<int64_t, 4>{0, 0, 0, 0} : pads4(n);
  if (!pads_ok(m.pads)) return none("AveragePool pads are not 4 non-negative values");
  if (m.has_padding() && n.attr_int("count_include_pad", 0) == 0)
    return none("AveragePool count_include_pad=0 (the border divides by fewer taps: not a convolution)");
  if (c <= 0) return none("AveragePool input channels unknown");
  const auto st = n.attr_ints("strides", {1, 1}), dl = n.attr_ints("dilations", {1, 1});
  if (st.size() != 2 || dl.size() != 2 || !positive(st) || !positive(dl) || !positive(k))
    return none("AveragePool attributes are not those of a 2-D pooling");
  const int64_t lim = f.limits().max_kernel_size;
  if (k[0] > lim || k[1] > lim || c > f.limits().max_kernel_elements / (k[0] * k[1]))
    return none("AveragePool kernel " + std::to_string(k[0]) + "x" + std::to_string(k[1]) + " over " +
                std::to_string(c) + " channels is over the fold limits (FuseOptions::max_kernel_size, "
                "max_kernel_elements)");
  m.kernel = {k[0], k[1]};
  m.strides = {st[0], st[1]};
  m.dilations = {dl[0], dl[1]};
  m.w.assign(static_cast<size_t>(c * k[0] * k[1]), 1.0 / static_cast<double>(k[0] * k[1]));
  return unary(n.inputs[0], std::move(m));
}

// Pad with zeros on H and W only: the identity map with those pads (PyTorch exports
// AvgPool2d(padding=p) as Pad -> AveragePool).
LinearOp pad_op(const GraphFacts& f, const Node& n) {
  const std::string mode = n.attr_string("mode", "constant");
  if (mode != "constant") return none("Pad mode=" + mode + " is not zero padding");
  std::vector<int64_t> p = n.attr_ints("pads");
  if (n.inputs.size() > 1 && !n.inputs[1].empty()) {
    const Tensor* t = f.constant(n.inputs[1]);
    if (!t || (t->dtype() != DType::kInt64 && t->dtype() != DType::kInt32)) return none("Pad amounts are not constant");
    p = t->to_int64s();
  }
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    const Tensor* v = f.constant(n.inputs[2]);
    if (!v || !is_float(*v) || v->numel() != 1 || v->span<float>()[0] != 0.0f) return none("Pad with a non-zero value");
  }
  if (n.inputs.size() > 3 && !n.inputs[3].empty()) return none("Pad with axes");
  if (n.attr_float("value", 0.0f) != 0.0f) return none("Pad with a non-zero value");
  if (p.size() != 8 || p[0] || p[1] || p[4] || p[5]) return none("Pad of other axes than H and W");
  const std::array<int64_t, 4> pads{p[2], p[3], p[6], p[7]};
  if (!pads_ok(pads)) return none("Pad with negative amounts (a crop)");
  const int64_t c = f.channels(n.inputs[0]);
  if (c <= 0) return none("Pad input channels unknown");
  ConvMap m = ConvMap::identity(c);
  m.pads = pads;
  return unary(n.inputs[0], std::move(m));
}

LinearOp binary_op(const GraphFacts& f, const Node& n) {
  if (n.inputs.size() != 2) return none(n.op_type + " without two inputs");
  const Tensor* c0 = f.constant(n.inputs[0]);
  const Tensor* c1 = f.constant(n.inputs[1]);
  if (c0 && c1) return none(n.op_type + " of two constants");
  if (!c0 && !c1) {
    if (n.op_type == "Add" || n.op_type == "Sub") {
      LinearOp op;
      op.kind = LinearOp::Kind::kSum;
      op.data = {n.inputs[0], n.inputs[1]};
      op.negate_second = n.op_type == "Sub";
      return op;
    }
    return none(n.op_type + " of two tensors is not linear");
  }
  const bool const_first = c0 != nullptr;
  const std::string& x = const_first ? n.inputs[1] : n.inputs[0];
  const int64_t ch = f.channels(x);
  std::vector<double> v;
  if (!per_channel(const_first ? *c0 : *c1, ch, v))
    return none(n.op_type + " by a constant that is not per-channel");
  const size_t c = v.size();
  std::vector<double> scale(c, 1.0), shift(c, 0.0);
  for (size_t i = 0; i < c; ++i) {
    if (n.op_type == "Mul") scale[i] = v[i];
    else if (n.op_type == "Add") shift[i] = v[i];
    else if (n.op_type == "Sub" && !const_first) shift[i] = -v[i];
    else if (n.op_type == "Sub") scale[i] = -1.0, shift[i] = v[i];
    else if (n.op_type == "Div" && !const_first) scale[i] = 1.0 / v[i];
    else return none("division by a tensor is not linear");
  }
  return unary(x, ConvMap::diagonal(scale, shift));
}

}  // namespace

GraphFacts::GraphFacts(const Graph& g, const MapLimits& limits) : g_(g), limits_(limits), index_(g) {
  infer_channels();
}

const Tensor* GraphFacts::constant(const std::string& name) const {
  std::string cur = name;
  for (int hop = 0; hop < 16; ++hop) {
    if (const Tensor* t = g_.initializer(cur)) return t;
    auto it = index_.producer.find(cur);
    if (it == index_.producer.end()) return nullptr;
    const Node& p = g_.nodes[it->second];
    if (p.op_type != "Identity" || !p.domain.empty() || p.inputs.size() != 1) return nullptr;
    cur = p.inputs[0];
  }
  return nullptr;
}

int64_t GraphFacts::channels(const std::string& name) const {
  auto it = channels_.find(name);
  return it == channels_.end() ? -1 : it->second;
}

void GraphFacts::infer_channels() {
  auto seed = [&](const ValueInfo& v) {
    if (v.has_shape && v.dims.size() >= 2 && v.dims[1].known()) channels_[v.name] = v.dims[1].value;
  };
  for (const auto& v : g_.inputs) seed(v);
  for (const auto& v : g_.outputs) seed(v);
  for (const auto& v : g_.value_info) seed(v);
  for (const auto& n : g_.nodes) {
    if (!n.domain.empty()) continue;
    if (n.op_type == "Conv" && n.inputs.size() >= 2 && !n.outputs.empty()) {
      const Tensor* w = constant(n.inputs[1]);
      if (!w || w->rank() < 3) continue;
      channels_.emplace(n.outputs[0], w->dim(0));
      channels_.emplace(n.inputs[0], w->dim(1) * n.attr_int("group", 1));
    } else if (n.op_type == "BatchNormalization" && n.inputs.size() >= 2 && !n.outputs.empty()) {
      if (const Tensor* s = constant(n.inputs[1])) {
        channels_.emplace(n.inputs[0], s->numel());
        channels_.emplace(n.outputs[0], s->numel());
      }
    }
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (const auto& n : g_.nodes) {
      if (!n.domain.empty() || n.outputs.empty() || !channel_preserving().count(n.op_type)) continue;
      std::vector<std::string> vals{n.outputs[0]};
      const size_t data_inputs = n.op_type == "Clip" || n.op_type == "BatchNormalization" ? 1 : n.inputs.size();
      for (size_t i = 0; i < data_inputs && i < n.inputs.size(); ++i)
        if (!n.inputs[i].empty() && !constant(n.inputs[i])) vals.push_back(n.inputs[i]);
      int64_t known = -1;
      for (const auto& v : vals)
        if (channels(v) > 0) known = channels(v);
      if (known <= 0) continue;
      for (const auto& v : vals)
        if (channels_.emplace(v, known).second) changed = true;
    }
  }
}

LinearOp classify_node(const GraphFacts& f, const Node& n) {
  if (!n.domain.empty() && n.domain != "ai.onnx") return none(n.op_type + " (domain " + n.domain + ") is not linear");
  if (n.outputs.empty() || n.outputs[0].empty() || n.inputs.empty()) return none(n.op_type + " has no data input");
  if (n.op_type == "Conv") return conv_op(f, n);
  if (n.op_type == "BatchNormalization") return batch_norm_op(f, n);
  if (n.op_type == "AveragePool") return average_pool_op(f, n);
  if (n.op_type == "Pad") return pad_op(f, n);
  if (n.op_type == "Add" || n.op_type == "Sub" || n.op_type == "Mul" || n.op_type == "Div") return binary_op(f, n);
  if (n.op_type == "Identity") {
    if (f.constant(n.inputs[0])) return none("Identity of a constant");
    const int64_t c = f.channels(n.inputs[0]);
    if (c <= 0) return none("Identity input channels unknown");
    return unary(n.inputs[0], ConvMap::identity(c));
  }
  return none(n.op_type + " is not linear");
}

}  // namespace repq::passes
