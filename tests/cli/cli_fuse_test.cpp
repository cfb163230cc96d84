// repq fuse end to end: flags and exit codes on a synthetic block, and every PyTorch export in
// models/ (train and PRESERVE forms, discovered at run time): the fused model reproduces
// PyTorch's reference logits, has the deploy form's convs and no BatchNormalization/Add left,
// and `repq eval` gives the deploy form's accuracy on the bundled Fashion-MNIST images.
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "repq/data/npy.h"
#include "repq/ir/graph_utils.h"
#include "repq/ir/onnx_io.h"
#include "repq/runtime/executor.h"
#include "support/test_util.h"

namespace repq {
namespace {

namespace fs = std::filesystem;
using test::run_repq;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A RepVGG block (eval export) with 16 channels, then a QARepVGG-like BN after a sum whose
// identity branch goes through a ReLU (a near-miss).
const char* kModel = R"(
<ir_version: 8, opset_import: ["" : 13], producer_name: "repq-test">
g (float[1,16,12,12] x) => (float[1,16,12,12] z)
<float[16,16,3,3] w3, float[16] b3, float[16,16,1,1] w1, float[16] b1, float[16] s, float[16] b,
 float[16] m, float[16] v = {0.5,0.6,0.7,0.8,0.9,1.0,1.1,1.2,1.3,1.4,1.5,1.6,1.7,1.8,1.9,2.0},
 float[16,16,3,3] w4, float[16,16,1,1] w5>
{
  c3 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3, b3)
  c1 = Conv <kernel_shape = [1,1]> (x, w1, b1)
  a = Add (c3, c1)
  i = BatchNormalization (x, s, b, m, v)
  y = Add (a, i)
  r = Relu (y)
  d = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (r, w4)
  e = Conv <kernel_shape = [1,1]> (r, w5)
  f = Relu (e)
  z = Add (d, f)
})";

class CliFuse : public ::testing::Test {
 protected:
  void SetUp() override { test::write_onnx_text(kModel, model_); }
  test::TempDir tmp_;
  std::string model_ = tmp_.file("block.onnx");
};

TEST_F(CliFuse, FoldsTheBlockAndListsTheNearMiss) {
  const std::string out = tmp_.file("fused.onnx");
  const auto r = run_repq({"fuse", model_, "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_TRUE(contains(r.out, "RepVGG")) << r.out;
  EXPECT_TRUE(contains(r.out, "5 -> 1")) << r.out;
  EXPECT_TRUE(contains(r.out, "16->16 3x3")) << r.out;
  EXPECT_TRUE(contains(r.out, "nonlinearity inside (Relu 'f')")) << r.out;
  const Model m = load_model(out);
  const auto h = op_histogram(m.graph);
  EXPECT_EQ(h.at("Conv"), 3u);
  EXPECT_EQ(h.count("BatchNormalization"), 0u);
  EXPECT_EQ(h.at("Add"), 1u);  // the near-miss stays
}

TEST_F(CliFuse, JsonReport) {
  const auto r = run_repq({"fuse", model_, "-o", tmp_.file("fused.onnx"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema"], "repq.fuse/1");
  EXPECT_EQ(j["passed"], true);
  EXPECT_EQ(j["dry_run"], false);
  EXPECT_EQ(j["nodes_before"], 10);
  EXPECT_EQ(j["nodes_after"], 6);
  ASSERT_EQ(j["folds"].size(), 1u);
  const auto& f = j["folds"][0];
  EXPECT_EQ(f["kind"], "RepVGG");
  EXPECT_EQ(f["input"], "x");
  EXPECT_EQ(f["output"], "y");
  EXPECT_EQ(f["nodes_before"], 5);
  EXPECT_EQ(f["ops"], nlohmann::json::parse(R"(["Conv","Conv","Add","BatchNormalization","Add"])"));
  EXPECT_EQ(f["verified"], true);
  EXPECT_EQ(f["applied"], true);
  EXPECT_LT(f["max_rel_diff"].get<double>(), 1e-5);
  EXPECT_EQ(f["kernel"], nlohmann::json::parse("[3,3]"));
  ASSERT_EQ(j["near_misses"].size(), 1u);
  EXPECT_EQ(j["near_misses"][0]["node"], "z");
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST_F(CliFuse, DryRunWritesNothing) {
  const std::string out = tmp_.file("fused.onnx");
  const auto r = run_repq({"fuse", model_, "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "Would fold 1 block")) << r.out;
  const auto r2 = run_repq({"fuse", model_, "--dry-run", "-o", out});
  EXPECT_EQ(r2.exit_code, 0);
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(CliFuse, ToleranceGateExitsThreeAndLeavesTheBlock) {
  const std::string out = tmp_.file("fused.onnx");
  const auto r = run_repq({"fuse", model_, "-o", out, "--tolerance", "0", "--json"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["passed"], false);
  EXPECT_GT(j["folds"][0]["max_abs_diff"].get<double>(), 0.0);
  EXPECT_EQ(j["folds"][0]["applied"], false);
  EXPECT_TRUE(contains(r.err, "missed the tolerance")) << r.err;
  EXPECT_EQ(op_histogram(load_model(out).graph).at("BatchNormalization"), 1u);
}

TEST_F(CliFuse, BadUsage) {
  EXPECT_EQ(run_repq({"fuse", model_}).exit_code, 2);  // no -o, no --dry-run
  const std::string before = serialize_model(load_model(model_));
  const auto same = run_repq({"fuse", model_, "-o", model_});
  EXPECT_EQ(same.exit_code, 2);
  EXPECT_TRUE(contains(same.err, "input")) << same.err;
  EXPECT_EQ(serialize_model(load_model(model_)), before);
  EXPECT_EQ(run_repq({"fuse", tmp_.file("missing.onnx"), "-o", tmp_.file("o.onnx")}).exit_code, 2);
  EXPECT_EQ(run_repq({"fuse", model_, "-o", tmp_.file("o.onnx"), "--tolerance", "-1"}).exit_code, 2);
}

TEST_F(CliFuse, InfoListsTheBlocks) {
  const auto r = run_repq({"info", model_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "Re-parameterizable blocks (1")) << r.out;
  EXPECT_TRUE(contains(r.out, "Not foldable (1)")) << r.out;
  const auto j = nlohmann::json::parse(run_repq({"info", model_, "--json"}).out);
  EXPECT_EQ(j["schema"], "repq.info/1");
  ASSERT_EQ(j["reparam_blocks"].size(), 1u);
  EXPECT_EQ(j["reparam_blocks"][0]["kind"], "RepVGG");
  EXPECT_EQ(j["reparam_blocks"][0]["nodes"], 5);
  EXPECT_EQ(j["reparam_not_foldable"][0]["reason"], "nonlinearity inside (Relu 'f')");

  const std::string deploy = tmp_.file("deploy.onnx");
  ASSERT_EQ(run_repq({"fuse", model_, "-o", deploy}).exit_code, 0);
  const auto d = run_repq({"info", deploy});
  EXPECT_TRUE(contains(d.out, "Re-parameterizable blocks: none")) << d.out;
}

// ---- the PyTorch exports in models/ ----

std::vector<std::string> train_exports() {
  std::vector<std::string> out;
  const fs::path root = fs::path(test::source_dir()) / "models";
  if (!fs::is_directory(root)) return out;
  for (const auto& d : fs::directory_iterator(root)) {
    if (!d.is_directory()) continue;
    const std::string name = d.path().filename().string();
    if (!fs::exists(d.path() / (name + ".deploy.onnx")) || !fs::exists(d.path() / "ref_logits.npy")) continue;
    for (const char* form : {".train.onnx", ".preserve.onnx"})
      if (fs::exists(d.path() / (name + form))) out.push_back((d.path() / (name + form)).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

double eval_top1(const std::string& model) {
  const std::string data = test::source_dir() + "/models/data/fashion_mnist/eval";
  const auto r = run_repq({"-q", "eval", model, "--data", data, "--labels", data + "/labels.csv", "--preset", "none",
                           "--color", "grey", "--mean", "0.2860", "--std", "0.3530", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? nlohmann::json::parse(r.out)["top1"].get<double>() : -1;
}

class CliFuseModel : public ::testing::TestWithParam<std::string> {};

TEST_P(CliFuseModel, FusedModelMatchesPyTorchAndTheDeployForm) {
  const fs::path src = GetParam(), dir = src.parent_path();
  const std::string name = dir.filename().string();
  const std::string deploy = (dir / (name + ".deploy.onnx")).string();
  test::TempDir tmp;
  const std::string out = tmp.file("fused.onnx");
  const auto r = run_repq({"fuse", src.string(), "-o", out, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["folds"].size(), 0u);
  for (const auto& f : j["folds"]) {
    EXPECT_TRUE(f["verified"].get<bool>());
    EXPECT_LT(f["max_rel_diff"].get<double>(), 1e-4) << f["output"];
  }
  EXPECT_EQ(j["near_misses"].size(), 0u) << j["near_misses"].dump();

  onnx::ModelProto mp;
  {
    std::ifstream in(out, std::ios::binary);
    ASSERT_TRUE(mp.ParseFromIstream(&in));
  }
  EXPECT_NO_THROW(onnx::checker::check_model(mp));
  onnx::ShapeInferenceOptions strict{true, 1, false};
  EXPECT_NO_THROW(onnx::shape_inference::InferShapes(mp, onnx::OpSchemaRegistry::Instance(), strict));

  const Model fused = load_model(out);
  const auto h = op_histogram(fused.graph), hd = op_histogram(load_model(deploy).graph);
  EXPECT_EQ(h.at("Conv"), hd.at("Conv"));
  EXPECT_EQ(h.count("BatchNormalization"), 0u);
  EXPECT_EQ(h.count("Add"), hd.count("Add"));
  EXPECT_EQ(h.count("Identity"), 0u);
  EXPECT_EQ(fused.graph.nodes.size(), load_model(deploy).graph.nodes.size());

  const Tensor x = data::read_npy((dir / "ref_input.npy").string());
  const Tensor ref = data::read_npy((dir / "ref_logits.npy").string());
  Executor ex(fused);
  const Tensor y = ex.run({{ex.input_names().at(0), x}}).at(ex.output_names().at(0));
  ASSERT_EQ(y.shape(), ref.shape());
  double max_ref = 0, max_diff = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    max_ref = std::max(max_ref, static_cast<double>(std::fabs(ref.data<float>()[i])));
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(y.data<float>()[i] - ref.data<float>()[i])));
  }
  EXPECT_LT(max_diff, 1e-4 * max_ref) << "max abs diff " << max_diff << " vs PyTorch";
  std::printf("[ fused    ] %s: max abs diff vs PyTorch %.3g (relative %.3g)\n", src.filename().c_str(), max_diff,
              max_diff / max_ref);

  const double top1 = eval_top1(out), deploy_top1 = eval_top1(deploy);
  EXPECT_EQ(top1, deploy_top1);
  std::printf("[ fused    ] %s: top-1 %.4f, deploy form %.4f\n", src.filename().c_str(), top1, deploy_top1);
  // The exporter's own evaluation of the deploy form on the same 512 images, when recorded.
  if (std::ifstream meta(dir / "meta.json"); meta) {
    const auto mj = nlohmann::json::parse(meta, nullptr, false);
    if (!mj.is_discarded() && mj.contains("checks") && mj["checks"].contains("deploy") &&
        mj["checks"]["deploy"].contains("numpy_eval512_acc")) {
      EXPECT_DOUBLE_EQ(top1, mj["checks"]["deploy"]["numpy_eval512_acc"].get<double>());
    }
  }

  // Fusing again, or fusing the deploy form, changes nothing.
  const auto again = run_repq({"fuse", out, "-o", tmp.file("again.onnx"), "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out)["folds"].size(), 0u);
  EXPECT_EQ(serialize_model(load_model(tmp.file("again.onnx"))), serialize_model(fused));
  ASSERT_EQ(run_repq({"fuse", deploy, "-o", tmp.file("deploy.onnx")}).exit_code, 0);
  EXPECT_EQ(serialize_model(load_model(tmp.file("deploy.onnx"))), serialize_model(load_model(deploy)));
}

INSTANTIATE_TEST_SUITE_P(Models, CliFuseModel, ::testing::ValuesIn(train_exports()),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           std::string n = fs::path(p.param).filename().string();
                           n = n.substr(0, n.size() - 5);
                           for (auto& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(CliFuseModel);

}  // namespace
}  // namespace repq
