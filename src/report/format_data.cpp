// The machine formats of `repq report`: CSV (one row per layer, RFC 4180) and JSON (schema
// repq.report/1). Names and meanings: docs/report.md.
#include <cmath>
#include <nlohmann/json.hpp>

#include "repq/report/format.h"

namespace repq::report {
namespace {

using ojson = nlohmann::ordered_json;

// RFC 4180: a field with a comma, quote, CR or LF is quoted, quotes doubled. A field starting
// with = + - @ stays as it is (numbers are negative): CSV is data here, not a spreadsheet.
std::string csv_field(std::string_view raw) {
  const std::string s = detail::utf8_clean(raw);
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

ojson num(double v) { return std::isfinite(v) ? ojson(v) : ojson(nullptr); }

ojson ints(const std::vector<int64_t>& v) {
  ojson a = ojson::array();
  for (int64_t x : v) a.push_back(x);
  return a;
}

ojson strings(const std::vector<std::string>& v) {
  ojson a = ojson::array();
  for (const auto& s : v) a.push_back(s);
  return a;
}

}  // namespace

const std::vector<std::string>& csv_columns() {
  static const std::vector<std::string> c = {
      "index", "name", "op", "kernel", "strides", "groups", "in_channels", "out_channels",
      "encoding", "weight_min", "weight_max", "centre_surround", "identity_bn_factor",
      "w_sqnr_per_tensor", "w_sqnr_per_channel", "w_sqnr_cfws", "block_kind", "any_bn_factor",
      "channel_outlier", "dead_input_channels", "act_tensor", "act_min", "act_max",
      "act_threshold", "act_clipped", "act_sqnr", "act_p9999", "out_sqnr_isolated",
      "out_cos_isolated", "out_sqnr_cumulative", "out_cos_cumulative", "causes", "advice"};
  return c;
}

std::string to_csv(const Report& r) {
  using detail::exact;
  std::string out = detail::join(csv_columns(), ",") + "\r\n";
  for (const auto& l : r.layers) {
    // Static reports leave the activation and output columns empty (not measured).
    const bool data = !r.static_only;
    auto m = [&](double v) { return data ? exact(v) : std::string(); };
    const std::vector<std::string> f = {
        std::to_string(l.index), csv_field(l.name), csv_field(l.op), detail::join_dims(l.kernel),
        detail::join_dims(l.strides), std::to_string(l.groups), std::to_string(l.in_channels),
        std::to_string(l.out_channels), csv_field(l.encoding), exact(l.weight_min),
        exact(l.weight_max), exact(l.centre_surround), exact(l.identity_bn_factor),
        exact(l.w_sqnr_per_tensor), exact(l.w_sqnr_per_channel), exact(l.w_sqnr_cfws),
        csv_field(l.block_kind), exact(l.any_bn_factor), exact(l.channel_outlier),
        data && l.dead_input_channels >= 0 ? std::to_string(l.dead_input_channels) : std::string(),
        data ? csv_field(l.act_tensor) : std::string(), m(l.act_min), m(l.act_max),
        m(l.act_threshold), m(l.act_clipped), m(l.act_sqnr), m(l.act_p9999), m(l.out_sqnr_isolated),
        m(l.out_cos_isolated), m(l.out_sqnr_cumulative), m(l.out_cos_cumulative),
        csv_field(detail::join(l.causes, "; ")), csv_field(detail::join(l.advice, "; "))};
    out += detail::join(f, ",") + "\r\n";
  }
  return out;
}

std::string to_json(const Report& r) {
  ojson j;
  j["schema"] = Report::kSchema;
  j["model_path"] = r.model_path;
  j["method"] = r.method;
  j["act_method"] = r.act_method;
  j["weight_mode"] = r.weight_mode;
  j["target"] = r.target;
  j["static_only"] = r.static_only;

  const ModelSummary& s = r.summary;
  ojson sum;
  const bool data = !r.static_only;
  auto m = [&](double v) { return data ? num(v) : ojson(nullptr); };
  sum["output_sqnr"] = m(s.output_sqnr);
  sum["output_cos"] = m(s.output_cos);
  sum["top1_agreement"] = m(s.top1_agreement);
  sum["has_labels"] = s.has_labels;
  sum["top1_float"] = s.has_labels ? m(s.top1_float) : ojson(nullptr);
  sum["top1_quant"] = s.has_labels ? m(s.top1_quant) : ojson(nullptr);
  sum["samples"] = s.samples;
  j["summary"] = std::move(sum);

  ojson layers = ojson::array();
  for (const auto& l : r.layers) {
    ojson e;
    e["index"] = l.index;
    e["name"] = l.name;
    e["op"] = l.op;
    e["kernel"] = ints(l.kernel);
    e["strides"] = ints(l.strides);
    e["groups"] = l.groups;
    e["in_channels"] = l.in_channels;
    e["out_channels"] = l.out_channels;
    e["encoding"] = l.encoding;
    e["weight_min"] = num(l.weight_min);
    e["weight_max"] = num(l.weight_max);
    e["centre_surround"] = num(l.centre_surround);
    e["identity_bn_factor"] = num(l.identity_bn_factor);
    e["w_sqnr_per_tensor"] = num(l.w_sqnr_per_tensor);
    e["w_sqnr_per_channel"] = num(l.w_sqnr_per_channel);
    e["w_sqnr_cfws"] = num(l.w_sqnr_cfws);
    e["block_kind"] = l.block_kind;
    e["any_bn_factor"] = num(l.any_bn_factor);
    e["channel_outlier"] = num(l.channel_outlier);
    e["dead_input_channels"] =
        data && l.dead_input_channels >= 0 ? ojson(l.dead_input_channels) : ojson(nullptr);
    e["act_tensor"] = data ? ojson(l.act_tensor) : ojson(nullptr);
    e["act_min"] = m(l.act_min);
    e["act_max"] = m(l.act_max);
    e["act_threshold"] = m(l.act_threshold);
    e["act_clipped"] = m(l.act_clipped);
    e["act_sqnr"] = m(l.act_sqnr);
    e["act_p9999"] = m(l.act_p9999);
    if (data && !l.act_hist.counts.empty()) {
      ojson h;
      h["amax"] = num(l.act_hist.amax);
      ojson counts = ojson::array();
      for (double c : l.act_hist.counts) counts.push_back(num(c));
      h["counts"] = std::move(counts);
      h["threshold"] = num(l.act_hist.threshold);
      e["act_hist"] = std::move(h);
    } else {
      e["act_hist"] = nullptr;
    }
    e["out_sqnr_isolated"] = m(l.out_sqnr_isolated);
    e["out_cos_isolated"] = m(l.out_cos_isolated);
    e["out_sqnr_cumulative"] = m(l.out_sqnr_cumulative);
    e["out_cos_cumulative"] = m(l.out_cos_cumulative);
    e["causes"] = strings(l.causes);
    e["advice"] = strings(l.advice);
    layers.push_back(std::move(e));
  }
  j["layers"] = std::move(layers);

  ojson worst = ojson::array();
  for (int i : detail::worst_layers(r, static_cast<int>(r.worst.size()))) worst.push_back(i);
  j["worst"] = std::move(worst);
  return j.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n";
}

}  // namespace repq::report
