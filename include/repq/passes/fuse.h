// Branch fusion (structural re-parameterization): every maximal linear region of a graph
// (one input value, one output value, made of Conv / BatchNormalization / Identity /
// AveragePool(count_include_pad) / per-channel Mul/Add/Sub/Div nodes, parallel branches summed
// by Add/Sub and chains of maps, every intermediate used only inside) that is exactly one
// convolution is replaced by that Conv with bias. Each fold is checked numerically with the
// executor. Near-misses (blocks that cannot be folded exactly) are left alone and listed.
// See docs/fuse.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "repq/ir/graph.h"
#include "repq/ir/model_summary.h"

namespace repq {

struct FuseOptions {
  bool apply = true;         // false: only analyse (and verify when `verify`)
  bool verify = true;        // run each region before and after on random input
  double tolerance = 1e-4;   // largest accepted |before - after| / max |before| per fold
  uint32_t seed = 1;         // random input of the checks (deterministic)
  int threads = 1;           // executor threads for the checks
  // Limits against hostile models (docs/hostile-inputs.md). A fold over one is not made and
  // is listed as a near-miss with the reason; all geometry is computed with overflow checks.
  int64_t max_kernel_size = 64;                    // taps per spatial axis of a folded kernel
  int64_t max_kernel_elements = int64_t{1} << 26;  // weights of a folded (or regrouped) kernel
  int64_t max_check_elements = int64_t{1} << 24;   // one tensor of a fold's numerical check
};

struct FoldRecord {
  std::string kind;      // RepVGG, QARepVGG, QARepVGG-V2, MobileOne, ACNet, DBB, Conv+BN, BN,
                         // Conv chain, Linear
  std::string input;     // the region's input value
  std::string output;    // its output value (kept as the fused Conv's output)
  std::string conv_name; // name of the fused Conv node
  std::vector<std::string> nodes;  // the region's nodes (names, or first outputs), graph order
  std::vector<std::string> ops;    // their op types
  size_t nodes_before = 0, nodes_after = 1;
  int64_t in_channels = 0, out_channels = 0, groups = 1;
  std::vector<int64_t> kernel, strides, pads, dilations;
  bool verified = false;     // the numerical check ran
  double max_abs_diff = 0;   // max |before - after| on the random input
  double max_rel_diff = 0;   // max_abs_diff / max |before|
  bool passed = true;        // within the tolerance (true when not verified)
  std::string check_error;   // the check could not run (the fold is then not applied)
  bool applied = false;      // the graph was changed
};

struct NearMiss {
  std::string node;    // the node where the fold stops (usually the Add joining the branches)
  std::string op;
  std::string reason;  // "mismatched stride (2 vs 1)", "nonlinearity inside (Relu 'r1')", ...
};

struct FuseReport {
  std::string path;
  double tolerance = 1e-4;
  bool dry_run = false;
  size_t nodes_before = 0, nodes_after = 0;
  std::vector<FoldRecord> folds;
  std::vector<NearMiss> near_misses;
  // Every verified fold is within the tolerance.
  bool passed() const;
};

// Finds the regions and near-misses; with opts.apply replaces each region that passes its
// check (or every region when !opts.verify) by one Conv and removes the dead nodes. A model
// with nothing to fold is left untouched. Throws InputError for a graph it cannot index.
FuseReport fuse_branches(Model& model, const FuseOptions& opts = {});
// Analysis only (no check, no change): what fuse_branches would fold.
FuseReport find_foldable_blocks(const Model& model, const FuseOptions& opts = {});

// Fills the "Re-parameterizable blocks" part of a `repq info` summary from
// find_foldable_blocks().
void add_reparam_blocks(ModelSummary& s, const Model& model);

// The JSON document of `repq fuse --json` (schema repq.fuse/1, docs/cli-json.md).
std::string fuse_report_to_json(const FuseReport& r);
// The human-readable table.
std::string fuse_report_to_text(const FuseReport& r);

}  // namespace repq
