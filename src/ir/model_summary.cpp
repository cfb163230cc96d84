#include "repq/ir/model_summary.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "repq/ir/graph_utils.h"

namespace repq {

namespace {

ConvSummary conv_summary(const Graph& g, const Node& n) {
  ConvSummary c;
  c.name = n.name.empty() ? (n.outputs.empty() ? "" : n.outputs[0]) : n.name;
  c.op_type = n.op_type;
  c.groups = n.attr_int("group", 1);
  const Tensor* w = n.inputs.size() > 1 ? g.initializer(n.inputs[1]) : nullptr;
  if (w && w->rank() >= 3) {
    if (n.op_type == "Conv") {
      c.out_channels = w->dim(0);
      c.in_channels = w->dim(1) * c.groups;
    } else {
      c.in_channels = w->dim(0);
      c.out_channels = w->dim(1) * c.groups;
    }
    c.kernel.assign(w->shape().begin() + 2, w->shape().end());
  }
  c.kernel = n.attr_ints("kernel_shape", c.kernel);
  const size_t sp = c.kernel.size();
  c.strides = n.attr_ints("strides", std::vector<int64_t>(sp, 1));
  c.dilations = n.attr_ints("dilations", std::vector<int64_t>(sp, 1));
  c.pads = n.attr_ints("pads", std::vector<int64_t>(2 * sp, 0));
  const std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET") c.pads.clear();
  c.has_bias = n.inputs.size() > 2 && !n.inputs[2].empty();
  return c;
}

nlohmann::ordered_json value_json(const ValueInfo& v) {
  nlohmann::ordered_json j;
  j["name"] = v.name;
  j["dtype"] = dtype_name(v.elem_type);
  if (v.has_shape) {
    nlohmann::ordered_json dims = nlohmann::ordered_json::array();
    for (const auto& d : v.dims) {
      if (d.known()) dims.push_back(d.value);
      else dims.push_back(d.param.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(d.param));
    }
    j["shape"] = dims;
  } else {
    j["shape"] = nullptr;
  }
  return j;
}

std::string join(const std::vector<int64_t>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + std::to_string(v[i]);
  return s;
}

std::string human_bytes(uint64_t b) {
  std::ostringstream os;
  os.precision(3);
  if (b >= (1u << 20)) os << static_cast<double>(b) / (1 << 20) << " MiB";
  else if (b >= 1024) os << static_cast<double>(b) / 1024 << " KiB";
  else os << b << " B";
  return os.str();
}

}  // namespace

ModelSummary summarize(const Model& m, const std::string& path) {
  ModelSummary s;
  s.path = path;
  s.ir_version = m.ir_version;
  s.opsets = m.opsets;
  s.producer_name = m.producer_name;
  s.producer_version = m.producer_version;
  s.graph_name = m.graph.name;
  for (const auto* vi : m.graph.runtime_inputs()) s.inputs.push_back(*vi);
  s.outputs = m.graph.outputs;
  s.op_histogram = op_histogram(m.graph);
  s.node_count = m.graph.nodes.size();
  for (const auto& name : m.graph.initializer_names()) {
    const Tensor* t = m.graph.initializer(name);
    s.parameter_count += t->numel();
    s.parameter_bytes += t->nbytes();
    s.parameters_by_dtype[dtype_name(t->dtype())] += t->numel();
  }
  for (size_t i : topo_order(m.graph)) {
    const Node& n = m.graph.nodes[i];
    if ((n.op_type == "Conv" || n.op_type == "ConvTranspose") && n.domain.empty())
      s.convs.push_back(conv_summary(m.graph, n));
  }
  return s;
}

std::string summary_to_json(const ModelSummary& s) {
  nlohmann::ordered_json j;
  j["schema"] = "repq.info/1";
  j["path"] = s.path;
  j["ir_version"] = s.ir_version;
  nlohmann::ordered_json opsets = nlohmann::ordered_json::object();
  for (const auto& o : s.opsets) opsets[o.domain.empty() ? "ai.onnx" : o.domain] = o.version;
  j["opsets"] = opsets;
  j["producer"] = {{"name", s.producer_name}, {"version", s.producer_version}};
  j["graph_name"] = s.graph_name;
  j["inputs"] = nlohmann::ordered_json::array();
  for (const auto& v : s.inputs) j["inputs"].push_back(value_json(v));
  j["outputs"] = nlohmann::ordered_json::array();
  for (const auto& v : s.outputs) j["outputs"].push_back(value_json(v));
  j["node_count"] = s.node_count;
  j["op_histogram"] = s.op_histogram;
  j["parameters"] = {{"count", s.parameter_count},
                     {"bytes", s.parameter_bytes},
                     {"by_dtype", s.parameters_by_dtype}};
  j["convs"] = nlohmann::ordered_json::array();
  for (const auto& c : s.convs) {
    j["convs"].push_back({{"name", c.name},
                          {"op", c.op_type},
                          {"in_channels", c.in_channels},
                          {"out_channels", c.out_channels},
                          {"kernel", c.kernel},
                          {"strides", c.strides},
                          {"pads", c.pads},
                          {"dilations", c.dilations},
                          {"groups", c.groups},
                          {"depthwise", c.depthwise()},
                          {"bias", c.has_bias}});
  }
  if (s.blocks_analysed) {
    j["reparam_blocks"] = nlohmann::ordered_json::array();
    for (const auto& b : s.reparam_blocks)
      j["reparam_blocks"].push_back({{"kind", b.kind},
                                     {"input", b.input},
                                     {"output", b.output},
                                     {"nodes", b.nodes},
                                     {"in_channels", b.in_channels},
                                     {"out_channels", b.out_channels},
                                     {"kernel", b.kernel},
                                     {"strides", b.strides},
                                     {"groups", b.groups}});
    j["reparam_not_foldable"] = nlohmann::ordered_json::array();
    for (const auto& n : s.not_foldable)
      j["reparam_not_foldable"].push_back({{"node", n.node}, {"op", n.op}, {"reason", n.reason}});
  }
  // Names come from the file and need not be UTF-8: invalid bytes become U+FFFD.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string summary_to_text(const ModelSummary& s) {
  std::ostringstream os;
  os << s.path << "\n";
  os << "  IR version " << s.ir_version << ", opsets:";
  for (const auto& o : s.opsets) os << " " << (o.domain.empty() ? "ai.onnx" : o.domain) << "=" << o.version;
  os << "\n  producer: " << (s.producer_name.empty() ? "(none)" : s.producer_name);
  if (!s.producer_version.empty()) os << " " << s.producer_version;
  os << "\n\nInputs:\n";
  for (const auto& v : s.inputs) os << "  " << v.name << "  " << v.type_str() << "\n";
  os << "Outputs:\n";
  for (const auto& v : s.outputs) os << "  " << v.name << "  " << v.type_str() << "\n";
  os << "\nParameters: " << s.parameter_count << " (" << human_bytes(s.parameter_bytes) << ")";
  for (const auto& [dt, n] : s.parameters_by_dtype) os << "  " << dt << ": " << n;
  os << "\n\nOps (" << s.node_count << " nodes):\n";
  for (const auto& [op, n] : s.op_histogram) os << "  " << op << " " << n << "\n";
  if (!s.convs.empty()) {
    os << "\nConvolutions (" << s.convs.size() << "):\n";
    size_t w = 4;
    for (const auto& c : s.convs) w = std::max(w, c.name.size());
    os << "  " << std::string("name") << std::string(w - 4 + 2, ' ')
       << "cin->cout   kernel  stride  groups\n";
    for (const auto& c : s.convs) {
      std::string ch = std::to_string(c.in_channels) + "->" + std::to_string(c.out_channels);
      std::string k = join(c.kernel, "x"), st = join(c.strides, ",");
      std::string grp = std::to_string(c.groups) + (c.depthwise() ? " (dw)" : "");
      os << "  " << c.name << std::string(w - c.name.size() + 2, ' ') << ch
         << std::string(ch.size() < 12 ? 12 - ch.size() : 1, ' ') << k
         << std::string(k.size() < 8 ? 8 - k.size() : 1, ' ') << st
         << std::string(st.size() < 8 ? 8 - st.size() : 1, ' ') << grp
         << (c.op_type == "ConvTranspose" ? "  transposed" : "") << "\n";
    }
  }
  if (s.blocks_analysed) {
    if (s.reparam_blocks.empty())
      os << "\nRe-parameterizable blocks: none (nothing for repq fuse to fold)\n";
    else
      os << "\nRe-parameterizable blocks (" << s.reparam_blocks.size() << ", repq fuse folds each into one Conv):\n";
    size_t wk = 4, wo = 6;
    for (const auto& b : s.reparam_blocks) wk = std::max(wk, b.kind.size()), wo = std::max(wo, b.output.size());
    if (!s.reparam_blocks.empty())
      os << "  kind" << std::string(wk - 4 + 2, ' ') << "nodes  output" << std::string(wo - 6 + 2, ' ')
         << "conv\n";
    for (const auto& b : s.reparam_blocks) {
      std::string conv = std::to_string(b.in_channels) + "->" + std::to_string(b.out_channels) + " " + join(b.kernel, "x");
      if (!b.strides.empty() && (b.strides[0] != 1 || b.strides.back() != 1)) conv += " s" + join(b.strides, ",");
      if (b.groups != 1) conv += " g" + std::to_string(b.groups);
      const std::string n = std::to_string(b.nodes);
      os << "  " << b.kind << std::string(wk - b.kind.size() + 2, ' ') << n << std::string(n.size() < 7 ? 7 - n.size() : 1, ' ')
         << b.output << std::string(wo - b.output.size() + 2, ' ') << conv << "\n";
    }
    if (!s.not_foldable.empty()) {
      os << "Not foldable (" << s.not_foldable.size() << "):\n";
      for (const auto& n : s.not_foldable) os << "  " << n.node << " (" << n.op << "): " << n.reason << "\n";
    }
  }
  return os.str();
}

}  // namespace repq
