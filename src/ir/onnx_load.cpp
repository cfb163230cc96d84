// ONNX file -> IR.
#include <onnx/checker.h>
#include <onnx/version_converter/convert.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string_view>
#include <vector>

#include "ir/onnx_convert.h"
#include "repq/common/atomic_file.h"
#include "repq/error.h"
#include "repq/ir/graph_utils.h"
#include "repq/ir/onnx_io.h"

namespace repq {

namespace {

using detail::ExternalDataContext;

constexpr int64_t kConvertTarget = 11;

int64_t default_opset(const onnx::ModelProto& mp) {
  for (const auto& o : mp.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") return o.version();
  return 0;
}

bool uses_external_data(const onnx::GraphProto& g) {
  for (const auto& t : g.initializer())
    if (t.data_location() == onnx::TensorProto::EXTERNAL) return true;
  return false;
}

// A Constant node whose value is a plain tensor becomes an initializer.
bool constant_to_initializer(const onnx::NodeProto& np, const std::set<std::string>& graph_outputs,
                             const ExternalDataContext& ctx, Graph& g) {
  if (np.op_type() != "Constant" || !(np.domain().empty() || np.domain() == "ai.onnx") ||
      np.output_size() != 1 || np.attribute_size() != 1 || graph_outputs.count(np.output(0)))
    return false;
  const auto& a = np.attribute(0);
  Tensor t;
  if (a.name() == "value" && a.type() == onnx::AttributeProto::TENSOR) {
    t = detail::tensor_from_proto(a.t(), ctx);
  } else if (a.name() == "value_float") {
    t = Tensor::scalar(a.f());
  } else if (a.name() == "value_floats") {
    t = Tensor::from_vector<float>({a.floats_size()}, {a.floats().begin(), a.floats().end()});
  } else if (a.name() == "value_int") {
    t = Tensor::from_vector<int64_t>({}, {a.i()});
  } else if (a.name() == "value_ints") {
    t = Tensor::from_vector<int64_t>({a.ints_size()}, {a.ints().begin(), a.ints().end()});
  } else {
    return false;
  }
  g.set_initializer(np.output(0), std::move(t));
  return true;
}

std::string count_over(const char* what, int64_t n, int64_t limit, const char* option) {
  return "the graph has " + std::to_string(n) + " " + what + ", over the limit of " +
         std::to_string(limit) + " (LoadOptions::" + option + ")";
}

// Deepest If/Loop/Scan body nesting among `nodes` (0: no subgraph); throws past the limit.
template <class Nodes>
int subgraph_depth(const Nodes& nodes, int level, int limit) {
  int deepest = 0;
  for (const auto& np : nodes)
    for (const auto& a : np.attribute()) {
      std::vector<const onnx::GraphProto*> bodies;
      if (a.has_g()) bodies.push_back(&a.g());
      for (const auto& sg : a.graphs()) bodies.push_back(&sg);
      for (const auto* body : bodies) {
        if (level + 1 > limit)
          throw InputError("node '" + np.name() + "' (" + np.op_type() + ") holds subgraphs nested " +
                           std::to_string(level + 1) + " deep, over the limit of " +
                           std::to_string(limit) + " (LoadOptions::max_subgraph_depth)");
        deepest = std::max(deepest, 1 + subgraph_depth(body->node(), level + 1, limit));
      }
    }
  return deepest;
}

void check_limits(const onnx::ModelProto& mp, const LoadOptions& opts) {
  const auto& gp = mp.graph();
  if (gp.node_size() > opts.max_nodes)
    throw InputError(count_over("nodes", gp.node_size(), opts.max_nodes, "max_nodes"));
  if (gp.initializer_size() > opts.max_initializers)
    throw InputError(count_over("initializers", gp.initializer_size(), opts.max_initializers,
                                "max_initializers"));
  (void)subgraph_depth(gp.node(), 0, opts.max_subgraph_depth);
  for (const auto& f : mp.functions()) (void)subgraph_depth(f.node(), 0, opts.max_subgraph_depth);
  for (const auto* list : {&gp.input(), &gp.output(), &gp.value_info()})
    for (const auto& vi : *list)
      if (vi.type().tensor_type().shape().dim_size() > opts.max_rank)
        throw InputError("value '" + vi.name() + "' is declared with rank " +
                         std::to_string(vi.type().tensor_type().shape().dim_size()) +
                         ", over the limit of " + std::to_string(opts.max_rank) +
                         " (LoadOptions::max_rank)");
  if (!opts.allow_duplicate_node_names) {
    std::set<std::string_view> names;
    for (const auto& np : gp.node())
      if (!np.name().empty() && !names.insert(np.name()).second)
        throw InputError("two nodes are named '" + np.name() +
                         "' (node names must be unique; LoadOptions::allow_duplicate_node_names)");
  }
}

Graph graph_from_proto(const onnx::GraphProto& gp, const ExternalDataContext& ctx) {
  Graph g;
  g.name = gp.name();
  g.doc_string = gp.doc_string();
  for (const auto& t : gp.initializer()) {
    if (g.has_initializer(t.name()))
      throw InputError("initializer '" + t.name() + "' is defined twice");
    g.set_initializer(t.name(), detail::tensor_from_proto(t, ctx));
  }
  if (gp.sparse_initializer_size() > 0)
    throw InputError("sparse initializers are not supported");
  for (const auto& vi : gp.input()) g.inputs.push_back(detail::value_info_from_proto(vi));
  for (const auto& vi : gp.output()) g.outputs.push_back(detail::value_info_from_proto(vi));
  for (const auto& vi : gp.value_info()) g.value_info.push_back(detail::value_info_from_proto(vi));
  std::set<std::string> graph_outputs;
  for (const auto& o : gp.output()) graph_outputs.insert(o.name());
  g.nodes.reserve(static_cast<size_t>(gp.node_size()));
  for (const auto& np : gp.node()) {
    if (constant_to_initializer(np, graph_outputs, ctx, g)) continue;
    Node n;
    n.name = np.name();
    n.op_type = np.op_type();
    n.domain = np.domain() == "ai.onnx" ? "" : np.domain();
    n.doc_string = np.doc_string();
    n.inputs.assign(np.input().begin(), np.input().end());
    n.outputs.assign(np.output().begin(), np.output().end());
    for (const auto& ap : np.attribute()) {
      try {
        n.attributes.push_back(detail::attribute_from_proto(ap, ctx));
      } catch (const InputError& e) {
        throw InputError("node " + n.describe() + " attribute '" + ap.name() + "': " + e.what());
      }
    }
    g.nodes.push_back(std::move(n));
  }
  return g;
}

Model model_from_proto(onnx::ModelProto& mp, const ExternalDataContext& ctx) {
  Model m;
  m.ir_version = mp.ir_version();
  for (const auto& o : mp.opset_import())
    m.opsets.push_back({o.domain() == "ai.onnx" ? "" : o.domain(), o.version()});
  m.producer_name = mp.producer_name();
  m.producer_version = mp.producer_version();
  m.domain = mp.domain();
  m.model_version = mp.model_version();
  m.doc_string = mp.doc_string();
  for (const auto& kv : mp.metadata_props()) m.metadata.emplace_back(kv.key(), kv.value());
  m.external_data = uses_external_data(mp.graph());
  m.graph = graph_from_proto(mp.graph(), ctx);
  // Keep the rest (functions, training info, unknown fields) as it was.
  onnx::ModelProto rest = mp;
  rest.clear_graph();
  rest.clear_opset_import();
  rest.clear_ir_version();
  rest.clear_producer_name();
  rest.clear_producer_version();
  rest.clear_domain();
  rest.clear_model_version();
  rest.clear_doc_string();
  rest.clear_metadata_props();
  m.opaque_rest = rest.SerializeAsString();
  return m;
}

// ONNX's version converter assumes a well-formed graph (it crashes on an undefined input):
// run repq's structural checks and ONNX's checker (which also sees subgraphs) first.
void check_before_converting(const onnx::ModelProto& mp, const std::string& name, int64_t opset,
                             const LoadOptions& opts) {
  try {
    detail::LoadBudget budget{opts.max_rank, opts.max_tensor_bytes, opts.max_total_tensor_bytes, 0, {}};
    validate_graph(graph_from_proto(mp.graph(), ExternalDataContext{"", &budget}));
  } catch (const InputError& e) {
    throw InputError(name + ": " + e.what());
  }
  try {
    onnx::checker::check_model(mp);
  } catch (const std::exception& e) {
    std::string why = e.what();
    why = why.substr(0, why.find('\n'));
    throw InputError(name + ": opset " + std::to_string(opset) +
                     " model fails ONNX's checker, so it cannot be converted to opset 11 (" + why +
                     ")");
  }
}

}  // namespace

Model parse_model(const std::string& bytes, const std::string& name, const std::string& base_dir,
                  const LoadOptions& opts) {
  if (bytes.empty()) throw InputError(name + ": not an ONNX model (the file is empty)");
  onnx::ModelProto mp;
  if (!mp.ParseFromString(bytes)) {
    if (detail::parses_when_nested_deeper(bytes))
      throw InputError(name + ": messages are nested more than 100 levels deep (protobuf's "
                              "recursion limit; deeply nested subgraphs or types); refused");
    throw InputError(name + ": " + detail::diagnose_unparsable(bytes));
  }
  if (!mp.has_graph() || mp.ir_version() <= 0)
    throw InputError(name + ": not an ONNX model (" +
                     (mp.has_graph() ? std::string("no ir_version") : std::string("no graph")) + ")");
  try {
    check_limits(mp, opts);
  } catch (const InputError& e) {
    throw InputError(name + ": " + e.what());
  }
  int64_t opset = default_opset(mp);
  if (opset <= 0) throw InputError(name + ": the model imports no opset of the default ONNX domain");
  if (opset > opts.max_opset)
    throw InputError(name + ": opset " + std::to_string(opset) + " is newer than repq supports (" +
                     std::to_string(opts.min_opset) + " to " + std::to_string(opts.max_opset) + ")");
  if (opset < opts.min_opset) {
    if (!opts.convert_old_opsets)
      throw InputError(name + ": opset " + std::to_string(opset) + " is older than repq supports (" +
                       std::to_string(opts.min_opset) + " to " + std::to_string(opts.max_opset) + ")");
    if (uses_external_data(mp.graph()))
      throw InputError(name + ": opset " + std::to_string(opset) +
                       " with external data cannot be converted; re-export with opset 11 or newer");
    check_before_converting(mp, name, opset, opts);
    try {
      mp = onnx::version_conversion::ConvertVersion(mp, static_cast<int>(kConvertTarget));
    } catch (const std::exception& e) {
      throw InputError(name + ": opset " + std::to_string(opset) +
                       " cannot be converted to opset 11 (" + e.what() +
                       "); re-export the model with opset 11 or newer");
    }
    if (mp.ir_version() < 6) mp.set_ir_version(6);
    spdlog::warn("{}: converted from opset {} to opset {}", name, opset, kConvertTarget);
  }
  Model m;
  try {
    detail::LoadBudget budget{opts.max_rank, opts.max_tensor_bytes, opts.max_total_tensor_bytes, 0, {}};
    m = model_from_proto(mp, ExternalDataContext{base_dir, &budget});
    if (opts.validate) validate_graph(m.graph);
  } catch (const InputError& e) {
    throw InputError(name + ": " + e.what());
  }
  return m;
}

Model load_model(const std::string& path, const LoadOptions& opts) {
  std::error_code ec;
  const uint64_t size = std::filesystem::is_regular_file(path, ec)
                            ? std::filesystem::file_size(path, ec) : 0;
  if (!ec && size > opts.max_file_bytes)
    throw InputError(path + ": the file is " + std::to_string(size) + " bytes, over the limit of " +
                     std::to_string(opts.max_file_bytes) +
                     " (protobuf cannot parse ONNX files of 2 GiB or more; store the weights "
                     "as external data); refused before reading");
  const std::string bytes = read_file(path, opts.max_file_bytes);
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  return parse_model(bytes, path, dir, opts);
}

}  // namespace repq
