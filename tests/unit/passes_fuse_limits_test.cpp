// Limits of the branch-fusion pass against hostile models: a fold whose kernel, weights or
// numerical check would be over FuseOptions' limits, or whose geometry overflows int64, is not
// made and is listed as a near-miss with the reason; nothing is allocated for it.
#include <gtest/gtest.h>

#include <chrono>

#include "passes_fuse_support.h"

namespace repq::test {
namespace {

struct Outcome {
  FuseReport report;
  bool unchanged = false;
  std::string reasons;  // "node: reason" lines
  double seconds = 0;
};

Outcome fuse_only(const std::string& graph, const FuseOptions& opts = {}) {
  const Model m = block_model(graph);
  Model f = m;
  const auto t0 = std::chrono::steady_clock::now();
  Outcome o;
  o.report = fuse_branches(f, opts);
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  o.unchanged = serialize_model(f) == serialize_model(m);
  for (const auto& n : o.report.near_misses) o.reasons += n.node + ": " + n.reason + "\n";
  return o;
}

// Conv(3x3, stride S) -> Conv(3x3): one kernel of 2S+3 taps per axis (the fuse fuzzer's finding:
// S = 2000 made a 4003x4003 kernel, 10 s and 1 GB; larger S ran out of memory or overflowed).
std::string strided_chain(const std::string& stride) {
  return R"(
g (float[1,1,9000,9000] x) => (float z) <float[1,1,3,3] a, float[1,1,3,3] b>
{
  m = Conv <kernel_shape = [3,3], strides = [)" + stride + "," + stride + R"(]> (x, a)
  z = Conv <kernel_shape = [3,3]> (m, b)
})";
}

TEST(PassesFuseLimits, StridedChainOverTheKernelSizeIsANearMiss) {
  const Outcome o = fuse_only(strided_chain("2000"));
  EXPECT_TRUE(o.report.folds.empty());
  EXPECT_TRUE(o.unchanged);
  EXPECT_NE(o.reasons.find("z: 'z' after 'm': the composed kernel would be 4003x4003, over the limit of 64 "
                           "taps per axis (FuseOptions::max_kernel_size)"),
            std::string::npos)
      << o.reasons;
  EXPECT_LT(o.seconds, 1.0);
  // 2 * 30 + 3 = 63 taps is within the default limit: folded (and verified).
  const Outcome ok = fuse_only(strided_chain("30"));
  ASSERT_EQ(ok.report.folds.size(), 1u) << ok.reasons;
  EXPECT_EQ(ok.report.folds[0].kernel, (std::vector<int64_t>{63, 63}));
  EXPECT_EQ(ok.report.folds[0].strides, (std::vector<int64_t>{30, 30}));
  EXPECT_TRUE(ok.report.folds[0].verified && ok.report.folds[0].passed);
}

TEST(PassesFuseLimits, GeometryOverflowingInt64IsANearMissNotUndefinedBehaviour) {
  // 2^62 * (3 - 1) = 2^63 taps: overflows int64.
  const Outcome a = fuse_only(strided_chain("4611686018427387904"));
  EXPECT_TRUE(a.report.folds.empty());
  EXPECT_TRUE(a.unchanged);
  EXPECT_NE(a.reasons.find("z: 'z' after 'm': the folded kernel's geometry overflows int64"), std::string::npos)
      << a.reasons;
  // 2^61: 2^62 + 3 taps fit in int64 but not in the limit.
  const Outcome b = fuse_only(strided_chain("2305843009213693952"));
  EXPECT_NE(b.reasons.find("the composed kernel would be 4611686018427387907x4611686018427387907"),
            std::string::npos)
      << b.reasons;
  // Strides 2^40 * 2^40 of two 1x1 convs overflow the composed stride.
  const Outcome c = fuse_only(R"(
g (float[1,1,8,8] x) => (float z) <float[1,1,1,1] a, float[1,1,1,1] b>
{
  m = Conv <kernel_shape = [1,1], strides = [1099511627776,1]> (x, a)
  z = Conv <kernel_shape = [1,1], strides = [1099511627776,1]> (m, b)
})");
  EXPECT_TRUE(c.report.folds.empty());
  EXPECT_NE(c.reasons.find("geometry overflows int64"), std::string::npos) << c.reasons;
  // (2^63 - 2) * (2 - 1) + 1 * (2 - 1) = 2^63 - 1 fits, but the kernel would be one more tap.
  const Outcome e = fuse_only(R"(
g (float[1,1,8,8] x) => (float z) <float[1,1,2,1] a, float[1,1,2,1] b>
{
  m = Conv <kernel_shape = [2,1], strides = [9223372036854775806,1]> (x, a)
  z = Conv <kernel_shape = [2,1]> (m, b)
})");
  EXPECT_TRUE(e.report.folds.empty());
  EXPECT_NE(e.reasons.find("geometry overflows int64"), std::string::npos) << e.reasons;
  // Pads near int64's maximum in a summed block.
  const Outcome d = fuse_only(R"(
g (float[1,1,8,8] x) => (float z) <float[1,1,3,3] a, float[1,1,3,3] b>
{
  p = Conv <kernel_shape = [3,3], pads = [9223372036854775807,0,9223372036854775807,0]> (x, a)
  q = Conv <kernel_shape = [3,3], pads = [9223372036854775807,0,9223372036854775807,0]> (x, b)
  z = Add (p, q)
})");
  EXPECT_TRUE(d.report.folds.empty());
  EXPECT_NE(d.reasons.find("z: the folded kernel's geometry overflows int64"), std::string::npos) << d.reasons;
}

// A 3x3 branch with dilation 1000 (pads 1000) plus a 1x1: a 3x3 kernel, but checking the fold
// needs an input of 2 * 2000 + 11 + 1 = 4012 rows and 4015 columns, padded to 6012 x 6015:
// 4 * 6012 * 6015 = 144648720 values.
TEST(PassesFuseLimits, FoldWhoseCheckWouldBeHugeIsANearMiss) {
  const Outcome o = fuse_only(R"(
g (float[1,4,8,8] x) => (float z) <float[4,4,3,3] a, float[4,4,1,1] b>
{
  p = Conv <kernel_shape = [3,3], dilations = [1000,1000], pads = [1000,1000,1000,1000]> (x, a)
  q = Conv <kernel_shape = [1,1]> (x, b)
  z = Add (p, q)
})");
  EXPECT_TRUE(o.report.folds.empty());
  EXPECT_TRUE(o.unchanged);
  EXPECT_NE(o.reasons.find("z: not folded: its numerical check needs a tensor of 144648720 values (input "
                           "[1,4,4012,4015], kernel 3x3 d1000,1000), over the limit of 16777216 "
                           "(FuseOptions::max_check_elements)"),
            std::string::npos)
      << o.reasons;
  EXPECT_LT(o.seconds, 1.0);
  // The analysis of `repq info` agrees.
  EXPECT_TRUE(find_foldable_blocks(block_model(R"(
g (float[1,4,8,8] x) => (float z) <float[4,4,3,3] a, float[4,4,1,1] b>
{
  p = Conv <kernel_shape = [3,3], dilations = [1000,1000], pads = [1000,1000,1000,1000]> (x, a)
  q = Conv <kernel_shape = [1,1]> (x, b)
  z = Add (p, q)
})")).folds.empty());
}

const std::string kRepBlock = R"(
g (float[1,4,8,8] x) => (float z) <float[4,4,3,3] w3, float[4,4,1,1] w1>
{
  p = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3)
  q = Conv <kernel_shape = [1,1]> (x, w1)
  z = Add (p, q)
})";

TEST(PassesFuseLimits, LimitsAreOptions) {
  EXPECT_EQ(fuse_only(kRepBlock).report.folds.size(), 1u);
  FuseOptions taps;
  taps.max_kernel_size = 2;
  const Outcome a = fuse_only(kRepBlock, taps);
  EXPECT_TRUE(a.report.folds.empty());
  EXPECT_NE(a.reasons.find("z: the summed kernel would be 3x3, over the limit of 2 taps per axis"), std::string::npos)
      << a.reasons;
  FuseOptions weights;
  weights.max_kernel_elements = 143;  // 4 * 4 * 3 * 3 = 144
  const Outcome b = fuse_only(kRepBlock, weights);
  EXPECT_TRUE(b.report.folds.empty());
  EXPECT_NE(b.reasons.find("the summed kernel 4x4x3x3 would hold 144 weights, over the limit of 143"),
            std::string::npos)
      << b.reasons;
  weights.max_kernel_elements = 144;
  EXPECT_EQ(fuse_only(kRepBlock, weights).report.folds.size(), 1u);
  FuseOptions check;
  // The 3x3 check: input [1,4,16,19] (2 * 2 + 11 + 1 rows), padded to 18 x 21 (4 * 18 * 21 = 1512).
  check.max_check_elements = 1511;
  EXPECT_EQ(fuse_only(kRepBlock, check).report.folds.size(), 0u);
  check.max_check_elements = 1512;
  EXPECT_EQ(fuse_only(kRepBlock, check).report.folds.size(), 1u);
}

TEST(PassesFuseLimits, AbsurdAttributesAreNotFolded) {
  // An AveragePool of 100000x100000 taps would be a kernel of 4e10 weights; strides of 0 and
  // negative dilations are not convolutions.
  for (const char* node : {"z = AveragePool <kernel_shape = [100000,100000]> (m)",
                           "z = Conv <kernel_shape = [1,1], strides = [0,1]> (m, b)",
                           "z = Conv <kernel_shape = [1,1], dilations = [-1,1]> (m, b)"}) {
    const Outcome o = fuse_only(std::string(R"(
g (float[1,4,8,8] x) => (float z) <float[4,4,3,3] a, float[4,4,1,1] b>
{
  m = Conv <kernel_shape = [3,3]> (x, a)
  )") + node + "\n}");
    EXPECT_TRUE(o.report.folds.empty()) << node;
    EXPECT_TRUE(o.unchanged) << node;
  }
}

}  // namespace
}  // namespace repq::test
