// The MobileOne-S0 model built by repq-make-mobileone: valid ONNX, the architecture of
// layers.tsv, and the tool's errors on bad input.
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <filesystem>
#include <fstream>

#include "repq/ir/graph_utils.h"
#include "repq/ir/onnx_io.h"
#include "support/mobileone.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

namespace fs = std::filesystem;

std::string tool() { return build_dir() + "/bin/repq-make-mobileone"; }

CommandResult run_tool(const std::vector<std::string>& args) {
  std::string cmd = shell_quote(tool());
  for (const auto& a : args) cmd += " " + shell_quote(a);
  return run_command(cmd);
}

TEST(MobileOneModel, PassesTheOnnxCheckerAndShapeInference) {
  REPQ_REQUIRE_MOBILEONE(path);
  onnx::ModelProto proto;
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(proto.ParseFromIstream(&in));
  EXPECT_NO_THROW(onnx::checker::check_model(proto));
  onnx::ShapeInferenceOptions strict(/*check_type=*/true, /*error_mode=*/1);
  ASSERT_NO_THROW(onnx::shape_inference::InferShapes(proto, onnx::OpSchemaRegistry::Instance(), strict));
  const auto& shape = proto.graph().output(0).type().tensor_type().shape();
  ASSERT_EQ(shape.dim_size(), 2);
  EXPECT_EQ(shape.dim(0).dim_param(), "N");
  EXPECT_EQ(shape.dim(1).dim_value(), 1000);
  EXPECT_EQ(proto.opset_import(0).version(), 13);
}

TEST(MobileOneModel, FollowsTheLayerTable) {
  REPQ_REQUIRE_MOBILEONE(path);
  const Model m = load_model(path);
  ASSERT_EQ(m.graph.inputs.size(), 1u);
  EXPECT_EQ(m.graph.inputs[0].name, "input");
  EXPECT_EQ(m.graph.inputs[0].type_str(), "float32[N,3,224,224]");
  ASSERT_EQ(m.graph.outputs.size(), 1u);
  EXPECT_EQ(m.graph.outputs[0].name, "logits");
  const auto hist = op_histogram(m.graph);
  const std::map<std::string, size_t> want = {
      {"Conv", 43}, {"Relu", 43}, {"GlobalAveragePool", 1}, {"Flatten", 1}, {"Gemm", 1}};
  EXPECT_EQ(hist, want);
  EXPECT_EQ(m.graph.nodes.front().name, "stage0");
  EXPECT_EQ(m.graph.nodes.back().name, "linear");
  EXPECT_EQ(m.graph.nodes.back().attr_int("transB", 0), 1);
  int64_t params = 0;
  for (const auto& name : m.graph.initializer_names()) params += m.graph.initializer(name)->numel();
  EXPECT_EQ(m.graph.initializer_names().size(), 88u);  // 43 convs + linear, weight and bias
  EXPECT_EQ(params, 2078504);  // README: 2,078,504 parameters
  size_t depthwise = 0;
  for (const Node& n : m.graph.nodes)
    if (n.op_type == "Conv" && n.attr_int("group", 1) > 1) ++depthwise;
  EXPECT_EQ(depthwise, 21u);
}

TEST(MobileOneTool, FixedBatch) {
  REPQ_REQUIRE_SHARED();
  TempDir tmp;
  const auto r = run_tool({mobileone_dir(), tmp.file("b4.onnx"), "--batch", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(load_model(tmp.file("b4.onnx")).graph.inputs[0].type_str(), "float32[4,3,224,224]");
}

TEST(MobileOneTool, UsageErrors) {
  auto r = run_tool({});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("usage: repq-make-mobileone"), std::string::npos) << r.err;
  r = run_tool({"a", "b", "--batch", "zero"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--batch"), std::string::npos) << r.err;
  TempDir tmp;
  r = run_tool({tmp.file("nowhere"), tmp.file("out.onnx")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("layers.tsv: cannot open"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp.file("out.onnx")));
}

TEST(MobileOneTool, RejectsAShapeThatContradictsTheLayer) {
  TempDir tmp;
  std::ofstream(tmp.file("layers.tsv"))
      << "order\tname\top\tcin\tcout\tkernel\tstride\tpad\tgroups\tweight_file\tweight_shape_OIHW\t"
         "bias_file\tactivation\n"
      << "0\tstage0\tconv\t3\t48\t3\t2\t1\t1\tw.bin\t48x3x3x2\tb.bin\trelu\n";
  const auto r = run_tool({tmp.path().string(), tmp.file("out.onnx")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("layers.tsv:2: weight shape [48,3,3,2] does not match"), std::string::npos)
      << r.err;
}

// A copy of the model folder made of symlinks, with one weight file replaced.
void link_model_dir(const fs::path& to, const std::string& replaced, const std::string& content) {
  const fs::path from = mobileone_dir();
  fs::create_directories(to / "weights");
  fs::create_symlink(from / "layers.tsv", to / "layers.tsv");
  for (const auto& e : fs::directory_iterator(from / "weights")) {
    const fs::path dst = to / "weights" / e.path().filename();
    if (e.path().filename() == replaced) std::ofstream(dst, std::ios::binary) << content;
    else fs::create_symlink(e.path(), dst);
  }
}

TEST(MobileOneTool, RejectsATruncatedWeightFile) {
  REPQ_REQUIRE_SHARED();
  TempDir tmp;
  link_model_dir(tmp.path() / "m", "stage2.4.reparam_conv.weight.bin", std::string(100, '\0'));
  const auto r = run_tool({(tmp.path() / "m").string(), tmp.file("out.onnx")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("stage2.4.reparam_conv.weight.bin: 100 bytes, but float32[128,1,3,3] needs 4608"),
            std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  EXPECT_FALSE(fs::exists(tmp.file("out.onnx")));
}

TEST(MobileOneTool, ChecksTheReadmeDigest) {
  REPQ_REQUIRE_SHARED();
  TempDir tmp;
  // Same size, different bytes.
  link_model_dir(tmp.path() / "m", "linear.bias.bin", std::string(4000, '\0'));
  fs::create_symlink(fs::path(mobileone_dir()) / "README.md", tmp.path() / "m" / "README.md");
  auto r = run_tool({(tmp.path() / "m").string(), tmp.file("out.onnx")});
  if (r.err.find("built without OpenSSL") != std::string::npos)
    GTEST_SKIP() << "repq-make-mobileone was built without OpenSSL";
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("README.md says "), std::string::npos) << r.err;
  r = run_tool({(tmp.path() / "m").string(), tmp.file("out.onnx"), "--no-verify"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace repq::test
