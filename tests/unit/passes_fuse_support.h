// Helpers for the branch-fusion tests: build a block from ONNX text, fuse it, compare outputs.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "repq/ir/graph_utils.h"
#include "repq/ir/onnx_io.h"
#include "repq/passes/fuse.h"
#include "repq/runtime/executor.h"
#include "support/test_util.h"

namespace repq::test {

// Parses `graph` (opset 13) and makes every BatchNormalization variance positive.
inline Model block_model(const std::string& graph) {
  Model m = parse_onnx_text("<ir_version: 8, opset_import: [\"\" : 13]>\n" + graph);
  for (const auto& n : m.graph.nodes) {
    if (n.op_type != "BatchNormalization") continue;
    Tensor* v = m.graph.mutable_initializer(n.inputs[4]);
    if (!v) continue;
    for (float& x : v->mutable_span<float>()) x = std::fabs(x) + 0.05f;
  }
  return m;
}

inline Tensor random_input(const Shape& s, uint32_t seed = 7) {
  return Tensor::from_vector<float>(s, random_floats(static_cast<size_t>(shape_numel(s)), seed));
}

inline Tensor run_model(const Model& m, const Tensor& x) {
  Executor ex(m, ExecutorOptions{1});
  return ex.run({{ex.input_names().at(0), x}}).at(ex.output_names().at(0));
}

inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double d = 0;
  for (int64_t i = 0; i < a.numel() && i < b.numel(); ++i)
    d = std::max(d, std::fabs(static_cast<double>(a.data<float>()[i]) - b.data<float>()[i]));
  return d;
}

inline std::map<std::string, size_t> ops(const Model& m) { return op_histogram(m.graph); }

// The one Conv node of a fused graph (fails the test when there is not exactly one).
inline const Node* only_conv(const Model& m) {
  const Node* c = nullptr;
  int count = 0;
  for (const auto& n : m.graph.nodes)
    if (n.op_type == "Conv") c = &n, ++count;
  EXPECT_EQ(count, 1);
  return c;
}

// Fuses a copy of `m`, checks outputs before/after on a random input of `in_shape`, and
// returns the fused model through `out`.
inline FuseReport fuse_checked(const Model& m, const Shape& in_shape, Model& out, double tol = 2e-5) {
  out = m;
  FuseReport r = fuse_branches(out);
  const Tensor x = random_input(in_shape);
  const Tensor y0 = run_model(m, x), y1 = run_model(out, x);
  double ref = 0;
  for (float v : y0.span<float>()) ref = std::max(ref, static_cast<double>(std::fabs(v)));
  EXPECT_LE(max_abs_diff(y0, y1), tol * std::max(1.0, ref));
  return r;
}

// Per-channel t = gamma / sqrt(var + eps) and shift beta - mean * t of a BN's initializers.
struct BnFold {
  std::vector<double> t, shift;
};
inline BnFold bn_fold(const Model& m, const std::string& prefix, double eps = 1e-5) {
  const auto get = [&](const char* s) { return m.graph.initializer(prefix + s)->span<float>(); };
  const auto g = get("_s"), b = get("_b"), mu = get("_m"), v = get("_v");
  BnFold f;
  for (size_t i = 0; i < g.size(); ++i) {
    f.t.push_back(g[i] / std::sqrt(static_cast<double>(v[i]) + eps));
    f.shift.push_back(b[i] - mu[i] * f.t.back());
  }
  return f;
}

// "<float[C] p_s, float[C] p_b, float[C] p_m, float[C] p_v>" parameter declarations of a BN.
inline std::string bn_params(const std::string& p, int c) {
  const std::string t = "float[" + std::to_string(c) + "] ";
  return t + p + "_s, " + t + p + "_b, " + t + p + "_m, " + t + p + "_v";
}
inline std::string bn(const std::string& out, const std::string& in, const std::string& p) {
  return out + " = BatchNormalization (" + in + ", " + p + "_s, " + p + "_b, " + p + "_m, " + p + "_v)\n";
}

}  // namespace repq::test
