// The float reference executor: runs a Model's graph on batches of float32 tensors.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "repq/ir/graph.h"

namespace repq {

struct ExecutorOptions {
  int threads = 0;  // 0: all cores (std::thread::hardware_concurrency)
  // Runs DequantizeLinear(x_q) -> Conv(DQ(int8 w), DQ(int32 bias)) -> QuantizeLinear groups as
  // one integer kernel with ONNX Runtime's QLinearConv arithmetic (bit-exact with ORT). The
  // group's Conv/DQ outputs are still computed (in float) when an observer or caller asks.
  // Likewise DQ, DQ -> Add -> Q (QLinearAdd), DQ -> GlobalAveragePool -> Q
  // (QLinearGlobalAveragePool) and Gemm(DQ, DQ, DQ) with a float output (QGemm), matched as
  // ORT 1.30's QDQ selectors match them (src/runtime/executor_plan.cpp).
  bool exact_qdq = true;
};

// Sees every tensor the executor produces (graph inputs included), in execution order, as it
// is computed. The reference is only valid during the call. Calibration and reports use it.
using Observer = std::function<void(const std::string& name, const Tensor& value)>;

class Executor {
 public:
  // Prepares the graph (topological order, kernel lookup, last-use analysis). Throws
  // InputError naming the node and op when an op (or an attribute value) is not supported.
  explicit Executor(const Model& model, ExecutorOptions opts = {});
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Runs one forward pass. `inputs` maps graph input names to tensors (float32, or whatever
  // the input's declared type is). Returns the graph outputs by name, plus any names listed in
  // `extra_outputs` (intermediate values kept alive for the caller). Intermediate tensors are
  // freed after their last consumer. Throws InputError on a missing input or a wrong shape.
  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs,
                                    const Observer& observer = nullptr,
                                    const std::vector<std::string>& extra_outputs = {});

  // Names of the runtime inputs (not initializers) and of the outputs, in graph order.
  const std::vector<std::string>& input_names() const;
  const std::vector<std::string>& output_names() const;
  int threads() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// True when the executor has a kernel for this op (default domain, the model's opset).
bool executor_supports(const std::string& domain, const std::string& op_type);

}  // namespace repq
