// Builds the ONNX graph of MobileOne-S0 (deploy form) from its loaded layer list.
#pragma once

#include <cstdint>
#include <vector>

#include "layer_table.h"
#include "repq/ir/graph.h"

namespace repq::mobileone {

constexpr int64_t kImageSize = 224;
constexpr int64_t kOpset = 13;

// batch > 0: a fixed batch size; batch <= 0: a symbolic batch dim "N".
// Input "input" float32[N,3,224,224], output "logits" float32[N,classes].
Model build_model(const std::vector<Layer>& layers, int64_t batch);

}  // namespace repq::mobileone
