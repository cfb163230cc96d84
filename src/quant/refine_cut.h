// The refinement search's trial runner (refine_act.cpp): a trial model differs from the
// accepted one only in the parameters of one activation tensor, so only the nodes after the
// change need to run again. The cut: the nodes reachable from the nodes whose initializers
// changed, widened backwards to whole integer groups (up to QuantizeLinear outputs or graph
// inputs) and closed forwards; its inputs (the frontier) are QuantizeLinear outputs or graph
// inputs of the accepted model's simulation, held for all samples within a byte budget. The
// suffix runs as its own model with those values fed as inputs: the same kernels on the same
// values, so the logits are the whole run's, bit for bit (RefineOptions::verify_suffix checks).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "repq/ir/graph.h"

namespace repq::quant::detail {

struct Cut {
  bool ok = false;                    // false: run whole (structure differs, nothing changed)
  bool reaches_output = false;        // false: the first output does not change
  std::vector<size_t> nodes;          // node indices of the suffix, in graph order
  std::vector<std::string> frontier;  // values it reads from before the cut
  std::vector<std::string> produced;  // values its nodes write
};

// The cut between `current` and `changed` (same graph, some initializers differ).
Cut find_cut(const Model& current, const Model& changed);

class CutRunner {
 public:
  CutRunner(const std::vector<Tensor>& batches, int threads, int64_t budget_bytes, bool verify);

  // The first graph output of `m` on every batch (a whole run).
  std::vector<Tensor> full(const Model& m) const;

  // The search's cuts in search order (cuts[k] for the k-th tensor searched), to fill the
  // cache for several of them at once; sizes are measured on `current`'s first batch.
  void set_schedule(const Model& current, std::vector<Cut> cuts);

  // The first outputs of `trial` (the accepted model `current` with the k-th tensor's
  // parameters changed), `current_out` being those of `current`.
  std::vector<Tensor> outputs(size_t k, const Model& current, const Model& trial,
                              const std::vector<Tensor>& current_out);

  // The last trial given to outputs() was accepted: drops the cached values it changed.
  void accepted();

  int suffix_runs() const { return suffix_runs_; }
  int fills() const { return fills_; }

 private:
  bool cached(const Cut& c) const;
  void fill(size_t k, const Model& current, const Cut& need);
  std::vector<Tensor> run_suffix(const Model& trial, const Cut& c) const;

  const std::vector<Tensor>& batches_;
  int threads_;
  int64_t budget_;
  bool verify_;
  std::vector<Cut> cuts_;
  std::map<std::string, int64_t> bytes_;  // estimated bytes of a frontier value, all samples
  std::map<std::string, std::vector<Tensor>> cache_;  // frontier value -> per batch
  std::string input_name_;
  std::optional<Cut> last_;  // the cut of the last suffix trial
  int suffix_runs_ = 0, fills_ = 0;
};

}  // namespace repq::quant::detail
