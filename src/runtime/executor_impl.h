// The executor's prepared state (src/runtime/executor.cpp runs it; executor_plan.cpp plans
// the Conv -> activation fusions and the exact QDQ groups).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "repq/runtime/executor.h"
#include "runtime/kernel.h"
#include "runtime/qdq_kernels.h"
#include "runtime/tensor_cache.h"
#include "runtime/thread_pool.h"

namespace repq {

struct Executor::Impl {
  struct Step {
    const Node* node = nullptr;
    runtime::Kernel kernel;
    std::vector<int> inputs;      // value ids, -1: omitted
    std::vector<int> outputs;     // value ids, -1: omitted
    std::vector<int> last_use;    // values no later step reads
    // Conv whose only consumer is an activation step: its index (fused when nobody observes).
    int fuse_with = -1;
    runtime::Activation activation;  // for Relu / Clip steps: what they compute
  };

  Graph graph;  // own copy: nodes and initializers (buffers are shared, not copied)
  std::vector<Step> steps;
  std::unordered_map<std::string, int> ids;
  std::vector<std::string> names;
  std::vector<std::pair<int, Tensor>> constants;  // initializers (a fed input of that name wins)
  std::vector<int> feedable;                      // value id -> index into graph.inputs or -1
  std::vector<std::string> input_names, output_names;
  std::vector<int> output_ids;
  // Values whose buffer nothing else can hold when they are freed (not inputs, initializers
  // or outputs of ops that may hand out views), so it can be recycled.
  std::vector<char> recyclable;
  // QDQ groups run by an exact integer kernel (on the group's Q step, or on the Gemm step of a
  // QGemm): the group's other steps, skipped when nobody observes or asks for their outputs.
  std::vector<std::vector<int>> qdq_groups;
  runtime::TensorCache cache;
  std::unique_ptr<runtime::ThreadPool> pool;
  int threads = 1;

  int id_of(const std::string& name) {
    auto [it, added] = ids.emplace(name, static_cast<int>(names.size()));
    if (added) names.push_back(name);
    return it->second;
  }
  void plan_fusions(const Model& model);
  void plan_qdq(const runtime::ConstantFn& constant);
  int find_id(const std::string& name) const {
    auto it = ids.find(name);
    return it == ids.end() ? -1 : it->second;
  }
};

}  // namespace repq
