// Runtime allocation limits: ops whose output size comes from a tensor's VALUES (a 100-byte
// model can ask for terabytes) refuse absurd sizes with an InputError naming the node, before
// allocating; shape arithmetic that overflows int64 is refused instead of wrapping.
#include <gtest/gtest.h>

#include <string>

#include "repq/error.h"
#include "repq/runtime/executor.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

// Runs `graph` (opset 13) on x = float[1] {1}; returns the InputError message ("" if none).
std::string refusal(const std::string& graph) {
  try {
    Model model = parse_onnx_text("<ir_version: 8, opset_import: [\"\" : 13]>\n" + graph);
    Executor ex(model, {1});
    ex.run({{"x", Tensor::from_vector<float>({1}, {1.0f})}});
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

TEST(HardeningRuntime, ConstantOfShapeOverTheLimitIsRefusedNamingTheNode) {
  // 2^20 x 2^20 float32 = 4 TiB.
  const std::string msg = refusal(R"(g (float[1] x) => (float big) <int64[2] s = {1048576, 1048576}>
{ big = ConstantOfShape (s) })");
  EXPECT_HAS(msg, "node 'big' (ConstantOfShape): output shape [1048576,1048576] of float32 needs "
                  "4398046511104 bytes, over the executor's limit of 8589934592");
  // Just over 8 GiB: 2^31 + 1 float32 elements; and int64 (value attribute) at 2^30 + 1.
  EXPECT_HAS(refusal(R"(g (float[1] x) => (float big) <int64[1] s = {2147483649}>
{ big = ConstantOfShape (s) })"),
             "needs 8589934596 bytes, over the executor's limit of 8589934592");
  EXPECT_HAS(refusal(R"(g (float[1] x) => (int64 big) <int64[1] s = {1073741825}>
{ big = ConstantOfShape <value = int64[1] {7}> (s) })"),
             "[1073741825] of int64 needs 8589934600 bytes");
}

TEST(HardeningRuntime, ConstantOfShapeOverflowNegativeAndRank) {
  // 2^62 x 4 elements: the element count overflows int64 (before: undefined behaviour).
  EXPECT_HAS(refusal(R"(g (float[1] x) => (float big) <int64[2] s = {4611686018427387904, 4}>
{ big = ConstantOfShape (s) })"),
             "node 'big' (ConstantOfShape): shape [4611686018427387904,4] has more elements than "
             "int64 can count");
  EXPECT_HAS(refusal(R"(g (float[1] x) => (float big) <int64[2] s = {2, -3}>
{ big = ConstantOfShape (s) })"),
             "input shape [2,-3] has a negative dim");
  EXPECT_HAS(refusal(R"(g (float[1] x) => (float big)
<int64[33] s = {1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1}>
{ big = ConstantOfShape (s) })"),
             "input shape has 33 dims, over repq's limit of 32");
}

TEST(HardeningRuntime, ConstantOfShapeWithinTheLimitStillWorks) {
  Model model = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (int64[2] s) => (int64 y) { y = ConstantOfShape <value = int64[1] {7}> (s) })");
  Executor ex(model, {1});
  const auto out = ex.run({{"s", Tensor::from_vector<int64_t>({2}, {2, 3})}});
  EXPECT_EQ(out.at("y").shape(), (Shape{2, 3}));
  EXPECT_EQ(out.at("y").to_int64s(), (std::vector<int64_t>(6, 7)));
  // A zero-sized dim gives an empty tensor (numel 0 is never over the limit).
  const auto empty = ex.run({{"s", Tensor::from_vector<int64_t>({2}, {0, 1048576})}});
  EXPECT_EQ(empty.at("y").numel(), 0);
}

TEST(HardeningRuntime, ReshapeWhoseShapeOverflowsIsRefused) {
  // known = 2^62 * 4 overflows int64 while looking for the -1 (before: undefined behaviour).
  EXPECT_HAS(refusal(R"(g (float[1] x) => (float y) <int64[3] s = {-1, 4611686018427387904, 4}>
{ y = Reshape (x, s) })"),
             "node 'y' (Reshape): shape [-1,4611686018427387904,4] has more elements than int64 "
             "can count");
  EXPECT_HAS(refusal(R"(g (float[1] x) => (float y)
<int64[33] s = {1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1}>
{ y = Reshape (x, s) })"),
             "node 'y' (Reshape): shape rank 33 is over repq's limit of 32");
}

TEST(HardeningRuntime, UnsqueezeToAnAbsurdRankIsRefused) {
  std::string axes;
  for (int i = 0; i < 32; ++i) axes += (i ? "," : "") + std::to_string(i);
  // rank 1 + 32 axes = 33.
  EXPECT_HAS(refusal("g (float[1] x) => (float y) <int64[32] a = {" + axes +
                     "}>\n{ y = Unsqueeze (x, a) }"),
             "node 'y' (Unsqueeze): output rank 33 is over repq's limit of 32");
  // 31 axes: rank 32 is fine.
  Model model = parse_onnx_text("<ir_version: 8, opset_import: [\"\" : 13]>\ng (float[1] x) => "
                                "(float y) <int64[31] a = {" + axes.substr(0, axes.rfind(',')) +
                                "}>\n{ y = Unsqueeze (x, a) }");
  Executor ex(model, {1});
  EXPECT_EQ(ex.run({{"x", Tensor::from_vector<float>({1}, {1.0f})}}).at("y").rank(), 32u);
}

}  // namespace
}  // namespace repq::test
