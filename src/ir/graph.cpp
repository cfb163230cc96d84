#include "repq/ir/graph.h"

#include <algorithm>

#include "repq/error.h"

namespace repq {

Attribute Attribute::make_int(std::string name, int64_t v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Kind::kInt;
  a.i = v;
  return a;
}
Attribute Attribute::make_float(std::string name, float v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Kind::kFloat;
  a.f = v;
  return a;
}
Attribute Attribute::make_string(std::string name, std::string v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Kind::kString;
  a.s = std::move(v);
  return a;
}
Attribute Attribute::make_ints(std::string name, std::vector<int64_t> v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Kind::kInts;
  a.ints = std::move(v);
  return a;
}
Attribute Attribute::make_floats(std::string name, std::vector<float> v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Kind::kFloats;
  a.floats = std::move(v);
  return a;
}
Attribute Attribute::make_tensor(std::string name, Tensor v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Kind::kTensor;
  a.t = std::move(v);
  return a;
}

const Attribute* Node::attr(std::string_view attr_name) const {
  for (const auto& a : attributes)
    if (a.name == attr_name) return &a;
  return nullptr;
}

namespace {
[[noreturn]] void wrong_kind(const Node& n, std::string_view attr_name, const char* want) {
  throw InputError("node " + n.describe() + ": attribute '" + std::string(attr_name) +
                   "' is not " + want);
}
}  // namespace

int64_t Node::attr_int(std::string_view attr_name, int64_t fallback) const {
  const Attribute* a = attr(attr_name);
  if (!a) return fallback;
  if (a->kind != Attribute::Kind::kInt) wrong_kind(*this, attr_name, "an int");
  return a->i;
}
float Node::attr_float(std::string_view attr_name, float fallback) const {
  const Attribute* a = attr(attr_name);
  if (!a) return fallback;
  if (a->kind == Attribute::Kind::kInt) return static_cast<float>(a->i);
  if (a->kind != Attribute::Kind::kFloat) wrong_kind(*this, attr_name, "a float");
  return a->f;
}
std::string Node::attr_string(std::string_view attr_name, std::string fallback) const {
  const Attribute* a = attr(attr_name);
  if (!a) return fallback;
  if (a->kind != Attribute::Kind::kString) wrong_kind(*this, attr_name, "a string");
  return a->s;
}
std::vector<int64_t> Node::attr_ints(std::string_view attr_name,
                                     std::vector<int64_t> fallback) const {
  const Attribute* a = attr(attr_name);
  if (!a) return fallback;
  if (a->kind != Attribute::Kind::kInts) wrong_kind(*this, attr_name, "a list of ints");
  return a->ints;
}
std::vector<float> Node::attr_floats(std::string_view attr_name,
                                     std::vector<float> fallback) const {
  const Attribute* a = attr(attr_name);
  if (!a) return fallback;
  if (a->kind != Attribute::Kind::kFloats) wrong_kind(*this, attr_name, "a list of floats");
  return a->floats;
}
void Node::set_attr(Attribute a) {
  for (auto& x : attributes) {
    if (x.name == a.name) {
      x = std::move(a);
      return;
    }
  }
  attributes.push_back(std::move(a));
}
void Node::remove_attr(std::string_view attr_name) {
  std::erase_if(attributes, [&](const Attribute& a) { return a.name == attr_name; });
}
std::string Node::describe() const {
  std::string id = !name.empty() ? name : (!outputs.empty() ? outputs[0] : std::string("?"));
  return "'" + id + "' (" + (domain.empty() ? "" : domain + ":") + op_type + ")";
}

Shape ValueInfo::shape() const {
  Shape s;
  s.reserve(dims.size());
  for (const auto& d : dims) s.push_back(d.known() ? d.value : -1);
  return s;
}
bool ValueInfo::fully_known() const {
  return has_shape && std::all_of(dims.begin(), dims.end(), [](const Dim& d) { return d.known(); });
}
std::string ValueInfo::type_str() const {
  if (!opaque_type.empty()) return "non-tensor";
  std::string s = dtype_name(elem_type);
  if (!has_shape) return s + "[?]";
  s += "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ",";
    s += dims[i].known() ? std::to_string(dims[i].value)
                         : (dims[i].param.empty() ? std::string("?") : dims[i].param);
  }
  return s + "]";
}

bool Graph::has_initializer(std::string_view n) const { return inits_.find(n) != inits_.end(); }
const Tensor* Graph::initializer(std::string_view n) const {
  auto it = inits_.find(n);
  return it == inits_.end() ? nullptr : &it->second;
}
Tensor* Graph::mutable_initializer(std::string_view n) {
  auto it = inits_.find(n);
  return it == inits_.end() ? nullptr : &it->second;
}
void Graph::set_initializer(const std::string& n, Tensor t) {
  auto [it, inserted] = inits_.insert_or_assign(n, std::move(t));
  if (inserted) init_order_.push_back(n);
}
void Graph::remove_initializer(std::string_view n) {
  auto it = inits_.find(n);
  if (it == inits_.end()) return;
  inits_.erase(it);
  std::erase(init_order_, std::string(n));
}
std::vector<const ValueInfo*> Graph::runtime_inputs() const {
  std::vector<const ValueInfo*> out;
  for (const auto& vi : inputs)
    if (!has_initializer(vi.name)) out.push_back(&vi);
  return out;
}
const ValueInfo* Graph::find_value_info(std::string_view n) const {
  for (const auto* list : {&inputs, &outputs, &value_info})
    for (const auto& vi : *list)
      if (vi.name == n) return &vi;
  return nullptr;
}

int64_t Model::opset() const {
  for (const auto& o : opsets)
    if (o.domain.empty() || o.domain == "ai.onnx") return o.version;
  return 0;
}
void Model::set_opset(int64_t version) {
  for (auto& o : opsets) {
    if (o.domain.empty() || o.domain == "ai.onnx") {
      o.version = version;
      return;
    }
  }
  opsets.push_back({"", version});
}

}  // namespace repq
