// The executor's kernel interface: a factory per op type turns a node into a prepared kernel
// (attributes parsed and checked once), which the executor then calls on every run.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "repq/ir/graph.h"

namespace repq::runtime {

class ThreadPool;
class TensorCache;

// What a kernel factory sees when the executor prepares a node.
struct NodeContext {
  const Node& node;
  int64_t opset;  // version of the default domain
  // The value of an initializer by name (nullptr when the value is computed at run time).
  std::function<const Tensor*(const std::string&)> constant;

  // The constant value of input i, or nullptr (omitted, or computed at run time).
  const Tensor* constant_input(size_t i) const {
    if (i >= node.inputs.size() || node.inputs[i].empty()) return nullptr;
    return constant(node.inputs[i]);
  }
};

// An element-wise activation that a kernel applies to its output as it goes (the executor
// fuses Conv -> Relu/Clip this way when nobody observes the Conv's own output).
struct Activation {
  enum class Kind { kNone, kRelu, kClip };
  Kind kind = Kind::kNone;
  float lo = 0.0f, hi = 0.0f;  // kClip bounds

  bool none() const { return kind == Kind::kNone; }
  void apply(float* p, int64_t n) const {
    if (kind == Kind::kRelu) {
      for (int64_t i = 0; i < n; ++i) p[i] = p[i] < 0.0f ? 0.0f : p[i];
    } else if (kind == Kind::kClip) {
      for (int64_t i = 0; i < n; ++i) p[i] = p[i] < lo ? lo : (p[i] > hi ? hi : p[i]);
    }
  }
};

// One call of a prepared kernel: its inputs and the slots for its outputs.
class KernelCall {
 public:
  KernelCall(const Node& node, std::vector<const Tensor*> inputs, std::vector<Tensor*> dying,
             ThreadPool& pool, TensorCache* cache)
      : node_(node), inputs_(std::move(inputs)), dying_(std::move(dying)), pool_(pool),
        cache_(cache), outputs_(node.outputs.size()) {}

  const Node& node() const { return node_; }
  size_t num_inputs() const { return inputs_.size(); }
  // False when input i is omitted ("" in the node, or past the end).
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i] != nullptr; }
  // Input i; throws InputError when it is omitted.
  const Tensor& input(size_t i) const;
  // Input i by value: moved out of the executor when this node is its last user (so writing
  // to it does not copy), otherwise a copy sharing the buffer (copy-on-write).
  Tensor take_input(size_t i);

  size_t num_outputs() const { return outputs_.size(); }
  // False when output i is omitted ("" in the node).
  bool wants_output(size_t i) const {
    return i < node_.outputs.size() && !node_.outputs[i].empty();
  }
  void set_output(size_t i, Tensor t) { outputs_.at(i) = std::move(t); }
  std::vector<Tensor>& outputs() { return outputs_; }

  ThreadPool& pool() { return pool_; }
  // Set by the executor for kernels that support it (Conv); others never see one.
  Activation fused_activation;
  // A new tensor for an output whose contents are unspecified (maybe a recycled buffer): the
  // kernel must write every element. Call from the kernel's thread, not inside pool tasks.
  Tensor alloc(DType dtype, Shape shape);

 private:
  const Node& node_;
  std::vector<const Tensor*> inputs_;  // nullptr: omitted
  std::vector<Tensor*> dying_;         // non-null: freed after this node, may be moved out
  ThreadPool& pool_;
  TensorCache* cache_;
  std::vector<Tensor> outputs_;
};

using Kernel = std::function<void(KernelCall&)>;
// Parses and checks the node's attributes (throwing InputError with the problem, without the
// node's name: the executor adds it) and returns the kernel.
using KernelFactory = Kernel (*)(const NodeContext&);

// The factory for an op of the default domain, or nullptr.
KernelFactory find_kernel(const std::string& domain, const std::string& op_type);

}  // namespace repq::runtime
