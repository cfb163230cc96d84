// ONNX Runtime (level "extended": the QDQ groups become QLinearAdd, QLinearGlobalAveragePool
// and QGemm) vs repq's executor with its exact QDQ kernels, on small random models: every
// output must be bit-identical. Each case also checks that ORT did form the integer op (from
// its optimized model) and reports how many values repq's float path (exact_qdq off) gets
// wrong, the gap these kernels close.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "repq/runtime/executor.h"
#include "support/ort_runner.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string ints(const std::vector<int>& v) {
  std::string s;
  for (int x : v) s += (s.empty() ? "" : ", ") + std::to_string(x);
  return s;
}

struct OpsCase {
  std::string text;
  std::map<std::string, Tensor> inputs;
  std::string ort_op;  // the integer op ORT must form
};

Tensor random_ints(DType t, const Shape& shape, std::mt19937& rng) {
  Tensor x(t, shape);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int v = std::uniform_int_distribution<int>(0, 255)(rng);
    if (t == DType::kUInt8) x.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(v);
    else x.mutable_data<int8_t>()[i] = static_cast<int8_t>(v - 128);
  }
  return x;
}

float rscale(std::mt19937& rng, float lo = 0.004f, float hi = 0.06f) {
  return std::uniform_real_distribution<float>(lo, hi)(rng);
}

int rzp(std::mt19937& rng, bool sign) {
  const int v = std::uniform_int_distribution<int>(0, 255)(rng);
  return sign ? v - 128 : v;
}

// DQ(a), DQ(b) -> Add -> Q. `b_single`: b holds one value (an initializer).
OpsCase add_case(uint32_t seed, bool sign, bool b_single) {
  std::mt19937 rng(seed);
  const std::string t = sign ? "int8" : "uint8";
  const DType dt = sign ? DType::kInt8 : DType::kUInt8;
  std::string consts = "float sa = {" + num(rscale(rng)) + "}, " + t + " za = {" +
                       std::to_string(rzp(rng, sign)) + "}, float sb = {" + num(rscale(rng)) +
                       "}, " + t + " zb = {" + std::to_string(rzp(rng, sign)) + "}, float sc = {" +
                       num(rscale(rng, 0.01f, 0.08f)) + "}, " + t + " zc = {" +
                       std::to_string(rzp(rng, sign)) + "}";
  OpsCase c;
  c.ort_op = "QLinearAdd";
  const std::string shape = "[2,8,15,13]";
  if (b_single) {
    consts += ", " + t + "[1] bq = {" + std::to_string(rzp(rng, sign)) + "}";
    c.text = "<ir_version: 8, opset_import: [\"\" : 13]>\ng (" + t + shape + " aq) => (" + t +
             " y) <" + consts + ">\n{\n";
  } else {
    c.text = "<ir_version: 8, opset_import: [\"\" : 13]>\ng (" + t + shape + " aq, " + t + shape +
             " bq) => (" + t + " y) <" + consts + ">\n{\n";
    c.inputs["bq"] = random_ints(dt, {2, 8, 15, 13}, rng);
  }
  c.text += " af = DequantizeLinear (aq, sa, za)\n bf = DequantizeLinear (bq, sb, zb)\n"
            " s = Add (af, bf)\n y = QuantizeLinear (s, sc, zc)\n}";
  c.inputs["aq"] = random_ints(dt, {2, 8, 15, 13}, rng);
  return c;
}

// DQ(x) -> GlobalAveragePool -> Q.
OpsCase gap_case(uint32_t seed, bool sign, int hw) {
  std::mt19937 rng(seed);
  const std::string t = sign ? "int8" : "uint8";
  OpsCase c;
  c.ort_op = "QLinearGlobalAveragePool";
  const std::string shape = "[3,20," + std::to_string(hw) + "," + std::to_string(hw) + "]";
  c.text = "<ir_version: 8, opset_import: [\"\" : 13]>\ng (" + t + shape + " xq) => (" + t +
           " y) <float sx = {" + num(rscale(rng)) + "}, " + t + " zx = {" +
           std::to_string(rzp(rng, sign)) + "}, float sy = {" + num(rscale(rng, 0.002f, 0.02f)) +
           "}, " + t + " zy = {" + std::to_string(rzp(rng, sign)) + "}>\n{\n"
           " xf = DequantizeLinear (xq, sx, zx)\n p = GlobalAveragePool (xf)\n"
           " y = QuantizeLinear (p, sy, zy)\n}";
  c.inputs["xq"] = random_ints(sign ? DType::kInt8 : DType::kUInt8, {3, 20, hw, hw}, rng);
  return c;
}

// Gemm(DQ(a), DQ(int8 w), DQ(int32 bias)) -> logits in float (no Q).
OpsCase gemm_case(uint32_t seed, bool per_channel, bool bias, float alpha) {
  std::mt19937 rng(seed);
  const int m = 3, k = 40, n = 11;
  std::vector<int> w(static_cast<size_t>(n * k)), b(static_cast<size_t>(n));
  for (auto& v : w) v = std::uniform_int_distribution<int>(-127, 127)(rng);
  for (auto& v : b) v = std::uniform_int_distribution<int>(-30000, 30000)(rng);
  std::string sw;
  for (int j = 0; j < (per_channel ? n : 1); ++j)
    sw += (sw.empty() ? "" : ", ") + num(rscale(rng, 0.001f, 0.01f));
  const float sa = rscale(rng);
  // The bias scale an exporter writes (s_a * s_w); QGemm adds the integers without reading it.
  std::string sb;
  for (int j = 0; j < n; ++j) sb += (j ? ", " : "") + num(sa * 0.005f);
  OpsCase c;
  c.ort_op = "QGemm";
  c.text = "<ir_version: 8, opset_import: [\"\" : 13]>\ng (uint8[3,40] aq) => (float y) "
           "<float sa = {" + num(sa) + "}, uint8 za = {" + std::to_string(rzp(rng, false)) +
           "}, int8[11,40] wq = {" + ints(w) + "}, float" + (per_channel ? "[11]" : "") +
           " sw = {" + sw + "}, int32[11] bq = {" + ints(b) + "}, float[11] sb = {" + sb +
           "}>\n{\n af = DequantizeLinear (aq, sa, za)\n"
           " wf = DequantizeLinear <axis = 0> (wq, sw)\n";
  c.text += bias ? " bf = DequantizeLinear <axis = 0> (bq, sb)\n" : "";
  c.text += " y = Gemm <transB = 1, alpha = " + num(alpha) + "> (af, wf" +
            (bias ? ", bf" : "") + ")\n}";
  c.inputs["aq"] = random_ints(DType::kUInt8, {m, k}, rng);
  return c;
}

bool bytes_equal(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         a.bytes() == b.bytes();
}

int64_t count_differ(const Tensor& a, const Tensor& b) {
  if (a.dtype() == DType::kFloat32) {
    int64_t d = 0;
    for (int64_t i = 0; i < a.numel(); ++i) d += a.data<float>()[i] != b.data<float>()[i];
    return d;
  }
  const auto x = a.to_int64s(), y = b.to_int64s();
  int64_t d = 0;
  for (size_t i = 0; i < x.size(); ++i) d += x[i] != y[i];
  return d;
}

// Runs the case in ORT and in repq (exact and float paths); returns the float path's misses.
int64_t check(const OpsCase& c) {
  TempDir tmp;
  write_onnx_text(c.text, tmp.file("m.onnx"));
  OrtRunOptions ro;
  ro.level = "extended";
  ro.optimized_model_path = tmp.file("opt.onnx");
  const Tensor want = ort_run(tmp.file("m.onnx"), c.inputs, ro).at("y");
  std::ifstream f(ro.optimized_model_path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_NE(ss.str().find(c.ort_op), std::string::npos) << "ORT did not form " << c.ort_op;
  const Model m = parse_onnx_text(c.text);
  for (int threads : {1, 3}) {
    Executor ex(m, {threads});
    const Tensor got = ex.run(c.inputs).at("y");
    EXPECT_TRUE(bytes_equal(got, want))
        << count_differ(got, want) << " of " << want.numel() << " values differ (" << threads
        << " threads)";
  }
  Executor plain(m, {1, false});
  const int64_t misses = count_differ(plain.run(c.inputs).at("y"), want);
  std::printf("%s: float path differs from ORT in %lld of %lld values\n", c.ort_op.c_str(),
              static_cast<long long>(misses), static_cast<long long>(want.numel()));
  return misses;
}

TEST(OrtQdqOps, AddUint8MatchesQLinearAdd) {
  REPQ_REQUIRE_ORT();
  int64_t misses = 0;
  for (uint32_t seed = 1; seed <= 4; ++seed) misses += check(add_case(seed, false, false));
  EXPECT_GT(misses, 0) << "the float path should miss some ties; the cases are too easy";
}

TEST(OrtQdqOps, AddInt8MatchesQLinearAdd) {
  REPQ_REQUIRE_ORT();
  for (uint32_t seed = 11; seed <= 13; ++seed) check(add_case(seed, true, false));
}

TEST(OrtQdqOps, AddOfASingleValueMatchesQLinearAdd) {
  REPQ_REQUIRE_ORT();
  for (uint32_t seed = 21; seed <= 22; ++seed) {
    check(add_case(seed, false, true));
    check(add_case(seed + 10, true, true));
  }
}

TEST(OrtQdqOps, GlobalAveragePoolMatchesQLinearGlobalAveragePool) {
  REPQ_REQUIRE_ORT();
  int64_t misses = 0;
  for (uint32_t seed = 31; seed <= 33; ++seed) misses += check(gap_case(seed, false, 7));
  check(gap_case(34, false, 1));
  check(gap_case(35, false, 13));
  EXPECT_GT(misses, 0) << "the float path should miss some values; the cases are too easy";
}

TEST(OrtQdqOps, GlobalAveragePoolInt8MatchesQLinearGlobalAveragePool) {
  REPQ_REQUIRE_ORT();
  for (uint32_t seed = 41; seed <= 42; ++seed) check(gap_case(seed, true, 7));
}

TEST(OrtQdqOps, GemmFloatOutputMatchesQGemm) {
  REPQ_REQUIRE_ORT();
  check(gemm_case(51, true, true, 1.0f));
  check(gemm_case(52, false, true, 1.0f));
  check(gemm_case(53, true, false, 1.0f));
  check(gemm_case(54, true, true, 0.75f));
}

}  // namespace
}  // namespace repq::test
