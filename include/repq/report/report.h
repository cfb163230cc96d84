// `repq report`: per-layer quantization error tables and the diagnosis of why a layer
// quantizes badly (ALGORITHMS.md section 5). The data model here is what every format (table,
// csv, json, md, html) prints; field names are the documented CSV columns / JSON keys
// (docs/report.md, schema repq.report/1).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "repq/quant/plan.h"

namespace repq::report {

struct Histogram {      // for HTML charts: |x| histogram of a quantized activation
  double amax = 0;
  std::vector<double> counts;  // a few dozen bins (downsampled from the calibration histogram)
  double threshold = 0;        // the chosen clip threshold
};

struct LayerRow {
  int index = 0;                // position in graph order
  std::string name, op;         // node name, op type
  std::vector<int64_t> kernel;  // kh, kw (empty for Gemm/MatMul)
  std::vector<int64_t> strides;
  int64_t groups = 1;
  int64_t in_channels = 0, out_channels = 0;
  std::string encoding;         // chosen weight encoding
  // Weights.
  double weight_min = 0, weight_max = 0;
  double centre_surround = 0;   // max |centre| / max |surround| (kxk); NaN otherwise
  double identity_bn_factor = 0;  // largest gamma/sqrt(var+eps) of the identity BN of the
                                  // folded block (unfused input only); NaN when unknown
  double w_sqnr_per_tensor = 0, w_sqnr_per_channel = 0, w_sqnr_cfws = 0;  // dB; cfws NaN if n/a
  std::string block_kind;       // kind of the folded block (RepVGG, MobileOne, ...); "" if none
  double any_bn_factor = 0;     // largest gamma/sqrt(var+eps) of any BN of the folded block
                                // (PRESERVE exports show branch BNs); NaN when none visible
  double channel_outlier = 0;   // max / median of the per-output-channel max |W|
  int64_t dead_input_channels = 0;  // input channels exactly 0 on every report sample
                                    // (-1: not measured, e.g. --static)
  // Input activation.
  std::string act_tensor;
  double act_min = 0, act_max = 0, act_threshold = 0, act_clipped = 0;  // clipped: fraction
  double act_sqnr = 0;          // dB, fake-quant of the values vs float (report samples)
  double act_p9999 = 0;         // 99.99th percentile of |input| (report samples)
  Histogram act_hist;
  // Output, against the float model on the same inputs.
  double out_sqnr_isolated = 0, out_cos_isolated = 0;      // only this layer quantized
  double out_sqnr_cumulative = 0, out_cos_cumulative = 0;  // everything up to here quantized
  // Diagnosis.
  std::vector<std::string> causes;  // e.g. "identity-BN outlier (factor 121)"
  std::vector<std::string> advice;  // e.g. "--weights cfws", "--act percentile", "--exclude conv_3"
};

struct ModelSummary {
  double output_sqnr = 0;       // dB, final output(s), quantized vs float
  double output_cos = 0;
  double top1_agreement = 0;    // fraction of samples whose top-1 matches float
  bool has_labels = false;
  double top1_float = 0, top1_quant = 0;  // accuracy when labels are given
  int64_t samples = 0;
};

struct Report {
  static constexpr const char* kSchema = "repq.report/1";
  std::string model_path;
  std::string method, act_method, weight_mode, target;
  bool static_only = false;     // --static: weight columns only
  std::vector<LayerRow> layers; // graph order
  ModelSummary summary;
  std::vector<int> worst;       // indices into layers, worst isolated error first
};

}  // namespace repq::report
