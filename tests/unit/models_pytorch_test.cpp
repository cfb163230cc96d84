// The PyTorch-exported models in models/ (train, PRESERVE and deploy forms): load -> save ->
// load is lossless, the saved file passes ONNX's checker and strict shape inference, and repq's
// executor reproduces PyTorch's reference logits.
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "repq/data/npy.h"
#include "repq/ir/onnx_io.h"
#include "repq/runtime/executor.h"
#include "support/test_util.h"

namespace repq {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> exported_models() {
  std::vector<std::string> out;
  const fs::path root = fs::path(test::source_dir()) / "models";
  if (!fs::is_directory(root)) return out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    const std::string p = e.path().string();
    if (e.is_regular_file() && e.path().extension() == ".onnx" &&
        p.find(".tmp.") == std::string::npos &&
        fs::exists(e.path().parent_path() / "ref_logits.npy"))
      out.push_back(p);
  }
  std::sort(out.begin(), out.end());
  return out;
}

class PyTorchModel : public ::testing::TestWithParam<std::string> {};

TEST_P(PyTorchModel, RoundTripIsLosslessAndValid) {
  const std::string path = GetParam();
  const Model a = load_model(path);
  EXPECT_EQ(a.producer_name, "pytorch");
  test::TempDir tmp;
  save_model(a, tmp.file("m.onnx"));
  onnx::ModelProto mp;
  {
    std::ifstream in(tmp.file("m.onnx"), std::ios::binary);
    ASSERT_TRUE(mp.ParseFromIstream(&in));
  }
  EXPECT_NO_THROW(onnx::checker::check_model(mp));
  onnx::ShapeInferenceOptions strict{true, 1, false};
  EXPECT_NO_THROW(onnx::shape_inference::InferShapes(mp, onnx::OpSchemaRegistry::Instance(), strict));
  const Model b = load_model(tmp.file("m.onnx"));
  EXPECT_EQ(serialize_model(a), serialize_model(b));
  ASSERT_EQ(a.graph.nodes.size(), b.graph.nodes.size());
  for (const auto& n : a.graph.initializer_names())
    EXPECT_TRUE(a.graph.initializer(n)->equals(*b.graph.initializer(n))) << n;
}

TEST_P(PyTorchModel, ExecutorMatchesPyTorch) {
  const std::string path = GetParam();
  const fs::path dir = fs::path(path).parent_path();
  const Tensor x = data::read_npy((dir / "ref_input.npy").string());
  const Tensor ref = data::read_npy((dir / "ref_logits.npy").string());
  Executor ex(load_model(path));
  const auto outs = ex.run({{ex.input_names().at(0), x}});
  const Tensor& y = outs.at(ex.output_names().at(0));
  ASSERT_EQ(y.shape(), ref.shape());
  double max_ref = 0, max_diff = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    max_ref = std::max(max_ref, static_cast<double>(std::fabs(ref.data<float>()[i])));
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(y.data<float>()[i] - ref.data<float>()[i])));
  }
  EXPECT_LT(max_diff, 1e-4 * std::max(1.0, max_ref)) << path;
}

INSTANTIATE_TEST_SUITE_P(Models, PyTorchModel, ::testing::ValuesIn(exported_models()),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           std::string n = fs::path(p.param).filename().string();
                           n = n.substr(0, n.size() - 5);
                           for (auto& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(PyTorchModel);

TEST(PyTorchModels, TheBundledModelsArePresent) {
  EXPECT_GE(exported_models().size(), 3u) << "models/ should hold PyTorch exports with references";
}

}  // namespace
}  // namespace repq
