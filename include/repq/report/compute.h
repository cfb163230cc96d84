// The computations behind `repq report` (ALGORITHMS.md section 5): per-layer weight, activation
// and output errors of a quantized model against its float model, the model summary, and the
// diagnosis in words. The formatters only print the Report these functions fill.
//
// Rows. One row per quantized layer of the fused model, in graph order. A Conv that CFWS split
// into two halves (LayerQuant::cfws_of) is ONE row under the original Conv's name: its weight
// columns describe the original kernel (coarse + fine float halves added back), its encoding is
// "cfws", its output is the Add that joins the halves.
//
// Output errors (both against the float fused model on the same samples, pooled over every
// value of every sample: SQNR = 10 log10(sum x^2 / sum (x - x^)^2), cosine of the flattened
// tensors):
//   cumulative: the exported QDQ model observed at the row's output value (the QDQ model keeps
//               the float value names on its DequantizeLinear outputs); one float pass and one
//               QDQ pass per batch;
//   isolated:   the row's nodes alone (Conv [+ fused Relu], or the CFWS halves + Add) run on the
//               float input taken from the float pass, fake-quantized with the plan's input
//               scale / zero point, with int8-rounded weights (the plan's scales) and the bias
//               rounded to int32 at s_input * s_weight; the rest of the model stays float.
// The row's output value is the post-Relu value when a Relu follows and is absorbed (or is the
// only consumer of a CFWS Add), otherwise the layer's own output.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "repq/data/dataset.h"
#include "repq/ir/graph.h"
#include "repq/quant/quantize.h"
#include "repq/report/report.h"

namespace repq::report {

struct ReportOptions {
  std::string model_path;   // copied to Report::model_path
  std::string method;       // the --method preset name, copied to Report::method
  // A stored plan (--plan-in): no calibration, quantize_with_plan() instead of quantize().
  const quant::QuantPlan* plan = nullptr;
  int64_t batch = 8;        // samples per forward pass of the error measures
  int64_t num_samples = 0;  // samples of the eval data used (0: all)
  int threads = 0;          // executor threads (0: all cores)
  int hist_bins = 48;       // bins of LayerRow::act_hist
  bool isolated = true;     // compute the isolated output errors
  bool cumulative = true;   // compute the cumulative errors and the model summary
  // The cumulative pass runs the QDQ model itself with the exact integer kernels (bit-exact
  // with ONNX Runtime's QLinearConv) instead of float_sim_model(): about 4x slower, and the
  // measures differ only where a float sum and the integer one round to different levels.
  bool exact = false;
};

// Quantizes `original` as `o` says (calibrating on `calib`, or with ro.plan), measures every
// column on `eval` (nullptr: the calibration data) and diagnoses. `original` may be unfused:
// then the identity-BN factors come from its blocks. Throws InputError for bad inputs.
Report make_report(const Model& original, const quant::QuantizeOptions& o,
                   const data::Dataset* calib, const data::Dataset* eval,
                   const ReportOptions& ro);

// The same report from an existing quantization result (its fused model, plan and QDQ model);
// `original` gives the identity-BN factors (may be the fused model itself: NaN factors).
Report make_report_from(const Model& original, const quant::QuantizeResult& q,
                        const quant::QuantizeOptions& o, const data::Dataset& eval,
                        const ReportOptions& ro);

// Weights only, no data (--static): fuse, CFWS decisions, weight columns, diagnosis of the
// weight causes. Activation and output columns are NaN; `worst` ranks by the weight SQNR of
// the chosen encoding.
Report make_static_report(const Model& original, const quant::QuantizeOptions& o,
                          const ReportOptions& ro);

// ---- Building blocks (used by fallback.h and the tests) ----------------------------------

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// What the unfused model says about the block behind a fused Conv.
struct BlockInfo {
  std::string kind;           // FoldRecord::kind (RepVGG, QARepVGG, MobileOne, ...)
  std::string input, output;  // the block's input and output values
  // Largest |gamma / sqrt(var + eps)| of the BatchNormalization(s) reading the block input
  // directly (RepVGG's identity BN, MobileOne's skip BN); NaN when the block has none.
  double identity_bn_factor = kNaN;
  // The same over every BatchNormalization of the block (PRESERVE exports show the branch
  // BNs too; eval exports fold them into the convs); NaN when the block has none.
  double any_bn_factor = kNaN;
};
// By fused Conv name (FoldRecord::conv_name, which fuse_branches gives the fused node).
std::map<std::string, BlockInfo> block_infos(const Model& original);

// One row's structure in the fused model.
struct RowSpec {
  std::string name;                    // the layer (the original Conv for CFWS halves)
  std::vector<const quant::LayerQuant*> parts;  // 1, or the CFWS halves (coarse first)
  std::string input;                   // quantized activation input
  std::string output;                  // value compared against float (see above)
  std::vector<size_t> nodes;           // fused-model node indices to run for "isolated"
};
std::vector<RowSpec> row_specs(const Model& fused, const quant::QuantPlan& plan);

// Weight, shape and encoding columns of a row (from the fused model's initializers).
void fill_weight_columns(const Model& fused, const RowSpec& spec, LayerRow& row);

// Activation fake-quant (the plan's scale, zero point and type; round half to even).
float fake_quant(float x, const quant::ActivationQuant& a);
// Symmetric int8 fake-quant ([-127, 127], round half to even) of weights with the plan's
// scales: one scale, or one per index of `axis` (LayerQuant::weight_axis).
Tensor fake_quant_weight(const Tensor& w, const std::vector<float>& scales, int axis = 0);

// Accumulates SQNR / cosine over many tensors.
struct ErrorSums {
  double ref2 = 0, err2 = 0, approx2 = 0, dot = 0;
  uint64_t count = 0;
  void add(const float* ref, const float* approx, size_t n);
  double sqnr_db() const;   // capped at kMaxSqnrDb; NaN when nothing was added
  double cosine() const;    // NaN when nothing was added
};

struct MeasureResult {
  std::vector<ErrorSums> isolated, cumulative, activation;  // per row
  std::vector<std::vector<uint64_t>> hist;  // per row: |input| histogram, kFineBins bins over
  std::vector<double> hist_amax;            // [0, hist_amax] (the plan's observed range)
  std::vector<std::vector<double>> in_channel_absmax;  // per row, per input channel
  ModelSummary summary;
  double seconds = 0;
};
constexpr int kFineBins = 2048;
// Runs the float and QDQ models of `q` over `data` (ro.num_samples, ro.batch) and measures.
MeasureResult measure(const quant::QuantizeResult& q, const std::vector<RowSpec>& rows,
                      const data::Dataset& data, const ReportOptions& ro);

// The QDQ model as float arithmetic that runs at the float model's speed (the executor's
// QuantizeLinear / exact integer kernels are several times slower than its float Conv): each
// activation QuantizeLinear -> DequantizeLinear pair becomes one repq-internal
// FakeQuantizeLinear node (src/runtime/fake_quant.cpp: quantize and dequantize in one pass,
// bit for bit the pair's value); the DequantizeLinear of constants (int8 weights, int32
// biases) become their float values. Value names are kept (the pair's output is now made by
// the FakeQuantizeLinear). The convs then run in
// float on the dequantized values, as ExecutorOptions::exact_qdq = false does.
Model float_sim_model(const Model& qdq);

// Fills causes / advice of every row and Report::worst (see diagnose.cpp for the thresholds).
void diagnose(Report& r);

}  // namespace repq::report
