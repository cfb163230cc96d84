// Which graph nodes are linear maps of one input (or sums of two), as ConvMaps; constants
// (initializers, possibly behind Identity nodes as PyTorch's PRESERVE export writes them) and
// the channel count of every value the graph lets us infer.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "repq/ir/graph.h"
#include "repq/ir/graph_utils.h"
#include "repq/passes/conv_map.h"

namespace repq::passes {

class GraphFacts {
 public:
  explicit GraphFacts(const Graph& g, const MapLimits& limits = {});
  const MapLimits& limits() const { return limits_; }
  const Graph& graph() const { return g_; }
  const GraphIndex& index() const { return index_; }
  // The initializer behind `name` (following Identity nodes), or nullptr.
  const Tensor* constant(const std::string& name) const;
  // Channels (dim 1) of a value; -1 when unknown.
  int64_t channels(const std::string& name) const;

 private:
  void infer_channels();
  const Graph& g_;
  MapLimits limits_;
  GraphIndex index_;
  std::map<std::string, int64_t, std::less<>> channels_;
};

struct LinearOp {
  enum class Kind { kNone, kUnary, kSum };
  Kind kind = Kind::kNone;
  std::vector<std::string> data;  // kUnary: the input; kSum: the two summed inputs
  bool negate_second = false;     // Sub: data[0] - data[1]
  ConvMap map;                    // kUnary
  std::string reason;             // kNone: why the node is not a foldable linear map
};

LinearOp classify_node(const GraphFacts& facts, const Node& n);

}  // namespace repq::passes
