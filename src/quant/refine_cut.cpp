// The refinement search's trial runner: cut, cache of the values at the cut, suffix runs
// (refine_cut.h).
#include "refine_cut.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "repq/data/dataset.h"
#include "repq/error.h"
#include "repq/ir/graph_utils.h"
#include "repq/runtime/executor.h"

namespace repq::quant::detail {

namespace {

bool same_node(const Node& a, const Node& b) {
  return a.op_type == b.op_type && a.domain == b.domain && a.inputs == b.inputs &&
         a.outputs == b.outputs && a.attributes.size() == b.attributes.size();
}

bool same_values(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.nbytes() == b.nbytes() &&
         (a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
}

std::string input_of(const Model& m) {
  const auto ins = m.graph.runtime_inputs();
  if (ins.size() != 1) throw InternalError("refine: the model must have one runtime input");
  return ins[0]->name;
}

}  // namespace

Cut find_cut(const Model& current, const Model& changed) {
  Cut c;
  const Graph& a = current.graph;
  const Graph& b = changed.graph;
  const size_t n = b.nodes.size();
  if (a.nodes.size() != n || b.outputs.empty() || a.initializer_names() != b.initializer_names())
    return c;
  for (size_t i = 0; i < n; ++i)
    if (!same_node(a.nodes[i], b.nodes[i])) return c;
  std::set<std::string> differ;
  for (const std::string& name : b.initializer_names())
    if (!same_values(*a.initializer(name), *b.initializer(name))) differ.insert(name);
  const GraphIndex idx(b);
  std::vector<char> in(n, 0);
  std::vector<size_t> work;
  const auto add = [&](size_t i) {
    if (!in[i]) {
      in[i] = 1;
      work.push_back(i);
    }
  };
  for (size_t i = 0; i < n; ++i)
    for (const std::string& x : b.nodes[i].inputs)
      if (differ.count(x)) add(i);
  if (work.empty()) return c;
  // Forwards: everything after a changed node. Backwards: a value read from outside that is
  // not a QuantizeLinear output (nor a graph input or an initializer) is inside an integer
  // group (or a float chain) the executor may run as one kernel: its producer joins, and
  // everything after that producer (so no value of the suffix is read outside it).
  while (!work.empty()) {
    const size_t i = work.back();
    work.pop_back();
    for (const std::string& o : b.nodes[i].outputs)
      if (const auto it = idx.consumers.find(o); !o.empty() && it != idx.consumers.end())
        for (size_t j : it->second) add(j);
    for (const std::string& x : b.nodes[i].inputs) {
      if (x.empty() || b.has_initializer(x)) continue;
      const auto p = idx.producer.find(x);
      if (p != idx.producer.end() && b.nodes[p->second].op_type != "QuantizeLinear") add(p->second);
    }
  }
  std::set<std::string> produced, seen;
  for (size_t i = 0; i < n; ++i)
    if (in[i]) {
      c.nodes.push_back(i);
      for (const std::string& o : b.nodes[i].outputs)
        if (!o.empty() && produced.insert(o).second) c.produced.push_back(o);
    }
  for (size_t i : c.nodes)
    for (const std::string& x : b.nodes[i].inputs)
      if (!x.empty() && !b.has_initializer(x) && !produced.count(x) && seen.insert(x).second)
        c.frontier.push_back(x);
  c.reaches_output = produced.count(b.outputs[0].name) > 0;
  c.ok = true;
  return c;
}

CutRunner::CutRunner(const std::vector<Tensor>& batches, int threads, int64_t budget_bytes, bool verify)
    : batches_(batches), threads_(threads), budget_(budget_bytes), verify_(verify) {}

std::vector<Tensor> CutRunner::full(const Model& m) const {
  Executor ex(m, ExecutorOptions{threads_});
  std::vector<Tensor> out;
  for (const Tensor& b : batches_) out.push_back(ex.run({{ex.input_names()[0], b}}).at(ex.output_names()[0]));
  return out;
}

void CutRunner::set_schedule(const Model& current, std::vector<Cut> cuts) {
  cuts_ = std::move(cuts);
  input_name_ = input_of(current);
  if (budget_ <= 0 || batches_.empty()) return;
  std::set<std::string> names;
  for (const Cut& c : cuts_)
    for (const std::string& f : c.frontier)
      if (f != input_name_) names.insert(f);
  if (names.empty()) return;
  int64_t rows = 0;
  for (const Tensor& b : batches_) rows += b.dim(0);
  // Sizes per sample from a run of one sample (every value at once: small for one sample).
  Executor ex(current, ExecutorOptions{threads_});
  const auto out = ex.run({{ex.input_names()[0], data::first_rows(batches_[0], 1)}}, nullptr,
                          std::vector<std::string>(names.begin(), names.end()));
  for (const std::string& f : names) {
    const auto it = out.find(f);
    bytes_[f] = it == out.end() ? budget_ + 1 : static_cast<int64_t>(it->second.nbytes()) * rows;
  }
}

bool CutRunner::cached(const Cut& c) const {
  for (const std::string& f : c.frontier)
    if (f != input_name_ && !cache_.count(f)) return false;
  return true;
}

// The values at the cuts of positions k, k+1, ... (the next tensors searched, whose values
// sit before k's in a chain) as long as they fit in the budget, from one whole run of
// `current`. `need` (the trial's own cut) first: nothing is filled when it alone does not fit.
void CutRunner::fill(size_t k, const Model& current, const Cut& need) {
  cache_.clear();
  std::set<std::string> names;
  int64_t total = 0;
  std::vector<const Cut*> seq{&need};  // the trial's own cut, then the next tensors' cuts
  for (size_t m = k + 1; m < cuts_.size(); ++m) seq.push_back(&cuts_[m]);
  for (const Cut* c : seq) {
    std::set<std::string> more = names;
    int64_t t = total;
    for (const std::string& f : c->frontier)
      if (f != input_name_ && more.insert(f).second) {
        const auto it = bytes_.find(f);
        t += it == bytes_.end() ? budget_ + 1 : it->second;
      }
    if (t > budget_) break;
    names = std::move(more);
    total = t;
  }
  if (names.empty()) return;
  Executor ex(current, ExecutorOptions{threads_});
  const std::vector<std::string> want(names.begin(), names.end());
  for (const Tensor& b : batches_) {
    auto out = ex.run({{ex.input_names()[0], b}}, nullptr, want);
    for (const std::string& f : want) cache_[f].push_back(std::move(out.at(f)));
  }
  ++fills_;
}

std::vector<Tensor> CutRunner::run_suffix(const Model& trial, const Cut& c) const {
  Model sub = trial;
  Graph& g = sub.graph;
  std::vector<Node> nodes;
  nodes.reserve(c.nodes.size());
  for (size_t i : c.nodes) nodes.push_back(trial.graph.nodes[i]);
  g.nodes = std::move(nodes);
  g.outputs = {trial.graph.outputs[0]};
  g.inputs.clear();
  for (const std::string& f : c.frontier) {
    ValueInfo vi;
    vi.name = f;
    vi.elem_type = f == input_name_ ? batches_[0].dtype() : cache_.at(f).at(0).dtype();
    g.inputs.push_back(std::move(vi));
  }
  Executor ex(sub, ExecutorOptions{threads_});
  std::vector<Tensor> out;
  for (size_t b = 0; b < batches_.size(); ++b) {
    std::map<std::string, Tensor> feed;
    for (const std::string& f : c.frontier) feed[f] = f == input_name_ ? batches_[b] : cache_.at(f)[b];
    out.push_back(ex.run(feed).at(ex.output_names()[0]));
  }
  return out;
}

std::vector<Tensor> CutRunner::outputs(size_t k, const Model& current, const Model& trial,
                                       const std::vector<Tensor>& current_out) {
  last_.reset();
  if (budget_ <= 0 || k >= cuts_.size()) return full(trial);
  Cut c = find_cut(current, trial);
  if (!c.ok) return full(trial);
  std::vector<Tensor> out;
  if (!c.reaches_output) {
    out = current_out;
  } else {
    if (!cached(c)) fill(k, current, c);
    if (!cached(c)) {  // above the budget: whole
      last_ = std::move(c);
      return full(trial);
    }
    out = run_suffix(trial, c);
  }
  ++suffix_runs_;
  if (verify_) {
    const std::vector<Tensor> whole = full(trial);
    for (size_t b = 0; b < whole.size(); ++b)
      if (!same_values(whole[b], out.at(b)))
        throw InternalError("refine: the suffix run's logits differ from the whole run's (batch " +
                            std::to_string(b) + ")");
  }
  last_ = std::move(c);
  return out;
}

void CutRunner::accepted() {
  if (!last_) {  // a whole run: nothing known about what changed
    cache_.clear();
    return;
  }
  for (const std::string& o : last_->produced) cache_.erase(o);
}

}  // namespace repq::quant::detail
