// QuantPlan -> JSON (schema repq.plan/1, docs/plan.md). Fixed key order; every float scale is
// written as the shortest decimal that reads back to the identical float; names that are not
// valid UTF-8 are written with U+FFFD in place of the bad bytes.
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "repq/quant/gptq.h"
#include "repq/quant/plan.h"

namespace repq::quant {

using ojson = nlohmann::ordered_json;

namespace {

double float_for_json(float f) {
  if (!std::isfinite(f)) return static_cast<double>(f);
  // The shortest decimal that names f ("0.1" rather than "0.10000000149011612"), kept only
  // when the JSON reader's path (decimal -> double -> float) gives f back bit for bit;
  // otherwise f's exact double value, which always does.
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf - 1, f);
  if (ec == std::errc()) {
    *end = '\0';
    const double d = std::strtod(buf, nullptr);
    if (static_cast<float>(d) == f && std::signbit(d) == std::signbit(f)) return d;
  }
  return static_cast<double>(f);
}

// Diagnostic doubles that may be non-finite (a weight SQNR of +inf) are written as the strings
// "nan", "inf", "-inf"; JSON has no such numbers.
ojson number_or_special(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

ojson activation_json(const ActivationQuant& a) {
  ojson j;
  j["tensor"] = a.tensor;
  j["calibrated_on"] = a.calibrated_on;
  j["method"] = a.method;
  j["min"] = number_or_special(a.min);
  j["max"] = number_or_special(a.max);
  j["threshold"] = number_or_special(a.threshold);
  j["clipped"] = number_or_special(a.clipped);
  j["scale"] = float_for_json(a.scale);
  j["zero_point"] = a.zero_point;
  j["dtype"] = dtype_name(a.dtype);
  j["non_negative"] = a.non_negative;
  j["shared_with"] = a.shared_with;
  return j;
}

ojson layer_json(const LayerQuant& l) {
  ojson j;
  j["node"] = l.node;
  j["op"] = l.op;
  j["input"] = l.input;
  j["weight"] = l.weight;
  j["bias"] = l.bias;
  j["output"] = l.output;
  j["relu_fused"] = l.relu_fused;
  j["relu_node"] = l.relu_node;
  j["encoding"] = l.encoding;
  j["weight_axis"] = l.weight_axis;
  ojson scales = ojson::array();
  for (float s : l.scales) scales.push_back(float_for_json(s));
  j["scales"] = std::move(scales);
  j["cfws_of"] = l.cfws_of;
  j["weight_sqnr_db"] = number_or_special(l.weight_sqnr_db);
  j["note"] = l.note;
  if (!l.qweight.empty()) j["qweight"] = base64_encode(l.qweight);
  if (!l.bias_values.empty()) {
    ojson b = ojson::array();
    for (float v : l.bias_values) b.push_back(float_for_json(v));
    j["bias_values"] = std::move(b);
  }
  return j;
}

}  // namespace

std::string plan_to_json(const QuantPlan& p) {
  ojson j;
  j["schema"] = QuantPlan::kSchema;
  j["model_digest"] = p.model_digest;
  j["target"] = target_name(p.target);
  j["act_method"] = p.act_method;
  j["weight_mode"] = p.weight_mode;
  j["percentile"] = number_or_special(p.percentile);
  j["calib_samples"] = p.calib_samples;
  j["activations"] = ojson::array();
  for (const auto& a : p.activations) j["activations"].push_back(activation_json(a));
  j["layers"] = ojson::array();
  for (const auto& l : p.layers) j["layers"].push_back(layer_json(l));
  j["float_nodes"] = ojson::array();
  for (const auto& f : p.float_nodes) {
    ojson n;
    n["node"] = f.node;
    n["op"] = f.op;
    n["reason"] = f.reason;
    j["float_nodes"].push_back(std::move(n));
  }
  return j.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n";
}

}  // namespace repq::quant
