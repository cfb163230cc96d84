#include "support/quant_test_util.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "repq/runtime/executor.h"
#include "support/test_util.h"

namespace repq::test {

Model named_model(const std::string& graph_text, int opset) {
  Model m = parse_onnx_text("<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) + "]>\n" +
                            graph_text);
  for (auto& n : m.graph.nodes) n.name = n.outputs.at(0);
  return m;
}

std::string small_quant_net(const std::string& batch, int c) {
  const std::string k = std::to_string(c), k2 = std::to_string(2 * c);
  return "g (float[" + batch + ",3,8,8] x) => (float[" + batch + ",10] y)\n<float[" + k + ",3,3,3] w1, float[" +
         k + "] b1, float[" + k + "," + k + ",3,3] w2, float[" + k + "] b2, float[" + k + "," + k +
         ",1,1] w3,\n float[10," + k2 + "] wf, float[10] bf>\n" + R"({
  c1 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w1, b1)
  r1 = Relu (c1)
  c2 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (r1, w2, b2)
  c3 = Conv <kernel_shape = [1,1]> (r1, w3)
  s = Add (c2, c3)
  r2 = Relu (s)
  cat = Concat <axis = 1> (r1, r2)
  p = MaxPool <kernel_shape = [2,2], strides = [2,2]> (cat)
  gp = GlobalAveragePool (p)
  f = Flatten (gp)
  y = Gemm <transB = 1> (f, wf, bf)
})";
}

quant::QuantPlan minmax_plan(const Model& m, const quant::QuantPoints& pts, const Tensor& x,
                             quant::Target target) {
  std::map<std::string, std::pair<double, double>> range;
  for (const auto& p : pts.activations) range[p.tensor] = {0.0, 0.0};
  Executor ex(m, {2});
  ex.run({{m.graph.runtime_inputs()[0]->name, x}}, [&](const std::string& n, const Tensor& v) {
    if (!range.count(n)) return;
    for (float f : v.span<float>())
      range[n] = {std::min(range[n].first, double(f)), std::max(range[n].second, double(f))};
  });
  for (const auto& p : pts.activations)  // shared scales: the union range
    if (!p.shared_with.empty()) {
      auto& r = range[p.shared_with];
      r = {std::min(r.first, range[p.tensor].first), std::max(r.second, range[p.tensor].second)};
    }
  const bool ort = target == quant::Target::kOrt;
  quant::QuantPlan plan;
  plan.model_digest = quant::model_digest(m);
  plan.target = target;
  for (const auto& p : pts.activations) {
    const auto [lo, hi] = range[p.shared_with.empty() ? p.tensor : p.shared_with];
    quant::ActivationQuant a;
    a.tensor = p.tensor;
    a.calibrated_on = p.calibrated_on.empty() ? p.tensor : p.calibrated_on;
    a.non_negative = p.non_negative;
    a.shared_with = p.shared_with;
    a.dtype = ort ? DType::kUInt8 : DType::kInt8;
    a.scale = std::max(static_cast<float>(ort ? (hi - lo) / 255 : std::max(-lo, hi) / 127), 1e-8f);
    a.zero_point = ort ? static_cast<int32_t>(std::lround(-lo / a.scale)) : 0;
    plan.activations.push_back(a);
  }
  for (auto l : pts.layers) {
    const Tensor& w = *m.graph.initializer(l.weight);
    const int64_t ch = w.dim(size_t(l.weight_axis));
    int64_t inner = 1;
    for (size_t k = size_t(l.weight_axis) + 1; k < w.rank(); ++k) inner *= w.dim(k);
    l.scales.assign(size_t(ch), 1e-8f);
    for (int64_t i = 0; i < w.numel(); ++i) {
      float& s = l.scales[size_t((i / inner) % ch)];
      s = std::max(s, std::fabs(w.data<float>()[i]) / 127.0f);
    }
    if (l.encoding.empty()) l.encoding = "per-channel";
    plan.layers.push_back(l);
  }
  return plan;
}

Tensor batch_rows(const Tensor& x, int64_t from, int64_t n) {
  Shape s = x.shape();
  const int64_t per = x.numel() / s[0];
  s[0] = n;
  std::vector<float> v(x.data<float>() + from * per, x.data<float>() + (from + n) * per);
  return Tensor::from_vector<float>(s, v);
}

data::Dataset fashion_calib(int64_t limit) {
  data::DatasetOptions o;
  o.preprocess = data::Preprocess::from_preset("none");
  o.preprocess.set("color", "grey");
  o.preprocess.set("mean", "0.2860");
  o.preprocess.set("std", "0.3530");
  o.limit = limit;
  o.threads = 2;
  return data::Dataset::open(source_dir() + "/models/data/fashion_mnist/calib", o);
}

}  // namespace repq::test
