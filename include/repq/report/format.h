// The formats of `repq report` (docs/report.md): an aligned terminal table, CSV (one row per
// layer, RFC 4180), JSON (schema repq.report/1), GitHub markdown, and one self-contained HTML
// file with SVG charts. Every formatter takes a finished Report (report.h) and is pure: no
// files, no clock, the same Report gives the same bytes. Plus the CI gates
// (--fail-under-sqnr, --fail-under-agreement).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "repq/report/report.h"

namespace repq::report {

enum class Format { kTable, kCsv, kJson, kMarkdown, kHtml };
// "table", "csv", "json", "md" (also "markdown"), "html". Throws InputError listing the names.
Format parse_format(std::string_view name);
std::string format_name(Format f);

struct FormatOptions {
  int top = 5;  // entries of the "worst layers" section (<= 0: none)
};

std::string to_table(const Report& r, const FormatOptions& o = {});
std::string to_csv(const Report& r);
std::string to_json(const Report& r);
std::string to_markdown(const Report& r, const FormatOptions& o = {});
std::string to_html(const Report& r, const FormatOptions& o = {});
std::string format_report(const Report& r, Format f, const FormatOptions& o = {});

// The CSV header, in order: the LayerRow field names of report.h (act_hist excepted).
const std::vector<std::string>& csv_columns();

// The number of SVG charts to_html draws for `r`: the weight-SQNR chart, the output-SQNR chart
// (not for static reports) and one activation histogram per layer that has one.
int html_chart_count(const Report& r);

// Gates. A limit that is not finite (the defaults: -inf / < 0) is off.
struct Gates {
  double min_output_sqnr = -1e300;  // dB, summary.output_sqnr
  double min_agreement = -1;        // 0..1, summary.top1_agreement
};
// The failure message (one line naming the measure, its value, the limit and the worst layer),
// or nothing when every gate passes. A NaN measure fails its gate.
std::optional<std::string> check_gates(const Report& r, const Gates& g);

namespace detail {
// Shared by the formatters (also tested on their own).
// Numbers for people: "-" for NaN, "inf"/"-inf", `decimals` digits after the point.
std::string fixed(double v, int decimals);
// 4 significant digits, plain or exponent form, "-" for NaN.
std::string sig(double v);
// Round-trip-safe number for CSV ("" for NaN, "inf", "-inf").
std::string exact(double v);
// "3x3", "" when empty.
std::string join_dims(const std::vector<int64_t>& d);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
// "3x3 s2 g4" from kernel, strides and groups ("gemm" when there is no kernel).
std::string shape_text(const LayerRow& l);
// The worst layers, at most `top`, as indices into r.layers (r.worst, bounds-checked).
std::vector<int> worst_layers(const Report& r, int top);
// &, <, >, ", ' as entities; bytes that are not valid UTF-8 become U+FFFD.
std::string html_escape(std::string_view s);
// Valid UTF-8 (invalid bytes replaced by U+FFFD).
std::string utf8_clean(std::string_view s);

// The per-layer table of the table, md and html formats (cells are plain UTF-8 text).
struct TableColumn {
  std::string title;
  bool left = false;  // text columns align left, numbers right
};
std::vector<TableColumn> table_columns(const Report& r);
std::vector<std::string> table_cells(const Report& r, const LayerRow& l);

// SVG charts (inline in HTML, class "chart"; every text escaped).
struct BarSeries {
  std::string name, color;
  std::vector<double> values;  // one per category; NaN: no bar; +inf: a full bar marked "inf"
};
struct BarChart {
  std::string title, y_label;
  std::vector<std::string> categories;  // x-axis labels (layer indices)
  std::vector<std::string> tooltips;    // per category (layer names)
  std::vector<BarSeries> series;        // grouped side by side
};
std::string svg_bar_chart(const BarChart& c);
// |x| histogram (log-scaled counts) with the clip threshold as a vertical line.
std::string svg_histogram(const Histogram& h, const std::string& title);
}  // namespace detail

}  // namespace repq::report
