// `repq fuse` output: JSON (schema repq.fuse/1) and the text table.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "repq/passes/fuse.h"

namespace repq {

namespace {

std::string join(const std::vector<int64_t>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + std::to_string(v[i]);
  return s;
}

std::string sci(double v) {
  if (std::isinf(v)) return "inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", v);
  return buf;
}

std::string geometry(const FoldRecord& f) {
  std::string s = std::to_string(f.in_channels) + "->" + std::to_string(f.out_channels) + " " +
                  join(f.kernel, "x");
  if (!f.strides.empty() && (f.strides[0] != 1 || f.strides[1] != 1)) s += " s" + join(f.strides, ",");
  if (f.groups != 1) s += " g" + std::to_string(f.groups);
  return s;
}

std::string pad(std::string s, size_t w) {
  if (s.size() < w) s.append(w - s.size(), ' ');
  return s + "  ";
}

}  // namespace

void add_reparam_blocks(ModelSummary& s, const Model& model) {
  const FuseReport r = find_foldable_blocks(model);
  s.blocks_analysed = true;
  s.reparam_blocks.clear();
  for (const auto& f : r.folds)
    s.reparam_blocks.push_back({f.kind, f.input, f.output, f.nodes_before, f.in_channels, f.out_channels, f.groups,
                                f.kernel, f.strides});
  s.not_foldable.clear();
  for (const auto& n : r.near_misses) s.not_foldable.push_back({n.node, n.op, n.reason});
}

std::string fuse_report_to_json(const FuseReport& r) {
  nlohmann::ordered_json j;
  j["schema"] = "repq.fuse/1";
  j["path"] = r.path;
  j["dry_run"] = r.dry_run;
  j["tolerance"] = r.tolerance;
  j["passed"] = r.passed();
  j["nodes_before"] = r.nodes_before;
  j["nodes_after"] = r.nodes_after;
  j["folds"] = nlohmann::ordered_json::array();
  for (const auto& f : r.folds) {
    nlohmann::ordered_json e;
    e["kind"] = f.kind;
    e["input"] = f.input;
    e["output"] = f.output;
    e["conv"] = f.conv_name;
    e["nodes"] = f.nodes;
    e["ops"] = f.ops;
    e["nodes_before"] = f.nodes_before;
    e["nodes_after"] = f.nodes_after;
    e["in_channels"] = f.in_channels;
    e["out_channels"] = f.out_channels;
    e["kernel"] = f.kernel;
    e["strides"] = f.strides;
    e["pads"] = f.pads;
    e["dilations"] = f.dilations;
    e["groups"] = f.groups;
    e["verified"] = f.verified;
    e["max_abs_diff"] = f.verified ? nlohmann::ordered_json(f.max_abs_diff) : nlohmann::ordered_json(nullptr);
    e["max_rel_diff"] = f.verified ? nlohmann::ordered_json(f.max_rel_diff) : nlohmann::ordered_json(nullptr);
    e["passed"] = f.passed;
    e["applied"] = f.applied;
    e["check_error"] = f.check_error.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(f.check_error);
    j["folds"].push_back(std::move(e));
  }
  j["near_misses"] = nlohmann::ordered_json::array();
  for (const auto& n : r.near_misses) j["near_misses"].push_back({{"node", n.node}, {"op", n.op}, {"reason", n.reason}});
  // Names come from the file and need not be UTF-8: invalid bytes become U+FFFD.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string fuse_report_to_text(const FuseReport& r) {
  std::ostringstream os;
  const bool any_verified = std::any_of(r.folds.begin(), r.folds.end(),
                                       [](const FoldRecord& f) { return f.verified || !f.check_error.empty(); });
  if (!r.path.empty()) os << r.path << "\n";
  os << (r.dry_run ? "Would fold " : "Folded ") << r.folds.size() << " block" << (r.folds.size() == 1 ? "" : "s");
  if (!r.dry_run) os << " (graph " << r.nodes_before << " -> " << r.nodes_after << " nodes)";
  if (any_verified) os << ", tolerance " << sci(r.tolerance) << " relative";
  os << "\n";
  if (!r.folds.empty()) {
    size_t wk = 4, wo = 6, wg = 4;
    for (const auto& f : r.folds) {
      wk = std::max(wk, f.kind.size());
      wo = std::max(wo, f.output.size());
      wg = std::max(wg, geometry(f).size());
    }
    os << "  " << pad("kind", wk) << pad("nodes", 7) << pad("output", wo) << pad("conv", wg);
    if (any_verified) os << pad("max abs", 9) << pad("rel", 9) << "status";
    os << "\n";
    for (const auto& f : r.folds) {
      os << "  " << pad(f.kind, wk) << pad(std::to_string(f.nodes_before) + " -> " + std::to_string(f.nodes_after), 7)
         << pad(f.output, wo) << pad(geometry(f), wg);
      if (f.verified)
        os << pad(sci(f.max_abs_diff), 9) << pad(sci(f.max_rel_diff), 9)
           << (f.passed ? "ok" : "FAILED (left unfolded)");
      else if (!f.check_error.empty())
        os << "check failed (left unfolded): " << f.check_error;
      os << "\n";
    }
  }
  if (!r.near_misses.empty()) {
    os << "Not folded (" << r.near_misses.size() << "):\n";
    for (const auto& n : r.near_misses) os << "  " << n.node << " (" << n.op << "): " << n.reason << "\n";
  }
  return os.str();
}

}  // namespace repq
