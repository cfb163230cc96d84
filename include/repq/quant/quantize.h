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
#include "repq/quant/plan.h"

namespace repq::quant {

struct QuantizeOptions {
  Target target = Target::kOrt;
  calib::Method act = calib::Method::kMinMax;
  WeightMode weights = WeightMode::kPerChannel;
  double percentile = 99.99;
  std::vector<std::string> exclude;  // node names or op types kept in float
  bool fuse = true;                  // fold branches first (as `repq fuse`)
  calib::CollectOptions collect;
};

// `--method` presets: minmax (per-channel + minmax), percentile, mse, entropy, kl,
// cfws (cfws-auto weights + kl activations). Throws InputError for an unknown name.
void apply_method_preset(const std::string& method, QuantizeOptions& o);

// The tensors to quantize and the layers, before calibration.
struct QuantPoint {
  std::string tensor;         // value to quantize
  std::string calibrated_on;  // value to collect statistics for
  bool non_negative = false;  // only Relu outputs
};
struct QuantPoints {
  std::vector<QuantPoint> activations;        // graph order
  std::vector<LayerQuant> layers;             // node/op/input/weight/bias/output/relu filled
  std::vector<FloatNode> float_nodes;
  std::vector<std::string> stats_tensors() const;  // unique calibrated_on, graph order
};
QuantPoints find_quant_points(const Model& fused, const QuantizeOptions& o);

// Fills scales / zero points / weight encodings from the statistics.
QuantPlan build_plan(const Model& fused, const QuantPoints& points,
                     const std::map<std::string, calib::TensorStats>& stats,
                     const QuantizeOptions& o);

struct ExportOptions {
  // Non-empty: only these layers (node names) get quantized weights; the others keep float
  // weights (activation Q/DQ pairs stay). Used by reports (isolated errors).
  std::vector<std::string> only_layers;
  bool quantize_activations = true;
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
