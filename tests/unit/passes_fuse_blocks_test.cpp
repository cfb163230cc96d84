// Every block family the fusion pass folds, built with the IR as PyTorch exports it (eval form:
// conv+BN pre-folded, identity BN standalone; PRESERVE form: Conv -> BatchNormalization pairs
// with Identity-forwarded biases). Checks: one Conv left, its weights equal a direct computation,
// and the executor gives the same outputs before and after.
#include <gtest/gtest.h>

#include "passes_fuse_support.h"

namespace repq::test {
namespace {

std::span<const float> init(const Model& m, const std::string& name) {
  const Tensor* t = m.graph.initializer(name);
  EXPECT_NE(t, nullptr) << name;
  return t ? t->span<float>() : std::span<const float>();
}

// RepVGG, eval export: 3x3 conv (bias) + 1x1 conv (bias) + identity BN, then ReLU.
const char* kRepVGGEval = R"(
g (float[1,4,9,9] x) => (float[1,4,9,9] z)
<float[4,4,3,3] w3, float[4] b3, float[4,4,1,1] w1, float[4] b1,
 float[4] id_s, float[4] id_b, float[4] id_m, float[4] id_v>
{
  c3 = Conv <kernel_shape = [3,3], pads = [1,1,1,1], strides = [1,1]> (x, w3, b3)
  c1 = Conv <kernel_shape = [1,1], pads = [0,0,0,0], strides = [1,1]> (x, w1, b1)
  a = Add (c3, c1)
  id = BatchNormalization (x, id_s, id_b, id_m, id_v)
  y = Add (a, id)
  z = Relu (y)
})";

TEST(PassesFuseBlocks, RepVGGEvalFormMatchesDirectComputation) {
  const Model m = block_model(kRepVGGEval);
  Model f;
  const FuseReport r = fuse_checked(m, {1, 4, 9, 9}, f);
  ASSERT_EQ(r.folds.size(), 1u);
  EXPECT_EQ(r.folds[0].kind, "RepVGG");
  EXPECT_EQ(r.folds[0].nodes_before, 5u);
  EXPECT_TRUE(r.folds[0].verified && r.folds[0].applied);
  EXPECT_LT(r.folds[0].max_rel_diff, 1e-5);
  EXPECT_EQ(ops(f), (std::map<std::string, size_t>{{"Conv", 1}, {"Relu", 1}}));
  const Node* c = only_conv(f);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->inputs[0], "x");
  EXPECT_EQ(c->outputs[0], "y");
  EXPECT_EQ(c->attr_ints("pads"), (std::vector<int64_t>{1, 1, 1, 1}));
  const auto w = init(f, c->inputs[1]), b = init(f, c->inputs[2]);
  const auto w3 = init(m, "w3"), w1 = init(m, "w1"), b3 = init(m, "b3"), b1 = init(m, "b1");
  const BnFold id = bn_fold(m, "id");
  for (int o = 0; o < 4; ++o) {
    EXPECT_NEAR(b[o], b3[o] + b1[o] + id.shift[o], 1e-5);
    for (int i = 0; i < 4; ++i)
      for (int t = 0; t < 9; ++t) {
        double want = w3[(o * 4 + i) * 9 + t];
        if (t == 4) want += w1[o * 4 + i] + (i == o ? id.t[o] : 0.0);
        EXPECT_NEAR(w[(o * 4 + i) * 9 + t], want, 1e-5) << o << "," << i << "," << t;
      }
  }
}

// RepVGG, PRESERVE export: Conv (no bias) -> BN per branch, BN biases forwarded by Identity.
TEST(PassesFuseBlocks, RepVGGPreserveFormWithIdentityForwardedBiases) {
  const Model m = block_model(R"(
g (float[1,4,8,8] x) => (float[1,4,8,8] z)
<float[4,4,3,3] w3, float[4,4,1,1] w1,)" + bn_params("d", 4) + ", float[4] u_s, float[4] u_m, float[4] u_v, " +
                              bn_params("id", 4) + R"(>
{
  u_b = Identity (d_b)
  c3 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3)
)" + bn("n3", "c3", "d") + R"(
  c1 = Conv <kernel_shape = [1,1]> (x, w1)
)" + bn("n1", "c1", "u") + R"(
  a = Add (n3, n1)
)" + bn("i", "x", "id") + R"(
  y = Add (a, i)
  z = Relu (y)
})");
  Model f;
  const FuseReport r = fuse_checked(m, {1, 4, 8, 8}, f);
  ASSERT_EQ(r.folds.size(), 1u);
  EXPECT_EQ(r.folds[0].kind, "RepVGG");
  EXPECT_EQ(r.folds[0].nodes_before, 7u);
  EXPECT_EQ(ops(f), (std::map<std::string, size_t>{{"Conv", 1}, {"Relu", 1}}));
  EXPECT_EQ(f.graph.initializer_names().size(), 2u) << "unused BN parameters are removed";
  const Node* c = only_conv(f);
  ASSERT_NE(c, nullptr);
  const auto w = init(f, c->inputs[1]), b = init(f, c->inputs[2]);
  const auto w3 = init(m, "w3"), w1 = init(m, "w1");
  const BnFold d = bn_fold(m, "d"), id = bn_fold(m, "id");
  BnFold u;  // the 1x1 branch's BN takes d_b through the Identity node
  for (int o = 0; o < 4; ++o) {
    const double t = init(m, "u_s")[o] / std::sqrt(init(m, "u_v")[o] + 1e-5);
    u.t.push_back(t);
    u.shift.push_back(init(m, "d_b")[o] - init(m, "u_m")[o] * t);
  }
  for (int o = 0; o < 4; ++o) {
    EXPECT_NEAR(b[o], d.shift[o] + u.shift[o] + id.shift[o], 1e-5);
    for (int i = 0; i < 4; ++i)
      for (int t = 0; t < 9; ++t) {
        double want = w3[(o * 4 + i) * 9 + t] * d.t[o];
        if (t == 4) want += w1[o * 4 + i] * u.t[o] + (i == o ? id.t[o] : 0.0);
        EXPECT_NEAR(w[(o * 4 + i) * 9 + t], want, 1e-5);
      }
  }
}

// Branches summed in another association order: (3x3 + identity) + (1x1 + 1x1).
TEST(PassesFuseBlocks, AnyAssociationOrderOfTheAdds) {
  const Model m = block_model(R"(
g (float[1,4,7,7] x) => (float[1,4,7,7] z) <float[4,4,3,3] w3, float[4] b3, float[4,4,1,1] w1, float[4] b1,
 float[4,4,1,1] w5, float[4] b5>
{
  c3 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3, b3)
  c1 = Conv <kernel_shape = [1,1]> (x, w1, b1)
  c5 = Conv <kernel_shape = [1,1]> (x, w5, b5)
  a = Add (x, c3)
  b = Add (c1, c5)
  y = Add (b, a)
  z = Relu (y)
})");
  Model f;
  const FuseReport r = fuse_checked(m, {1, 4, 7, 7}, f);
  ASSERT_EQ(r.folds.size(), 1u);
  EXPECT_EQ(r.folds[0].nodes_before, 6u);
  const Node* c = only_conv(f);
  ASSERT_NE(c, nullptr);
  const auto w = init(f, c->inputs[1]), b = init(f, c->inputs[2]);
  for (int o = 0; o < 4; ++o) {
    EXPECT_NEAR(b[o], init(m, "b3")[o] + init(m, "b1")[o] + init(m, "b5")[o], 1e-6);
    for (int i = 0; i < 4; ++i)
      EXPECT_NEAR(w[(o * 4 + i) * 9 + 4],
                  init(m, "w3")[(o * 4 + i) * 9 + 4] + init(m, "w1")[o * 4 + i] + init(m, "w5")[o * 4 + i] + (i == o),
                  1e-6);
  }
}

TEST(PassesFuseBlocks, RepVGGStride2WithoutIdentity) {
  const Model m = block_model(R"(
g (float[1,3,9,10] x) => (float[1,6,5,5] z) <float[6,3,3,3] w3, float[6] b3, float[6,3,1,1] w1, float[6] b1>
{
  c3 = Conv <kernel_shape = [3,3], pads = [1,1,1,1], strides = [2,2]> (x, w3, b3)
  c1 = Conv <kernel_shape = [1,1], strides = [2,2]> (x, w1, b1)
  y = Add (c1, c3)
  z = Relu (y)
})");
  Model f;
  const FuseReport r = fuse_checked(m, {1, 3, 9, 10}, f);
  ASSERT_EQ(r.folds.size(), 1u);
  EXPECT_EQ(r.folds[0].kind, "RepVGG");
  EXPECT_EQ(r.folds[0].strides, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(r.folds[0].kernel, (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(ops(f).at("Conv"), 1u);
}

class PassesFuseGrouped : public ::testing::TestWithParam<int> {};

TEST_P(PassesFuseGrouped, RepVGGGroupedBlockKeepsItsGroups) {
  const int g = GetParam(), c = 8, cpg = c / g;
  const std::string gs = std::to_string(g), w = "float[8," + std::to_string(cpg) + ",";
  const Model m = block_model("g (float[1,8,7,7] x) => (float[1,8,7,7] z) <" + w + "3,3] w3, float[8] b3, " + w +
                              "1,1] w1, float[8] b1, " + bn_params("id", c) + ">\n{\n"
                              "  c3 = Conv <kernel_shape = [3,3], pads = [1,1,1,1], group = " + gs + "> (x, w3, b3)\n"
                              "  c1 = Conv <kernel_shape = [1,1], group = " + gs + "> (x, w1, b1)\n"
                              "  a = Add (c3, c1)\n" + bn("i", "x", "id") + "  y = Add (i, a)\n  z = Relu (y)\n}");
  Model f;
  const FuseReport r = fuse_checked(m, {1, 8, 7, 7}, f);
  ASSERT_EQ(r.folds.size(), 1u);
  EXPECT_EQ(r.folds[0].groups, g);
  const Node* conv = only_conv(f);
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->attr_int("group", 1), g);
  const auto wf = init(f, conv->inputs[1]);
  const auto w3 = init(m, "w3"), w1 = init(m, "w1");
  const BnFold id = bn_fold(m, "id");
  ASSERT_EQ(wf.size(), static_cast<size_t>(c * cpg * 9));
  for (int o = 0; o < c; ++o)
    for (int i = 0; i < cpg; ++i) {  // identity: input channel o is in-group index o % cpg
      const double want = w3[(o * cpg + i) * 9 + 4] + w1[o * cpg + i] + (i == o % cpg ? id.t[o] : 0.0);
      EXPECT_NEAR(wf[(o * cpg + i) * 9 + 4], want, 1e-5);
      EXPECT_NEAR(wf[(o * cpg + i) * 9 + 0], w3[(o * cpg + i) * 9 + 0], 1e-6);
    }
}
INSTANTIATE_TEST_SUITE_P(PassesG, PassesFuseGrouped, ::testing::Values(2, 4));

// QARepVGG (YOLOv6 QARepVGGBlock): 3x3 conv+BN, 1x1 conv without BN or bias, bare identity,
// one BN after the sum. V2 adds AvgPool(3, 1, 1, count_include_pad=1).
std::string qarepvgg(bool v2) {
  return "g (float[1,4,8,8] x) => (float[1,4,8,8] z) <float[4,4,3,3] w3, float[4] b3, float[4,4,1,1] w1, " +
         bn_params("post", 4) + ">\n{\n"
         "  c3 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3, b3)\n"
         "  c1 = Conv <kernel_shape = [1,1]> (x, w1)\n"
         "  a = Add (c3, c1)\n  s = Add (a, x)\n" +
         (v2 ? "  p = AveragePool <kernel_shape = [3,3], pads = [1,1,1,1], count_include_pad = 1> (x)\n"
               "  s2 = Add (s, p)\n" + bn("y", "s2", "post")
             : bn("y", "s", "post")) +
         "  z = Relu (y)\n}";
}

TEST(PassesFuseBlocks, QARepVGGFoldsThePostSumBN) {
  const Model m = block_model(qarepvgg(false));
  Model f;
  const FuseReport r = fuse_checked(m, {1, 4, 8, 8}, f);
  ASSERT_EQ(r.folds.size(), 1u);
  EXPECT_EQ(r.folds[0].kind, "QARepVGG");
  EXPECT_EQ(r.folds[0].nodes_before, 5u);
  EXPECT_EQ(ops(f), (std::map<std::string, size_t>{{"Conv", 1}, {"Relu", 1}}));
  const Node* c = only_conv(f);
  ASSERT_NE(c, nullptr);
  const auto w = init(f, c->inputs[1]), b = init(f, c->inputs[2]);
  const auto w3 = init(m, "w3"), w1 = init(m, "w1"), b3 = init(m, "b3");
  const BnFold post = bn_fold(m, "post");
  for (int o = 0; o < 4; ++o) {
    EXPECT_NEAR(b[o], b3[o] * post.t[o] + post.shift[o], 1e-5);
    for (int i = 0; i < 4; ++i) {
      const double centre = w3[(o * 4 + i) * 9 + 4] + w1[o * 4 + i] + (i == o ? 1.0 : 0.0);
      EXPECT_NEAR(w[(o * 4 + i) * 9 + 4], centre * post.t[o], 1e-5);
      EXPECT_NEAR(w[(o * 4 + i) * 9 + 8], w3[(o * 4 + i) * 9 + 8] * post.t[o], 1e-5);
    }
  }
}

TEST(PassesFuseBlocks, QARepVGGV2AvgPoolBranchIsOneNinthOnTheDiagonal) {
  const Model m = block_model(qarepvgg(true));
  Model f;
  const FuseReport r = fuse_checked(m, {1, 4, 8, 8}, f);
  ASSERT_EQ(r.folds.size(), 1u);
  EXPECT_EQ(r.folds[0].kind, "QARepVGG-V2");
  EXPECT_EQ(ops(f), (std::map<std::string, size_t>{{"Conv", 1}, {"Relu", 1}}));
  const Node* c = only_conv(f);
  ASSERT_NE(c, nullptr);
  const auto w = init(f, c->inputs[1]);
  const auto w3 = init(m, "w3");
  const BnFold post = bn_fold(m, "post");
  for (int o = 0; o < 4; ++o)
    for (int i = 0; i < 4; ++i)
      EXPECT_NEAR(w[(o * 4 + i) * 9 + 0], (w3[(o * 4 + i) * 9 + 0] + (i == o ? 1.0 / 9 : 0.0)) * post.t[o], 1e-5);
}

// PyTorch exports AvgPool2d(3, 1, 1) as a zero Pad then an unpadded AveragePool.
TEST(PassesFuseBlocks, QARepVGGV2AsPyTorchExportsItWithPad) {
  std::string text = qarepvgg(true);
  text.replace(text.find("  p = AveragePool"), text.find("  s2 = Add") - text.find("  p = AveragePool"),
               "  q = Pad (x, pp)\n  p = AveragePool <kernel_shape = [3,3]> (q)\n");
  text.replace(text.find("float[4,4,1,1] w1, "), 19, "float[4,4,1,1] w1, int64[8] pp = {0,0,1,1,0,0,1,1}, ");
  const Model m = block_model(text);
  Model f;
  const FuseReport r = fuse_checked(m, {1, 4, 8, 8}, f);
  ASSERT_EQ(r.folds.size(), 1u);
  EXPECT_EQ(r.folds[0].kind, "QARepVGG-V2");
  EXPECT_EQ(r.folds[0].nodes_before, 8u);
  EXPECT_EQ(ops(f), (std::map<std::string, size_t>{{"Conv", 1}, {"Relu", 1}}));
  Model direct;
  fuse_checked(block_model(qarepvgg(true)), {1, 4, 8, 8}, direct);
  const auto a = init(f, only_conv(f)->inputs[1]), b = init(direct, only_conv(direct)->inputs[1]);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6);
}

TEST(PassesFuseBlocks, ConvThenBNAndStandaloneBNAfterABiasedConv) {
  const Model m = block_model(R"(
g (float[1,3,6,6] x) => (float[1,5,6,6] z) <float[5,3,3,3] w, float[5,5,1,1] w2, float[5] b2, )" +
                              bn_params("n", 5) + ", " + bn_params("k", 5) + R"(>
{
  c = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w)
)" + bn("y", "c", "n") + R"(
  r = Relu (y)
  c2 = Conv <kernel_shape = [1,1]> (r, w2, b2)
)" + bn("z", "c2", "k") + "}");
  Model f;
  const FuseReport r = fuse_checked(m, {1, 3, 6, 6}, f);
  ASSERT_EQ(r.folds.size(), 2u);
  EXPECT_EQ(r.folds[0].kind, "Conv+BN");
  EXPECT_EQ(r.folds[1].kind, "BN");
  EXPECT_EQ(ops(f), (std::map<std::string, size_t>{{"Conv", 2}, {"Relu", 1}}));
  EXPECT_EQ(f.graph.outputs[0].name, "z");
  const BnFold n = bn_fold(m, "n");
  const auto wf = init(f, f.graph.nodes[0].inputs[1]), w = init(m, "w");
  for (int o = 0; o < 5; ++o) EXPECT_NEAR(wf[o * 27 + 13], w[o * 27 + 13] * n.t[o], 1e-5);
}

TEST(PassesFuseBlocks, ACNetHorizontalAndVerticalBranches) {
  const Model m = block_model(R"(
g (float[1,4,7,8] x) => (float[1,4,7,8] z) <float[4,4,3,3] sq, float[4,4,1,3] hor, float[4,4,3,1] ver, )" +
                              bn_params("a", 4) + ", " + bn_params("h", 4) + ", " + bn_params("v", 4) + R"(>
{
  c = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, sq)
  ch = Conv <kernel_shape = [1,3], pads = [0,1,0,1]> (x, hor)
  cv = Conv <kernel_shape = [3,1], pads = [1,0,1,0]> (x, ver)
)" + bn("nc", "c", "a") + bn("nh", "ch", "h") + bn("nv", "cv", "v") + R"(
  s = Add (nc, nh)
  y = Add (s, nv)
  z = Relu (y)
})");
  Model f;
  const FuseReport r = fuse_checked(m, {1, 4, 7, 8}, f);
  ASSERT_EQ(r.folds.size(), 1u);
  EXPECT_EQ(r.folds[0].kind, "ACNet");
  const Node* c = only_conv(f);
  ASSERT_NE(c, nullptr);
  const auto w = init(f, c->inputs[1]);
  const auto sq = init(m, "sq"), hor = init(m, "hor"), ver = init(m, "ver");
  const BnFold a = bn_fold(m, "a"), h = bn_fold(m, "h"), v = bn_fold(m, "v");
  for (int o = 0; o < 4; ++o)
    for (int i = 0; i < 4; ++i) {
      const int k = o * 4 + i;
      EXPECT_NEAR(w[k * 9 + 3], sq[k * 9 + 3] * a.t[o] + hor[k * 3 + 0] * h.t[o], 1e-5);  // (1,0)
      EXPECT_NEAR(w[k * 9 + 1], sq[k * 9 + 1] * a.t[o] + ver[k * 3 + 0] * v.t[o], 1e-5);  // (0,1)
      EXPECT_NEAR(w[k * 9 + 0], sq[k * 9 + 0] * a.t[o], 1e-5);
    }
}

// DBB: origin 3x3, 1x1, 1x1(pad 1)+BN -> 3x3(pad 0)+BN chain, AvgPool -> 1x1 conv+BN.
TEST(PassesFuseBlocks, DBBChainAndAvgBranch) {
  const Model m = block_model(R"(
g (float[1,3,8,8] x) => (float[1,5,4,4] z)
<float[5,3,3,3] wo, float[5] bo, float[5,3,1,1] w1, float[5] b1, float[3,3,1,1] wa, float[3] ba,
 float[5,3,3,3] wb, float[5] bb, float[5,3,1,1] wp, float[5] bp>
{
  o = Conv <kernel_shape = [3,3], pads = [1,1,1,1], strides = [2,2]> (x, wo, bo)
  p1 = Conv <kernel_shape = [1,1], strides = [2,2]> (x, w1, b1)
  m1 = Conv <kernel_shape = [1,1], pads = [1,1,1,1]> (x, wa, ba)
  m2 = Conv <kernel_shape = [3,3], strides = [2,2]> (m1, wb, bb)
  av = AveragePool <kernel_shape = [3,3], pads = [1,1,1,1], strides = [2,2], count_include_pad = 1> (x)
  pa = Conv <kernel_shape = [1,1]> (av, wp, bp)
  s1 = Add (o, p1)
  s2 = Add (s1, m2)
  y = Add (s2, pa)
  z = Relu (y)
})");
  Model f;
  const FuseReport r = fuse_checked(m, {1, 3, 8, 8}, f);
  ASSERT_EQ(r.folds.size(), 1u);
  EXPECT_EQ(r.folds[0].kind, "DBB");
  EXPECT_EQ(r.folds[0].nodes_before, 9u);
  EXPECT_EQ(ops(f), (std::map<std::string, size_t>{{"Conv", 1}, {"Relu", 1}}));
  const Node* c = only_conv(f);
  ASSERT_NE(c, nullptr);
  const auto w = init(f, c->inputs[1]), b = init(f, c->inputs[2]);
  const auto wo = init(m, "wo"), w1 = init(m, "w1"), wa = init(m, "wa"), ba = init(m, "ba"), wb = init(m, "wb"),
             wp = init(m, "wp"), bo = init(m, "bo"), b1 = init(m, "b1"), bb = init(m, "bb"), bp = init(m, "bp");
  for (int o = 0; o < 5; ++o) {
    double bias = bo[o] + b1[o] + bb[o] + bp[o];
    for (int mid = 0; mid < 3; ++mid)
      for (int t = 0; t < 9; ++t) bias += wb[(o * 3 + mid) * 9 + t] * ba[mid];
    EXPECT_NEAR(b[o], bias, 1e-5);
    for (int i = 0; i < 3; ++i)
      for (int t = 0; t < 9; ++t) {
        double want = wo[(o * 3 + i) * 9 + t] + wp[o * 3 + i] / 9.0 + (t == 4 ? w1[o * 3 + i] : 0.0);
        for (int mid = 0; mid < 3; ++mid) want += wb[(o * 3 + mid) * 9 + t] * wa[mid * 3 + i];
        EXPECT_NEAR(w[(o * 3 + i) * 9 + t], want, 1e-5);
      }
  }
}

// MobileOne depthwise: 4 parallel 3x3 dw conv+BN, a 1x1 dw "scale" conv+BN, identity BN.
TEST(PassesFuseBlocks, MobileOneDepthwiseFourBranchesScaleAndIdentity) {
  std::string decl = "float[8,1,1,1] sc, " + bn_params("sn", 8) + ", " + bn_params("id", 8);
  std::string body = "  s = Conv <kernel_shape = [1,1], group = 8> (x, sc)\n" + bn("ns", "s", "sn") +
                     bn("ni", "x", "id") + "  a0 = Add (ni, ns)\n";
  for (int k = 0; k < 4; ++k) {
    const std::string K = std::to_string(k);
    decl += ", float[8,1,3,3] w" + K + ", " + bn_params("n" + K, 8);
    body += "  c" + K + " = Conv <kernel_shape = [3,3], pads = [1,1,1,1], group = 8> (x, w" + K + ")\n" +
            bn("b" + K, "c" + K, "n" + K) + "  a" + std::to_string(k + 1) + " = Add (a" + K + ", b" + K + ")\n";
  }
  const Model m = block_model("g (float[1,8,6,6] x) => (float[1,8,6,6] z) <" + decl + ">\n{\n" + body +
                              "  z = Relu (a4)\n}");
  Model f;
  const FuseReport r = fuse_checked(m, {1, 8, 6, 6}, f);
  ASSERT_EQ(r.folds.size(), 1u);
  EXPECT_EQ(r.folds[0].kind, "MobileOne");
  EXPECT_EQ(r.folds[0].groups, 8);
  EXPECT_EQ(r.folds[0].nodes_before, 16u);
  const Node* c = only_conv(f);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->attr_int("group", 1), 8);
  const auto w = init(f, c->inputs[1]);
  ASSERT_EQ(w.size(), 72u);
  const BnFold sn = bn_fold(m, "sn"), id = bn_fold(m, "id");
  for (int o = 0; o < 8; ++o)
    for (int t = 0; t < 9; ++t) {
      double want = t == 4 ? init(m, "sc")[o] * sn.t[o] + id.t[o] : 0.0;
      for (int k = 0; k < 4; ++k)
        want += init(m, "w" + std::to_string(k))[o * 9 + t] * bn_fold(m, "n" + std::to_string(k)).t[o];
      EXPECT_NEAR(w[o * 9 + t], want, 1e-5);
    }
}

TEST(PassesFuseBlocks, MobileOnePointwiseBranches) {
  const Model m = block_model("g (float[1,6,5,5] x) => (float[1,6,5,5] z) <float[6,6,1,1] p0, float[6,6,1,1] p1, " +
                              bn_params("q0", 6) + ", " + bn_params("q1", 6) + ", " + bn_params("id", 6) +
                              ">\n{\n  c0 = Conv <kernel_shape = [1,1]> (x, p0)\n  c1 = Conv <kernel_shape = [1,1]> (x, p1)\n" +
                              bn("n0", "c0", "q0") + bn("n1", "c1", "q1") + bn("ni", "x", "id") +
                              "  a = Add (ni, n0)\n  y = Add (a, n1)\n  z = Relu (y)\n}");
  Model f;
  const FuseReport r = fuse_checked(m, {1, 6, 5, 5}, f);
  ASSERT_EQ(r.folds.size(), 1u);
  EXPECT_EQ(r.folds[0].kind, "MobileOne");
  EXPECT_EQ(r.folds[0].kernel, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(ops(f), (std::map<std::string, size_t>{{"Conv", 1}, {"Relu", 1}}));
}

// Apple's MobileOne forward starts from `scale_out = 0` / `identity_out = 0`, which an export
// can leave as an Add of a scalar constant.
TEST(PassesFuseBlocks, MobileOneOfficialFormWithScalarZeroAdds) {
  const Model m = block_model("g (float[1,6,5,5] x) => (float[1,6,5,5] z) <float zero = {0.0}, float[6,6,1,1] p0, "
                              "float[6,6,1,1] p1, " + bn_params("q0", 6) + ", " + bn_params("q1", 6) + ", " +
                              bn_params("id", 6) + ">\n{\n" + bn("ni", "x", "id") +
                              "  o0 = Add (zero, ni)\n"
                              "  c0 = Conv <kernel_shape = [1,1]> (x, p0)\n  c1 = Conv <kernel_shape = [1,1]> (x, p1)\n" +
                              bn("n0", "c0", "q0") + bn("n1", "c1", "q1") +
                              "  a = Add (o0, n0)\n  y = Add (a, n1)\n  z = Relu (y)\n}");
  Model f;
  const FuseReport r = fuse_checked(m, {1, 6, 5, 5}, f);
  ASSERT_EQ(r.folds.size(), 1u);
  EXPECT_EQ(r.folds[0].kind, "MobileOne");
  EXPECT_EQ(r.folds[0].nodes_before, 8u);
  EXPECT_EQ(ops(f), (std::map<std::string, size_t>{{"Conv", 1}, {"Relu", 1}}));
}

TEST(PassesFuseBlocks, PerChannelMulAddAndSubOfBranches) {
  const Model m = block_model(R"(
g (float[1,4,6,6] x) => (float[1,4,6,6] z) <float[4,4,3,3] w, float[4,1,1] k, float[1,4,1,1] c, float[4,4,1,1] w1>
{
  a = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w)
  m = Mul (a, k)
  p = Add (c, m)
  q = Conv <kernel_shape = [1,1]> (x, w1)
  y = Sub (p, q)
  z = Relu (y)
})");
  Model f;
  const FuseReport r = fuse_checked(m, {1, 4, 6, 6}, f);
  ASSERT_EQ(r.folds.size(), 1u);
  EXPECT_EQ(r.folds[0].nodes_before, 5u);
  EXPECT_EQ(ops(f), (std::map<std::string, size_t>{{"Conv", 1}, {"Relu", 1}}));
}

}  // namespace
}  // namespace repq::test
