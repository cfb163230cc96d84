// What `repq info` shows: a model's interface, ops, parameters and convolutions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "repq/ir/graph.h"

namespace repq {

struct ConvSummary {
  std::string name;  // node name (or its first output when unnamed)
  std::string op_type;  // Conv or ConvTranspose
  int64_t in_channels = 0, out_channels = 0;
  std::vector<int64_t> kernel, strides, pads, dilations;
  int64_t groups = 1;
  bool has_bias = false;
  bool depthwise() const { return groups > 1 && groups == in_channels && in_channels == out_channels; }
};

// A re-parameterizable block that `repq fuse` would fold (filled by add_reparam_blocks() in
// repq/passes/fuse.h; summarize() leaves these empty).
struct BlockSummary {
  std::string kind;  // RepVGG, QARepVGG, MobileOne, ... (docs/fuse.md)
  std::string input, output;
  size_t nodes = 0;  // nodes folded into one Conv
  int64_t in_channels = 0, out_channels = 0, groups = 1;
  std::vector<int64_t> kernel, strides;
};

// A block that looks re-parameterizable but cannot be folded exactly, and why.
struct NotFoldableSummary {
  std::string node, op, reason;
};

struct ModelSummary {
  std::string path;
  int64_t ir_version = 0;
  std::vector<OpsetImport> opsets;
  std::string producer_name, producer_version, graph_name;
  std::vector<ValueInfo> inputs, outputs;
  std::map<std::string, size_t> op_histogram;
  size_t node_count = 0;
  int64_t parameter_count = 0;  // elements of all initializers
  uint64_t parameter_bytes = 0;
  std::map<std::string, int64_t> parameters_by_dtype;
  std::vector<ConvSummary> convs;
  bool blocks_analysed = false;  // the two lists below were filled
  std::vector<BlockSummary> reparam_blocks;
  std::vector<NotFoldableSummary> not_foldable;
};

ModelSummary summarize(const Model& m, const std::string& path);
// The JSON document of `repq info --json` (schema: docs/cli-json.md).
std::string summary_to_json(const ModelSummary& s);
// The human-readable view.
std::string summary_to_text(const ModelSummary& s);

}  // namespace repq
