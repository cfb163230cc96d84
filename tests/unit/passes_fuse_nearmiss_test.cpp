// Blocks that cannot be folded exactly are left alone and listed with the reason; folding is
// idempotent; a deploy-form model passes through unchanged; the tolerance gate.
#include <gtest/gtest.h>

#include "passes_fuse_support.h"

namespace repq::test {
namespace {

// Fuses a block that must stay as it is; returns the near-miss reasons.
std::vector<std::string> near_miss_reasons(const std::string& graph, const Shape& in) {
  const Model m = block_model(graph);
  Model f;
  const FuseReport r = fuse_checked(m, in, f);
  EXPECT_TRUE(r.folds.empty());
  EXPECT_EQ(serialize_model(f), serialize_model(m)) << "a near-miss is left alone";
  std::vector<std::string> reasons;
  for (const auto& n : r.near_misses) reasons.push_back(n.node + ": " + n.reason);
  return reasons;
}

testing::AssertionResult has_reason(const std::vector<std::string>& reasons, const std::string& text) {
  for (const auto& r : reasons)
    if (r.find(text) != std::string::npos) return testing::AssertionSuccess();
  std::string all;
  for (const auto& r : reasons) all += "\n  " + r;
  return testing::AssertionFailure() << "no reason contains '" << text << "'; got:" << all;
}

const char* kHeader = "g (float[1,4,8,8] x) => (float z) <float[4,4,3,3] w3, float[4] b3, float[4,4,1,1] w1, float[4] b1>\n";

TEST(PassesFuseNearMiss, MismatchedStride) {
  const auto r = near_miss_reasons(std::string(kHeader) + R"({
  c3 = Conv <kernel_shape = [3,3], pads = [1,1,1,1], strides = [2,2]> (x, w3, b3)
  c1 = Conv <kernel_shape = [1,1], strides = [1,1]> (x, w1, b1)
  p = MaxPool <kernel_shape = [1,1], strides = [2,2]> (c1)
  y = Add (c3, p)
  z = Relu (y)
})", {1, 4, 8, 8});
  // The MaxPool makes the graph valid; without it the branches would differ in size. A pure
  // stride mismatch between two convs of the same output size:
  EXPECT_TRUE(has_reason(r, "nonlinearity inside (MaxPool"));
  const auto r2 = near_miss_reasons(R"(
g (float[1,4,5,5] x) => (float z) <float[4,4,3,3] w3, float[4,4,1,1] w1>
{
  c3 = Conv <kernel_shape = [3,3], pads = [0,0,0,0], strides = [1,1]> (x, w3)
  c1 = Conv <kernel_shape = [1,1], pads = [0,0,0,0], strides = [2,2]> (x, w1)
  y = Add (c3, c1)
  z = Relu (y)
})", {1, 4, 5, 5});
  EXPECT_TRUE(has_reason(r2, "y: mismatched stride (1 vs 2)"));
}

TEST(PassesFuseNearMiss, MismatchedDilationAndMisalignedTaps) {
  const auto r = near_miss_reasons(std::string(kHeader) + R"({
  c3 = Conv <kernel_shape = [3,3], pads = [2,2,2,2], dilations = [2,2]> (x, w3, b3)
  c1 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3, b1)
  y = Add (c3, c1)
  z = Relu (y)
})", {1, 4, 8, 8});
  EXPECT_TRUE(has_reason(r, "mismatched dilation (2 vs 1)"));
  const auto r2 = near_miss_reasons(std::string(kHeader) + R"({
  c3 = Conv <kernel_shape = [3,3], pads = [3,3,1,1], dilations = [2,2]> (x, w3, b3)
  c1 = Conv <kernel_shape = [1,1]> (x, w1, b1)
  y = Add (c3, c1)
  z = Relu (y)
})", {1, 4, 8, 8});
  EXPECT_TRUE(has_reason(r2, "mismatched padding (taps do not line up"));
}

TEST(PassesFuseNearMiss, NonlinearityInsideABranch) {
  const auto r = near_miss_reasons(std::string(kHeader) + R"({
  c3 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3, b3)
  c1 = Conv <kernel_shape = [1,1]> (x, w1, b1)
  r1 = Relu (c1)
  y = Add (c3, r1)
  z = Relu (y)
})", {1, 4, 8, 8});
  EXPECT_TRUE(has_reason(r, "nonlinearity inside (Relu 'r1')"));
}

TEST(PassesFuseNearMiss, AvgPoolWithoutCountIncludePad) {
  const auto r = near_miss_reasons(std::string(kHeader) + R"({
  c3 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3, b3)
  p = AveragePool <kernel_shape = [3,3], pads = [1,1,1,1], count_include_pad = 0> (x)
  y = Add (c3, p)
  z = Relu (y)
})", {1, 4, 8, 8});
  EXPECT_TRUE(has_reason(r, "count_include_pad=0"));
}

TEST(PassesFuseNearMiss, ReflectPadBeforeTheAvgPool) {
  const auto r = near_miss_reasons(R"(
g (float[1,4,8,8] x) => (float z) <float[4,4,3,3] w3, float[4] b3, int64[8] pp = {0,0,1,1,0,0,1,1}>
{
  c3 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3, b3)
  q = Pad <mode = "reflect"> (x, pp)
  p = AveragePool <kernel_shape = [3,3]> (q)
  y = Add (c3, p)
  z = Relu (y)
})", {1, 4, 8, 8});
  EXPECT_TRUE(has_reason(r, "'q': Pad mode=reflect is not zero padding"));
}

TEST(PassesFuseNearMiss, BranchOutputUsedElsewhere) {
  const auto r = near_miss_reasons(R"(
g (float[1,4,8,8] x) => (float z, float c1) <float[4,4,3,3] w3, float[4] b3, float[4,4,1,1] w1, float[4] b1>
{
  c3 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3, b3)
  c1 = Conv <kernel_shape = [1,1]> (x, w1, b1)
  y = Add (c3, c1)
  z = Relu (y)
})", {1, 4, 8, 8});
  EXPECT_TRUE(has_reason(r, "branch output 'c1' is also used outside the block"));
}

TEST(PassesFuseNearMiss, ConvOutputUsedBesideItsBN) {
  const auto r = near_miss_reasons(R"(
g (float[1,4,8,8] x) => (float z, float c) <float[4,4,3,3] w3, float[4] s, float[4] b, float[4] m, float[4] v>
{
  c = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3)
  n = BatchNormalization (c, s, b, m, v)
  z = Relu (n)
})", {1, 4, 8, 8});
  EXPECT_TRUE(has_reason(r, "n: output of Conv 'c' is also used elsewhere"));
}

// DBB chain with the padding on the kxk conv and a biased 1x1 before it: the border would see
// zeros instead of the 1x1's bias.
TEST(PassesFuseNearMiss, ChainWhosePaddingWouldSeeABias) {
  const auto r = near_miss_reasons(std::string(kHeader) + R"({
  c3 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3, b3)
  m = Conv <kernel_shape = [1,1]> (x, w1, b1)
  k = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (m, w3)
  y = Add (c3, k)
  z = Relu (y)
})", {1, 4, 8, 8});
  EXPECT_TRUE(has_reason(r, "'k' after 'm': the second conv's zero padding would replace the first map's bias"));
}

TEST(PassesFuseNearMiss, PlainConvChainsAndResidualJoinsAreNotListed) {
  const Model m = block_model(std::string(kHeader) + R"({
  a = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3, b3)
  b = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (a, w3, b3)
  r = Relu (b)
  q = Conv <kernel_shape = [1,1]> (r, w1, b1)
  z = Add (q, a)
})");
  Model f;
  const FuseReport r = fuse_checked(m, {1, 4, 8, 8}, f);
  EXPECT_TRUE(r.folds.empty());
  EXPECT_EQ(serialize_model(f), serialize_model(m));
}

TEST(PassesFuseNearMiss, BottleneckChainIsNotComposed) {
  const Model m = block_model(R"(
g (float[1,8,5,5] x) => (float z) <float[2,8,1,1] a, float[8,2,1,1] b>
{
  m = Conv <kernel_shape = [1,1]> (x, a)
  z = Conv <kernel_shape = [1,1]> (m, b)
})");
  Model f;
  EXPECT_TRUE(fuse_checked(m, {1, 8, 5, 5}, f).folds.empty());
}

TEST(PassesFuse, FoldingTwiceChangesNothing) {
  const Model m = block_model(R"(
g (float[1,4,8,8] x) => (float z) <float[4,4,3,3] w3, float[4,4,1,1] w1, )" + bn_params("d", 4) + ", " +
                              bn_params("o", 4) + ", " + bn_params("i", 4) + R"(>
{
  c3 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3)
  c1 = Conv <kernel_shape = [1,1]> (x, w1)
)" + bn("n3", "c3", "d") + bn("n1", "c1", "o") + bn("ni", "x", "i") + R"(
  a = Add (n3, n1)
  y = Add (a, ni)
  z = Relu (y)
})");
  Model once;
  ASSERT_EQ(fuse_checked(m, {1, 4, 8, 8}, once).folds.size(), 1u);
  Model twice = once;
  const FuseReport r = fuse_branches(twice);
  EXPECT_TRUE(r.folds.empty());
  EXPECT_TRUE(r.near_misses.empty());
  EXPECT_EQ(serialize_model(twice), serialize_model(once));
}

TEST(PassesFuse, DeployFormPassesThroughUnchanged) {
  const Model m = block_model(R"(
g (float[1,3,8,8] x) => (float z) <float[8,3,3,3] w, float[8] b, float[8,8,3,3] w2, float[8] b2>
{
  c = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w, b)
  r = Relu (c)
  c2 = Conv <kernel_shape = [3,3], pads = [1,1,1,1], strides = [2,2]> (r, w2, b2)
  z = Relu (c2)
})");
  Model f = m;
  const FuseReport r = fuse_branches(f);
  EXPECT_TRUE(r.folds.empty());
  EXPECT_TRUE(r.near_misses.empty());
  EXPECT_EQ(r.nodes_before, r.nodes_after);
  EXPECT_EQ(serialize_model(f), serialize_model(m));
}

TEST(PassesFuse, AFoldMissingTheToleranceIsNotApplied) {
  const Model m = block_model(std::string(kHeader) + R"({
  c3 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3, b3)
  c1 = Conv <kernel_shape = [1,1]> (x, w1, b1)
  y = Add (c3, c1)
  z = Relu (y)
})");
  Model f = m;
  FuseOptions o;
  o.tolerance = -1;  // nothing can pass
  const FuseReport r = fuse_branches(f, o);
  ASSERT_EQ(r.folds.size(), 1u);
  EXPECT_TRUE(r.folds[0].verified);
  EXPECT_FALSE(r.folds[0].passed);
  EXPECT_FALSE(r.folds[0].applied);
  EXPECT_FALSE(r.passed());
  EXPECT_EQ(serialize_model(f), serialize_model(m));
  const FuseReport a = find_foldable_blocks(m);
  ASSERT_EQ(a.folds.size(), 1u);
  EXPECT_FALSE(a.folds[0].verified);
  EXPECT_TRUE(a.dry_run);
}

}  // namespace
}  // namespace repq::test
