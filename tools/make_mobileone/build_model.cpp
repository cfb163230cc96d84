#include "build_model.h"

#include "repq/error.h"

namespace repq::mobileone {

namespace {

ValueInfo float_value(const std::string& name, int64_t batch, const Shape& rest) {
  ValueInfo vi;
  vi.name = name;
  vi.elem_type = DType::kFloat32;
  vi.has_shape = true;
  vi.dims.push_back(batch > 0 ? Dim{batch, ""} : Dim{-1, "N"});
  for (int64_t d : rest) vi.dims.push_back(Dim{d, ""});
  return vi;
}

Node make_node(std::string name, std::string op, std::vector<std::string> inputs,
               std::vector<std::string> outputs) {
  Node n;
  n.name = std::move(name);
  n.op_type = std::move(op);
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  return n;
}

// Initializer names follow the PyTorch parameter names: "stage1.0.reparam_conv.weight".
std::string param_name(const std::string& file) {
  std::string s = file.substr(file.find_last_of('/') + 1);
  if (s.size() > 4 && s.compare(s.size() - 4, 4, ".bin") == 0) s.resize(s.size() - 4);
  return s;
}

}  // namespace

Model build_model(const std::vector<Layer>& layers, int64_t batch) {
  Model m;
  m.ir_version = 8;
  m.set_opset(kOpset);
  m.producer_name = "repq-make-mobileone";
  m.doc_string = "Apple MobileOne-S0 (ImageNet-1k), re-parameterized inference form";
  Graph& g = m.graph;
  g.name = "mobileone_s0";
  if (layers.empty() || layers.front().cin != 3) throw InputError("the first layer must take 3 channels");
  g.inputs.push_back(float_value("input", batch, {3, kImageSize, kImageSize}));

  std::string x = "input";
  for (const Layer& l : layers) {
    if (l.op == LayerOp::kGlobalAvgPool) {
      g.nodes.push_back(make_node(l.name, "GlobalAveragePool", {x}, {l.name + ".out"}));
      x = l.name + ".out";
      continue;
    }
    const std::string w = param_name(l.weight_file), b = param_name(l.bias_file);
    if (l.weight.empty() || l.bias.empty()) throw InputError("layer '" + l.name + "': weights not loaded");
    g.set_initializer(w, l.weight);
    g.set_initializer(b, l.bias);
    const bool last = l.op == LayerOp::kFullyConnected;
    const std::string out = last ? "logits" : l.name + (l.relu ? ".conv" : ".out");
    if (last) {
      if (x.size() < 4 || x.compare(x.size() - 4, 4, ".out") != 0 || l.relu)
        throw InputError("layer '" + l.name + "': fully_connected must follow the pooling, without ReLU");
      g.nodes.push_back(make_node("flatten", "Flatten", {x}, {"flatten.out"}));
      g.nodes.back().set_attr(Attribute::make_int("axis", 1));
      g.nodes.push_back(make_node(l.name, "Gemm", {"flatten.out", w, b}, {out}));
      g.nodes.back().set_attr(Attribute::make_int("transB", 1));
    } else {
      Node n = make_node(l.name, "Conv", {x, w, b}, {out});
      n.set_attr(Attribute::make_ints("kernel_shape", {l.kernel, l.kernel}));
      n.set_attr(Attribute::make_ints("strides", {l.stride, l.stride}));
      n.set_attr(Attribute::make_ints("pads", {l.pad, l.pad, l.pad, l.pad}));
      n.set_attr(Attribute::make_ints("dilations", {1, 1}));
      n.set_attr(Attribute::make_int("group", l.groups));
      g.nodes.push_back(std::move(n));
    }
    x = out;
    if (l.relu) {
      g.nodes.push_back(make_node(l.name + ".relu", "Relu", {out}, {l.name + ".out"}));
      x = l.name + ".out";
    }
  }
  if (x != "logits") throw InputError("the network does not end in the fully_connected layer");
  g.outputs.push_back(float_value("logits", batch, {layers.back().cout}));
  return m;
}

}  // namespace repq::mobileone
