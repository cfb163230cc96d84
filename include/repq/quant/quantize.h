// The quantization pipeline: choose what to quantize (quant points), calibrate, make a
// QuantPlan, export a QDQ INT8 ONNX model that ONNX Runtime runs with integer ops
// (QLinearConv; CFWS layers as two QLinearConv + QLinearAdd). See docs/quantize.md.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "repq/calib/collector.h"
#include "repq/data/dataset.h"
#include "repq/ir/graph.h"
#include "repq/quant/cfws_pass.h"
#include "repq/quant/gptq.h"
#include "repq/quant/plan.h"

namespace repq::quant {

struct QuantizeOptions {
  Target target = Target::kOrt;
  calib::Method act = calib::Method::kMinMax;
  WeightMode weights = WeightMode::kPerChannel;
  double percentile = 99.99;
  std::vector<std::string> exclude;  // node names or op types kept in float
  bool fuse = true;                  // fold branches first (as `repq fuse`)
  // Target ort: keep a Conv fed by a graph input with at most 4 input channels (an RGB/grey
  // stem) in float. Off by default: measured on MobileOne-S0 in ONNX Runtime it is 5 % faster
  // at batch 1 but 6-20 % slower at batch 8-32 (docs/calibration.md, "INT8 speed").
  bool float_stem = false;
  calib::CollectOptions collect;
  GptqOptions gptq;  // weights = gptq (gptq.h)
};

// `--method` presets: minmax (per-channel + minmax), percentile, mse, entropy, kl,
// cfws (cfws-auto weights + kl activations), gptq (percentile activations + gptq weights with
// bias correction). Throws InputError for an unknown name.
void apply_method_preset(const std::string& method, QuantizeOptions& o);

// The tensors to quantize and the layers, before calibration.
// Which tensors get QuantizeLinear -> DequantizeLinear and why: docs/quantize.md.
struct QuantPoint {
  std::string tensor;         // value to quantize
  std::string calibrated_on;  // value to collect statistics for
  bool non_negative = false;  // only Relu outputs (or a pass-through op of one)
  // Non-empty: this tensor must use the scale / zero point of `shared_with` (always a point
  // without shared_with itself). Set for the outputs of ops that ONNX Runtime runs on the
  // integers unchanged (MaxPool, Flatten, Reshape, Transpose, Squeeze, Unsqueeze), whose
  // DequantizeLinear -> op -> QuantizeLinear group it only drops when both use the same scale.
  std::string shared_with;
};
struct QuantPoints {
  std::vector<QuantPoint> activations;        // graph order
  // node/op/input/weight/bias/output/relu_fused/relu_node/weight_axis filled. `output` is the
  // quantized tensor after the layer (the Relu output when a Relu follows it); a Gemm/MatMul
  // whose result only feeds float ops or a graph output keeps it float (ONNX Runtime runs it as
  // QGemm / MatMulIntegerToFloat): then `output` is its own output and has no point.
  std::vector<LayerQuant> layers;
  std::vector<FloatNode> float_nodes;          // candidates kept in float, with the reason
  std::vector<std::string> stats_tensors() const;  // unique calibrated_on, graph order
};
// Throws InputError when an `o.exclude` entry names no node and no op type of the model.
QuantPoints find_quant_points(const Model& fused, const QuantizeOptions& o);

// Fills scales / zero points / weight encodings from the statistics.
QuantPlan build_plan(const Model& fused, const QuantPoints& points,
                     const std::map<std::string, calib::TensorStats>& stats,
                     const QuantizeOptions& o);

// What quantize() does around the two calls above (src/quant/quantize.cpp); anyone who
// calibrates and plans step by step (reports, --fallback auto) should call these instead, so
// the same model gets the same plan:
//  * pipeline_points: find_quant_points, then for act = entropy the conv+Relu points are
//    calibrated on the conv output before the Relu (TensorRT-style; kl keeps the post-Relu
//    tensor, the CFWS paper's point (a)).
//  * pipeline_plan: for kl the Relu's exact zeros leave the post-Relu histograms (a copy of
//    `stats` is changed), build_plan, then the graph inputs and the CFWS halves' outputs get
//    min-max parameters whatever the method, and calib_samples is set to `samples`.
QuantPoints pipeline_points(const Model& fused, const QuantizeOptions& o);
QuantPlan pipeline_plan(const Model& fused, const QuantPoints& points,
                        std::map<std::string, calib::TensorStats> stats, const QuantizeOptions& o,
                        int64_t samples);

struct ExportOptions {
  // Non-empty: only these layers (node names) get quantized weights; the others keep float
  // weights (activation Q/DQ pairs stay). Used by reports (isolated errors).
  std::vector<std::string> only_layers;
  bool quantize_activations = true;
  // A 2-D Conv (group 1) reading a quantized graph input whose channel count is not a multiple
  // of 4 (an RGB or grey stem) gets its input zero-padded to the next multiple (float Pad before
  // the QuantizeLinear) and zero weight channels: ONNX Runtime's fast symmetric int8 conv kernels
  // (MLAS ConvSym) need input channels % 4 == 0. Exact: the padded channels contribute 0. Off by
  // default (the statistics passes, e.g. GPTQ's quantized inputs, read the stem's input in the
  // exported model unpadded); `repq quantize` turns it on for the file it writes (target ort).
  bool align_input_channels = false;
};
// The QDQ model: DequantizeLinear(int8 weights, axis 0), int32 bias with scale
// s_input * s_weight, QuantizeLinear after each quantized layer. Throws InputError when the
// plan does not match the model (digest, missing tensors).
Model export_qdq(const Model& fused, const QuantPlan& plan, const ExportOptions& eo = {});

struct QuantizeResult {
  Model fused;        // the float model the plan refers to (after fusion and the CFWS split)
  std::vector<CfwsDecision> cfws;  // CFWS decisions (weights cfws / cfws-auto)
  QuantPlan plan;
  Model qdq;          // the exported model
  double forward_seconds = 0, total_seconds = 0;
  std::string fuse_summary;  // one line, empty when nothing was folded
};
// Everything: fuse (unless !o.fuse), CFWS split (apply_cfws), quant points, calibrate on
// `calib`, plan, export.
QuantizeResult quantize(const Model& model, const data::Dataset& calib, const QuantizeOptions& o);
// With a stored plan (no calibration): fuse, CFWS split as the plan's weight mode says, check
// the digest, export.
QuantizeResult quantize_with_plan(const Model& model, const QuantPlan& plan,
                                  const QuantizeOptions& o);

}  // namespace repq::quant
