// repq's graph IR: a Model holds a Graph of Nodes connected by value names, as in ONNX.
// Everything repq does not interpret (unknown ops, metadata, functions, doc strings,
// non-tensor types, subgraph attributes) is carried through unchanged.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "repq/ir/tensor.h"

namespace repq {

struct Attribute {
  enum class Kind { kFloat, kInt, kString, kTensor, kFloats, kInts, kStrings, kOpaque };
  std::string name;
  Kind kind = Kind::kInt;
  float f = 0.0f;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  // kOpaque: the serialized onnx AttributeProto (graphs, sparse tensors, type protos,
  // attribute references in functions). Written back byte for byte.
  std::string opaque;
  std::string doc_string;

  static Attribute make_int(std::string name, int64_t v);
  static Attribute make_float(std::string name, float v);
  static Attribute make_string(std::string name, std::string v);
  static Attribute make_ints(std::string name, std::vector<int64_t> v);
  static Attribute make_floats(std::string name, std::vector<float> v);
  static Attribute make_tensor(std::string name, Tensor v);
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  // "" for the default ONNX domain
  std::vector<std::string> inputs;   // "" marks an omitted optional input
  std::vector<std::string> outputs;  // "" marks an omitted optional output
  std::vector<Attribute> attributes;
  std::string doc_string;

  const Attribute* attr(std::string_view attr_name) const;
  bool has_attr(std::string_view attr_name) const { return attr(attr_name) != nullptr; }
  int64_t attr_int(std::string_view attr_name, int64_t fallback) const;
  float attr_float(std::string_view attr_name, float fallback) const;
  std::string attr_string(std::string_view attr_name, std::string fallback) const;
  std::vector<int64_t> attr_ints(std::string_view attr_name,
                                 std::vector<int64_t> fallback = {}) const;
  std::vector<float> attr_floats(std::string_view attr_name,
                                 std::vector<float> fallback = {}) const;
  // Adds or replaces.
  void set_attr(Attribute a);
  void remove_attr(std::string_view attr_name);
  // "'conv_7' (Conv)"; uses the first output when the node has no name.
  std::string describe() const;
};

// One dimension of a value's shape: a number, a symbolic name, or unknown.
struct Dim {
  int64_t value = -1;  // >= 0 when known
  std::string param;   // symbolic name (e.g. "batch") when value < 0
  bool known() const { return value >= 0; }
};

// The declared type of a graph input/output or intermediate value.
struct ValueInfo {
  std::string name;
  DType elem_type = DType::kUndefined;
  bool has_shape = false;
  std::vector<Dim> dims;
  std::string doc_string;
  // Non-tensor types (sequences, maps, optionals): the serialized TypeProto.
  std::string opaque_type;

  // The shape with unknown/symbolic dims as -1.
  Shape shape() const;
  bool fully_known() const;
  // "float32[batch,3,224,224]"
  std::string type_str() const;
};

class Graph {
 public:
  std::string name;
  std::string doc_string;
  std::vector<Node> nodes;  // in file order; see topo_order() in graph_utils.h
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::vector<ValueInfo> value_info;  // known types of intermediate values

  // Initializers by name; the order of insertion is kept for saving.
  bool has_initializer(std::string_view n) const;
  const Tensor* initializer(std::string_view n) const;
  Tensor* mutable_initializer(std::string_view n);
  void set_initializer(const std::string& n, Tensor t);
  void remove_initializer(std::string_view n);
  const std::vector<std::string>& initializer_names() const { return init_order_; }

  // Graph inputs that are not initializers (the ones a user feeds).
  std::vector<const ValueInfo*> runtime_inputs() const;
  const ValueInfo* find_value_info(std::string_view n) const;

 private:
  std::map<std::string, Tensor, std::less<>> inits_;
  std::vector<std::string> init_order_;
};

struct OpsetImport {
  std::string domain;  // "" or "ai.onnx" for the default domain
  int64_t version = 0;
};

struct Model {
  int64_t ir_version = 8;
  std::vector<OpsetImport> opsets;
  std::string producer_name;
  std::string producer_version;
  std::string domain;
  int64_t model_version = 0;
  std::string doc_string;
  std::vector<std::pair<std::string, std::string>> metadata;
  // Everything else of the ModelProto (functions, training_info, ...), serialized with
  // the graph, opsets and the fields above cleared. Written back as it was.
  std::string opaque_rest;
  // True when the file it was loaded from kept tensors in external data files; saving
  // then does the same unless SaveOptions says otherwise.
  bool external_data = false;
  Graph graph;

  // Version of the default ("" / "ai.onnx") domain; 0 when absent.
  int64_t opset() const;
  void set_opset(int64_t version);
};

}  // namespace repq
