// Finding the maximal foldable linear regions of a graph, and the near-misses.
#pragma once

#include <string>
#include <vector>

#include "passes/linear_ops.h"
#include "repq/passes/conv_map.h"
#include "repq/passes/fuse.h"

namespace repq::passes {

struct Region {
  std::string source;          // the one input value
  std::string output;          // the one output value
  std::vector<size_t> nodes;   // node indices, ascending
  ConvMap map;                 // the whole region as one conv
  std::string kind;
};

struct Analysis {
  std::vector<Region> regions;        // worth folding: >= 2 nodes with at least one Conv
  std::vector<NearMiss> near_misses;
};

Analysis find_regions(const GraphFacts& facts);

// The block family of a region, from its shape (docs/fuse.md).
std::string region_kind(const GraphFacts& facts, const Region& r);

}  // namespace repq::passes
