// The block family of a folded region, recognised from its shape: the ops after the top-level
// sum, and the chain of ops of each summed branch.
#include <algorithm>
#include <set>

#include "passes/regions.h"

namespace repq::passes {

namespace {

struct Term {
  int convs = 0;
  bool avg_pool = false, non_square = false, nested = false;
  int64_t conv_area = 0;  // kernel area of the last conv of the branch
};

class Shape {
 public:
  Shape(const GraphFacts& f, const Region& r) : f_(f), in_(r.nodes.begin(), r.nodes.end()) {}

  const Node* producer(const std::string& v) const {
    auto it = f_.index().producer.find(v);
    if (it == f_.index().producer.end() || !in_.count(it->second)) return nullptr;
    return &f_.graph().nodes[it->second];
  }
  static bool is_sum(const Node& n, const GraphFacts& f) {
    return (n.op_type == "Add" || n.op_type == "Sub") && n.inputs.size() == 2 && !f.constant(n.inputs[0]) &&
           !f.constant(n.inputs[1]);
  }
  // The data input of a unary linear node.
  std::string data_input(const Node& n) const {
    for (const auto& in : n.inputs)
      if (!in.empty() && !f_.constant(in)) return in;
    return "";
  }
  Term term(std::string v) const {
    Term t;
    while (const Node* n = producer(v)) {
      if (is_sum(*n, f_)) {
        t.nested = true;
        v = n->inputs[0];
        continue;
      }
      if (n->op_type == "Conv") {
        ++t.convs;
        const Tensor* w = f_.constant(n->inputs[1]);
        if (w && w->rank() == 4) {
          if (t.convs == 1) t.conv_area = w->dim(2) * w->dim(3);
          if (w->dim(2) != w->dim(3)) t.non_square = true;
        }
      }
      if (n->op_type == "AveragePool") t.avg_pool = true;
      v = data_input(*n);
    }
    return t;
  }
  void terms(const Node& sum, std::vector<Term>& out) const {
    for (const auto& in : sum.inputs) {
      const Node* p = producer(in);
      if (p && is_sum(*p, f_)) terms(*p, out);
      else out.push_back(term(in));
    }
  }

 private:
  const GraphFacts& f_;
  std::set<size_t> in_;
};

}  // namespace

std::string region_kind(const GraphFacts& f, const Region& r) {
  const Shape s(f, r);
  std::vector<const Node*> post;  // unary ops after the top-level sum, last first
  const Node* n = s.producer(r.output);
  while (n && !Shape::is_sum(*n, f)) {
    post.push_back(n);
    n = s.producer(s.data_input(*n));
  }
  if (!n) {  // a chain: post holds every node, last first
    int convs = 0;
    bool bn_after_conv = false, conv_bias = false;
    for (auto it = post.rbegin(); it != post.rend(); ++it) {
      if ((*it)->op_type == "Conv") {
        ++convs;
        conv_bias = (*it)->inputs.size() > 2 && !(*it)->inputs[2].empty();
      }
      if ((*it)->op_type == "BatchNormalization" && convs > 0) bn_after_conv = true;
    }
    if (convs >= 2) return "Conv chain";
    if (bn_after_conv) return conv_bias ? "BN" : "Conv+BN";
    return "Linear";
  }
  const bool post_bn = std::any_of(post.begin(), post.end(),
                                   [](const Node* p) { return p->op_type == "BatchNormalization"; });
  std::vector<Term> terms;
  s.terms(*n, terms);
  int conv_terms = 0;
  bool avg_term = false, dbb = false, acnet = false;
  int64_t max_area = 0;
  for (const auto& t : terms) {
    if (t.convs > 0) ++conv_terms;
    if (t.avg_pool && t.convs == 0) avg_term = true;
    if (t.convs >= 2 || (t.avg_pool && t.convs > 0)) dbb = true;
    if (t.non_square) acnet = true;
    max_area = std::max(max_area, t.conv_area);
  }
  if (conv_terms == 0) return "Linear";
  if (post_bn) return avg_term ? "QARepVGG-V2" : "QARepVGG";
  if (dbb) return "DBB";
  if (acnet) return "ACNet";
  const auto widest = std::count_if(terms.begin(), terms.end(),
                                    [&](const Term& t) { return t.convs == 1 && t.conv_area == max_area; });
  if (widest >= 2) return "MobileOne";
  return "RepVGG";
}

}  // namespace repq::passes
