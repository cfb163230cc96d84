// CFWS as a graph transform (ALGORITHMS.md section 3, docs/cfws.md): a Conv with a kxk kernel
// (k odd, > 1) is replaced by two Convs reading the same input and an Add:
//   <name>/cfws_coarse: 1x1 kernel = the coarse centre taps C^ = s_c * floor(C / s_c + 0.5)
//                       (same stride, pads reduced by (k-1)/2, dilation 1, same groups), no bias;
//   <name>/cfws_fine:   kxk kernel = surround + centre residual C - C^, with the original bias;
//   <name>/cfws_add:    Add -> the original output name.
// The transformed float model computes the same function (up to float rounding), so it is
// calibrated and quantized like any model: each half gets per-channel int8 weights (the coarse
// half's per-channel scale is s_c), and ONNX Runtime runs both as QLinearConv + QLinearAdd.
#pragma once

#include <string>
#include <vector>

#include "repq/ir/graph.h"
#include "repq/quant/weights.h"

namespace repq::quant {

struct CfwsDecision {
  std::string node;              // the original Conv
  bool applied = false;
  double sqnr_per_channel_db = 0, sqnr_cfws_db = 0;  // weight SQNR of both encodings
  double centre_surround = 0;
  std::string reason;            // "cfws lowers the weight error (31.2 -> 44.0 dB)", "1x1 kernel", ...
};

// kCfwsAuto splits a Conv only when the CFWS weight SQNR beats per-channel by at least this
// much. CFWS is never worse than per-channel on the weights (the coarse half takes the centre
// with a finer or equal step, the residual is at most half a step), so a plain random kernel
// still gains 0.0-1.0 dB (measured: 0.0-0.4 dB dense, 0.4-1.0 dB depthwise); such a gain does
// not pay for the split's cost: a second conv, an Add and one more requantized tensor whose
// rounding error adds to the output. 3 dB = half the weight noise power.
constexpr double kCfwsAutoMinGainDb = 3.0;

// mode kCfws: split every applicable Conv; kCfwsAuto: only where the CFWS weight SQNR is at
// least kCfwsAutoMinGainDb above per-channel; other modes: nothing. Nodes whose name (an unnamed node: its first
// output's name) or op type is in `exclude` are skipped. Returns one decision per Conv
// considered, graph order. Deterministic.
// identity_1x1: also split square pointwise convs (W[c, c, 1, 1], group 1) on their diagonal
// (identity_split in weights.h): coarse = a depthwise 1x1 Conv (group c) holding W[o, o], fine =
// the rest; same names, same decision rule. Off by default (an extension of the paper's CFWS).
std::vector<CfwsDecision> apply_cfws(Model& model, WeightMode mode,
                                     const std::vector<std::string>& exclude = {},
                                     bool identity_1x1 = false);

}  // namespace repq::quant
