// QuantPlan basics: target names, lookups, and the model digest that ties a plan to the float
// graph it was made for (docs/plan.md).
#include "repq/quant/plan.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>

#include "repq/error.h"

namespace repq::quant {

std::string target_name(Target t) {
  switch (t) {
    case Target::kOrt: return "ort";
    case Target::kTensorRT: return "tensorrt";
  }
  return "ort";
}

Target parse_target(std::string_view name) {
  if (name == "ort") return Target::kOrt;
  if (name == "tensorrt") return Target::kTensorRT;
  throw InputError("--target: unknown target '" + std::string(name) +
                   "' (valid: ort, tensorrt)");
}

const ActivationQuant* QuantPlan::activation(const std::string& tensor) const {
  for (const auto& a : activations)
    if (a.tensor == tensor) return &a;
  return nullptr;
}

const LayerQuant* QuantPlan::layer(const std::string& node) const {
  for (const auto& l : layers)
    if (l.node == node) return &l;
  return nullptr;
}

namespace {

// FNV-1a, 64 bit, over a framed byte stream: every string and byte run is preceded by its
// length and every record by a one-letter tag, so two different graphs cannot produce the same
// stream by shifting bytes from one field into the next.
class Fnv1a64 {
 public:
  void bytes(const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    uint64_t h = h_;
    for (size_t i = 0; i < n; ++i) {
      h ^= p[i];
      h *= 0x100000001b3ULL;
    }
    h_ = h;
  }
  void u64(uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));  // little endian
    bytes(b, 8);
  }
  void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
  void tag(char c) { bytes(&c, 1); }
  void str(std::string_view s) {
    u64(s.size());
    bytes(s.data(), s.size());
  }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h_));
    return buf;
  }

 private:
  uint64_t h_ = 0xcbf29ce484222325ULL;
};

void hash_tensor(Fnv1a64& h, const Tensor& t) {
  h.tag('T');
  h.i64(static_cast<int64_t>(t.dtype()));
  h.u64(t.rank());
  for (int64_t d : t.shape()) h.i64(d);
  if (t.dtype() == DType::kString) {
    h.u64(t.string_data().size());
    for (const auto& s : t.string_data()) h.str(s);
  } else {
    h.str(t.bytes());
  }
}

void hash_attribute(Fnv1a64& h, const Attribute& a) {
  // The attribute's doc string is deliberately left out.
  h.tag('A');
  h.str(a.name);
  h.i64(static_cast<int64_t>(a.kind));
  switch (a.kind) {
    case Attribute::Kind::kFloat: h.u64(std::bit_cast<uint32_t>(a.f)); break;
    case Attribute::Kind::kInt: h.i64(a.i); break;
    case Attribute::Kind::kString: h.str(a.s); break;
    case Attribute::Kind::kTensor: hash_tensor(h, a.t); break;
    case Attribute::Kind::kFloats:
      h.u64(a.floats.size());
      for (float f : a.floats) h.u64(std::bit_cast<uint32_t>(f));
      break;
    case Attribute::Kind::kInts:
      h.u64(a.ints.size());
      for (int64_t v : a.ints) h.i64(v);
      break;
    case Attribute::Kind::kStrings:
      h.u64(a.strings.size());
      for (const auto& s : a.strings) h.str(s);
      break;
    case Attribute::Kind::kOpaque: h.str(a.opaque); break;
  }
}

void hash_value(Fnv1a64& h, char tag, const ValueInfo& v) {
  // Names and element types only: the plan does not depend on a (symbolic) batch size.
  h.tag(tag);
  h.str(v.name);
  h.i64(static_cast<int64_t>(v.elem_type));
}

}  // namespace

std::string model_digest(const Model& m) {
  Fnv1a64 h;
  h.str("repq.model_digest/1");
  // Opsets, sorted (their order in the file has no meaning).
  std::vector<std::pair<std::string, int64_t>> opsets;
  for (const auto& o : m.opsets) opsets.emplace_back(o.domain == "ai.onnx" ? "" : o.domain, o.version);
  std::sort(opsets.begin(), opsets.end());
  h.u64(opsets.size());
  for (const auto& [domain, version] : opsets) {
    h.tag('O');
    h.str(domain);
    h.i64(version);
  }
  const Graph& g = m.graph;
  h.u64(g.inputs.size());
  for (const auto& v : g.inputs) hash_value(h, 'I', v);
  h.u64(g.outputs.size());
  for (const auto& v : g.outputs) hash_value(h, 'U', v);
  // Nodes in file order: name, op, domain, inputs, outputs, attributes (not doc strings).
  h.u64(g.nodes.size());
  for (const auto& n : g.nodes) {
    h.tag('N');
    h.str(n.name);
    h.str(n.op_type);
    h.str(n.domain == "ai.onnx" ? "" : n.domain);
    h.u64(n.inputs.size());
    for (const auto& s : n.inputs) h.str(s);
    h.u64(n.outputs.size());
    for (const auto& s : n.outputs) h.str(s);
    h.u64(n.attributes.size());
    for (const auto& a : n.attributes) hash_attribute(h, a);
  }
  // Initializers sorted by name (their storage order has no meaning): name, dtype, shape, bytes.
  std::vector<std::string> names = g.initializer_names();
  std::sort(names.begin(), names.end());
  h.u64(names.size());
  for (const auto& name : names) {
    h.tag('W');
    h.str(name);
    hash_tensor(h, *g.initializer(name));
  }
  return h.hex();
}

}  // namespace repq::quant
