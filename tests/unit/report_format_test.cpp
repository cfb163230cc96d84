// The report formats on hand-built Reports: number formatting, escaping, the CSV / JSON
// schemas (docs/report.md), the table and markdown layouts, the HTML structure (charts, rows,
// injection) and the gates. Every expected value is written out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "repq/error.h"
#include "repq/report/format.h"

namespace repq::report {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

size_t count(const std::string& s, const std::string& part) {
  size_t n = 0;
  for (size_t p = s.find(part); p != std::string::npos; p = s.find(part, p + part.size())) ++n;
  return n;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

LayerRow layer(int index, const std::string& name, double iso, double cum) {
  LayerRow l;
  l.index = index;
  l.name = name;
  l.op = "Conv";
  l.kernel = {3, 3};
  l.strides = {1, 1};
  l.in_channels = 8;
  l.out_channels = 16;
  l.encoding = "per-channel";
  l.weight_min = -0.5;
  l.weight_max = 0.75;
  l.centre_surround = 1.5;
  l.identity_bn_factor = kNaN;
  l.w_sqnr_per_tensor = 30.25;
  l.w_sqnr_per_channel = 38.5;
  l.w_sqnr_cfws = kNaN;
  l.any_bn_factor = kNaN;
  l.channel_outlier = 2;
  l.act_tensor = name + "_in";
  l.act_min = 0;
  l.act_max = 6;
  l.act_threshold = 4;
  l.act_clipped = 0.001;
  l.act_sqnr = 40;
  l.act_p9999 = 3.5;
  l.act_hist.amax = 6;
  l.act_hist.counts = {100, 50, 10, 0, 1, 1};
  l.act_hist.threshold = 4;
  l.out_sqnr_isolated = iso;
  l.out_cos_isolated = 0.999;
  l.out_sqnr_cumulative = cum;
  l.out_cos_cumulative = 0.99;
  return l;
}

Report sample() {
  Report r;
  r.model_path = "models/repvgg/repvgg.train.onnx";
  r.method = "minmax";
  r.act_method = "minmax";
  r.weight_mode = "per-channel";
  r.target = "ort";
  r.layers.push_back(layer(0, "stem", 35, 35));
  r.layers.push_back(layer(1, "stage1.conv", 12, 20));
  r.layers[1].kernel = {3, 3};
  r.layers[1].strides = {2, 2};
  r.layers[1].identity_bn_factor = 121;
  r.layers[1].block_kind = "RepVGG";
  r.layers[1].causes = {"identity-BN outlier (factor 121)"};
  r.layers[1].advice = {"--weights cfws", "--exclude stage1.conv"};
  r.layers.push_back(layer(2, "head", kNaN, 18));
  r.layers[2].op = "Gemm";
  r.layers[2].kernel = {};
  r.layers[2].strides = {};
  r.layers[2].act_hist.counts.clear();  // no histogram: no chart
  r.summary = {18.0, 0.98, 0.9375, true, 0.9, 0.85, 16};
  r.worst = {1, 0, 7};  // 7 is out of range: ignored
  return r;
}

TEST(ReportFormatNumbers, KnownStrings) {
  using namespace detail;
  EXPECT_EQ(fixed(kNaN, 2), "-");
  EXPECT_EQ(fixed(std::numeric_limits<double>::infinity(), 1), "inf");
  EXPECT_EQ(fixed(-0.001, 1), "0.0");
  EXPECT_EQ(fixed(12.5, 2), "12.50");
  EXPECT_EQ(sig(0), "0");
  EXPECT_EQ(sig(2.5), "2.500");
  EXPECT_EQ(sig(-0.012345), "-0.0123");
  EXPECT_EQ(sig(1234.0), "1234");
  EXPECT_EQ(sig(123456.0), "1.235e+05");
  EXPECT_EQ(sig(kNaN), "-");
  EXPECT_EQ(exact(0.1), "0.1");
  EXPECT_EQ(exact(1.0 / 3.0), "0.3333333333333333");
  EXPECT_EQ(exact(kNaN), "");
  EXPECT_EQ(exact(-std::numeric_limits<double>::infinity()), "-inf");
}

TEST(ReportFormatText, ShapesEscapesAndUtf8) {
  LayerRow l;
  l.kernel = {3, 3};
  l.strides = {2, 2};
  l.groups = 1;
  EXPECT_EQ(detail::shape_text(l), "3x3 s2");
  l.strides = {1, 2};
  l.groups = 4;
  l.in_channels = 8;
  l.out_channels = 8;
  EXPECT_EQ(detail::shape_text(l), "3x3 s1x2 g4");
  l.strides = {1, 1};
  l.groups = 8;
  EXPECT_EQ(detail::shape_text(l), "3x3 dw");
  EXPECT_EQ(detail::html_escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
  EXPECT_EQ(detail::utf8_clean("a\xff" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(detail::utf8_clean("\xC3\xA9t\xC3\xA9"), "\xC3\xA9t\xC3\xA9");       // "été" stays
  EXPECT_EQ(detail::utf8_clean("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");          // overlong '/'
  EXPECT_EQ(detail::utf8_clean("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(detail::utf8_clean("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");          // truncated
}

TEST(ReportFormatNames, ParseAndName) {
  EXPECT_EQ(parse_format("md"), Format::kMarkdown);
  EXPECT_EQ(parse_format("markdown"), Format::kMarkdown);
  EXPECT_EQ(parse_format("html"), Format::kHtml);
  EXPECT_EQ(format_name(Format::kCsv), "csv");
  EXPECT_THROW(parse_format("xml"), InputError);
}

// A minimal RFC 4180 reader: records of fields.
std::vector<std::vector<std::string>> read_csv(const std::string& s) {
  std::vector<std::vector<std::string>> rows(1, std::vector<std::string>(1));
  bool quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quoted) {
      if (c == '"' && i + 1 < s.size() && s[i + 1] == '"') rows.back().back() += '"', ++i;
      else if (c == '"') quoted = false;
      else rows.back().back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().emplace_back();
    } else if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') {
      rows.emplace_back(1);
      ++i;
    } else {
      rows.back().back() += c;
    }
  }
  if (rows.back().size() == 1 && rows.back()[0].empty()) rows.pop_back();
  return rows;
}

TEST(ReportFormatCsv, HeaderRowsQuotingAndNaN) {
  Report r = sample();
  r.layers[0].name = "a,\"b\"\nc";
  const std::string csv = to_csv(r);
  EXPECT_EQ(csv.substr(0, csv.find("\r\n")),
            "index,name,op,kernel,strides,groups,in_channels,out_channels,encoding,weight_min,"
            "weight_max,centre_surround,identity_bn_factor,w_sqnr_per_tensor,w_sqnr_per_channel,"
            "w_sqnr_cfws,block_kind,any_bn_factor,channel_outlier,dead_input_channels,act_tensor,"
            "act_min,act_max,act_threshold,act_clipped,act_sqnr,act_p9999,out_sqnr_isolated,"
            "out_cos_isolated,out_sqnr_cumulative,out_cos_cumulative,causes,advice");
  EXPECT_NE(csv.find("\"a,\"\"b\"\"\nc\""), std::string::npos) << csv;
  const auto rows = read_csv(csv);
  ASSERT_EQ(rows.size(), 4u);
  const auto& cols = csv_columns();
  for (const auto& row : rows) ASSERT_EQ(row.size(), cols.size());
  auto field = [&](size_t row, const std::string& col) {
    const size_t c = static_cast<size_t>(std::find(cols.begin(), cols.end(), col) - cols.begin());
    return rows[row][c];
  };
  EXPECT_EQ(field(1, "name"), "a,\"b\"\nc");
  EXPECT_EQ(field(2, "kernel"), "3x3");
  EXPECT_EQ(field(2, "strides"), "2x2");
  EXPECT_EQ(field(2, "identity_bn_factor"), "121");
  EXPECT_EQ(field(1, "identity_bn_factor"), "");  // NaN
  EXPECT_EQ(field(2, "w_sqnr_per_tensor"), "30.25");
  EXPECT_EQ(field(2, "act_clipped"), "0.001");
  EXPECT_EQ(field(2, "block_kind"), "RepVGG");
  EXPECT_EQ(field(2, "causes"), "identity-BN outlier (factor 121)");
  EXPECT_EQ(field(2, "advice"), "--weights cfws; --exclude stage1.conv");
  EXPECT_EQ(field(3, "kernel"), "");
  EXPECT_EQ(field(3, "out_sqnr_isolated"), "");

  r.static_only = true;  // activation and output columns empty
  const auto srows = read_csv(to_csv(r));
  ASSERT_EQ(srows.size(), 4u);
  EXPECT_EQ(srows[2][static_cast<size_t>(std::find(cols.begin(), cols.end(), "act_max") - cols.begin())], "");
  EXPECT_EQ(srows[2][static_cast<size_t>(std::find(cols.begin(), cols.end(), "weight_max") - cols.begin())], "0.75");
}

TEST(ReportFormatJson, SchemaFieldsNullsAndBadUtf8) {
  Report r = sample();
  r.layers[0].name = "bad\xff";
  const auto j = nlohmann::json::parse(to_json(r));
  EXPECT_EQ(j["schema"], "repq.report/1");
  std::vector<std::string> top;
  for (auto it = j.begin(); it != j.end(); ++it) top.push_back(it.key());
  // nlohmann::json sorts keys; the document's own order is checked on the text below.
  EXPECT_EQ(top, (std::vector<std::string>{"act_method", "layers", "method", "model_path", "schema",
                                           "static_only", "summary", "target", "weight_mode", "worst"}));
  EXPECT_EQ(j["summary"]["output_sqnr"], 18.0);
  EXPECT_EQ(j["summary"]["top1_agreement"], 0.9375);
  EXPECT_EQ(j["summary"]["samples"], 16);
  EXPECT_EQ(j["worst"], nlohmann::json::parse("[1, 0]"));
  ASSERT_EQ(j["layers"].size(), 3u);
  const auto& l1 = j["layers"][1];
  for (const auto& c : csv_columns()) EXPECT_TRUE(l1.contains(c)) << c;
  EXPECT_EQ(l1.size(), csv_columns().size() + 1);  // + act_hist
  EXPECT_EQ(l1["kernel"], nlohmann::json::parse("[3, 3]"));
  EXPECT_EQ(l1["identity_bn_factor"], 121.0);
  EXPECT_TRUE(j["layers"][0]["identity_bn_factor"].is_null());
  EXPECT_TRUE(j["layers"][2]["out_sqnr_isolated"].is_null());
  EXPECT_TRUE(j["layers"][2]["act_hist"].is_null());
  EXPECT_EQ(l1["act_hist"]["counts"].size(), 6u);
  EXPECT_EQ(l1["act_hist"]["threshold"], 4.0);
  EXPECT_EQ(l1["causes"][0], "identity-BN outlier (factor 121)");
  EXPECT_EQ(j["layers"][0]["name"], "bad\xEF\xBF\xBD");
  const std::string text = to_json(r);
  EXPECT_LT(text.find("\"schema\""), text.find("\"model_path\""));
  EXPECT_LT(text.find("\"summary\""), text.find("\"layers\""));
}

TEST(ReportFormatTable, AlignedWithSummaryAndWorstLayers) {
  const Report r = sample();
  const std::string t = to_table(r, {});
  EXPECT_NE(t.find("output SQNR 18.00 dB"), std::string::npos) << t;
  EXPECT_NE(t.find("top-1 agreement with float 93.75 %"), std::string::npos) << t;
  EXPECT_NE(t.find("top-1 accuracy float 90.00 % / int8 85.00 %"), std::string::npos) << t;
  EXPECT_NE(t.find("3 quantized layers"), std::string::npos);
  // The table: header + 3 rows, all the same width (right-aligned last column).
  const auto ls = lines(t);
  size_t head = 0;
  while (head < ls.size() && ls[head].rfind("#", 0) != 0) ++head;
  ASSERT_LT(head + 3, ls.size()) << t;
  for (size_t i = 1; i <= 3; ++i) EXPECT_EQ(ls[head + i].size(), ls[head].size()) << ls[head + i];
  EXPECT_NE(ls[head + 2].find("3x3 s2"), std::string::npos);
  EXPECT_NE(ls[head + 2].find("121.00"), std::string::npos);
  EXPECT_NE(ls[head + 3].find(" - "), std::string::npos);  // NaN isolated SQNR
  EXPECT_NE(t.find("Worst layers (by isolated output error):\n  1. stage1.conv (#1, Conv 3x3 s2): "
                   "output SQNR isolated 12.0 dB, cumulative 20.0 dB\n"
                   "     cause: identity-BN outlier (factor 121)\n"
                   "     try:   --weights cfws; --exclude stage1.conv\n  2. stem"),
            std::string::npos)
      << t;
  EXPECT_EQ(to_table(r, {1}).find("  2. stem"), std::string::npos);
  EXPECT_EQ(to_table(r, {0}).find("Worst layers"), std::string::npos);
}

TEST(ReportFormatTable, StaticHasWeightColumnsOnly) {
  Report r = sample();
  r.static_only = true;
  const std::string t = to_table(r);
  EXPECT_NE(t.find("static: weights only"), std::string::npos);
  EXPECT_EQ(t.find("SQNR iso"), std::string::npos);
  EXPECT_EQ(t.find("output SQNR"), std::string::npos);
  EXPECT_NE(t.find("wSQNR pc"), std::string::npos);
  EXPECT_NE(t.find("Worst layers (by weight error)"), std::string::npos);
}

TEST(ReportFormatMarkdown, TableAndEscapes) {
  Report r = sample();
  r.layers[0].name = "a|b_<c>";
  const std::string md = to_markdown(r);
  const auto ls = lines(md);
  const size_t ncols = detail::table_columns(r).size();
  size_t table_rows = 0;
  for (const auto& l : ls)
    if (!l.empty() && l[0] == '|') {
      ++table_rows;
      // Unescaped pipes delimit the cells.
      size_t pipes = 0;
      for (size_t i = 0; i < l.size(); ++i) pipes += l[i] == '|' && (i == 0 || l[i - 1] != '\\');
      EXPECT_EQ(pipes, ncols + 1) << l;
    }
  EXPECT_EQ(table_rows, 2u + 3u);  // header, rule, rows
  EXPECT_NE(md.find("a\\|b\\_\\<c\\>"), std::string::npos) << md;
  EXPECT_NE(md.find("### Worst layers (by isolated output error)\n\n1. **stage1.conv**"), std::string::npos) << md;
  EXPECT_NE(md.find("   - try: `--weights cfws`, `--exclude stage1.conv`"), std::string::npos) << md;
}

TEST(ReportFormatHtml, SelfContainedChartsRowsAndInjection) {
  Report r = sample();
  r.layers[0].name = "<script>alert(1)</script>";
  r.layers[0].causes = {"<img src=x onerror=alert(2)>"};
  const std::string h = to_html(r);
  EXPECT_EQ(h.find("<script>alert"), std::string::npos);
  EXPECT_EQ(h.find("<img"), std::string::npos);
  EXPECT_NE(h.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(count(h, "<script"), 2u);  // onerror marker in <head>, the counter at the end
  // Nothing external (on a report without hostile names): no links, sources, imports or URLs;
  // the Content-Security-Policy forbids loads anyway.
  const std::string plain = to_html(sample());
  for (const char* bad : {" src=", " href=", "@import", "url(", "http:", "https:", "//"})
    EXPECT_EQ(plain.find(bad), std::string::npos) << bad;
  EXPECT_NE(plain.find("content=\"default-src 'none';"), std::string::npos);
  // Charts: output SQNR, weight SQNR, histograms of layers 0 and 1 (layer 2 has none).
  EXPECT_EQ(html_chart_count(r), 4);
  EXPECT_EQ(count(h, "<svg class=\"chart"), 4u);
  EXPECT_EQ(count(h, "<svg class=\"chart hist\""), 2u);
  EXPECT_NE(h.find("data-expected-rows=\"3\" data-expected-charts=\"4\""), std::string::npos);
  const size_t body = h.find("<tbody>");
  ASSERT_NE(body, std::string::npos);
  EXPECT_EQ(count(h.substr(body, h.find("</tbody>") - body), "<tr"), 3u);
  EXPECT_EQ(count(h, "<tr class=\"worst\">"), 2u);  // top 5 of worst = layers 1 and 0

  r.static_only = true;
  EXPECT_EQ(html_chart_count(r), 1);
  EXPECT_EQ(count(to_html(r), "<svg class=\"chart"), 1u);
}

TEST(ReportFormatSvg, HistogramThresholdAndBars) {
  Histogram hg;
  hg.amax = 8;
  hg.counts = {9, 3, 0, 1};
  hg.threshold = 2;  // a quarter of the range: x = 8 + 300 * 0.25
  const std::string s = detail::svg_histogram(hg, "h<1>");
  EXPECT_NE(s.find("<line x1=\"83.0\" x2=\"83.0\""), std::string::npos) << s;
  EXPECT_EQ(count(s, "class=\"bin\""), 3u);  // the empty bin draws nothing
  EXPECT_NE(s.find("h&lt;1&gt;"), std::string::npos);
  // Tallest bin (9) fills the 90 px plot; count 1 is log(2)/log(10) of it = 27.1 px.
  EXPECT_NE(s.find("height=\"90.0\" class=\"bin\""), std::string::npos) << s;
  EXPECT_NE(s.find("height=\"27.1\" class=\"bin\""), std::string::npos) << s;

  detail::BarChart c{"t", "dB", {"0", "1", "2"}, {"a", "b", "c"}, {}};
  c.series.push_back({"iso", "#111111", {10, kNaN, 30}});
  c.series.push_back({"cum", "#222222", {5, 20, std::numeric_limits<double>::infinity()}});
  const std::string b = detail::svg_bar_chart(c);
  EXPECT_EQ(count(b, "fill=\"#111111\""), 3u);  // legend + 2 bars (NaN skipped)
  EXPECT_EQ(count(b, "fill=\"#222222\""), 4u);  // legend + 3 bars
  EXPECT_EQ(count(b, "class=\"inf\""), 1u);
  EXPECT_NE(b.find("<title>c - cum: inf dB</title>"), std::string::npos) << b;
}

TEST(ReportGates, PassFailAndMessages) {
  Report r = sample();
  EXPECT_FALSE(check_gates(r, {}).has_value());
  EXPECT_FALSE(check_gates(r, {17.5, 0.9}).has_value());
  const auto s = check_gates(r, {20, -1});
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(*s,
            "gate failed: model output SQNR 18.00 dB is under the limit 20.00 dB (--fail-under-sqnr); "
            "worst layer stage1.conv (isolated output SQNR 12.0 dB, identity-BN outlier (factor 121))");
  const auto a = check_gates(r, {-1e300, 0.95});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->rfind("gate failed: top-1 agreement with float 0.9375 is under the limit 0.9500 "
                     "(--fail-under-agreement)", 0), 0u) << *a;
  r.summary.output_sqnr = kNaN;  // not measured: fails
  EXPECT_TRUE(check_gates(r, {0, -1}).has_value());
  r.worst.clear();
  r.summary.output_sqnr = 10;
  EXPECT_EQ(check_gates(r, {11, -1}).value(),
            "gate failed: model output SQNR 10.00 dB is under the limit 11.00 dB (--fail-under-sqnr)");
}

TEST(ReportFormatEdges, EmptyReportAndDegenerateCharts) {
  Report r;
  r.method = "minmax";
  EXPECT_EQ(to_csv(r), detail::join(csv_columns(), ",") + "\r\n");
  EXPECT_EQ(nlohmann::json::parse(to_json(r))["layers"].size(), 0u);
  EXPECT_NE(to_table(r).find("0 quantized layers"), std::string::npos);
  EXPECT_EQ(html_chart_count(r), 0);
  EXPECT_EQ(count(to_html(r), "<svg"), 0u);

  Histogram empty;  // no range, no counts: a frame, no bins, no threshold line
  const std::string h = detail::svg_histogram(empty, std::string(60, 'n') + "tail");
  EXPECT_EQ(count(h, "class=\"bin\""), 0u);
  EXPECT_EQ(count(h, "class=\"thr\""), 0u);
  EXPECT_NE(h.find(">..." + std::string(41, 'n') + "tail</text>"), std::string::npos) << h;

  detail::BarChart c{"all NaN", "dB", {"0", "1"}, {}, {}};
  c.series.push_back({"iso", "#111111", {kNaN, kNaN}});
  const std::string b = detail::svg_bar_chart(c);
  EXPECT_EQ(count(b, "fill=\"#111111\""), 1u);  // the legend only
  EXPECT_EQ(b.find("nan"), std::string::npos);
  EXPECT_EQ(b.find("inf"), std::string::npos);
}

}  // namespace
}  // namespace repq::report
