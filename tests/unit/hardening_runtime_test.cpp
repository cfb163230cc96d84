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

// Resize takes its output size from `scales` or `sizes`, Pad from `pads`: the same limit as
// ConstantOfShape (check_value_sized_output), and the arithmetic is checked.
TEST(HardeningRuntime, ResizeSizedByValuesIsLimited) {
  // 1 * 2^40 float32 = 4 TiB.
  EXPECT_HAS(refusal(R"(g (float[1] x) => (float y) <float[0] roi = {}, float[1] s = {1099511627776}>
{ y = Resize (x, roi, s) })"),
             "node 'y' (Resize): output shape [1099511627776] of float32 needs 4398046511104 bytes, "
             "over the executor's limit of 8589934592");
  EXPECT_HAS(refusal(R"(g (float[1] x) => (float y) <float[0] roi = {}, int64[1] s = {2147483649}>
{ y = Resize (x, roi, , s) })"),
             "node 'y' (Resize): output shape [2147483649] of float32 needs 8589934596 bytes");
  // 3e38: floor(1 * 3e38) does not fit int64 (before: an undefined float-to-int cast).
  EXPECT_HAS(refusal(R"(g (float[1] x) => (float y) <float[0] roi = {}, float[1] s = {3e38}>
{ y = Resize (x, roi, s) })"),
             "makes axis 0 (1) longer than int64 can count");
}

TEST(HardeningRuntime, PadSizedByValuesIsLimited) {
  EXPECT_HAS(refusal(R"(g (float[1] x) => (float y) <int64[2] p = {0, 1099511627776}>
{ y = Pad (x, p) })"),
             "node 'y' (Pad): output shape [1099511627777] of float32 needs 4398046511108 bytes, "
             "over the executor's limit of 8589934592");
  // 1 + (2^63 - 1) overflows int64 (before: a wrapped, negative size).
  EXPECT_HAS(refusal(R"(g (float[1] x) => (float y) <int64[2] p = {9223372036854775807, 0}>
{ y = Pad (x, p) })"),
             "node 'y' (Pad): pads [9223372036854775807,0]: the output size overflows int64");
  // Within the limit: [0, 1, 0, 0]; an empty output with a huge axis allocates nothing.
  Model model = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[1] x, int64[4] q) => (float y, float z) <int64[2] p = {1, 2}, float[0,1] e = {}>
{
  y = Pad (x, p)
  z = Pad (e, q)
})");
  Executor ex(model, {1});
  const auto out = ex.run({{"x", Tensor::from_vector<float>({1}, {1.0f})},
                           {"q", Tensor::from_vector<int64_t>({4}, {0, 0, 0, 1099511627776})}});
  EXPECT_EQ(out.at("y").to_doubles(), (std::vector<double>{0, 1, 0, 0}));
  EXPECT_EQ(out.at("z").shape(), (Shape{0, 1099511627777}));
}

}  // namespace
}  // namespace repq::test
