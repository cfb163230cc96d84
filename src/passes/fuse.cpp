// The branch-fusion driver: regions -> records, numerical check of each fold with the executor,
// replacement of the passing regions by one Conv each.
#include "repq/passes/fuse.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "passes/regions.h"
#include "repq/error.h"
#include "repq/ir/graph_utils.h"
#include "repq/runtime/executor.h"

namespace repq {

namespace {

using passes::ConvMap;
using passes::GraphFacts;
using passes::Region;

std::string label(const Node& n) { return n.name.empty() ? (n.outputs.empty() ? "" : n.outputs[0]) : n.name; }

std::vector<int64_t> vec(const auto& a) { return {a.begin(), a.end()}; }

// "/stage1/stage1.1/" from the region's node names (up to the last '/' they share).
std::string name_prefix(const Graph& g, const Region& r) {
  std::string p = label(g.nodes[r.nodes.front()]);
  for (size_t i : r.nodes) {
    const std::string s = label(g.nodes[i]);
    size_t k = 0;
    while (k < p.size() && k < s.size() && p[k] == s[k]) ++k;
    p.resize(k);
  }
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? "" : p.substr(0, slash + 1);
}

Node make_conv(const Region& r, const std::string& name, const std::string& w, const std::string& b) {
  Node c;
  c.name = name;
  c.op_type = "Conv";
  c.inputs = {r.source, w, b};
  c.outputs = {r.output};
  c.set_attr(Attribute::make_ints("dilations", vec(r.map.dilations)));
  c.set_attr(Attribute::make_int("group", r.map.groups));
  c.set_attr(Attribute::make_ints("kernel_shape", vec(r.map.kernel)));
  c.set_attr(Attribute::make_ints("pads", vec(r.map.pads)));
  c.set_attr(Attribute::make_ints("strides", vec(r.map.strides)));
  return c;
}

Tensor to_float(const Shape& shape, const std::vector<double>& v) {
  std::vector<float> f(v.begin(), v.end());
  return Tensor::from_vector<float>(shape, f);
}

Tensor weight_tensor(const ConvMap& m) {
  return to_float({m.cout, m.cin_per_group(), m.kernel[0], m.kernel[1]}, m.w);
}

ValueInfo float_value(const std::string& name, const Shape& shape) {
  ValueInfo v;
  v.name = name;
  v.elem_type = DType::kFloat32;
  v.has_shape = !shape.empty();
  for (int64_t d : shape) v.dims.push_back(Dim{d, ""});
  return v;
}

Model sub_model(const Model& m, const Shape& in_shape, const Region& r) {
  Model s;
  s.ir_version = m.ir_version;
  s.opsets = {OpsetImport{"", std::max<int64_t>(m.opset(), 13)}};
  s.graph.name = "fold_check";
  s.graph.inputs = {float_value(r.source, in_shape)};
  s.graph.outputs = {float_value(r.output, {})};
  return s;
}

Tensor run_one(const Model& m, const std::string& in, const Tensor& x, const std::string& out, int threads) {
  Executor ex(m, ExecutorOptions{threads});
  return ex.run({{in, x}}).at(out);
}

// Runs the region as it is and as one Conv on the same random input.
void verify(const Model& model, const GraphFacts& facts, const Region& r, const Node& conv,
            const FuseOptions& opts, uint32_t seed, FoldRecord& rec) {
  std::array<int64_t, 2> hw{};
  std::string why;
  if (!passes::fold_check_size(r.map, 0, facts.limits(), hw, why))  // find_regions refused these
    throw InternalError("fuse: region '" + r.output + "': " + why);
  const Shape in_shape{1, r.map.cin, hw[0], hw[1]};
  std::vector<float> xs(static_cast<size_t>(shape_numel(in_shape)));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (auto& v : xs) v = dist(rng);
  const Tensor x = Tensor::from_vector<float>(in_shape, xs);

  Model before = sub_model(model, in_shape, r);
  std::set<std::string> produced{r.source};
  for (size_t i : r.nodes) {
    const Node& n = model.graph.nodes[i];
    before.graph.nodes.push_back(n);
    for (const auto& o : n.outputs) produced.insert(o);
  }
  for (const auto& n : before.graph.nodes)
    for (const auto& in : n.inputs)
      if (!in.empty() && !produced.count(in) && !before.graph.has_initializer(in)) {
        const Tensor* t = facts.constant(in);
        if (!t) throw InternalError("fuse: region input '" + in + "' is not constant");
        before.graph.set_initializer(in, *t);
      }
  Model after = sub_model(model, in_shape, r);
  after.graph.nodes = {conv};
  after.graph.set_initializer(conv.inputs[1], weight_tensor(r.map));
  after.graph.set_initializer(conv.inputs[2], to_float({r.map.cout}, r.map.b));

  const Tensor y0 = run_one(before, r.source, x, r.output, opts.threads);
  const Tensor y1 = run_one(after, r.source, x, r.output, opts.threads);
  if (y0.shape() != y1.shape())
    throw InternalError("fuse: folded '" + r.output + "' has shape " + shape_str(y1.shape()) +
                        ", the block " + shape_str(y0.shape()));
  double max_ref = 0, max_diff = 0;
  const float* a = y0.data<float>();
  const float* b = y1.data<float>();
  for (int64_t i = 0; i < y0.numel(); ++i) {
    max_ref = std::max(max_ref, static_cast<double>(std::fabs(a[i])));
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    max_diff = std::isnan(d) ? INFINITY : std::max(max_diff, d);
  }
  rec.verified = true;
  rec.max_abs_diff = max_diff;
  rec.max_rel_diff = max_ref > 0 ? max_diff / max_ref : max_diff;
  rec.passed = rec.max_rel_diff <= opts.tolerance;
}

FoldRecord record(const Graph& g, const Region& r, const std::string& conv_name) {
  FoldRecord rec;
  rec.kind = r.kind;
  rec.input = r.source;
  rec.output = r.output;
  rec.conv_name = conv_name;
  for (size_t i : r.nodes) {
    rec.nodes.push_back(label(g.nodes[i]));
    rec.ops.push_back(g.nodes[i].op_type);
  }
  rec.nodes_before = r.nodes.size();
  rec.in_channels = r.map.cin;
  rec.out_channels = r.map.cout;
  rec.groups = r.map.groups;
  rec.kernel = vec(r.map.kernel);
  rec.strides = vec(r.map.strides);
  rec.pads = vec(r.map.pads);
  rec.dilations = vec(r.map.dilations);
  return rec;
}

struct Plan {
  FuseReport rep;
  std::vector<Region> regions;
  std::vector<Node> convs;
};

Plan plan(const Model& model, const FuseOptions& opts, bool check) {
  const Graph& g = model.graph;
  Plan p;
  p.rep.tolerance = opts.tolerance;
  p.rep.nodes_before = p.rep.nodes_after = g.nodes.size();
  const GraphFacts facts(g, passes::MapLimits{opts.max_kernel_size, opts.max_kernel_elements,
                                               opts.max_check_elements});
  passes::Analysis a = passes::find_regions(facts);
  p.rep.near_misses = std::move(a.near_misses);
  p.regions = std::move(a.regions);
  NameGen names(g);
  for (size_t k = 0; k < p.regions.size(); ++k) {
    const Region& r = p.regions[k];
    const std::string name = names.make(name_prefix(g, r) + "repq_fused_conv");
    p.convs.push_back(make_conv(r, name, names.make(name + ".weight"), names.make(name + ".bias")));
    p.rep.folds.push_back(record(g, r, name));
    if (!check) continue;
    FoldRecord& rec = p.rep.folds.back();
    try {
      verify(model, facts, r, p.convs.back(), opts, opts.seed + static_cast<uint32_t>(k), rec);
    } catch (const std::exception& e) {  // e.g. an op of the block the executor lacks
      rec.verified = false;
      rec.passed = false;
      rec.check_error = e.what();
    }
  }
  return p;
}

void apply(Model& model, Plan& p) {
  Graph& g = model.graph;
  std::map<size_t, size_t> replace_at;  // output producer -> region
  std::set<size_t> drop;
  for (size_t k = 0; k < p.regions.size(); ++k) {
    if (!p.rep.folds[k].passed) continue;
    const Region& r = p.regions[k];
    for (size_t i : r.nodes)
      if (g.nodes[i].outputs[0] == r.output) replace_at[i] = k;
    drop.insert(r.nodes.begin(), r.nodes.end());
  }
  if (replace_at.empty()) return;
  std::vector<Node> nodes;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (auto it = replace_at.find(i); it != replace_at.end()) {
      const size_t k = it->second;
      const ConvMap& m = p.regions[k].map;
      g.set_initializer(p.convs[k].inputs[1], weight_tensor(m));
      g.set_initializer(p.convs[k].inputs[2], to_float({m.cout}, m.b));
      nodes.push_back(std::move(p.convs[k]));
      p.rep.folds[k].applied = true;
    } else if (!drop.count(i)) {
      nodes.push_back(std::move(g.nodes[i]));
    }
  }
  g.nodes = std::move(nodes);
  remove_dead_nodes(g);
  p.rep.nodes_after = g.nodes.size();
}

}  // namespace

bool FuseReport::passed() const {
  return std::all_of(folds.begin(), folds.end(), [](const FoldRecord& f) { return f.passed; });
}

FuseReport fuse_branches(Model& model, const FuseOptions& opts) {
  Plan p = plan(model, opts, opts.verify);
  p.rep.dry_run = !opts.apply;
  if (opts.apply) apply(model, p);
  return p.rep;
}

FuseReport find_foldable_blocks(const Model& model, const FuseOptions& opts) {
  FuseReport rep = plan(model, opts, false).rep;
  rep.dry_run = true;
  return rep;
}

}  // namespace repq
