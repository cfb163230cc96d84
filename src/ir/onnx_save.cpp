// IR -> ONNX file (optionally with external data), written atomically.
#include <filesystem>
#include <memory>

#include "ir/onnx_convert.h"
#include "repq/common/atomic_file.h"
#include "repq/error.h"
#include "repq/ir/onnx_io.h"

namespace repq {

namespace {

constexpr uint64_t kAutoExternalBytes = uint64_t{3} << 29;  // 1.5 GiB

onnx::ModelProto model_to_proto(const Model& m) {
  onnx::ModelProto mp;
  if (!m.opaque_rest.empty() && !mp.ParseFromString(m.opaque_rest))
    throw InternalError("cannot restore the model's extra fields");
  mp.set_ir_version(m.ir_version);
  for (const auto& o : m.opsets) {
    auto* op = mp.add_opset_import();
    op->set_domain(o.domain);
    op->set_version(o.version);
  }
  if (!m.producer_name.empty()) mp.set_producer_name(m.producer_name);
  if (!m.producer_version.empty()) mp.set_producer_version(m.producer_version);
  if (!m.domain.empty()) mp.set_domain(m.domain);
  if (m.model_version) mp.set_model_version(m.model_version);
  if (!m.doc_string.empty()) mp.set_doc_string(m.doc_string);
  for (const auto& [k, v] : m.metadata) {
    auto* kv = mp.add_metadata_props();
    kv->set_key(k);
    kv->set_value(v);
  }
  const Graph& g = m.graph;
  auto* gp = mp.mutable_graph();
  gp->set_name(g.name.empty() ? "repq" : g.name);
  if (!g.doc_string.empty()) gp->set_doc_string(g.doc_string);
  for (const auto& n : g.nodes) {
    auto* np = gp->add_node();
    if (!n.name.empty()) np->set_name(n.name);
    np->set_op_type(n.op_type);
    if (!n.domain.empty()) np->set_domain(n.domain);
    if (!n.doc_string.empty()) np->set_doc_string(n.doc_string);
    for (const auto& i : n.inputs) np->add_input(i);
    for (const auto& o : n.outputs) np->add_output(o);
    for (const auto& a : n.attributes) detail::attribute_to_proto(a, np->add_attribute());
  }
  for (const auto& name : g.initializer_names())
    detail::tensor_to_proto(*g.initializer(name), name, gp->add_initializer());
  for (const auto& vi : g.inputs) detail::value_info_to_proto(vi, gp->add_input());
  for (const auto& vi : g.outputs) detail::value_info_to_proto(vi, gp->add_output());
  for (const auto& vi : g.value_info) detail::value_info_to_proto(vi, gp->add_value_info());
  return mp;
}

uint64_t initializer_bytes(const Graph& g) {
  uint64_t total = 0;
  for (const auto& name : g.initializer_names()) total += g.initializer(name)->nbytes();
  return total;
}

}  // namespace

std::string serialize_model(const Model& model) {
  if (initializer_bytes(model.graph) > kAutoExternalBytes)
    throw InputError("the model's weights exceed what one protobuf message can hold; "
                     "save it with external data");
  return model_to_proto(model).SerializeAsString();
}

void save_model(const Model& model, const std::string& path, const SaveOptions& opts) {
  const bool external = opts.external_data.value_or(
      model.external_data || initializer_bytes(model.graph) > kAutoExternalBytes);
  onnx::ModelProto mp = model_to_proto(model);
  std::unique_ptr<AtomicFile> data_file;
  if (external) {
    const std::string data_name = std::filesystem::path(path).filename().string() + ".data";
    const std::string data_path =
        (std::filesystem::path(path).parent_path() / data_name).string();
    data_file = std::make_unique<AtomicFile>(data_path);
    uint64_t offset = 0;
    for (auto& t : *mp.mutable_graph()->mutable_initializer()) {
      if (!t.has_raw_data() || t.raw_data().size() < opts.external_threshold) continue;
      const uint64_t len = t.raw_data().size();
      data_file->write(t.raw_data());
      t.clear_raw_data();
      t.set_data_location(onnx::TensorProto::EXTERNAL);
      auto add = [&](const char* k, const std::string& v) {
        auto* kv = t.add_external_data();
        kv->set_key(k);
        kv->set_value(v);
      };
      add("location", data_name);
      add("offset", std::to_string(offset));
      add("length", std::to_string(len));
      offset += len;
    }
  }
  std::string bytes;
  if (!mp.SerializeToString(&bytes))
    throw InputError(path + ": the model is too large for one protobuf message; "
                     "save it with external data");
  AtomicFile out(path);
  out.write(bytes);
  if (data_file) data_file->commit();
  out.commit();
}

}  // namespace repq
