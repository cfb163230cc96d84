// QuantPlan: the one structure between calibration and everything after it (QDQ export,
// simulation, report). For every quantized activation tensor its scale / zero point / type /
// calibrator; for every quantized layer its weight encoding and scales. Saved to and loaded
// from JSON (schema repq.plan/1, docs/quantize.md): a calibration cache that pipelines keep and
// diff; exporting the same model with the same plan gives a byte-identical file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "repq/calib/calibrators.h"
#include "repq/calib/histogram.h"
#include "repq/ir/graph.h"
#include "repq/quant/weights.h"

namespace repq::quant {

// ort: activations uint8, asymmetric (a tensor holding only Relu outputs uses the whole range,
// zero point 0, and the Relu disappears into the QuantizeLinear). tensorrt: int8 symmetric
// everywhere, zero points 0, Relu kept.
enum class Target { kOrt, kTensorRT };
std::string target_name(Target t);           // "ort", "tensorrt"
Target parse_target(std::string_view name);  // throws InputError

struct ActivationQuant {
  std::string tensor;         // value of the float model that gets QuantizeLinear/DequantizeLinear
  std::string calibrated_on;  // value whose statistics chose the range (usually == tensor)
  std::string method;         // calibrator name (calib::method_name)
  double min = 0, max = 0;    // observed range of calibrated_on
  double threshold = 0;       // clip threshold chosen by the calibrator
  double clipped = 0;         // fraction of calibration values beyond the quantized range
  float scale = 1;
  int32_t zero_point = 0;
  DType dtype = DType::kUInt8;  // kUInt8 or kInt8
  bool non_negative = false;    // only values >= 0 (Relu output): zero point at the type's minimum
  std::string shared_with;      // non-empty: scale shared with this tensor (Concat, ...)
};

struct LayerQuant {
  std::string node;      // node name of the quantized Conv / Gemm / MatMul
  std::string op;
  std::string input;     // its activation input (an ActivationQuant tensor)
  std::string weight;    // initializer name
  std::string bias;      // initializer name, "" when none
  std::string output;    // the quantized output (post-Relu when relu_fused)
  bool relu_fused = false;        // the Relu after it is absorbed (ort target)
  std::string relu_node;          // its name when fused
  // "per-tensor", "per-channel", or for the two halves of a CFWS-split layer "cfws-coarse"
  // (the centre taps as a 1x1 conv) and "cfws-fine" (the residual kxk conv). CFWS is a graph
  // transform made before calibration (quant/cfws_pass.h): each half is an ordinary Conv layer
  // quantized per channel, their outputs meet in an Add.
  std::string encoding;
  std::vector<float> scales;      // weight scales, per output channel (1 for per-tensor)
  // The weight's output-channel axis, which the per-channel scales run along (the
  // DequantizeLinear axis): 0 for Conv and Gemm with transB=1, 1 for Gemm with transB=0 and
  // for a 2-D MatMul weight [K, N] (rank - 1 for a batched MatMul weight).
  int weight_axis = 0;
  std::string cfws_of;            // CFWS halves: the original (fused) Conv's node name
  double weight_sqnr_db = 0;      // of the chosen encoding
  std::string note;               // why this encoding (cfws-auto decision, ...)
  // GPTQ (`--weights gptq`): the chosen int8 values, in the weight's own layout (empty: round
  // to nearest of the float weight with `scales`), and the bias-corrected float bias (empty:
  // the model's). JSON: "qweight" (base64) and "bias_values", present only when non-empty.
  std::vector<int8_t> qweight;
  std::vector<float> bias_values;
};

struct FloatNode {
  std::string node, op, reason;  // kept in float: "--exclude", "unsupported weight", ...
};

struct QuantPlan {
  static constexpr const char* kSchema = "repq.plan/1";
  std::string model_digest;  // digest of the float (fused) graph the plan was made for
  Target target = Target::kOrt;
  std::string act_method;    // calibrator
  std::string weight_mode;   // weight_mode_name
  double percentile = 99.99;
  int64_t calib_samples = 0;
  std::vector<ActivationQuant> activations;  // graph order
  std::vector<LayerQuant> layers;            // graph order
  std::vector<FloatNode> float_nodes;

  const ActivationQuant* activation(const std::string& tensor) const;  // nullptr if absent
  const LayerQuant* layer(const std::string& node) const;              // nullptr if absent
};

// Stable digest (hex) of a model's graph: structure, attributes and initializer bytes.
std::string model_digest(const Model& m);

std::string plan_to_json(const QuantPlan& p);
// `source` names the file in error messages. Throws InputError for malformed JSON, another
// schema, missing fields or values out of range (scales <= 0 or non-finite, zero points outside
// the type).
QuantPlan plan_from_json(const std::string& text, const std::string& source);

}  // namespace repq::quant
