// ConvMap algebra against a naive convolution: whenever sum_maps / compose_maps accept, the one
// conv they return computes exactly a(x) + b(x) / second(first(x)) on inputs of several sizes;
// the exact cases the blocks need are accepted, the inexact ones refused with a reason.
#include <gtest/gtest.h>

#include <random>

#include "repq/passes/conv_map.h"

namespace repq::passes {
namespace {

struct Image {
  int64_t c = 0, h = 0, w = 0;
  std::vector<double> v;
};

Image apply(const ConvMap& m, const Image& x) {
  Image y;
  y.c = m.cout;
  y.h = (x.h + m.pads[0] + m.pads[2] - m.dilations[0] * (m.kernel[0] - 1) - 1) / m.strides[0] + 1;
  y.w = (x.w + m.pads[1] + m.pads[3] - m.dilations[1] * (m.kernel[1] - 1) - 1) / m.strides[1] + 1;
  y.v.assign(static_cast<size_t>(y.c * y.h * y.w), 0.0);
  const int64_t cpg = m.cin_per_group(), opg = m.cout / m.groups;
  for (int64_t o = 0; o < m.cout; ++o)
    for (int64_t p = 0; p < y.h; ++p)
      for (int64_t q = 0; q < y.w; ++q) {
        double s = m.b[static_cast<size_t>(o)];
        for (int64_t i = 0; i < cpg; ++i)
          for (int64_t u = 0; u < m.kernel[0]; ++u)
            for (int64_t v = 0; v < m.kernel[1]; ++v) {
              const int64_t r = p * m.strides[0] + u * m.dilations[0] - m.pads[0];
              const int64_t c = q * m.strides[1] + v * m.dilations[1] - m.pads[1];
              if (r < 0 || c < 0 || r >= x.h || c >= x.w) continue;
              const int64_t ci = (o / opg) * cpg + i;
              s += m.w[m.index(o, i, u, v)] * x.v[static_cast<size_t>((ci * x.h + r) * x.w + c)];
            }
        y.v[static_cast<size_t>((o * y.h + p) * y.w + q)] = s;
      }
  return y;
}

ConvMap random_map(std::mt19937& rng, int64_t cin, int64_t cout, int64_t groups, std::array<int64_t, 2> k,
                   std::array<int64_t, 2> s, std::array<int64_t, 2> d, std::array<int64_t, 4> pads, bool bias) {
  ConvMap m;
  m.cin = cin;
  m.cout = cout;
  m.groups = groups;
  m.kernel = k;
  m.strides = s;
  m.dilations = d;
  m.pads = pads;
  std::uniform_real_distribution<double> dist(-1, 1);
  m.w.resize(static_cast<size_t>(cout * (cin / groups) * k[0] * k[1]));
  for (auto& v : m.w) v = dist(rng);
  m.b.assign(static_cast<size_t>(cout), 0.0);
  if (bias)
    for (auto& v : m.b) v = dist(rng);
  return m;
}

Image random_image(std::mt19937& rng, int64_t c, int64_t h, int64_t w) {
  std::uniform_real_distribution<double> dist(-1, 1);
  Image x{c, h, w, std::vector<double>(static_cast<size_t>(c * h * w))};
  for (auto& v : x.v) v = dist(rng);
  return x;
}

double diff(const Image& a, const Image& b) {
  if (a.h != b.h || a.w != b.w || a.c != b.c) return 1e9;
  double d = 0;
  for (size_t i = 0; i < a.v.size(); ++i) d = std::max(d, std::fabs(a.v[i] - b.v[i]));
  return d;
}

// Checks on inputs of several sizes; returns the largest error.
template <class F>
double worst(std::mt19937& rng, int64_t c, F&& f) {
  double e = 0;
  for (auto [h, w] : {std::pair<int64_t, int64_t>{9, 9}, {10, 7}, {12, 13}}) e = std::max(e, f(random_image(rng, c, h, w)));
  return e;
}

TEST(PassesConvMap, RegroupKeepsTheMap) {
  std::mt19937 rng(1);
  const ConvMap m = random_map(rng, 8, 4, 4, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, true);
  for (int64_t g : {1, 2}) {
    const ConvMap r = regroup(m, g);
    EXPECT_EQ(r.groups, g);
    EXPECT_LT(worst(rng, 8, [&](const Image& x) { return diff(apply(m, x), apply(r, x)); }), 1e-12);
  }
}

TEST(PassesConvMap, SumOfRandomGeometriesIsExactWheneverAccepted) {
  std::mt19937 rng(2);
  std::uniform_int_distribution<int64_t> k(1, 3), s(1, 2), d(1, 2), p(0, 2), g(0, 1);
  int accepted = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const std::array<int64_t, 2> st{s(rng), s(rng)};
    const int64_t ga = g(rng) ? 2 : 1, gb = g(rng) ? 4 : 1;
    const ConvMap a = random_map(rng, 4, 4, ga, {k(rng), k(rng)}, st, {d(rng), d(rng)}, {p(rng), p(rng), p(rng), p(rng)}, true);
    ConvMap b = random_map(rng, 4, 4, gb, {k(rng), k(rng)}, st, {d(rng), d(rng)}, {p(rng), p(rng), p(rng), p(rng)}, true);
    for (int ax = 0; ax < 2; ++ax) {  // mostly: the same output size (else refused)
      const int64_t tail = a.pads[ax] + a.pads[ax + 2] - a.dilations[ax] * (a.kernel[ax] - 1);
      const int64_t end = tail + b.dilations[ax] * (b.kernel[ax] - 1) - b.pads[ax];
      if (end >= 0 && g(rng) + g(rng) > 0) b.pads[ax + 2] = end;
    }
    ConvMap sum;
    std::string why;
    if (!sum_maps(a, b, sum, why)) {
      EXPECT_FALSE(why.empty());
      continue;
    }
    ++accepted;
    EXPECT_EQ(sum.groups, std::min(ga, gb));
    const double e = worst(rng, 4, [&](const Image& x) {
      Image want = apply(a, x);
      const Image yb = apply(b, x);
      if (yb.h != want.h || yb.w != want.w) return 1e9;
      for (size_t i = 0; i < want.v.size(); ++i) want.v[i] += yb.v[i];
      return diff(want, apply(sum, x));
    });
    EXPECT_LT(e, 1e-12) << "trial " << trial << ": " << geometry_str(a) << " + " << geometry_str(b);
  }
  EXPECT_GT(accepted, 40);
}

TEST(PassesConvMap, SumAcceptsTheBlockShapesAndRefusesMismatches) {
  std::mt19937 rng(3);
  ConvMap out;
  std::string why;
  const ConvMap k3 = random_map(rng, 4, 4, 1, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, true);
  const ConvMap k1 = random_map(rng, 4, 4, 1, {1, 1}, {2, 2}, {1, 1}, {0, 0, 0, 0}, true);
  const ConvMap h13 = random_map(rng, 4, 4, 1, {1, 3}, {2, 2}, {1, 1}, {0, 1, 0, 1}, true);
  EXPECT_TRUE(sum_maps(k3, k1, out, why)) << why;
  EXPECT_EQ(out.kernel, (std::array<int64_t, 2>{3, 3}));
  EXPECT_EQ(out.pads, (std::array<int64_t, 4>{1, 1, 1, 1}));
  EXPECT_TRUE(sum_maps(k3, h13, out, why)) << why;
  const ConvMap s1 = random_map(rng, 4, 4, 1, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, true);
  EXPECT_FALSE(sum_maps(k3, s1, out, why));
  EXPECT_EQ(why, "mismatched stride (2 vs 1)");
  const ConvMap p0 = random_map(rng, 4, 4, 1, {3, 3}, {2, 2}, {1, 1}, {0, 0, 0, 0}, true);
  EXPECT_FALSE(sum_maps(p0, k1, out, why));
  EXPECT_NE(why.find("output sizes differ"), std::string::npos) << why;
}

TEST(PassesConvMap, CompositionOfRandomGeometriesIsExactWheneverAccepted) {
  std::mt19937 rng(4);
  std::uniform_int_distribution<int64_t> k(1, 3), s(1, 2), d(1, 2), p(0, 1), coin(0, 1);
  int accepted = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const int64_t g1 = coin(rng) ? 2 : 1, g2 = coin(rng) ? 4 : 1;
    const bool pad2 = coin(rng) && coin(rng);
    const ConvMap a = random_map(rng, 4, 4, g1, {k(rng), k(rng)}, {s(rng), s(rng)}, {d(rng), d(rng)},
                                 {p(rng), p(rng), p(rng), p(rng)}, coin(rng));
    const ConvMap b = random_map(rng, 4, 4, g2, {k(rng), k(rng)}, {s(rng), s(rng)}, {d(rng), d(rng)},
                                 pad2 ? std::array<int64_t, 4>{1, 1, 1, 1} : std::array<int64_t, 4>{0, 0, 0, 0}, true);
    ConvMap c;
    std::string why;
    if (!compose_maps(a, b, c, why)) {
      EXPECT_FALSE(why.empty());
      continue;
    }
    ++accepted;
    const double e = worst(rng, 4, [&](const Image& x) {
      const Image mid = apply(a, x);
      if (mid.h < b.kernel[0] * b.dilations[0] || mid.w < b.kernel[1] * b.dilations[1]) return 0.0;
      return diff(apply(b, mid), apply(c, x));
    });
    EXPECT_LT(e, 1e-11) << "trial " << trial << ": " << geometry_str(a) << " then " << geometry_str(b);
  }
  EXPECT_GT(accepted, 100);
}

TEST(PassesConvMap, CompositionCasesOfTheBlocks) {
  std::mt19937 rng(5);
  ConvMap out;
  std::string why;
  // DBB: 1x1 (pad 1, biased) then 3x3 (stride 2, pad 0) is one 3x3 conv with pad 1, stride 2.
  const ConvMap one = random_map(rng, 3, 3, 1, {1, 1}, {1, 1}, {1, 1}, {1, 1, 1, 1}, true);
  const ConvMap three = random_map(rng, 3, 5, 1, {3, 3}, {2, 2}, {1, 1}, {0, 0, 0, 0}, true);
  ASSERT_TRUE(compose_maps(one, three, out, why)) << why;
  EXPECT_EQ(out.kernel, (std::array<int64_t, 2>{3, 3}));
  EXPECT_EQ(out.strides, (std::array<int64_t, 2>{2, 2}));
  EXPECT_EQ(out.pads, (std::array<int64_t, 4>{1, 1, 1, 1}));
  // The same pair with the padding on the 3x3 is exact only when the 1x1 has no bias.
  ConvMap one0 = random_map(rng, 3, 3, 1, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, true);
  const ConvMap three1 = random_map(rng, 3, 5, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, true);
  EXPECT_FALSE(compose_maps(one0, three1, out, why));
  EXPECT_NE(why.find("bias"), std::string::npos);
  one0.b.assign(3, 0.0);
  EXPECT_TRUE(compose_maps(one0, three1, out, why)) << why;
  // Conv then a per-channel affine (BN): rows scaled.
  const ConvMap bn = ConvMap::diagonal({2, -1, 0.5, 3, 1}, {0.1, 0.2, 0.3, 0.4, 0.5});
  ASSERT_TRUE(compose_maps(three1, bn, out, why));
  EXPECT_DOUBLE_EQ(out.w[out.index(1, 2, 0, 1)], -three1.w[three1.index(1, 2, 0, 1)]);
  EXPECT_DOUBLE_EQ(out.b[4], three1.b[4] + 0.5);
  // A 3x3 padded conv after another 3x3: its border would see the first conv's extension.
  EXPECT_FALSE(compose_maps(random_map(rng, 3, 3, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, false), three1, out, why));
}

}  // namespace
}  // namespace repq::passes
