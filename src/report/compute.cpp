// make_report / make_static_report: quantize (or reuse a plan), lay out one row per layer,
// fill the columns from the building blocks in compute_layers.cpp and compute_measure.cpp,
// then diagnose.
#include "repq/report/compute.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "repq/error.h"
#include "repq/passes/fuse.h"

namespace repq::report {

namespace {

Report base_report(const quant::QuantizeOptions& o, const ReportOptions& ro,
                   const quant::QuantPlan* plan) {
  Report r;
  r.model_path = ro.model_path;
  r.act_method = plan && !plan->act_method.empty() ? plan->act_method : calib::method_name(o.act);
  r.weight_mode = plan && !plan->weight_mode.empty() ? plan->weight_mode : quant::weight_mode_name(o.weights);
  r.target = quant::target_name(plan ? plan->target : o.target);
  r.method = ro.method.empty() ? r.act_method + "+" + r.weight_mode : ro.method;
  return r;
}

void fill_block(const std::map<std::string, BlockInfo>& blocks, LayerRow& row) {
  const auto it = blocks.find(row.name);
  row.identity_bn_factor = it == blocks.end() ? kNaN : it->second.identity_bn_factor;
  row.any_bn_factor = it == blocks.end() ? kNaN : it->second.any_bn_factor;
  row.block_kind = it == blocks.end() ? "" : it->second.kind;
}

void no_measures(LayerRow& row) {
  row.act_min = row.act_max = row.act_threshold = row.act_clipped = kNaN;
  row.act_sqnr = row.act_p9999 = kNaN;
  row.out_sqnr_isolated = row.out_cos_isolated = kNaN;
  row.out_sqnr_cumulative = row.out_cos_cumulative = kNaN;
  row.dead_input_channels = -1;
}

// Upper edge of the bin where the cumulative count reaches `p` percent.
double hist_percentile(const std::vector<uint64_t>& h, double amax, double p) {
  uint64_t total = 0;
  for (uint64_t c : h) total += c;
  if (total == 0 || amax <= 0) return kNaN;
  const double want = p / 100.0 * static_cast<double>(total);
  uint64_t acc = 0;
  for (size_t b = 0; b < h.size(); ++b) {
    acc += h[b];
    if (static_cast<double>(acc) >= want) return amax * static_cast<double>(b + 1) / static_cast<double>(h.size());
  }
  return amax;
}

Histogram downsample(const std::vector<uint64_t>& fine, double amax, double threshold, int bins) {
  Histogram h;
  h.amax = amax;
  h.threshold = threshold;
  bins = std::max(1, bins);
  h.counts.assign(static_cast<size_t>(bins), 0.0);
  for (size_t b = 0; b < fine.size(); ++b)
    h.counts[b * static_cast<size_t>(bins) / fine.size()] += static_cast<double>(fine[b]);
  return h;
}

// Static reports have no plan: encodings follow the weight mode and the CFWS split.
void static_encodings(quant::WeightMode mode, std::vector<quant::LayerQuant>& layers) {
  const std::string kCoarse = "/cfws_coarse", kFine = "/cfws_fine";
  auto ends_with = [](const std::string& s, const std::string& e) {
    return s.size() > e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
  };
  for (quant::LayerQuant& l : layers) {
    if (ends_with(l.node, kCoarse)) {
      l.encoding = "cfws-coarse";
      l.cfws_of = l.node.substr(0, l.node.size() - kCoarse.size());
    } else if (ends_with(l.node, kFine)) {
      l.encoding = "cfws-fine";
      l.cfws_of = l.node.substr(0, l.node.size() - kFine.size());
    } else {
      l.encoding = mode == quant::WeightMode::kPerTensor ? "per-tensor" : "per-channel";
    }
  }
}

}  // namespace

Report make_report_from(const Model& original, const quant::QuantizeResult& q,
                        const quant::QuantizeOptions& o, const data::Dataset& eval,
                        const ReportOptions& ro) {
  Report r = base_report(o, ro, &q.plan);
  const std::vector<RowSpec> rows = row_specs(q.fused, q.plan);
  const auto t0 = std::chrono::steady_clock::now();
  const std::map<std::string, BlockInfo> blocks = block_infos(original);
  spdlog::debug("report: block analysis {:.2f} s",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  const MeasureResult m = measure(q, rows, eval, ro);
  for (size_t i = 0; i < rows.size(); ++i) {
    LayerRow row;
    row.index = static_cast<int>(i);
    fill_weight_columns(q.fused, rows[i], row);
    fill_block(blocks, row);
    no_measures(row);
    if (const quant::ActivationQuant* a = q.plan.activation(rows[i].input)) {
      row.act_min = a->min;
      row.act_max = a->max;
      row.act_threshold = a->threshold;
      row.act_clipped = a->clipped;
      row.act_sqnr = m.activation[i].sqnr_db();
      row.act_p9999 = hist_percentile(m.hist[i], m.hist_amax[i], 99.99);
      row.act_hist = downsample(m.hist[i], m.hist_amax[i], a->threshold, ro.hist_bins);
    }
    const auto& ch = m.in_channel_absmax[i];
    row.dead_input_channels = ch.empty() ? -1 : std::count(ch.begin(), ch.end(), 0.0);
    row.out_sqnr_isolated = m.isolated[i].sqnr_db();
    row.out_cos_isolated = m.isolated[i].cosine();
    row.out_sqnr_cumulative = m.cumulative[i].sqnr_db();
    row.out_cos_cumulative = m.cumulative[i].cosine();
    r.layers.push_back(std::move(row));
  }
  r.summary = m.summary;
  diagnose(r);
  return r;
}

Report make_report(const Model& original, const quant::QuantizeOptions& o,
                   const data::Dataset* calib, const data::Dataset* eval,
                   const ReportOptions& ro) {
  if (!ro.plan && !calib)
    throw InputError("report: calibration data is needed (--calib), or a stored plan (--plan-in)");
  const data::Dataset* data = eval ? eval : calib;
  if (!data) throw InputError("report: data for the output measures is needed (--calib or --data)");
  const quant::QuantizeResult q =
      ro.plan ? quant::quantize_with_plan(original, *ro.plan, o) : quant::quantize(original, *calib, o);
  spdlog::debug("report: quantize {:.2f} s (forward {:.2f} s)", q.total_seconds, q.forward_seconds);
  return make_report_from(original, q, o, *data, ro);
}

Report make_static_report(const Model& original, const quant::QuantizeOptions& o,
                          const ReportOptions& ro) {
  Report r = base_report(o, ro, ro.plan);
  r.static_only = true;
  Model fused = original;
  if (o.fuse) {
    FuseOptions fo;
    fo.threads = ro.threads <= 0 ? 1 : ro.threads;
    fuse_branches(fused, fo);
  }
  const quant::WeightMode mode = ro.plan ? quant::parse_weight_mode(ro.plan->weight_mode) : o.weights;
  quant::apply_cfws(fused, mode, o.exclude);
  quant::QuantPlan plan;
  plan.layers = quant::pipeline_points(fused, o).layers;
  static_encodings(mode, plan.layers);
  const std::vector<RowSpec> rows = row_specs(fused, plan);
  const std::map<std::string, BlockInfo> blocks = block_infos(original);
  for (size_t i = 0; i < rows.size(); ++i) {
    LayerRow row;
    row.index = static_cast<int>(i);
    fill_weight_columns(fused, rows[i], row);
    fill_block(blocks, row);
    no_measures(row);
    r.layers.push_back(std::move(row));
  }
  r.summary.output_sqnr = r.summary.output_cos = r.summary.top1_agreement = kNaN;
  r.summary.top1_float = r.summary.top1_quant = kNaN;
  diagnose(r);
  return r;
}

}  // namespace repq::report
