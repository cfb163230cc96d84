// Shared pieces of the report formats: format names, number formatting, escaping, the gates.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "repq/error.h"
#include "repq/report/format.h"

namespace repq::report {

Format parse_format(std::string_view name) {
  if (name == "table") return Format::kTable;
  if (name == "csv") return Format::kCsv;
  if (name == "json") return Format::kJson;
  if (name == "md" || name == "markdown") return Format::kMarkdown;
  if (name == "html") return Format::kHtml;
  throw InputError("--format: unknown format '" + std::string(name) +
                   "' (use table, csv, json, md or html)");
}

std::string format_name(Format f) {
  switch (f) {
    case Format::kTable: return "table";
    case Format::kCsv: return "csv";
    case Format::kJson: return "json";
    case Format::kMarkdown: return "md";
    case Format::kHtml: return "html";
  }
  return "table";
}

std::string format_report(const Report& r, Format f, const FormatOptions& o) {
  switch (f) {
    case Format::kTable: return to_table(r, o);
    case Format::kCsv: return to_csv(r);
    case Format::kJson: return to_json(r);
    case Format::kMarkdown: return to_markdown(r, o);
    case Format::kHtml: return to_html(r, o);
  }
  return to_table(r, o);
}

int html_chart_count(const Report& r) {
  int n = r.layers.empty() ? 0 : 1;  // weight SQNR
  if (r.static_only) return n;
  if (!r.layers.empty()) ++n;  // output SQNR, isolated and cumulative
  for (const auto& l : r.layers)
    if (!l.act_hist.counts.empty() && l.act_hist.amax > 0) ++n;
  return n;
}

std::optional<std::string> check_gates(const Report& r, const Gates& g) {
  auto worst_text = [&]() -> std::string {
    const auto w = detail::worst_layers(r, 1);
    if (w.empty()) return "";
    const LayerRow& l = r.layers[static_cast<size_t>(w[0])];
    std::string s = "; worst layer " + detail::utf8_clean(l.name) + " (isolated output SQNR " +
                    detail::fixed(l.out_sqnr_isolated, 1) + " dB";
    if (!l.causes.empty()) s += ", " + detail::utf8_clean(l.causes.front());
    return s + ")";
  };
  if (std::isfinite(g.min_output_sqnr)) {
    const double v = r.summary.output_sqnr;
    if (!(v >= g.min_output_sqnr))
      return "gate failed: model output SQNR " + detail::fixed(v, 2) + " dB is under the limit " +
             detail::fixed(g.min_output_sqnr, 2) + " dB (--fail-under-sqnr)" + worst_text();
  }
  if (std::isfinite(g.min_agreement) && g.min_agreement >= 0) {
    const double v = r.summary.top1_agreement;
    if (!(v >= g.min_agreement))
      return "gate failed: top-1 agreement with float " + detail::fixed(v, 4) +
             " is under the limit " + detail::fixed(g.min_agreement, 4) +
             " (--fail-under-agreement)" + worst_text();
  }
  return std::nullopt;
}

namespace detail {

std::string fixed(double v, int decimals) {
  if (std::isnan(v)) return "-";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  if (s.find_first_not_of("-0.") == std::string::npos && s[0] == '-') s.erase(0, 1);  // "-0.0"
  return s;
}

std::string sig(double v) {
  if (std::isnan(v)) return "-";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return "0";
  char buf[64];
  const double a = std::fabs(v);
  if (a >= 1e-3 && a < 1e5) {
    const int digits = a >= 1000 ? 0 : a >= 100 ? 1 : a >= 10 ? 2 : a >= 1 ? 3 : 4;
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  } else {
    std::snprintf(buf, sizeof buf, "%.3e", v);
  }
  return buf;
}

std::string exact(double v) {
  if (std::isnan(v)) return "";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  // Prefer the shortest form that reads back to the same double.
  for (int p = 6; p < 17; ++p) {
    char b2[64];
    std::snprintf(b2, sizeof b2, "%.*g", p, v);
    if (std::strtod(b2, nullptr) == v) return b2;
  }
  return buf;
}

std::string join_dims(const std::vector<int64_t>& d) {
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) s += (i ? "x" : "") + std::to_string(d[i]);
  return s;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) s += sep;
    s += parts[i];
  }
  return s;
}

std::string shape_text(const LayerRow& l) {
  if (l.kernel.empty()) return l.op == "Conv" ? "conv" : "gemm";
  std::string s = join_dims(l.kernel);
  bool unit = true;
  for (int64_t v : l.strides) unit = unit && v == 1;
  if (!unit) {
    bool same = true;
    for (int64_t v : l.strides) same = same && v == l.strides[0];
    s += " s" + (same ? std::to_string(l.strides[0]) : join_dims(l.strides));
  }
  if (l.groups > 1) {
    if (l.groups == l.in_channels && l.groups == l.out_channels) s += " dw";
    else s += " g" + std::to_string(l.groups);
  }
  return s;
}

std::vector<int> worst_layers(const Report& r, int top) {
  std::vector<int> out;
  for (int i : r.worst) {
    if (static_cast<int>(out.size()) >= top) break;
    if (i >= 0 && static_cast<size_t>(i) < r.layers.size()) out.push_back(i);
  }
  return out;
}

std::string utf8_clean(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) { out += static_cast<char>(c); ++i; continue; }
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) ok = false;
      else cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid too.
    if (ok) {
      const uint32_t min_cp = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
      ok = cp >= min_cp && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string html_escape(std::string_view s) {
  const std::string clean = utf8_clean(s);
  std::string out;
  out.reserve(clean.size() + 16);
  for (char c : clean) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace detail
}  // namespace repq::report
