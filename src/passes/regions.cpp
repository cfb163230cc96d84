// Region growing in topological order: every linear node extends the candidate region of its
// input when that input is used only by it (a chain), an Add/Sub joins the candidates of its
// two inputs when they start at the same value (parallel branches; a bare input is the identity
// branch). What is never absorbed by a consumer is a maximal region.
#include "passes/regions.h"

#include <algorithm>
#include <map>
#include <set>

namespace repq::passes {

namespace {

std::string label(const Node& n) { return n.name.empty() ? (n.outputs.empty() ? "" : n.outputs[0]) : n.name; }

struct Cand {
  std::string source;
  std::vector<size_t> nodes;
  ConvMap map;
  std::string stop_reason;  // why the chain does not reach further back
};

struct Branch {
  std::string source;
  const ConvMap* map = nullptr;
  ConvMap own;  // for the identity branch or a negated one
  std::vector<size_t> nodes;
  std::string stop_reason;
  bool absorbed = false;
};

class Finder {
 public:
  explicit Finder(const GraphFacts& f) : f_(f), g_(f.graph()), ix_(f.index()) {}

  Analysis run() {
    for (const auto& [v, users] : ix_.consumers) remaining_[v] = users.size();
    for (size_t idx : topo_order(g_)) {
      visit(idx);
      release_inputs(idx);
    }
    Analysis a;
    a.near_misses = std::move(near_);
    for (auto& [out, c] : cands_) {
      if (c.nodes.size() < 2) continue;
      const bool has_conv = std::any_of(c.nodes.begin(), c.nodes.end(),
                                        [&](size_t i) { return g_.nodes[i].op_type == "Conv"; });
      if (!has_conv) continue;
      int64_t widest = 0;
      for (size_t i : c.nodes)
        for (const auto& o : g_.nodes[i].outputs) widest = std::max(widest, f_.channels(o));
      std::array<int64_t, 2> hw{};
      std::string why;
      if (!fold_check_size(c.map, widest, f_.limits(), hw, why)) {
        const Node& last = g_.nodes[ix_.producer.at(out)];
        a.near_misses.push_back({label(last), last.op_type, "not folded: " + why});
        continue;
      }
      Region r;
      r.source = c.source;
      r.output = out;
      r.nodes = c.nodes;
      std::sort(r.nodes.begin(), r.nodes.end());
      r.map = std::move(c.map);
      r.kind = region_kind(f_, r);
      a.regions.push_back(std::move(r));
    }
    std::sort(a.regions.begin(), a.regions.end(),
              [](const Region& x, const Region& y) { return x.nodes.front() < y.nodes.front(); });
    return a;
  }

 private:
  bool extendable(const std::string& v, size_t idx) const {
    if (!cands_.count(v) || ix_.graph_outputs.count(v)) return false;
    auto it = ix_.consumers.find(v);
    return it != ix_.consumers.end() && it->second.size() == 1 && it->second[0] == idx;
  }

  // Once every consumer of a value has been visited its candidate cannot grow: a single-node
  // candidate is never folded, so its kernel copy is dropped (keeps `repq info` small on big
  // deploy-form models).
  void release_inputs(size_t idx) {
    std::set<std::string> seen;
    for (const auto& in : g_.nodes[idx].inputs) {
      if (in.empty() || !seen.insert(in).second) continue;
      auto r = remaining_.find(in);
      if (r == remaining_.end() || --r->second > 0) continue;
      auto c = cands_.find(in);
      if (c != cands_.end() && c->second.nodes.size() < 2) {
        c->second.map.w = {};
        c->second.map.b = {};
      }
    }
  }

  void visit(size_t idx) {
    const Node& n = g_.nodes[idx];
    LinearOp op = classify_node(f_, n);
    if (op.kind == LinearOp::Kind::kNone) {
      not_linear_[idx] = op.reason;
      return;
    }
    const std::string& v = n.outputs[0];
    if (op.kind == LinearOp::Kind::kUnary) return visit_unary(idx, op, v);
    visit_sum(idx, op, v);
  }

  void visit_unary(size_t idx, LinearOp& op, const std::string& v) {
    const std::string& u = op.data[0];
    const Node& n = g_.nodes[idx];
    if (extendable(u, idx)) {
      Cand& cu = cands_.at(u);
      ConvMap out;
      std::string why;
      const bool both_convs = !cu.map.is_diagonal() && !op.map.is_diagonal();
      const int64_t mid = cu.map.cout;
      bool ok = false;
      if (both_convs && mid < cu.map.cin && mid < op.map.cout) {
        why = "a bottleneck (" + std::to_string(cu.map.cin) + "->" + std::to_string(mid) + "->" +
              std::to_string(op.map.cout) + " channels): one conv would be larger than the two";
      } else {
        bool over_limit = false;
        ok = compose_maps(cu.map, op.map, out, why, f_.limits(), &over_limit);
        if (over_limit)  // listed: the chain looks foldable but is refused by a limit
          near_.push_back({label(n), n.op_type,
                           "'" + label(n) + "' after '" + label(g_.nodes[ix_.producer.at(u)]) + "': " + why});
      }
      if (ok) {
        Cand c{cu.source, std::move(cu.nodes), std::move(out), cu.stop_reason};
        c.nodes.push_back(idx);
        cands_.erase(u);
        cands_[v] = std::move(c);
        return;
      }
      const size_t prev = ix_.producer.at(u);
      cands_[v] = Cand{u, {idx}, std::move(op.map),
                       "'" + label(g_.nodes[idx]) + "' after '" + label(g_.nodes[prev]) + "': " + why};
      return;
    }
    if (n.op_type == "BatchNormalization" && cands_.count(u) && ix_.producer.count(u) &&
        g_.nodes[ix_.producer.at(u)].op_type == "Conv")
      near_.push_back({label(n), n.op_type,
                       "output of Conv '" + label(g_.nodes[ix_.producer.at(u)]) +
                           "' is also used elsewhere: the BatchNormalization cannot be folded into it"});
    cands_[v] = Cand{u, {idx}, std::move(op.map), ""};
  }

  bool branch(const std::string& value, size_t idx, Branch& b) {
    if (extendable(value, idx)) {
      const Cand& c = cands_.at(value);
      b.source = c.source;
      b.map = &c.map;
      b.nodes = c.nodes;
      b.stop_reason = c.stop_reason;
      b.absorbed = true;
      return true;
    }
    const int64_t ch = f_.channels(value);
    if (ch <= 0) return false;
    b.source = value;
    b.own = ConvMap::identity(ch);
    b.map = &b.own;
    return true;
  }

  void visit_sum(size_t idx, const LinearOp& op, const std::string& v) {
    Branch br[2];
    if (!branch(op.data[0], idx, br[0]) || !branch(op.data[1], idx, br[1])) return;
    const Node& n = g_.nodes[idx];
    if (br[0].source != br[1].source) {
      const std::string why = explain_mismatch(br[0], br[1]);
      if (!why.empty()) near_.push_back({label(n), n.op_type, why});
      return;
    }
    if (op.negate_second) {
      const auto ch = static_cast<size_t>(br[1].map->cout);
      ConvMap neg;
      std::string unused;
      compose_maps(*br[1].map, ConvMap::diagonal(std::vector<double>(ch, -1.0), std::vector<double>(ch, 0.0)),
                   neg, unused);
      br[1].own = std::move(neg);
      br[1].map = &br[1].own;
    }
    ConvMap sum;
    std::string why;
    if (!sum_maps(*br[0].map, *br[1].map, sum, why, f_.limits())) {
      near_.push_back({label(n), n.op_type, why});
      return;
    }
    std::set<size_t> nodes(br[0].nodes.begin(), br[0].nodes.end());
    nodes.insert(br[1].nodes.begin(), br[1].nodes.end());
    nodes.insert(idx);
    std::string stop = br[0].stop_reason.empty() ? br[1].stop_reason : br[0].stop_reason;
    Cand c{br[0].source, {nodes.begin(), nodes.end()}, std::move(sum), stop};
    for (size_t k = 0; k < 2; ++k)
      if (br[k].absorbed) cands_.erase(op.data[k]);
    cands_[v] = std::move(c);
  }

  // Why two branches of an Add do not start at the same value, when the Add looks like a block
  // (one branch leads back to the other's start); "" when it is just a join of two inputs.
  std::string explain_mismatch(const Branch& a, const Branch& b) const {
    for (int k = 0; k < 2; ++k) {
      const Branch& me = k == 0 ? a : b;
      const std::string& other = k == 0 ? b.source : a.source;
      if (auto it = cands_.find(me.source); it != cands_.end() && it->second.source == other) {
        if (ix_.use_count(me.source) > 1)
          return "branch output '" + me.source + "' is also used outside the block";
        if (!me.stop_reason.empty()) return me.stop_reason;
      }
      if (!me.stop_reason.empty() && reaches(me.source, other, nullptr)) return me.stop_reason;
      std::string nonlinear;
      if (reaches(me.source, other, &nonlinear) && !nonlinear.empty()) return nonlinear;
    }
    return "";
  }

  // Walks back from `from` through nodes with one tensor input (at most 6) looking for `to`;
  // `nonlinear` gets the first node on the way that is not a linear map.
  bool reaches(std::string from, const std::string& to, std::string* nonlinear) const {
    std::string first_bad, shared;
    for (int step = 0; step < 6; ++step) {
      auto it = ix_.producer.find(from);
      if (it == ix_.producer.end()) return false;
      const Node& p = g_.nodes[it->second];
      std::vector<std::string> data;
      for (const auto& in : p.inputs)
        if (!in.empty() && !f_.constant(in)) data.push_back(in);
      if (data.size() != 1) return false;
      if (auto bad = not_linear_.find(it->second); bad != not_linear_.end() && first_bad.empty()) {
        const std::string& r = bad->second;
        const bool plain = r.size() > 14 && r.compare(r.size() - 14, 14, " is not linear") == 0;
        first_bad = plain ? "nonlinearity inside (" + p.op_type + " '" + label(p) + "')"
                          : "'" + label(p) + "': " + r;
      }
      from = data[0];
      if (from == to) {
        if (nonlinear) *nonlinear = first_bad;
        return true;
      }
    }
    return false;
  }

  const GraphFacts& f_;
  const Graph& g_;
  const GraphIndex& ix_;
  std::map<std::string, Cand> cands_;
  std::map<size_t, std::string> not_linear_;
  std::map<std::string, size_t, std::less<>> remaining_;  // consumers not visited yet
  std::vector<NearMiss> near_;
};

}  // namespace

Analysis find_regions(const GraphFacts& facts) { return Finder(facts).run(); }

}  // namespace repq::passes
