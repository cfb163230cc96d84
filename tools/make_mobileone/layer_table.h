// MobileOne-S0's layer list (layers.tsv of the shared model folder) and its raw weight files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "repq/ir/tensor.h"

namespace repq::mobileone {

enum class LayerOp { kConv, kDepthwiseConv, kGlobalAvgPool, kFullyConnected };

struct Layer {
  int line = 0;  // line number in layers.tsv, for messages
  std::string name;
  LayerOp op = LayerOp::kConv;
  int64_t cin = 0, cout = 0;
  int64_t kernel = 0, stride = 0, pad = 0, groups = 0;  // convolutions only
  std::string weight_file, bias_file;                   // relative to the model folder
  Shape weight_shape;                                   // OIHW for convs, [out,in] for linear
  bool relu = false;
  Tensor weight, bias;  // filled by load_weights()
};

// Parses `dir`/layers.tsv and checks that it is consistent: known ops, channel counts that
// chain, weight shapes matching cin/cout/kernel/groups. Throws InputError("file:line: ...").
std::vector<Layer> parse_layer_table(const std::string& dir);

// Reads every layer's weight and bias file (raw float32, little endian), checking each file's
// size against the declared shape. Throws InputError naming the file.
void load_weights(const std::string& dir, std::vector<Layer>& layers);

}  // namespace repq::mobileone
