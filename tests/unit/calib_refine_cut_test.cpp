// --refine-act's trials re-run only the graph after the changed tensor (src/quant/refine_cut.h):
// the cut on a hand-made chain, and the search giving the same plan, SQNR and trial count with
// suffix runs (each one checked bit for bit against the whole run: verify_suffix) as with
// whole runs, on a branching net (Add, Concat's shared scales, MaxPool, Gemm) and on the
// bundled MobileOne with GPTQ (Slow: the branching net covers the cut under ASan).
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "quant/refine_cut.h"
#include "repq/data/npy.h"
#include "repq/ir/onnx_io.h"
#include "repq/quant/quantize.h"
#include "repq/quant/refine.h"
#include "support/quant_test_util.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

// x -> Conv -> Relu -> r1 -> Conv -> Relu -> r2 -> Conv -> y: changing r2's clip cuts at r1's
// QuantizeLinear output (the Conv before r2's QuantizeLinear joins, with its DequantizeLinears:
// the executor runs them as one integer kernel).
TEST(CalibRefineCut, CutStartsAtTheQuantizeLinearBeforeTheChange) {
  const Model m = named_model(R"(g (float[N,1,4,4] x) => (float[N,1,4,4] y)
<float[1,1,1,1] w1 = {1}, float[1] b1 = {0}, float[1,1,1,1] w2 = {2}, float[1] b2 = {0},
 float[1,1,1,1] w3 = {1}, float[1] b3 = {0}>
{
  c1 = Conv <kernel_shape = [1,1]> (x, w1, b1)
  r1 = Relu (c1)
  c2 = Conv <kernel_shape = [1,1]> (r1, w2, b2)
  r2 = Relu (c2)
  y = Conv <kernel_shape = [1,1]> (r2, w3, b3)
})");
  quant::QuantizeOptions o;
  const quant::QuantPoints pts = quant::find_quant_points(m, o);
  std::vector<float> v(32);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) / 8.0f;
  const quant::QuantPlan plan = minmax_plan(m, pts, Tensor::from_vector<float>({2, 1, 4, 4}, v));
  const Model a = quant::export_qdq(m, plan);
  quant::QuantPlan p2 = plan;
  for (auto& act : p2.activations)
    if (act.tensor == "r2") quant::set_activation_clip(act, act.threshold * 0.8, o.target);
  const Model b = quant::export_qdq(m, p2);
  const quant::detail::Cut c = quant::detail::find_cut(a, b);
  ASSERT_TRUE(c.ok);
  EXPECT_TRUE(c.reaches_output);
  // The frontier: one value, the output of the QuantizeLinear of r1.
  ASSERT_EQ(c.frontier.size(), 1u);
  bool from_q = false;
  for (const Node& n : a.graph.nodes)
    if (!n.outputs.empty() && n.outputs[0] == c.frontier[0]) from_q = n.op_type == "QuantizeLinear" && n.inputs[0] == "c1";
  EXPECT_TRUE(from_q) << c.frontier[0];
  // Nothing before it runs again (the Relu is absorbed: c1 -> QuantizeLinear); c2's group
  // (r1's DequantizeLinear, c2, r2's QuantizeLinear) and everything after it do.
  std::set<std::string> ran;
  for (size_t i : c.nodes) ran.insert(a.graph.nodes[i].outputs[0]);
  EXPECT_TRUE(ran.count("r1"));
  EXPECT_TRUE(ran.count("c2"));
  EXPECT_TRUE(ran.count("r2"));
  EXPECT_FALSE(ran.count("c1"));
  EXPECT_EQ(c.nodes.size(), 11u);  // 17 nodes, 6 before the cut
  // The same model: no cut.
  EXPECT_FALSE(quant::detail::find_cut(a, a).ok);
}

// Runs the search twice from `plan` (whole runs; suffix runs, each checked) and compares.
quant::RefineResult expect_same_search(const quant::QuantizeResult& r, const data::Dataset& ds,
                        const quant::QuantizeOptions& o, int64_t budget) {
  quant::RefineOptions whole;
  whole.cache_bytes = 0;
  quant::RefineOptions cut;
  cut.cache_bytes = budget;
  cut.verify_suffix = true;
  quant::QuantPlan pw = r.plan, pc = r.plan;
  const quant::RefineResult rw = quant::refine_activation_clips(r.fused, pw, ds, o, whole);
  const quant::RefineResult rc = quant::refine_activation_clips(r.fused, pc, ds, o, cut);
  EXPECT_EQ(quant::plan_to_json(pw), quant::plan_to_json(pc));
  EXPECT_EQ(rw.sqnr_after, rc.sqnr_after);  // bit for bit
  EXPECT_EQ(rw.trials, rc.trials);
  EXPECT_EQ(rw.steps.size(), rc.steps.size());
  EXPECT_EQ(rw.suffix_trials, 0);
  EXPECT_GT(rc.suffix_trials, 0);
  EXPECT_LE(rc.suffix_trials, rc.trials - 1);
  return rc;
}

TEST(CalibRefineCut, BranchingNetSameSearchAsWholeRuns) {
  const Model m = named_model(small_quant_net("N"));
  TempDir dir;
  std::mt19937 gen(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int k = 0; k < 6; ++k) {
    std::vector<float> v(3 * 8 * 8);
    for (float& x : v) x = nd(gen);
    data::write_npy(dir.file("s" + std::to_string(k) + ".npy"), Tensor::from_vector<float>({3, 8, 8}, v));
  }
  data::DatasetOptions dopt;
  dopt.threads = 1;
  const auto ds = data::Dataset::open(dir.path().string(), dopt);
  quant::QuantizeOptions o;
  o.act = calib::Method::kPercentile;
  o.percentile = 90;  // tight clips: the search moves some
  o.collect.threads = 2;
  o.collect.batch = 4;  // batches of 4 and 2
  o.collect.progress = false;
  const quant::QuantizeResult r = quant::quantize(m, ds, o);
  const quant::RefineResult all = expect_same_search(r, ds, o, int64_t{1} << 30);
  EXPECT_EQ(all.suffix_trials, all.trials - 1);
  // 1000 bytes hold the cuts after the MaxPool (6 x 4 x 4 x 4 bytes), not those before
  // (6 x 4 x 8 x 8): those trials run whole.
  const quant::RefineResult some = expect_same_search(r, ds, o, 1000);
  EXPECT_LT(some.suffix_trials, some.trials - 1);
}

TEST(CalibRefineCut, SlowMobileOneGptqSameSearchAsWholeRuns) {
  const Model m = load_model(source_dir() + "/models/mobileone/mobileone.train.onnx");
  const data::Dataset ds = fashion_calib(8);
  quant::QuantizeOptions o;
  quant::apply_method_preset("gptq", o);
  o.collect.threads = 2;
  o.collect.batch = 4;
  o.collect.progress = false;
  const quant::QuantizeResult r = quant::quantize(m, ds, o);
  expect_same_search(r, ds, o, int64_t{1} << 30);
}

}  // namespace
}  // namespace repq::test
