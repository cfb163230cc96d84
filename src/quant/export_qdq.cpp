// export_qdq: the QDQ INT8 model (docs/quantize.md, "The QDQ graph"). Weights become int8
// initializers + DequantizeLinear (per channel along LayerQuant::weight_axis), biases int32 with
// scale s_input * s_weight[o] + DequantizeLinear, activations QuantizeLinear -> DequantizeLinear
// whose output keeps the float tensor's name. A Relu whose quantized output has its zero point
// at the type's minimum is dropped: the QuantizeLinear clamps by itself. A stem conv whose
// input channels are not a multiple of 4 reads a copy of the quantized graph input padded with
// the zero point (ExportOptions::align_input_channels).
#include <onnx/onnx_pb.h>
#include <onnx/version_converter/convert.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>

#include "repq/error.h"
#include "repq/ir/graph_utils.h"
#include "repq/ir/onnx_io.h"
#include "repq/quant/quantize.h"

namespace repq::quant {

namespace {

constexpr int64_t kMinOpset = 13;  // per-axis DequantizeLinear

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// Raises the default-domain opset to 13 with ONNX's version converter (ops whose signature
// changed, like Squeeze's axes, are rewritten by it).
Model with_min_opset(const Model& fused) {
  if (fused.opset() >= kMinOpset) return fused;
  onnx::ModelProto mp;
  if (!mp.ParseFromString(serialize_model(fused))) throw InternalError("export_qdq: cannot reparse the model");
  try {
    mp = onnx::version_conversion::ConvertVersion(mp, static_cast<int>(kMinOpset));
  } catch (const std::exception& e) {
    throw InputError("model: opset " + std::to_string(fused.opset()) +
                     " cannot be converted to opset 13, which per-channel DequantizeLinear needs (" +
                     e.what() + ")");
  }
  if (mp.ir_version() < 7) mp.set_ir_version(7);
  std::string bytes;
  mp.SerializeToString(&bytes);
  return parse_model(bytes, "model (converted to opset 13)");
}

bool is_relu_like(const Graph& g, const Node& n) {
  if (!n.domain.empty() || n.inputs.empty() || n.outputs.size() != 1) return false;
  if (n.op_type == "Relu") return true;
  if (n.op_type != "Clip" || n.inputs.size() < 2 || n.inputs[1].empty()) return false;
  if (n.inputs.size() >= 3 && !n.inputs[2].empty()) return false;
  const Tensor* lo = g.initializer(n.inputs[1]);
  return lo && lo->numel() == 1 && lo->to_doubles()[0] == 0.0;
}

int32_t type_min(DType t) { return t == DType::kUInt8 ? 0 : -128; }
int32_t type_max(DType t) { return t == DType::kUInt8 ? 255 : 127; }

Tensor zero_point_tensor(DType t, int32_t zp, Shape shape = {}) {
  Tensor z(t, shape);
  for (int64_t i = 0; i < z.numel(); ++i) {
    if (t == DType::kUInt8) z.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(zp);
    else z.mutable_data<int8_t>()[i] = static_cast<int8_t>(zp);
  }
  return z;
}

void check_scale(float s, const std::string& what) {
  if (!std::isfinite(s) || !(s > 0)) throw InputError("plan: " + what + ": scale " + fmt(s) + " is not a positive finite number");
}

// The output-channel axis of a layer's weight, from the model.
int expected_axis(const Node& n) {
  if (n.op_type == "Gemm") return n.attr_int("transB", 0) != 0 ? 0 : 1;
  return n.op_type == "MatMul" ? 1 : 0;
}

// Channels to add to the input of quantized layer `n` so that ONNX Runtime can run it with MLAS's
// symmetric int8 conv kernels (ConvSym: indirect convolution with the requantization fused),
// which need group 1, input channels % 4 == 0 and output channels >= 16 and % 4 == 0; otherwise
// ORT falls back to im2col + a generic int8 GEMM + a separate requantization, 5x slower on a
// 3-channel stem. 0: nothing to pad (or padding would not help).
constexpr int64_t kChannelAlign = 4;
int64_t input_channel_pad(const Graph& g, const Node& n, const LayerQuant& l) {
  if (n.op_type != "Conv" || !n.domain.empty() || n.attr_int("group", 1) != 1) return 0;
  const Tensor* w = g.initializer(l.weight);
  if (!w || w->rank() != 4 || w->dim(0) < 16 || w->dim(0) % kChannelAlign != 0) return 0;
  return (kChannelAlign - w->dim(1) % kChannelAlign) % kChannelAlign;
}

// w [M, C, kh, kw] -> [M, C + pad, kh, kw], the new channels 0.
Tensor pad_input_channels(const Tensor& w, int64_t pad) {
  const int64_t m = w.dim(0), c = w.dim(1), k = w.dim(2) * w.dim(3);
  Tensor p(w.dtype(), {m, c + pad, w.dim(2), w.dim(3)});
  const int8_t* src = w.data<int8_t>();
  int8_t* dst = p.mutable_data<int8_t>();
  std::fill(dst, dst + p.numel(), int8_t{0});
  for (int64_t o = 0; o < m; ++o) std::copy(src + o * c * k, src + (o + 1) * c * k, dst + o * (c + pad) * k);
  return p;
}

// int8 weight: round half to even of w / scale (float division, as QuantizeLinear), [-127, 127].
Tensor quantize_weight_to(const Tensor& w, const std::vector<float>& scales, int axis) {
  Tensor q(DType::kInt8, w.shape());
  const auto& d = w.shape();
  int64_t inner = 1;
  for (size_t k = static_cast<size_t>(axis) + 1; k < d.size(); ++k) inner *= d[k];
  const int64_t channels = d[static_cast<size_t>(axis)];
  const float* src = w.data<float>();
  int8_t* dst = q.mutable_data<int8_t>();
  for (int64_t i = 0; i < w.numel(); ++i) {
    const float s = scales.size() == 1 ? scales[0] : scales[static_cast<size_t>((i / inner) % channels)];
    const float r = std::nearbyint(src[i] / s);
    dst[i] = static_cast<int8_t>(std::clamp(r, -127.0f, 127.0f));
  }
  return q;
}

struct Exporter {
  Model m;
  Graph& g;
  GraphIndex idx;
  NameGen names;
  std::map<std::string, const ActivationQuant*> acts;
  std::vector<Node> out;
  std::set<std::string> replaced_inits;  // float initializers now produced by a DequantizeLinear

  explicit Exporter(Model model) : m(std::move(model)), g(m.graph), idx(g), names(g) {}

  bool is_value(const std::string& v) const {
    if (idx.producer.count(v)) return true;
    return std::any_of(g.inputs.begin(), g.inputs.end(), [&](const ValueInfo& i) { return i.name == v; }) &&
           !g.has_initializer(v);
  }

  // A name for a dequantized initializer: the float name itself when only `user` reads it.
  std::string dq_name(const std::string& init) {
    const auto it = idx.consumers.find(init);
    const bool sole = it != idx.consumers.end() && it->second.size() == 1 && !idx.graph_outputs.count(init);
    if (sole && !replaced_inits.count(init)) {
      replaced_inits.insert(init);
      return init;
    }
    return names.make(init + "/dequantized");
  }

  void emit_dq(const std::string& input, const std::string& scale, const std::string& zp,
               const std::string& output, int64_t axis) {
    Node dq;
    dq.name = names.make(output + "/DequantizeLinear");
    dq.op_type = "DequantizeLinear";
    dq.inputs = {input, scale};
    if (!zp.empty()) dq.inputs.push_back(zp);
    dq.outputs = {output};
    if (axis >= 0) dq.set_attr(Attribute::make_int("axis", axis));
    out.push_back(std::move(dq));
  }

  // QuantizeLinear(src) -> DequantizeLinear -> `t` (the float tensor's own name).
  void emit_qdq(const std::string& t, const std::string& src, const std::string& dq_out) {
    emit_qdq_as(*acts.at(t), t, src, dq_out);
  }
  // The same with the quantization of `a`, names derived from `t`.
  void emit_qdq_as(const ActivationQuant& a, const std::string& t, const std::string& src, const std::string& dq_out) {
    const Quantized q = emit_q(a, t, src, "");
    emit_dq(q.out, q.scale, q.zp, dq_out, -1);
  }

  // QuantizeLinear(src) with `a`'s scale and zero point (initializers named from `t` and
  // `tag`); returns the names of its output, scale and zero point.
  struct Quantized {
    std::string out, scale, zp;
  };
  Quantized emit_q(const ActivationQuant& a, const std::string& t, const std::string& src, const std::string& tag) {
    const std::string scale = names.make(t + "/" + tag + "scale"), zp = names.make(t + "/" + tag + "zero_point");
    g.set_initializer(scale, Tensor::scalar(a.scale));
    g.set_initializer(zp, zero_point_tensor(a.dtype, a.zero_point));
    Node q;
    q.name = names.make(t + "/QuantizeLinear");
    q.op_type = "QuantizeLinear";
    q.inputs = {src, scale, zp};
    q.outputs = {names.make(t + "/quantized")};
    out.push_back(q);
    return {q.outputs[0], scale, zp};
  }

  // QuantizeLinear(x) -> Pad(channels + pad, the zero point) -> DequantizeLinear (x's
  // quantization); returns the dequantized name. The padding is done on the 8-bit values, a
  // quarter of the bytes of a float Pad before the QuantizeLinear, and the padded channels hold
  // the zero point, which dequantizes to exactly 0.
  std::string emit_padded_input(const std::string& x, int64_t pad) {
    const Quantized q = emit_q(*acts.at(x), x, x, "padded_");
    const std::string pads = names.make(x + "/channel_pads"), padded = names.make(x + "/channels_padded");
    g.set_initializer(pads, Tensor::from_vector<int64_t>({8}, {0, 0, 0, 0, 0, pad, 0, 0}));
    Node p;
    p.name = names.make(padded + "/Pad");
    p.op_type = "Pad";
    p.inputs = {q.out, pads, q.zp};
    p.outputs = {padded};
    out.push_back(p);
    const std::string dq = names.make(padded + "/dequantized");
    emit_dq(padded, q.scale, q.zp, dq, -1);
    return dq;
  }

  // Replaces the weight (and bias) inputs of layer node `n` with DequantizeLinear outputs; a
  // `pad` > 0 adds that many zero input channels to the int8 weight.
  void quantize_layer(Node& n, const LayerQuant& l, int64_t pad = 0) {
    const Tensor& w = *g.initializer(l.weight);
    const int axis = l.weight_axis;
    const bool per_channel = l.scales.size() > 1;
    const std::string wq = names.make(l.weight + "/quantized"), ws = names.make(l.weight + "/scale"),
                      wz = names.make(l.weight + "/zero_point");
    if (l.qweight.empty()) {
      g.set_initializer(wq, quantize_weight_to(w, l.scales, axis));
    } else {  // GPTQ: the plan's own int8 values (size checked by check_layer)
      Tensor q(DType::kInt8, w.shape());
      std::copy(l.qweight.begin(), l.qweight.end(), q.mutable_data<int8_t>());
      g.set_initializer(wq, std::move(q));
    }
    if (pad > 0) g.set_initializer(wq, pad_input_channels(*g.initializer(wq), pad));
    const Shape sshape = per_channel ? Shape{static_cast<int64_t>(l.scales.size())} : Shape{};
    g.set_initializer(ws, Tensor::from_vector<float>(sshape, l.scales));
    g.set_initializer(wz, zero_point_tensor(DType::kInt8, 0, sshape));
    const std::string w_out = dq_name(l.weight);
    emit_dq(wq, ws, wz, w_out, per_channel ? axis : -1);
    n.inputs[1] = w_out;

    const auto in = acts.find(l.input);
    if (l.bias.empty() || in == acts.end()) return;  // float bias when the input stays float
    // Bias scale exactly s_input * s_weight[o], multiplied in float32 as ONNX Runtime's
    // quantizer does; the int32 value rounds half to even.
    Tensor b = *g.initializer(l.bias);
    if (!l.bias_values.empty())  // GPTQ bias correction (size checked by check_layer)
      b = Tensor::from_vector<float>(b.shape(), l.bias_values);
    std::vector<float> bs(per_channel ? l.scales.size() : 1);
    for (size_t c = 0; c < bs.size(); ++c) bs[c] = in->second->scale * l.scales[c];
    Tensor bq(DType::kInt32, b.shape());
    for (int64_t i = 0; i < b.numel(); ++i) {
      const double r = std::nearbyint(double(b.data<float>()[i]) / double(bs[per_channel ? i : 0]));
      bq.mutable_data<int32_t>()[i] = static_cast<int32_t>(std::clamp(r, -2147483648.0, 2147483647.0));
    }
    const std::string bqn = names.make(l.bias + "/quantized"), bsn = names.make(l.bias + "/scale");
    g.set_initializer(bqn, bq);
    g.set_initializer(bsn, Tensor::from_vector<float>(per_channel ? Shape{int64_t(bs.size())} : Shape{}, bs));
    const std::string b_out = dq_name(l.bias);
    emit_dq(bqn, bsn, "", b_out, per_channel ? 0 : -1);
    n.inputs[2] = b_out;
    if (n.op_type == "Gemm") {  // ORT's QDQ Gemm rule reads beta; write the defaults out
      n.set_attr(Attribute::make_float("alpha", n.attr_float("alpha", 1.0f)));
      n.set_attr(Attribute::make_float("beta", n.attr_float("beta", 1.0f)));
    }
  }
};

void check_layer(const Graph& g, const Node& n, const LayerQuant& l) {
  const std::string what = "plan: layer '" + l.node + "'";
  if (n.op_type != l.op || n.inputs.size() < 2 || n.inputs[0] != l.input || n.inputs[1] != l.weight ||
      (n.inputs.size() > 2 ? n.inputs[2] : "") != l.bias)
    throw InputError(what + " does not match the model's node " + n.describe() + " (op or inputs differ)");
  const Tensor* w = g.initializer(l.weight);
  if (!w || w->dtype() != DType::kFloat32)
    throw InputError(what + ": weight '" + l.weight + "' is not a float32 initializer of the model");
  if (l.weight_axis != expected_axis(n) || static_cast<size_t>(l.weight_axis) >= w->rank())
    throw InputError(what + ": weight axis " + std::to_string(l.weight_axis) + ", the model's " +
                     n.op_type + " needs " + std::to_string(expected_axis(n)));
  const int64_t channels = w->dim(static_cast<size_t>(l.weight_axis));
  if (l.scales.size() != 1 && static_cast<int64_t>(l.scales.size()) != channels)
    throw InputError(what + ": " + std::to_string(l.scales.size()) + " weight scales for " +
                     std::to_string(channels) + " output channels");
  for (size_t c = 0; c < l.scales.size(); ++c) check_scale(l.scales[c], "layer '" + l.node + "' weight");
  if (!l.bias.empty()) {
    const Tensor* b = g.initializer(l.bias);
    if (!b || b->dtype() != DType::kFloat32 || b->numel() != channels)
      throw InputError(what + ": bias '" + l.bias + "' is not a float32 vector of " + std::to_string(channels));
  }
  if (!l.qweight.empty() && static_cast<int64_t>(l.qweight.size()) != w->numel())
    throw InputError(what + ": qweight holds " + std::to_string(l.qweight.size()) +
                     " int8 values, the weight has " + std::to_string(w->numel()));
  if (!l.bias_values.empty() && (l.bias.empty() || static_cast<int64_t>(l.bias_values.size()) != channels))
    throw InputError(what + ": bias_values holds " + std::to_string(l.bias_values.size()) +
                     " values, the layer has " + (l.bias.empty() ? "no bias" : std::to_string(channels) + " channels"));
  for (float v : l.bias_values)
    if (!std::isfinite(v)) throw InputError(what + ": bias_values holds a non-finite value");
}

}  // namespace

Model export_qdq(const Model& fused, const QuantPlan& plan, const ExportOptions& eo) {
  const std::string digest = model_digest(fused);
  if (plan.model_digest != digest)
    throw InputError("plan: made for another model (plan digest " + plan.model_digest +
                     ", model digest " + digest + ")");
  Exporter ex(with_min_opset(fused));
  Graph& g = ex.g;

  for (const auto& a : plan.activations) {
    if (!ex.is_value(a.tensor))
      throw InputError("plan: activation '" + a.tensor + "' is not a value of the model");
    check_scale(a.scale, "activation '" + a.tensor + "'");
    if (a.dtype != DType::kUInt8 && a.dtype != DType::kInt8)
      throw InputError("plan: activation '" + a.tensor + "': type " + dtype_name(a.dtype) + ", expected uint8 or int8");
    if (a.zero_point < type_min(a.dtype) || a.zero_point > type_max(a.dtype))
      throw InputError("plan: activation '" + a.tensor + "': zero point " + std::to_string(a.zero_point) +
                       " outside " + dtype_name(a.dtype));
    if (eo.quantize_activations) ex.acts[a.tensor] = &a;
  }
  std::map<std::string, size_t> node_of;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!g.nodes[i].name.empty()) node_of[g.nodes[i].name] = i;
  std::map<size_t, const LayerQuant*> layers;
  for (const auto& l : plan.layers) {
    const auto it = node_of.find(l.node);
    if (it == node_of.end()) throw InputError("plan: layer '" + l.node + "' is not a node of the model");
    check_layer(g, g.nodes[it->second], l);
    layers[it->second] = &l;
  }
  std::set<std::string> only(eo.only_layers.begin(), eo.only_layers.end());
  for (const auto& name : only)
    if (std::none_of(plan.layers.begin(), plan.layers.end(), [&](auto& l) { return l.node == name; }))
      throw InputError("export: layer '" + name + "' is not in the plan");

  // Quantized layers that read a graph input through a channel-padded copy, and the padding.
  std::map<size_t, int64_t> pad_of;
  std::map<std::string, int64_t> input_pad;
  std::set<std::string> graph_inputs;
  for (const ValueInfo* in : g.runtime_inputs()) graph_inputs.insert(in->name);
  for (const auto& [i, l] : layers) {
    const Node& n = g.nodes[i];
    if (!eo.align_input_channels || (!only.empty() && !only.count(n.name))) continue;
    if (!graph_inputs.count(l->input) || !ex.acts.count(l->input)) continue;
    if (const int64_t pad = input_channel_pad(g, n, *l); pad > 0) {
      pad_of[i] = pad;
      input_pad[l->input] = pad;  // the same for every conv reading it (same channel count)
    }
  }
  // Graph inputs: their consumers read the dequantized copy (the input keeps its name).
  std::map<std::string, std::string> rename, padded_input;
  for (const ValueInfo* in : g.runtime_inputs()) {
    if (!ex.acts.count(in->name)) continue;
    const auto users = ex.idx.consumers.find(in->name);
    const size_t padded_users = static_cast<size_t>(std::count_if(pad_of.begin(), pad_of.end(), [&](auto& p) {
      return layers.at(p.first)->input == in->name;
    }));
    const size_t all_users = users == ex.idx.consumers.end() ? 0 : users->second.size();
    if (padded_users == 0 || all_users > padded_users || ex.idx.graph_outputs.count(in->name)) {
      rename[in->name] = ex.names.make(in->name + "/dequantized");
      ex.emit_qdq(in->name, in->name, rename[in->name]);
    }
    if (padded_users > 0) padded_input[in->name] = ex.emit_padded_input(in->name, input_pad.at(in->name));
  }
  for (size_t i : topo_order(g)) {
    Node n = g.nodes[i];
    const auto pad = pad_of.find(i);
    if (pad != pad_of.end()) n.inputs[0] = padded_input.at(n.inputs[0]);
    for (auto& v : n.inputs)
      if (rename.count(v)) v = rename.at(v);
    const auto a = is_relu_like(g, n) ? ex.acts.find(n.outputs[0]) : ex.acts.end();
    if (a != ex.acts.end() && a->second->zero_point == type_min(a->second->dtype)) {
      ex.emit_qdq(n.outputs[0], n.inputs[0], n.outputs[0]);  // the Q clamps like the Relu
      continue;
    }
    if (const auto l = layers.find(i); l != layers.end() && (only.empty() || only.count(n.name)))
      ex.quantize_layer(n, *l->second, pad != pad_of.end() ? pad->second : 0);
    std::vector<std::pair<std::string, std::string>> quantized;  // (tensor, raw output)
    for (auto& v : n.outputs) {
      if (v.empty() || !ex.acts.count(v)) continue;
      const std::string raw = ex.names.make(v + "/float");
      quantized.emplace_back(v, raw);
      v = raw;
    }
    ex.out.push_back(std::move(n));
    for (const auto& [t, raw] : quantized) ex.emit_qdq(t, raw, t);
  }
  g.nodes = std::move(ex.out);
  // The float weights and biases that nothing reads any more.
  const GraphIndex after(g);
  for (const auto& l : plan.layers)
    for (const std::string& w : {l.weight, l.bias})
      if (!w.empty() && (ex.replaced_inits.count(w) || !after.use_count(w))) {
        if (!ex.replaced_inits.count(w) && !g.has_initializer(w)) continue;
        g.remove_initializer(w);
        std::erase_if(g.inputs, [&](const ValueInfo& v) { return v.name == w; });
      }
  return ex.m;
}

}  // namespace repq::quant
