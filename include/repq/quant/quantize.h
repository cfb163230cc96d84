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

// Activation clip refinement on the logits (`--refine-act`, quant/refine.h; docs/calibration.md,
// "Logit refinement (--refine-act)").
struct RefineOptions {
  int max_steps = 3;          // ladder steps per tensor and direction (x0.8 down, x1.25 up)
  double min_gain_db = 0.01;  // a step is kept only when the logit SQNR rises by more
  // The search holds its samples in memory: at most this many (the first of the calibration
  // samples; 256 224x224 RGB images are 154 MB).
  int64_t max_samples = 256;
  // A trial re-runs only the part of the graph after the changed tensor, from the values at
  // the cut (QuantizeLinear outputs) of the accepted plan's simulation, held for all samples
  // up to this many bytes; a cut above it is re-run whole. 0: every trial runs the whole model.
  // The results are the same either way (the executor is deterministic per node).
  int64_t cache_bytes = int64_t{512} << 20;
  // Tests: run every suffix trial whole too and throw InternalError if the logits differ.
  bool verify_suffix = false;
};

struct RefineStep {
  std::string tensor;
  double threshold_before = 0, threshold_after = 0;
  double sqnr_db = 0;  // logit SQNR after this change
};

struct RefineResult {
  bool ran = false;                        // false: no refinement (or the plan came from --plan-in)
  double sqnr_before = 0, sqnr_after = 0;  // mean per-sample logit SQNR, dB
  int trials = 0;                          // QDQ models simulated (the start included)
  int suffix_trials = 0;                   // of which only the part after the cut was run
  int cut_fills = 0;                       // whole runs that filled the cut cache
  int64_t samples = 0;                     // calibration samples the search measured on
  std::vector<RefineStep> steps;           // the tensors whose clip changed, in search order
  double seconds = 0;
};

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
  // After calibration (and GPTQ), before export: refine the activation clips on the logits
  // (refine_activation_clips, quant/refine.h). quantize_with_plan never refines (the plan holds
  // the clips).
  bool refine_act = false;
  RefineOptions refine;
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
//  * pipeline_stats: the statistics as pipeline_plan's calibrator sees them (the kl change
//    above applied to `stats`); refine_activation_clips recomputes clipped fractions on them.
QuantPoints pipeline_points(const Model& fused, const QuantizeOptions& o);
std::map<std::string, calib::TensorStats> pipeline_stats(
    const QuantPoints& points, std::map<std::string, calib::TensorStats> stats, const QuantizeOptions& o);
QuantPlan pipeline_plan(const Model& fused, const QuantPoints& points,
                        std::map<std::string, calib::TensorStats> stats, const QuantizeOptions& o,
                        int64_t samples);

struct ExportOptions {
  // Non-empty: only these layers (node names) get quantized weights; the others keep float
  // weights (activation Q/DQ pairs stay). Used by reports (isolated errors).
  std::vector<std::string> only_layers;
  bool quantize_activations = true;
  // A 2-D Conv (group 1) reading a quantized graph input whose channel count is not a multiple
  // of 4 (an RGB or grey stem) gets its input padded to the next multiple (an 8-bit Pad after
  // the QuantizeLinear, pad value the zero point) and zero weight channels: ONNX Runtime's fast
  // symmetric int8 conv kernels (MLAS ConvSym) need input channels % 4 == 0. Exact: the padded
  // channels dequantize to 0 and meet zero weights. Off by
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
  RefineResult refine;       // refine.ran when o.refine_act
};
// Everything: fuse (unless !o.fuse), CFWS split (apply_cfws), quant points, calibrate on
// `calib`, plan, GPTQ (weights gptq), clip refinement (o.refine_act), export.
QuantizeResult quantize(const Model& model, const data::Dataset& calib, const QuantizeOptions& o);
// With a stored plan (no calibration): fuse, CFWS split as the plan's weight mode says, check
// the digest, export.
QuantizeResult quantize_with_plan(const Model& model, const QuantPlan& plan,
                                  const QuantizeOptions& o);

}  // namespace repq::quant
