// The ONNX Runtime harness itself: tools/ort/ort_run.js driven through ort_run().
#include "support/ort_runner.h"

#include <filesystem>

#include "repq/ir/onnx_io.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

constexpr const char* kAddModel = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2,3] a, float[2,3] b) => (float[2,3] sum, float[2,3] prod) { sum = Add (a, b)  prod = Mul (a, b) })";

TEST(OrtRunner, RunsAModelAndReturnsEveryOutput) {
  REPQ_REQUIRE_ORT();
  TempDir tmp;
  write_onnx_text(kAddModel, tmp.file("add.onnx"));
  const auto a = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  const auto b = Tensor::from_vector<float>({2, 3}, {0.5f, -1, 2, 0, 10, -6});
  const auto out = ort_run(tmp.file("add.onnx"), {{"a", a}, {"b", b}});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out.at("sum").equals(Tensor::from_vector<float>({2, 3}, {1.5f, 1, 5, 4, 15, 0})));
  EXPECT_TRUE(out.at("prod").equals(Tensor::from_vector<float>({2, 3}, {0.5f, -2, 6, 0, 50, -36})));
}

TEST(OrtRunner, NonFloatOutputsComeBackAsFloat32) {
  REPQ_REQUIRE_ORT();
  TempDir tmp;
  write_onnx_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N,3] x) => (int64[2] s, uint8[N,3] q) <float sc = {0.5}, uint8 zp = {10}>
{ s = Shape (x)  q = QuantizeLinear (x, sc, zp) })", tmp.file("m.onnx"));
  const auto x = Tensor::from_vector<float>({4, 3}, {0, 1, -1, 2, 100, -100, 3, 0.2f, 0.3f, 1, 1, 1});
  const auto out = ort_run(tmp.file("m.onnx"), {{"x", x}});
  EXPECT_TRUE(out.at("s").equals(Tensor::from_vector<float>({2}, {4, 3})));
  EXPECT_TRUE(out.at("q").equals(
      Tensor::from_vector<float>({4, 3}, {10, 12, 8, 14, 210, 0, 16, 10, 11, 12, 12, 12})));
}

TEST(OrtRunner, WritesTheOptimizedModel) {
  REPQ_REQUIRE_ORT();
  TempDir tmp;
  write_onnx_text(kAddModel, tmp.file("add.onnx"));
  OrtRunOptions opts;
  opts.level = "basic";
  opts.optimized_model_path = tmp.file("opt.onnx");
  const auto x = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  ort_run(tmp.file("add.onnx"), {{"a", x}, {"b", x}}, opts);
  ASSERT_TRUE(std::filesystem::exists(tmp.file("opt.onnx")));
  EXPECT_EQ(load_model(tmp.file("opt.onnx")).graph.outputs.size(), 2u);
}

TEST(OrtRunner, ReportsOrtErrors) {
  REPQ_REQUIRE_ORT();
  TempDir tmp;
  write_onnx_text(kAddModel, tmp.file("add.onnx"));
  const auto bad = Tensor::from_vector<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  try {
    ort_run(tmp.file("add.onnx"), {{"a", bad}, {"b", bad}});
    FAIL() << "expected an error for a wrongly shaped input";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("ONNX Runtime failed"), std::string::npos) << e.what();
  }
}

TEST(OrtRunner, ScriptRejectsBadUsage) {
  REPQ_REQUIRE_ORT();
  const std::string script = source_dir() + "/tools/ort/ort_run.js";
  auto r = run_command("node " + shell_quote(script) + " --bogus");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown option '--bogus'"), std::string::npos) << r.err;
  r = run_command("node " + shell_quote(script) + " /nonexistent.onnx --out-dir /tmp");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no such file"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace repq::test
