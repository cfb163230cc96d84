// The HTML format of `repq report`: one self-contained file (inline CSS, inline SVG, a small
// inline script; a Content-Security-Policy forbids every external load) with the summary, the
// per-layer table, the worst layers, SQNR bar charts and per-layer activation histograms.
// The script marks the page for tests: data-status="ok" on <body> once it ran, data-rows and
// data-charts with what the browser counted, data-errors set by window.onerror.
#include <cmath>

#include "repq/report/format.h"

namespace repq::report {
namespace {

using detail::fixed;
using detail::html_escape;

const char* kStyle = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d232a;background:#fff}
h1{font-size:20px;margin:0 0 6px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #dde2e8;padding-bottom:3px}
.meta{color:#56606b;margin:0 0 4px}.kpi{display:flex;gap:14px;flex-wrap:wrap;margin:12px 0}
.kpi div{border:1px solid #dde2e8;border-radius:6px;padding:8px 12px;min-width:120px}
.kpi b{display:block;font-size:18px}.kpi span{color:#56606b;font-size:12px}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:12.5px;white-space:nowrap}
th,td{border-bottom:1px solid #e7ebef;padding:3px 8px;text-align:right}
th{background:#f3f5f7;position:sticky;top:0;cursor:pointer;user-select:none}
td.l,th.l{text-align:left}tr.worst td{background:#fff3f0}td.c{white-space:normal;text-align:left;min-width:220px;color:#7a2b1c}
ol.worst li{margin-bottom:6px}code{background:#f3f5f7;padding:1px 4px;border-radius:3px}
svg.chart{display:block;margin:6px 0}svg text{font-size:11px;fill:#3a434d}
svg .ct{font-size:13px;font-weight:600}svg .yt{text-anchor:end}svg .xt,svg .xl{text-anchor:middle}
svg .yl{text-anchor:middle}svg .xt1{text-anchor:end}svg .grid{stroke:#edf0f3}svg .axis{stroke:#7d8791}
svg .frame{fill:#fafbfc;stroke:#dde2e8}svg .bin{fill:#4f7cac}svg .thr{stroke:#d1495b;stroke-width:2}
svg .tl{fill:#d1495b;font-weight:600}svg .tl.end{text-anchor:end}svg .ht{font-weight:600}svg rect.inf{opacity:.55}
.hists{display:flex;flex-wrap:wrap;gap:10px}.hists figure{margin:0;border:1px solid #e7ebef;border-radius:6px;padding:4px}
.note{color:#56606b;font-size:12px}
)";

// Runs first: counts script errors (also those of the script below).
const char* kHead = R"(<script>
window.onerror=function(){var b=document.documentElement;b.setAttribute('data-errors',String(Number(b.getAttribute('data-errors')||0)+1));};
</script>)";

// Runs last: marks the page, and sorts the table when a header is clicked.
const char* kTail = R"(<script>
(function(){
  var body=document.body, table=document.getElementById('layers');
  var rows=table?table.tBodies[0].rows.length:0;
  body.setAttribute('data-rows',String(rows));
  body.setAttribute('data-charts',String(document.querySelectorAll('svg.chart').length));
  if(table){
    var heads=table.tHead.rows[0].cells;
    for(var i=0;i<heads.length;i++)(function(col){
      heads[col].addEventListener('click',function(){
        var tb=table.tBodies[0], list=Array.prototype.slice.call(tb.rows);
        var dir=heads[col].getAttribute('data-dir')==='asc'?-1:1;
        heads[col].setAttribute('data-dir',dir===1?'asc':'desc');
        function key(r){var t=r.cells[col].textContent, v=parseFloat(t.replace(/^\[/,''));
          return isNaN(v)?(t==='inf'?Infinity:t):v;}
        list.sort(function(a,b){var x=key(a),y=key(b);
          if(typeof x==='number'&&typeof y==='number')return dir*(x-y);
          return dir*String(x).localeCompare(String(y));});
        list.forEach(function(r){tb.appendChild(r);});
      });
    })(i);
  }
  body.setAttribute('data-status','ok');
})();
</script>)";

std::string kpi(const std::string& value, const std::string& label) {
  return "<div><b>" + value + "</b><span>" + html_escape(label) + "</span></div>";
}

std::string percent(double f) { return std::isnan(f) ? "-" : fixed(100 * f, 2) + " %"; }

std::string summary_html(const Report& r) {
  std::string o = "<p class=\"meta\">method <code>" + html_escape(r.method) + "</code>: activations <code>" +
                  html_escape(r.act_method) + "</code>, weights <code>" + html_escape(r.weight_mode) +
                  "</code>, target <code>" + html_escape(r.target) + "</code>; " +
                  std::to_string(r.layers.size()) + " quantized layers";
  if (r.static_only) o += "; static report: weights only, no data";
  else o += "; " + std::to_string(r.summary.samples) + " samples";
  o += "</p>";
  if (r.static_only) return o;
  const ModelSummary& s = r.summary;
  o += "<div class=\"kpi\" id=\"summary\">" + kpi(fixed(s.output_sqnr, 2) + " dB", "output SQNR") +
       kpi(fixed(s.output_cos, 5), "output cosine") + kpi(percent(s.top1_agreement), "top-1 agreement");
  if (s.has_labels)
    o += kpi(percent(s.top1_float), "top-1 float") + kpi(percent(s.top1_quant), "top-1 int8");
  return o + "</div>";
}

std::string table_html(const Report& r, const std::vector<int>& worst) {
  std::vector<bool> is_worst(r.layers.size(), false);
  for (int i : worst) is_worst[static_cast<size_t>(i)] = true;
  const auto cols = detail::table_columns(r);
  std::string o = "<div class=\"scroll\"><table id=\"layers\"><thead><tr>";
  for (const auto& c : cols) o += std::string("<th") + (c.left ? " class=\"l\"" : "") + ">" + html_escape(c.title) + "</th>";
  o += "<th class=\"l\">causes / advice</th></tr></thead><tbody>";
  for (size_t i = 0; i < r.layers.size(); ++i) {
    const LayerRow& l = r.layers[i];
    const auto cells = detail::table_cells(r, l);
    o += is_worst[i] ? "<tr class=\"worst\">" : "<tr>";
    for (size_t c = 0; c < cells.size(); ++c) {
      o += std::string("<td") + (cols[c].left ? " class=\"l\"" : "");
      if (c == 1 && !l.act_tensor.empty()) o += " title=\"input " + html_escape(l.act_tensor) + "\"";
      o += ">" + html_escape(cells[c]) + "</td>";
    }
    std::string diag = html_escape(detail::join(l.causes, "; "));
    if (!l.advice.empty()) diag += (diag.empty() ? "" : " &rarr; ") + html_escape(detail::join(l.advice, ", "));
    o += "<td class=\"c\">" + diag + "</td></tr>";
  }
  return o + "</tbody></table></div>";
}

std::string worst_html(const Report& r, const std::vector<int>& worst) {
  if (worst.empty()) return "";
  std::string o = std::string("<h2>Worst layers</h2><p class=\"note\">Ranked by ") +
                  (r.static_only ? "weight error" : "isolated output error (only that layer quantized)") +
                  ".</p><ol class=\"worst\" id=\"worst\">";
  for (int i : worst) {
    const LayerRow& l = r.layers[static_cast<size_t>(i)];
    o += "<li><b>" + html_escape(l.name) + "</b> (#" + std::to_string(l.index) + ", " + html_escape(l.op) + " " +
         html_escape(detail::shape_text(l)) + "): ";
    if (r.static_only)
      o += "weight SQNR per-tensor " + fixed(l.w_sqnr_per_tensor, 1) + " dB, per-channel " +
           fixed(l.w_sqnr_per_channel, 1) + " dB";
    else
      o += "output SQNR isolated " + fixed(l.out_sqnr_isolated, 1) + " dB, cumulative " +
           fixed(l.out_sqnr_cumulative, 1) + " dB";
    o += "<br>cause: " + (l.causes.empty() ? std::string("no single cause found") : html_escape(detail::join(l.causes, "; ")));
    if (!l.advice.empty()) {
      o += "<br>try: ";
      for (size_t k = 0; k < l.advice.size(); ++k) o += (k ? ", " : "") + std::string("<code>") + html_escape(l.advice[k]) + "</code>";
    }
    o += "</li>";
  }
  return o + "</ol>";
}

std::string charts_html(const Report& r) {
  if (r.layers.empty()) return "";
  std::vector<std::string> cats, tips;
  for (const auto& l : r.layers) {
    cats.push_back(std::to_string(l.index));
    tips.push_back("#" + std::to_string(l.index) + " " + l.name);
  }
  std::string o = "<h2>Charts</h2>";
  if (!r.static_only) {
    detail::BarChart c{"Output SQNR per layer against float (higher is better)", "dB", cats, tips, {}};
    c.series.push_back({"isolated", "#4f7cac", {}});
    c.series.push_back({"cumulative", "#e8a33d", {}});
    for (const auto& l : r.layers) {
      c.series[0].values.push_back(l.out_sqnr_isolated);
      c.series[1].values.push_back(l.out_sqnr_cumulative);
    }
    o += detail::svg_bar_chart(c);
  }
  detail::BarChart w{"Weight SQNR per layer by encoding", "dB", cats, tips, {}};
  w.series.push_back({"per-tensor", "#9aa5b1", {}});
  w.series.push_back({"per-channel", "#4f7cac", {}});
  w.series.push_back({"cfws", "#3d9970", {}});
  for (const auto& l : r.layers) {
    w.series[0].values.push_back(l.w_sqnr_per_tensor);
    w.series[1].values.push_back(l.w_sqnr_per_channel);
    w.series[2].values.push_back(l.w_sqnr_cfws);
  }
  o += detail::svg_bar_chart(w);
  if (r.static_only) return o;

  std::string figs;
  for (const auto& l : r.layers) {
    if (l.act_hist.counts.empty() || !(l.act_hist.amax > 0)) continue;
    figs += "<figure>" + detail::svg_histogram(l.act_hist, "#" + std::to_string(l.index) + " " + l.name) + "</figure>";
  }
  if (!figs.empty())
    o += "<h2>Input activation histograms</h2><p class=\"note\">|x| of each layer's input over the "
         "calibration data, counts on a log scale; the red line is the chosen clip threshold.</p>"
         "<div class=\"hists\">" + figs + "</div>";
  return o;
}

}  // namespace

std::string to_html(const Report& r, const FormatOptions& o) {
  const auto worst = detail::worst_layers(r, o.top);
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                  "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                  "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">";
  h += "<meta name=\"generator\" content=\"repq report (" + std::string(Report::kSchema) + ")\">";
  h += "<title>repq report: " + html_escape(r.model_path) + "</title><style>" + kStyle + "</style>" + kHead;
  h += "</head>\n<body data-expected-rows=\"" + std::to_string(r.layers.size()) + "\" data-expected-charts=\"" +
       std::to_string(html_chart_count(r)) + "\">\n";
  h += "<h1>repq report: " + html_escape(r.model_path) + "</h1>\n" + summary_html(r) + "\n";
  h += worst_html(r, worst) + "\n";
  h += "<h2>Layers</h2><p class=\"note\">One row per quantized layer in graph order; dB values are "
       "SQNR, <code>-</code> means not measured or not applicable. Click a header to sort.</p>" +
       table_html(r, worst) + "\n";
  h += charts_html(r) + "\n";
  h += kTail;
  h += "\n</body></html>\n";
  return h;
}

}  // namespace repq::report
