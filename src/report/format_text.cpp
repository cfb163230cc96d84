// The human formats of `repq report`: an aligned terminal table and GitHub markdown, each with
// the model summary, one row per layer and the "worst layers" section (causes and advice).
#include <algorithm>
#include <cmath>

#include "repq/report/format.h"

namespace repq::report {
namespace {

using detail::fixed;
using detail::sig;

std::string range_text(double lo, double hi) {
  if (std::isnan(lo) && std::isnan(hi)) return "-";
  return "[" + sig(lo) + ", " + sig(hi) + "]";
}

std::string percent(double fraction, int decimals) {
  if (std::isnan(fraction)) return "-";
  return fixed(100.0 * fraction, decimals);
}

}  // namespace

namespace detail {

std::vector<TableColumn> table_columns(const Report& r) {
  std::vector<TableColumn> c = {
      {"#", false},        {"layer", true},     {"op", true},          {"shape", true},
      {"ch", false},       {"block", true},     {"enc", true},         {"w range", false},
      {"c/s", false},      {"idBN", false},     {"maxBN", false},      {"ch outl", false},
      {"wSQNR pt", false}, {"wSQNR pc", false}, {"wSQNR cfws", false}};
  if (!r.static_only) {
    const std::vector<TableColumn> more = {
        {"act range", false}, {"p99.99", false},   {"thr", false},     {"clip %", false},
        {"dead in", false},   {"aSQNR", false},    {"SQNR iso", false}, {"SQNR cum", false},
        {"cos iso", false},   {"cos cum", false}};
    c.insert(c.end(), more.begin(), more.end());
  }
  return c;
}

std::vector<std::string> table_cells(const Report& r, const LayerRow& l) {
  std::vector<std::string> c = {std::to_string(l.index),
                                detail::utf8_clean(l.name),
                                detail::utf8_clean(l.op),
                                detail::shape_text(l),
                                std::to_string(l.in_channels) + "->" + std::to_string(l.out_channels),
                                l.block_kind.empty() ? "-" : detail::utf8_clean(l.block_kind),
                                l.encoding.empty() ? "-" : detail::utf8_clean(l.encoding),
                                range_text(l.weight_min, l.weight_max),
                                fixed(l.centre_surround, 2),
                                fixed(l.identity_bn_factor, 2),
                                fixed(l.any_bn_factor, 2),
                                fixed(l.channel_outlier, 1),
                                fixed(l.w_sqnr_per_tensor, 1),
                                fixed(l.w_sqnr_per_channel, 1),
                                fixed(l.w_sqnr_cfws, 1)};
  if (!r.static_only) {
    const std::vector<std::string> more = {range_text(l.act_min, l.act_max),
                                           sig(l.act_p9999),
                                           sig(l.act_threshold),
                                           percent(l.act_clipped, 3),
                                           l.dead_input_channels >= 0 ? std::to_string(l.dead_input_channels) : "-",
                                           fixed(l.act_sqnr, 1),
                                           fixed(l.out_sqnr_isolated, 1),
                                           fixed(l.out_sqnr_cumulative, 1),
                                           fixed(l.out_cos_isolated, 5),
                                           fixed(l.out_cos_cumulative, 5)};
    c.insert(c.end(), more.begin(), more.end());
  }
  return c;
}

}  // namespace detail

namespace {

// Display width of UTF-8 text (code points; names are rarely wide characters).
size_t width(const std::string& s) {
  size_t w = 0;
  for (unsigned char c : s) w += (c & 0xC0) != 0x80;
  return w;
}

// Long names keep their start and end: "/stage3/stage3.1/.../Conv".
std::string shorten(const std::string& s, size_t max) {
  if (width(s) <= max) return s;
  const size_t keep = (max - 3) / 2;
  size_t head = 0, count = 0;
  while (head < s.size() && count < keep) {
    ++head;
    while (head < s.size() && (static_cast<unsigned char>(s[head]) & 0xC0) == 0x80) ++head;
    ++count;
  }
  size_t tail = s.size();
  count = 0;
  while (tail > head && count < max - 3 - keep) {
    --tail;
    while (tail > head && (static_cast<unsigned char>(s[tail]) & 0xC0) == 0x80) --tail;
    ++count;
  }
  return s.substr(0, head) + "..." + s.substr(tail);
}

std::string pad(const std::string& s, size_t w, bool left) {
  const size_t n = width(s);
  const std::string fill(w > n ? w - n : 0, ' ');
  return left ? s + fill : fill + s;
}

std::string title_line(const Report& r) {
  std::string s = "method " + detail::utf8_clean(r.method) + " (activations " +
                  detail::utf8_clean(r.act_method) + ", weights " + detail::utf8_clean(r.weight_mode) +
                  ", target " + detail::utf8_clean(r.target) + ")";
  if (r.static_only) s += ", static: weights only, no data";
  else s += ", " + std::to_string(r.summary.samples) + " samples";
  return s;
}

std::string summary_line(const Report& r) {
  if (r.static_only) return "";
  const ModelSummary& m = r.summary;
  std::string s = "output SQNR " + fixed(m.output_sqnr, 2) + " dB, cosine " + fixed(m.output_cos, 5) +
                  ", top-1 agreement with float " + percent(m.top1_agreement, 2) + " %";
  if (m.has_labels)
    s += ", top-1 accuracy float " + percent(m.top1_float, 2) + " % / int8 " + percent(m.top1_quant, 2) + " %";
  return s;
}

std::string worst_heading(const Report& r) {
  return r.static_only ? "Worst layers (by weight error)" : "Worst layers (by isolated output error)";
}

std::string worst_measure(const Report& r, const LayerRow& l) {
  if (r.static_only)
    return "weight SQNR per-tensor " + fixed(l.w_sqnr_per_tensor, 1) + " dB, per-channel " +
           fixed(l.w_sqnr_per_channel, 1) + " dB";
  return "output SQNR isolated " + fixed(l.out_sqnr_isolated, 1) + " dB, cumulative " +
         fixed(l.out_sqnr_cumulative, 1) + " dB";
}

}  // namespace

std::string to_table(const Report& r, const FormatOptions& o) {
  std::string out = "repq report: " + detail::utf8_clean(r.model_path) + "\n" + title_line(r) + "\n";
  const std::string sum = summary_line(r);
  if (!sum.empty()) out += "model: " + sum + "\n";
  out += std::to_string(r.layers.size()) + " quantized layers\n\n";

  const auto cols = detail::table_columns(r);
  std::vector<std::vector<std::string>> rows;
  for (const auto& l : r.layers) {
    rows.push_back(detail::table_cells(r, l));
    rows.back()[1] = shorten(rows.back()[1], 56);
  }
  std::vector<size_t> w(cols.size());
  for (size_t c = 0; c < cols.size(); ++c) {
    w[c] = width(cols[c].title);
    for (const auto& row : rows) w[c] = std::max(w[c], width(row[c]));
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (size_t c = 0; c < cols.size(); ++c) {
      if (c) s += "  ";
      s += pad(cells[c], w[c], cols[c].left);
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };
  std::vector<std::string> titles;
  for (const auto& c : cols) titles.push_back(c.title);
  out += line(titles);
  for (const auto& row : rows) out += line(row);

  const auto worst = detail::worst_layers(r, o.top);
  if (!worst.empty()) {
    out += "\n" + worst_heading(r) + ":\n";
    int rank = 1;
    for (int i : worst) {
      const LayerRow& l = r.layers[static_cast<size_t>(i)];
      out += "  " + std::to_string(rank++) + ". " + detail::utf8_clean(l.name) + " (#" +
             std::to_string(l.index) + ", " + detail::utf8_clean(l.op) + " " + detail::shape_text(l) +
             "): " + worst_measure(r, l) + "\n";
      out += "     cause: " + (l.causes.empty() ? std::string("no single cause found")
                                                  : detail::utf8_clean(detail::join(l.causes, "; "))) + "\n";
      if (!l.advice.empty()) out += "     try:   " + detail::utf8_clean(detail::join(l.advice, "; ")) + "\n";
    }
  }
  return out;
}

namespace {

// Markdown: ASCII punctuation that could start markup gets a backslash; the text is UTF-8.
std::string md_escape(std::string_view s) {
  std::string out;
  for (char c : detail::utf8_clean(s)) {
    switch (c) {
      case '\\': case '`': case '*': case '_': case '[': case ']': case '<': case '>':
      case '|': case '&': case '~': case '#':
        out += '\\';
        out += c;
        break;
      case '\n': case '\r': out += ' '; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::string to_markdown(const Report& r, const FormatOptions& o) {
  std::string out = "## repq report: " + md_escape(r.model_path) + "\n\n";
  out += "- " + md_escape(title_line(r)) + "\n";
  const std::string sum = summary_line(r);
  if (!sum.empty()) out += "- model: " + sum + "\n";
  out += "- " + std::to_string(r.layers.size()) + " quantized layers\n\n";

  const auto cols = detail::table_columns(r);
  std::string head = "|", rule = "|";
  for (const auto& c : cols) {
    head += " " + c.title + " |";
    rule += c.left ? "---|" : "--:|";
  }
  out += head + "\n" + rule + "\n";
  for (const auto& l : r.layers) {
    std::string s = "|";
    // Text columns are escaped; numbers, ranges and "16->32" cannot start markup mid-line.
    const auto cells = detail::table_cells(r, l);
    for (size_t c = 0; c < cells.size(); ++c) s += " " + (cols[c].left ? md_escape(cells[c]) : cells[c]) + " |";
    out += s + "\n";
  }

  const auto worst = detail::worst_layers(r, o.top);
  if (!worst.empty()) {
    out += "\n### " + worst_heading(r) + "\n\n";
    int rank = 1;
    for (int i : worst) {
      const LayerRow& l = r.layers[static_cast<size_t>(i)];
      out += std::to_string(rank++) + ". **" + md_escape(l.name) + "** (#" + std::to_string(l.index) +
             ", " + md_escape(l.op) + " " + detail::shape_text(l) + "): " + worst_measure(r, l) + "\n";
      out += "   - cause: " + (l.causes.empty() ? std::string("no single cause found")
                                                : md_escape(detail::join(l.causes, "; "))) + "\n";
      if (!l.advice.empty()) {
        std::vector<std::string> a;
        for (const auto& s : l.advice) {  // code spans; a backtick of its own would end one
          std::string t = detail::utf8_clean(s);
          std::erase(t, '`');
          a.push_back("`" + t + "`");
        }
        out += "   - try: " + detail::join(a, ", ") + "\n";
      }
    }
  }
  return out;
}

}  // namespace repq::report
