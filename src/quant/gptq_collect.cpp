// GPTQ input statistics (gptq.h): which layers GPTQ handles, and collect_hessians: one
// streamed pass of the executor over the calibration data feeding a HessianAccumulator
// (src/quant/gptq_hessian.cpp). quantize() itself feeds the accumulator from calibration's
// second pass instead.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "repq/common/progress.h"
#include "repq/error.h"
#include "repq/quant/gptq.h"
#include "repq/runtime/executor.h"

namespace repq::quant {

namespace {

const Node* node_named(const Graph& g, const std::string& name) {
  for (const Node& n : g.nodes)
    if (n.name == name) return &n;
  return nullptr;
}

}  // namespace

std::string gptq_unsupported_reason(const Model& fused, const LayerQuant& l) {
  const Tensor* w = fused.graph.initializer(l.weight);
  if (w && w->dtype() == DType::kFloat32 && l.scales.size() < 2 && w->rank() > 0 && w->dim(0) > 1 &&
      node_named(fused.graph, l.node))
    return "per-tensor scale";
  return gptq_geometry_unsupported_reason(fused, l);
}

std::string gptq_geometry_unsupported_reason(const Model& fused, const LayerQuant& l) {
  const Node* n = node_named(fused.graph, l.node);
  if (!n) return "not a node of the model";
  const Tensor* w = fused.graph.initializer(l.weight);
  if (!w || w->dtype() != DType::kFloat32) return "weight is not a float32 initializer";
  if (n->op_type == "Gemm") {
    if (n->attr_int("transB", 0) == 0 || n->attr_int("transA", 0) != 0 || w->rank() != 2)
      return "Gemm without transB = 1";
    if (w->dim(1) > kMaxGptqColumns) return "more than 2304 input columns";
    return "";
  }
  if (n->op_type != "Conv") return "op " + n->op_type;
  if (w->rank() != 4) return "not a 2-D convolution";
  const std::string pad = n->attr_string("auto_pad", "NOTSET");
  if (pad != "NOTSET" && pad != "VALID" && pad != "SAME_UPPER" && pad != "SAME_LOWER")
    return "auto_pad " + pad;
  if (n->attr_ints("strides", {1, 1}).size() != 2 || n->attr_ints("dilations", {1, 1}).size() != 2 ||
      n->attr_ints("pads", {0, 0, 0, 0}).size() != 4)
    return "unexpected conv attributes";
  const int64_t g = n->attr_int("group", 1);
  if (g < 1 || w->dim(0) % g != 0) return "bad group";
  if (w->dim(1) * w->dim(2) * w->dim(3) > kMaxGptqColumns) return "more than 2304 input columns";
  return "";
}

std::map<std::string, LayerHessian> collect_hessians(const Model& model, const Model& fused,
                                                     const data::Dataset& dataset,
                                                     const std::vector<LayerQuant>& layers,
                                                     const calib::CollectOptions& opts) {
  std::vector<LayerQuant> supported;
  for (const LayerQuant& l : layers)
    if (gptq_unsupported_reason(fused, l).empty()) supported.push_back(l);
  HessianAccumulator acc(model, fused, supported, opts.threads);
  if (acc.empty()) return acc.finish();

  Executor ex(model, ExecutorOptions{opts.threads});
  if (ex.input_names().size() != 1)
    throw InputError("gptq: the model has " + std::to_string(ex.input_names().size()) +
                     " inputs; calibration feeds exactly one");
  const int64_t available = static_cast<int64_t>(dataset.size());
  const int64_t limit = opts.num_samples > 0 ? std::min(opts.num_samples, available) : available;
  ProgressBar bar("gptq statistics", limit, opts.progress);
  const Observer observer = [&](const std::string& name, const Tensor& v) { acc.observe(name, v); };
  data::BatchReader reader(dataset, opts.batch);
  int64_t done = 0;
  while (done < limit) {
    auto batch = reader.next();
    if (!batch) break;
    Tensor input = std::move(batch->input);
    if (done + input.dim(0) > limit) input = data::first_rows(input, limit - done);  // the last batch
    ex.run({{ex.input_names()[0], input}}, observer);
    done += input.dim(0);
    bar.update(done);
  }
  return acc.finish();
}

}  // namespace repq::quant
