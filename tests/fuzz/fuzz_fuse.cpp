// libFuzzer target: ONNX bytes -> parse_model -> the `repq fuse` path (find regions, fold,
// verify each fold with the executor on random input, apply) -> JSON and text reports ->
// serialize_model -> parse_model again (the fused model must stay loadable).
//
// Sizes are capped before fusing so each run stays fast: folding a chain of convolutions
// composes their kernels (a chain's receptive field grows with the product of its strides),
// and the verification runs the block on an input that grows with that receptive field.
// Models over the caps are skipped (the loader's own limits are fuzzed by fuzz_onnx_load; the
// fuse path's behaviour on huge compositions is covered by tests, not by fuzzing).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "repq/error.h"
#include "repq/ir/graph_utils.h"
#include "repq/ir/onnx_io.h"
#include "repq/passes/fuse.h"

namespace {

constexpr int64_t kMaxDim = 16;       // any dim of an initializer or attribute tensor
constexpr int64_t kMaxAttrInt = 16;   // |value| of any int attribute
constexpr int64_t kMaxField = 16;     // receptive field and stride product of any path
constexpr size_t kMaxNodes = 64;

// Largest receptive field of any path through windowed nodes (Conv, pools): along a path,
// rf += (k - 1) * d * (product of the strides before), in topological order.
bool field_small_enough(const repq::Graph& g) {
  struct Field {
    int64_t rf = 1, stride = 1;
  };
  std::map<std::string, Field> at;  // per value; absent: a graph input or initializer
  for (size_t i : repq::topo_order(g)) {
    const repq::Node& n = g.nodes[i];
    Field f;
    for (const auto& in : n.inputs) {
      const auto it = at.find(in);
      if (it == at.end()) continue;
      f.rf = std::max(f.rf, it->second.rf);
      f.stride = std::max(f.stride, it->second.stride);
    }
    const bool windowed = n.has_attr("kernel_shape") || n.has_attr("strides") ||
                          n.has_attr("dilations") || n.op_type == "Conv" ||
                          n.op_type == "ConvTranspose";
    if (windowed) {
      int64_t k = kMaxDim;  // kernel_shape may be left out (taken from the weight)
      if (n.has_attr("kernel_shape")) {
        k = 1;
        for (int64_t v : n.attr_ints("kernel_shape")) k = std::max(k, v);
      }
      int64_t d = 1, st = 1;
      for (int64_t v : n.attr_ints("dilations")) d = std::max(d, v);
      for (int64_t v : n.attr_ints("strides")) st = std::max(st, v);
      f.rf += (k - 1) * d * f.stride;  // all factors <= 16 and f.* <= kMaxField: no overflow
      f.stride *= st;
      if (f.rf > kMaxField || f.stride > kMaxField) return false;
    }
    for (const auto& out : n.outputs) at[out] = f;
  }
  return true;
}

bool small_enough(const repq::Model& m) {
  const repq::Graph& g = m.graph;
  if (g.nodes.size() > kMaxNodes) return false;
  const auto small_tensor = [](const repq::Tensor& t) {
    for (int64_t d : t.shape())
      if (d > kMaxDim) return false;
    return true;
  };
  for (const auto& name : g.initializer_names())
    if (!small_tensor(*g.initializer(name))) return false;
  for (const auto& n : g.nodes) {
    for (const auto& a : n.attributes) {
      if (a.kind == repq::Attribute::Kind::kInt && (a.i > kMaxAttrInt || a.i < -kMaxAttrInt))
        return false;
      for (int64_t v : a.ints)
        if (v > kMaxAttrInt || v < -kMaxAttrInt) return false;
      if (a.kind == repq::Attribute::Kind::kTensor && !small_tensor(a.t)) return false;
    }
  }
  return field_small_enough(g);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  repq::LoadOptions opts;
  opts.max_total_tensor_bytes = 1u << 20;
  opts.max_nodes = static_cast<int64_t>(kMaxNodes);
  try {
    repq::Model m = repq::parse_model(bytes, "fuzz.onnx", "", opts);
    if (!small_enough(m)) return 0;
    repq::FuseOptions fo;
    fo.verify = true;
    fo.threads = 1;
    repq::FuseReport rep = repq::fuse_branches(m, fo);
    rep.path = "fuzz.onnx";
    (void)repq::fuse_report_to_json(rep);
    (void)repq::fuse_report_to_text(rep);
    const std::string again = repq::serialize_model(m);
    (void)repq::parse_model(again, "fuzz-fused.onnx", "", opts);
  } catch (const repq::InputError&) {
    // A refusal with a message is the expected answer to a bad model. InternalError (a
    // broken invariant, e.g. a fused model that no longer loads) escapes: a finding.
  }
  return 0;
}
