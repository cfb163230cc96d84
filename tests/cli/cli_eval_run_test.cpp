// `repq eval` and `repq run` end to end on tiny models and generated images.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "repq/data/image.h"
#include "repq/data/npy.h"
#include "repq/ir/onnx_io.h"
#include "support/test_util.h"

namespace repq {
namespace {

namespace fs = std::filesystem;

// Scores = per-channel mean of the image: the class is the dominant colour (0 R, 1 G, 2 B).
const char* kColourNet = R"(
<ir_version: 8, opset_import: ["" : 13]>
net (float[N,3,4,4] input) => (float[N,3] scores)
{ p = GlobalAveragePool (input)  scores = Flatten (p) }
)";
// The same scores times two: same top-1, SQNR 0 dB against kColourNet.
const char* kDoubledNet = R"(
<ir_version: 8, opset_import: ["" : 13]>
net (float[N,3,4,4] input) => (float[N,3] scores)
<float[1] two = {2.0}>
{ p = GlobalAveragePool (input)  f = Flatten (p)  scores = Mul (f, two) }
)";

void write_png(const std::string& path, uint8_t r, uint8_t g, uint8_t b) {
  data::Image img;
  img.width = img.height = 4;
  img.channels = 3;
  for (int i = 0; i < 16; ++i) img.pixels.insert(img.pixels.end(), {r, g, b});
  std::ofstream(path, std::ios::binary) << data::encode_png(img);
}

// ImageFolder layout: 0_red has 2 red images, 1_green 1 green + 1 blue (wrong), 2_blue 1 blue.
void make_dataset(const fs::path& root) {
  fs::create_directories(root / "0_red");
  fs::create_directories(root / "1_green");
  fs::create_directories(root / "2_blue");
  write_png((root / "0_red" / "a.png").string(), 200, 10, 10);
  write_png((root / "0_red" / "b.png").string(), 150, 20, 30);
  write_png((root / "1_green" / "c.png").string(), 5, 240, 5);
  write_png((root / "1_green" / "d.png").string(), 5, 5, 240);
  write_png((root / "2_blue" / "e.png").string(), 0, 0, 99);
}

struct EvalFixture : ::testing::Test {
  test::TempDir tmp;
  std::string model, doubled, data;
  void SetUp() override {
    model = tmp.file("colour.onnx");
    doubled = tmp.file("doubled.onnx");
    data = tmp.file("data");
    test::write_onnx_text(kColourNet, model);
    test::write_onnx_text(kDoubledNet, doubled);
    make_dataset(data);
  }
};

TEST_F(EvalFixture, AccuracyWithFolderLabelsAsJson) {
  const auto r = test::run_repq({"eval", model, "--data", data, "--labels", "folders",
                                 "--preset", "none", "--batch", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema"], "repq.eval/1");
  EXPECT_EQ(j["samples"], 5);
  EXPECT_EQ(j["labelled"], 5);
  EXPECT_EQ(j["classes"], 3);
  EXPECT_DOUBLE_EQ(j["top1"].get<double>(), 0.8);
  EXPECT_DOUBLE_EQ(j["top5"].get<double>(), 1.0);
  EXPECT_TRUE(j["agreement"].is_null());
  EXPECT_GT(j["images_per_second"].get<double>(), 0.0);
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << "no progress bar without a terminal";
}

TEST_F(EvalFixture, LabelFileAndReferenceAgreement) {
  {
    std::ofstream csv(tmp.file("labels.csv"));
    csv << "file,class_index\n0_red/a.png,0\n0_red/b.png,2\n1_green/c.png,1\n"
           "1_green/d.png,2\n2_blue/e.png,2\n";
  }
  const auto r = test::run_repq({"eval", doubled, "--data", data, "--labels",
                                 tmp.file("labels.csv"), "--ref", model, "--preset", "none",
                                 "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_DOUBLE_EQ(j["top1"].get<double>(), 0.8);  // b.png labelled 2 is now the wrong one
  EXPECT_DOUBLE_EQ(j["agreement"]["top1"].get<double>(), 1.0);
  EXPECT_NEAR(j["agreement"]["mean_sqnr_db"].get<double>(), 0.0, 1e-6);  // x vs 2x
  EXPECT_DOUBLE_EQ(j["agreement"]["reference_top1"].get<double>(), 0.8);
}

TEST_F(EvalFixture, TextOutputWithoutLabels) {
  const auto r = test::run_repq({"eval", model, "--data", data, "--preset", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("5 samples"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no labels"), std::string::npos) << r.out;
}

TEST_F(EvalFixture, CorruptImageIsNamedOrSkipped) {
  std::ofstream(tmp.file("data/2_blue/broken.png"), std::ios::binary) << "\x89PNG\r\n\x1a\nxx";
  auto r = test::run_repq({"eval", model, "--data", data, "--labels", "folders", "--preset", "none"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("broken.png"), std::string::npos) << r.err;
  r = test::run_repq({"eval", model, "--data", data, "--labels", "folders", "--preset", "none",
                      "--skip-bad", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["samples"], 5);
  EXPECT_EQ(j["skipped"], 1);
}

TEST_F(EvalFixture, WrongInputShapeIsAnInputError) {
  // Preset imagenet makes 3x224x224 images; the model takes 3x4x4.
  const auto r = test::run_repq({"eval", model, "--data", data, "--preset", "imagenet"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("input"), std::string::npos) << r.err;
}

TEST_F(EvalFixture, MissingDataFolder) {
  const auto r = test::run_repq({"eval", model, "--data", tmp.file("nope")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(tmp.file("nope")), std::string::npos) << r.err;
}

TEST_F(EvalFixture, RunWritesOutputsFromNpyAndImages) {
  const Tensor x = Tensor::from_vector<float>({1, 3, 4, 4}, test::random_floats(48, 3));
  data::write_npy(tmp.file("x.npy"), x);
  auto r = test::run_repq({"run", doubled, "--input", tmp.file("x.npy"), "-o", tmp.file("y.npy")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Tensor y = data::read_npy(tmp.file("y.npy"));
  ASSERT_EQ(y.shape(), (Shape{1, 3}));
  for (int c = 0; c < 3; ++c) {
    double mean = 0;
    for (int i = 0; i < 16; ++i) mean += x.data<float>()[c * 16 + i];
    EXPECT_NEAR(y.data<float>()[c], 2 * mean / 16, 1e-5);
  }
  // A single sample without the batch dim, by input name, every output into a folder.
  data::write_npy(tmp.file("x3.npy"), x.reshaped({3, 4, 4}));
  r = test::run_repq({"run", doubled, "--input", "input=" + tmp.file("x3.npy"), "--outputs-dir",
                      tmp.file("outs"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(tmp.file("outs/scores.npy")));
  EXPECT_EQ(nlohmann::json::parse(r.out)["outputs"][0]["shape"], nlohmann::json::parse("[1,3]"));
  // An image input, preprocessed.
  r = test::run_repq({"run", model, "--input", tmp.file("data/0_red/a.png"), "--preset", "none",
                      "-o", tmp.file("img.npy")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NEAR(data::read_npy(tmp.file("img.npy")).data<float>()[0], 200.0f / 255, 1e-6);
}

TEST_F(EvalFixture, RunRefusesBadInputs) {
  data::write_npy(tmp.file("bad.npy"), Tensor(DType::kFloat32, {1, 3, 5, 5}));
  auto r = test::run_repq({"run", model, "--input", tmp.file("bad.npy"), "-o", tmp.file("y.npy")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("input"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp.file("y.npy")));
  r = test::run_repq({"run", model, "--input", tmp.file("bad.npy"), "-o", tmp.file("bad.npy")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("-o names an input file"), std::string::npos) << r.err;
  r = test::run_repq({"run", model, "--input", tmp.file("none.npy"), "-o", tmp.file("y.npy")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("none.npy"), std::string::npos) << r.err;
}

TEST_F(EvalFixture, UnsupportedOpIsRefusedUpFront) {
  test::write_onnx_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N,3,4,4] input) => (float[N,3,4,4] y) { y = Einsum <equation = "nchw->nchw"> (input) }
)", tmp.file("einsum.onnx"));
  const auto r = test::run_repq({"eval", tmp.file("einsum.onnx"), "--data", data});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("(Einsum)"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace repq
