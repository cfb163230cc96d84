// Partial quantization (`repq quantize --fallback auto --min-agreement X`): quantize, measure
// the top-1 agreement with the float model on the calibration samples, and keep the most
// sensitive layers in float one at a time (ranked once, by isolated output SQNR, lowest first,
// as `repq report` ranks them) until the agreement reaches the target or no layer is left.
// The calibration statistics are collected once and reused at every step (excluding a layer
// only changes the plan); only a tensor that a step needs and no earlier step did is collected.
#pragma once

#include <string>
#include <vector>

#include "repq/data/dataset.h"
#include "repq/ir/graph.h"
#include "repq/quant/quantize.h"

namespace repq::report {

struct FallbackLayer {
  std::string layer;         // node name given to --exclude (the original Conv for CFWS halves)
  double isolated_sqnr_db;   // why: its isolated output SQNR in the fully quantized model
  double agreement_after;    // top-1 agreement once it (and the ones before) are float
  std::string reason() const;  // "isolated output SQNR 12.3 dB"
};

struct FallbackResult {
  quant::QuantizeResult result;        // the final quantization (plan.float_nodes lists them)
  std::vector<FallbackLayer> kept_float;  // in the order they were excluded
  std::vector<double> agreement;       // per step; [0] = nothing kept float
  std::vector<std::string> ranking;    // every layer, most sensitive first
  double min_agreement = 0;
  bool reached = false;                // agreement.back() >= min_agreement
  int64_t samples = 0;                 // calibration samples the agreement is measured on
  // A few lines for the CLI: the steps, the layers kept in float and why.
  std::string summary() const;
};

// `o.exclude` entries given by the user stay excluded. Throws InputError for bad inputs, or
// when min_agreement is outside [0, 1].
FallbackResult fallback_auto(const Model& model, const data::Dataset& calib,
                             quant::QuantizeOptions o, double min_agreement);

}  // namespace repq::report
