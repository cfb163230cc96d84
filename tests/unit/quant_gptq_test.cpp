// GPTQ weight rounding (quant/gptq.h): the error feedback against hand-computed and
// brute-force optima, H collection against a naive patch sum, the plan's qweight/bias_values
// (JSON round trip, export, validation), and the pipeline's determinism and --plan-in identity.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "repq/data/npy.h"
#include "repq/error.h"
#include "repq/ir/onnx_io.h"
#include "repq/quant/gptq.h"
#include "repq/quant/quantize.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

using quant::GptqOptions;

double h_error(const std::vector<float>& w, const std::vector<int8_t>& q, float s,
               const std::vector<double>& h) {
  const size_t k = w.size();
  double err = 0;
  for (size_t i = 0; i < k; ++i)
    for (size_t j = 0; j < k; ++j)
      err += (w[i] - q[i] * double(s)) * h[i * k + j] * (w[j] - q[j] * double(s));
  return err;
}

std::vector<int8_t> rtn(const std::vector<float>& w, float s) {
  std::vector<int8_t> q;
  for (float x : w) q.push_back(static_cast<int8_t>(std::nearbyint(x / s)));
  return q;
}

TEST(QuantGptq, Base64KnownVectors) {
  using quant::base64_decode;
  using quant::base64_encode;
  EXPECT_EQ(base64_encode({77, 97, 110}), "TWFu");  // "Man" (RFC 4648)
  EXPECT_EQ(base64_encode({77, 97}), "TWE=");
  EXPECT_EQ(base64_encode({77}), "TQ==");
  EXPECT_EQ(base64_encode({-1, -128, 127}), "/4B/");
  EXPECT_EQ(base64_decode("/4B/", "t"), (std::vector<int8_t>{-1, -128, 127}));
  EXPECT_EQ(base64_decode("TWE=", "t"), (std::vector<int8_t>{77, 97}));
  EXPECT_THROW(base64_decode("TQ=", "t"), InputError);    // length
  EXPECT_THROW(base64_decode("TR==", "t"), InputError);   // non-zero padding bits
  EXPECT_THROW(base64_decode("T=Q=", "t"), InputError);   // '=' inside
  EXPECT_THROW(base64_decode("TW!u", "t"), InputError);   // outside the alphabet
}

// w = (0.4, 0.4), s = 1, H = [[1, .9], [.9, 1]]: round to nearest gives (0, 0), error
// 0.16 + 0.16 + 2 * .9 * .16 = 0.608. GPTQ rounds w0 to 0 (error 0.4) and moves
// -0.4 * 0.9 onto... w1 += 0.36 -> 0.76 -> 1: e = (0.4, -0.6), error 0.52 - 0.432 = 0.088, the
// optimum over all integer pairs (checked by brute force below).
TEST(QuantGptq, TwoWeightsHandComputedAndBruteForce) {
  const std::vector<float> w0 = {0.4f, 0.4f};
  const std::vector<double> h = {1, 0.9, 0.9, 1};
  GptqOptions o;
  o.damp = 1e-12;
  std::vector<float> w = w0;
  std::vector<int8_t> q;
  ASSERT_TRUE(quant::gptq_rows(w, 1, 2, h, {1.0f}, o, q));
  EXPECT_EQ(q, (std::vector<int8_t>{0, 1}));
  EXPECT_NEAR(h_error(w0, q, 1.0f, h), 0.088, 1e-6);
  EXPECT_NEAR(h_error(w0, rtn(w0, 1.0f), 1.0f, h), 0.608, 1e-6);
  double best = std::numeric_limits<double>::infinity();
  for (int a = -3; a <= 3; ++a)
    for (int b = -3; b <= 3; ++b)
      best = std::min(best, h_error(w0, {int8_t(a), int8_t(b)}, 1.0f, h));
  EXPECT_NEAR(best, 0.088, 1e-6);
}

// A depthwise 3x3 row with the folded identity on the centre tap (10 vs a surround of 0.02 ..
// 0.035, scale 10/127: RTN sets the surround to 0) and strongly correlated neighbouring
// pixels (H_ij = 0.95^|i-j| + 0.05 over the 9 taps): GPTQ moves the surround's error onto the
// remaining taps and its output error is well below RTN's; brute force over q within +-1 of RTN
// (3^9 cases) bounds both from below.
TEST(QuantGptq, CentreTapBeatsRoundToNearest) {
  const std::vector<float> w0 = {0.03f, 0.02f, 0.035f, 0.025f, 10.0f, 0.03f, 0.02f, 0.03f, 0.025f};
  std::vector<double> h(81);
  for (int i = 0; i < 9; ++i)
    for (int j = 0; j < 9; ++j) h[i * 9 + j] = std::pow(0.95, std::abs(i - j)) + 0.05;
  const float s = quant::weight_scale(10.0f);
  GptqOptions o;
  std::vector<float> w = w0;
  std::vector<int8_t> q;
  ASSERT_TRUE(quant::gptq_rows(w, 1, 9, h, {s}, o, q));
  const std::vector<int8_t> r = rtn(w0, s);
  EXPECT_EQ(r, (std::vector<int8_t>{0, 0, 0, 0, 127, 0, 0, 0, 0}));
  const double eg = h_error(w0, q, s, h), er = h_error(w0, r, s, h);
  EXPECT_LT(eg, 0.5 * er) << eg << " vs " << er;
  double best = std::numeric_limits<double>::infinity();
  std::vector<int8_t> c(9);
  for (int code = 0; code < 19683; ++code) {
    int x = code;
    bool in_range = true;
    for (int i = 0; i < 9; ++i, x /= 3) {
      const int v = r[i] + x % 3 - 1;
      in_range = in_range && v <= 127;
      c[i] = static_cast<int8_t>(std::min(v, 127));
    }
    if (!in_range) continue;
    best = std::min(best, h_error(w0, c, s, h));
  }
  EXPECT_LE(best, eg + 1e-12);
}

TEST(QuantGptq, SearchScalesPrefersClippingWhenItLowersTheError) {
  // One outlier at 1.0 and many values at 0.5 + half a step: clipping to r = 0.98 .. lowers
  // the total error on the many (H = identity); the chosen scale is never above max/127.
  std::vector<float> w(32, 0.503f);
  w[0] = 1.0f;
  std::vector<double> h(32 * 32, 0.0);
  for (int i = 0; i < 32; ++i) h[i * 32 + i] = 1;
  const auto sc = quant::search_scales(w, 1, 32, h);
  ASSERT_EQ(sc.size(), 1u);
  EXPECT_LE(sc[0], quant::weight_scale(1.0f));
  const auto err = [&](float sv) { return h_error(w, rtn(w, sv), sv, h); };
  EXPECT_LE(err(sc[0]), err(quant::weight_scale(1.0f)));
}

// H of a single-channel 3x3 conv with padding 1 over two 3x3 samples, against a naive sum over
// the 9 output positions of the zero-padded patches; batch size and threads do not matter.
TEST(QuantGptq, CollectHessiansMatchesNaivePatchSums) {
  Model m = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[N,1,3,3] x) => (float[N,1,3,3] y)
<float[1,1,3,3] w = {1, 2, 3, 4, 5, 6, 7, 8, 9}, float[1] b = {0.5}>
{ y = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w, b) })");
  m.graph.nodes[0].name = "conv";
  TempDir dir;
  const std::vector<std::vector<float>> xs = {{1, -2, 3, 0.5f, 4, -1, 2, 0, 1},
                                              {-3, 1, 0, 2, 2, -0.5f, 1, 1, -2}};
  for (size_t k = 0; k < xs.size(); ++k)
    data::write_npy(dir.file("s" + std::to_string(k) + ".npy"), Tensor::from_vector<float>({1, 3, 3}, xs[k]));
  data::DatasetOptions dopt;
  dopt.threads = 1;
  const auto ds = data::Dataset::open(dir.path().string(), dopt);
  quant::LayerQuant l;
  l.node = "conv", l.op = "Conv", l.input = "x", l.weight = "w", l.bias = "b";
  l.scales = {0.1f};
  std::vector<double> h(81, 0.0), sx(9, 0.0);
  for (const auto& x : xs)
    for (int y = 0; y < 3; ++y)
      for (int xo = 0; xo < 3; ++xo) {
        double p[9];
        for (int t = 0; t < 9; ++t) {
          const int iy = y - 1 + t / 3, ix = xo - 1 + t % 3;
          p[t] = iy < 0 || iy > 2 || ix < 0 || ix > 2 ? 0.0 : x[iy * 3 + ix];
        }
        for (int i = 0; i < 9; ++i) {
          sx[i] += p[i];
          for (int j = 0; j < 9; ++j) h[i * 9 + j] += p[i] * p[j];
        }
      }
  std::vector<quant::LayerHessian> runs;
  for (auto [batch, threads] : {std::pair{1, 1}, std::pair{2, 2}}) {
    calib::CollectOptions co;
    co.batch = batch, co.threads = threads, co.progress = false;
    const auto st = quant::collect_hessians(m, m, ds, {l}, co);
    ASSERT_EQ(st.count("conv"), 1u);
    runs.push_back(st.at("conv"));
  }
  const auto& r = runs[0];
  EXPECT_EQ(r.groups, 1);
  EXPECT_EQ(r.k, 9);
  EXPECT_EQ(r.count, 18);
  for (int i = 0; i < 81; ++i) EXPECT_NEAR(r.h[i], h[i], 1e-5) << i;
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(r.sum_x[i], sx[i], 1e-5) << i;
  EXPECT_EQ(runs[0].h, runs[1].h);  // bit for bit
  EXPECT_EQ(runs[0].sum_x, runs[1].sum_x);
}

// A 2->2 1x1 conv (+Relu) fed by strongly correlated channels, quantized end to end with
// --weights gptq and bias correction: the plan carries int8 values and a corrected bias, the
// JSON round trip keeps them, --plan-in reproduces the model byte for byte, and the QDQ weight
// holds exactly the plan's values.
TEST(QuantGptq, PipelinePlanRoundTripAndExport) {
  Model m = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[N,2,2,2] x) => (float[N,2,2,2] y)
<float[2,2,1,1] w = {1.0, 0.013, -0.021, 0.8}, float[2] b = {0.1, -0.2}>
{ c = Conv <kernel_shape = [1,1]> (x, w, b)  y = Relu (c) })");
  m.graph.nodes[0].name = "conv";
  m.graph.nodes[1].name = "relu";
  TempDir dir;
  const auto base = random_floats(8 * 4, 7u, -1.0f, 1.0f);
  for (int k = 0; k < 8; ++k) {
    std::vector<float> x(8);
    for (int p = 0; p < 4; ++p) {
      x[p] = base[k * 4 + p];
      x[4 + p] = 0.95f * base[k * 4 + p] + 0.05f;  // channel 1 follows channel 0
    }
    data::write_npy(dir.file("s" + std::to_string(k) + ".npy"), Tensor::from_vector<float>({2, 2, 2}, x));
  }
  data::DatasetOptions dopt;
  dopt.threads = 1;
  const auto ds = data::Dataset::open(dir.path().string(), dopt);
  quant::QuantizeOptions o;
  o.weights = quant::WeightMode::kGptq;
  o.gptq.bias_correction = true;
  o.collect.progress = false;
  o.collect.threads = 1;
  const auto r1 = quant::quantize(m, ds, o);
  o.collect.threads = 2;
  o.collect.batch = 3;
  const auto r2 = quant::quantize(m, ds, o);
  EXPECT_EQ(serialize_model(r1.qdq), serialize_model(r2.qdq));
  const quant::LayerQuant* l = r1.plan.layer("conv");
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(r1.plan.weight_mode, "gptq");
  ASSERT_EQ(l->qweight.size(), 4u);
  ASSERT_EQ(l->bias_values.size(), 2u);
  EXPECT_NE(l->note.find("gptq"), std::string::npos);
  const std::string json = quant::plan_to_json(r1.plan);
  const auto back = quant::plan_from_json(json, "p.json");
  EXPECT_EQ(back.layer("conv")->qweight, l->qweight);
  EXPECT_EQ(back.layer("conv")->bias_values, l->bias_values);
  EXPECT_EQ(quant::plan_to_json(back), json);
  const auto again = quant::quantize_with_plan(m, back, o);
  EXPECT_EQ(serialize_model(again.qdq), serialize_model(r1.qdq));
  bool found = false;
  for (const auto& name : r1.qdq.graph.initializer_names())
    if (const Tensor& t = *r1.qdq.graph.initializer(name); t.dtype() == DType::kInt8 && t.numel() == 4) {
      found = true;
      EXPECT_EQ(std::vector<int8_t>(t.data<int8_t>(), t.data<int8_t>() + 4), l->qweight);
    }
  EXPECT_TRUE(found);
  // A plan whose qweight does not fit the weight, or bias_values on a layer without bias.
  auto bad = back;
  bad.layers[0].qweight.push_back(1);
  EXPECT_THROW(quant::quantize_with_plan(m, bad, o), InputError);
  std::string text = json;
  const auto pos = text.find("\"qweight\": \"");
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos + 12, 1, "!");
  EXPECT_THROW(quant::plan_from_json(text, "p.json"), InputError);
}

}  // namespace
}  // namespace repq::test
