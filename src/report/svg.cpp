// Inline SVG charts of the HTML report: grouped per-layer bars (SQNR) and activation
// histograms with the clip threshold. Plain SVG 1.1 elements, no scripts, every text escaped.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "repq/report/format.h"

namespace repq::report::detail {
namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// Tick step 1, 2 or 5 x 10^k giving about `target` intervals over `span`.
double nice_step(double span, int target) {
  const double raw = span / std::max(1, target);
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw) return m * p;
  return 10 * p;
}

std::string tick_label(double v, double step) {
  char buf[32];
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step)));
  std::snprintf(buf, sizeof buf, "%.*f", decimals, std::fabs(v) < step * 1e-6 ? 0.0 : v);
  return buf;
}

}  // namespace

std::string svg_bar_chart(const BarChart& c) {
  const size_t n = c.categories.size();
  const size_t ns = std::max<size_t>(1, c.series.size());
  const double bar_w = n > 60 ? 4 : 8;
  const double group_w = static_cast<double>(ns) * bar_w + 4;
  const double left = 52, right = 12, top = 46, bottom = 40;
  const double plot_w = std::max(480.0, static_cast<double>(n) * group_w);
  const double plot_h = 200;
  const double width = left + plot_w + right, height = top + plot_h + bottom;

  double lo = 0, hi = 0;
  bool any = false;
  for (const auto& s : c.series)
    for (double v : s.values)
      if (std::isfinite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
        any = true;
      }
  if (!any || hi <= lo) hi = lo + 1;
  const double step = nice_step(hi - lo, 5);
  lo = std::floor(lo / step) * step;
  hi = std::ceil(hi / step) * step;
  auto y_of = [&](double v) { return top + plot_h * (hi - std::clamp(v, lo, hi)) / (hi - lo); };

  std::string o = "<svg class=\"chart bars\" role=\"img\" width=\"" + num(width) + "\" height=\"" +
                  num(height) + "\" viewBox=\"0 0 " + num(width) + " " + num(height) + "\">";
  o += "<title>" + html_escape(c.title) + "</title>";
  o += "<text x=\"" + num(left) + "\" y=\"16\" class=\"ct\">" + html_escape(c.title) + "</text>";
  // Legend, on its own line under the title.
  double lx = left;
  for (const auto& sr : c.series) {
    o += "<rect x=\"" + num(lx) + "\" y=\"24\" width=\"10\" height=\"10\" fill=\"" +
         html_escape(sr.color) + "\"/><text x=\"" + num(lx + 14) + "\" y=\"33\" class=\"lg\">" +
         html_escape(sr.name) + "</text>";
    lx += 7.0 * static_cast<double>(sr.name.size()) + 30;
  }
  // Grid and y ticks.
  for (double t = lo; t <= hi + step * 1e-9; t += step) {
    const double y = y_of(t);
    o += "<line x1=\"" + num(left) + "\" x2=\"" + num(left + plot_w) + "\" y1=\"" + num(y) + "\" y2=\"" +
         num(y) + "\" class=\"grid\"/><text x=\"" + num(left - 6) + "\" y=\"" + num(y + 4) +
         "\" class=\"yt\">" + tick_label(t, step) + "</text>";
  }
  o += "<text transform=\"translate(12," + num(top + plot_h / 2) + ") rotate(-90)\" class=\"yl\">" +
       html_escape(c.y_label) + "</text>";
  const double y0 = y_of(0);
  o += "<line x1=\"" + num(left) + "\" x2=\"" + num(left + plot_w) + "\" y1=\"" + num(y0) + "\" y2=\"" +
       num(y0) + "\" class=\"axis\"/>";
  // Bars.
  const double slot = plot_w / static_cast<double>(std::max<size_t>(1, n));
  const size_t label_every = std::max<size_t>(1, static_cast<size_t>(std::ceil(24.0 / slot)));
  for (size_t i = 0; i < n; ++i) {
    const double gx = left + slot * static_cast<double>(i) + (slot - static_cast<double>(ns) * bar_w) / 2;
    const std::string tip = i < c.tooltips.size() ? c.tooltips[i] : c.categories[i];
    for (size_t s = 0; s < c.series.size(); ++s) {
      const auto& sr = c.series[s];
      if (i >= sr.values.size() || std::isnan(sr.values[i])) continue;
      const double v = sr.values[i];
      const double y = v >= 0 ? y_of(v) : y0;
      const double h = std::max(0.5, std::fabs(y_of(v) - y0));
      const std::string value = std::isinf(v) ? (v > 0 ? "inf" : "-inf") : fixed(v, 2);
      o += "<rect x=\"" + num(gx + bar_w * static_cast<double>(s)) + "\" y=\"" + num(y) + "\" width=\"" +
           num(bar_w - 1) + "\" height=\"" + num(h) + "\" fill=\"" + html_escape(sr.color) + "\"" +
           (std::isinf(v) ? " class=\"inf\"" : "") + "><title>" + html_escape(tip) + " - " +
           html_escape(sr.name) + ": " + value + " " + html_escape(c.y_label) + "</title></rect>";
    }
    if (i % label_every == 0)
      o += "<text x=\"" + num(left + slot * (static_cast<double>(i) + 0.5)) + "\" y=\"" +
           num(top + plot_h + 14) + "\" class=\"xt\">" + html_escape(c.categories[i]) + "</text>";
  }
  o += "<text x=\"" + num(left + plot_w / 2) + "\" y=\"" + num(height - 6) +
       "\" class=\"xl\">layer (graph order)</text></svg>";
  return o;
}

std::string svg_histogram(const Histogram& h, const std::string& title) {
  const double left = 8, right = 8, top = 22, bottom = 30, plot_w = 300, plot_h = 90;
  const double width = left + plot_w + right, height = top + plot_h + bottom;
  const size_t n = h.counts.size();
  double cmax = 0;
  for (double c : h.counts)
    if (std::isfinite(c)) cmax = std::max(cmax, c);
  std::string o = "<svg class=\"chart hist\" role=\"img\" width=\"" + num(width) + "\" height=\"" +
                  num(height) + "\" viewBox=\"0 0 " + num(width) + " " + num(height) + "\">";
  o += "<title>" + html_escape(title) + "</title>";
  // The visible title keeps the end of a long name (the full one is the tooltip).
  std::string shown = utf8_clean(title);
  if (shown.size() > 46) {
    size_t cut = shown.size() - 45;
    while (cut < shown.size() && (static_cast<unsigned char>(shown[cut]) & 0xC0) == 0x80) ++cut;
    shown = "..." + shown.substr(cut);
  }
  o += "<text x=\"" + num(left) + "\" y=\"14\" class=\"ht\">" + html_escape(shown) + "</text>";
  o += "<rect x=\"" + num(left) + "\" y=\"" + num(top) + "\" width=\"" + num(plot_w) + "\" height=\"" +
       num(plot_h) + "\" class=\"frame\"/>";
  const double bw = plot_w / static_cast<double>(std::max<size_t>(1, n));
  for (size_t b = 0; b < n; ++b) {
    const double c = h.counts[b];
    if (!(c > 0) || cmax <= 0) continue;
    const double frac = std::log1p(c) / std::log1p(cmax);  // log scale: tails stay visible
    const double bh = plot_h * frac;
    o += "<rect x=\"" + num(left + bw * static_cast<double>(b)) + "\" y=\"" + num(top + plot_h - bh) +
         "\" width=\"" + num(std::max(0.5, bw - 0.5)) + "\" height=\"" + num(bh) + "\" class=\"bin\"/>";
  }
  if (h.amax > 0 && std::isfinite(h.threshold)) {
    const bool beyond = h.threshold > h.amax;
    const double x = left + plot_w * std::clamp(h.threshold / h.amax, 0.0, 1.0);
    o += "<line x1=\"" + num(x) + "\" x2=\"" + num(x) + "\" y1=\"" + num(top - 4) + "\" y2=\"" +
         num(top + plot_h) + "\" class=\"thr\"><title>clip threshold " + sig(h.threshold) +
         "</title></line>";
    const bool anchor_end = x > left + plot_w * 0.6;
    o += "<text x=\"" + num(anchor_end ? x - 3 : x + 3) + "\" y=\"" + num(top + 10) + "\" class=\"tl" +
         (anchor_end ? " end" : "") + "\">" + "threshold " + sig(h.threshold) +
         (beyond ? " (past the range)" : "") + "</text>";
  }
  o += "<text x=\"" + num(left) + "\" y=\"" + num(top + plot_h + 14) + "\" class=\"xt0\">0</text>";
  o += "<text x=\"" + num(left + plot_w) + "\" y=\"" + num(top + plot_h + 14) + "\" class=\"xt1\">" +
       sig(h.amax) + "</text>";
  o += "<text x=\"" + num(left + plot_w / 2) + "\" y=\"" + num(height - 4) +
       "\" class=\"xl\">|x| (count, log scale)</text></svg>";
  return o;
}

}  // namespace repq::report::detail
