// `repq quantize`: an error of the model on a calibration batch names the model and the batch's
// images: "<model>: <image> | <first> .. <last> (batch of N): <problem>", exit code 2, and no
// output file (docs/calibration.md, "Errors"; docs/hostile-inputs.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "repq/data/image.h"
#include "support/test_util.h"

namespace repq {
namespace {

namespace fs = std::filesystem;

// Conv + Relu + GlobalAveragePool on a fixed 1x3x32x32 input.
const char* kFixed32 = R"(
<ir_version: 8, opset_import: ["" : 13]>
net (float[1,3,32,32] input) => (float[1,4] scores)
<float[4,3,3,3] w>
{ c = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (input, w)  r = Relu (c)
  p = GlobalAveragePool (r)  scores = Flatten (p) }
)";

// The same on grey images of any batch size.
const char* kGrey = R"(
<ir_version: 8, opset_import: ["" : 13]>
net (float[N,1,8,8] input) => (float[N,4] scores)
<float[4,1,3,3] w>
{ c = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (input, w)  r = Relu (c)
  p = GlobalAveragePool (r)  scores = Flatten (p) }
)";

struct CalibErrors : ::testing::Test {
  test::TempDir tmp;
  std::string calib, out;
  void SetUp() override {
    calib = tmp.file("calib");
    out = tmp.file("out/q.onnx");
    fs::create_directories(calib);
    fs::create_directories(tmp.file("out"));
  }
  void add_png(const std::string& name, int side, int channels) const {
    data::Image img{side, side, channels, {}};
    for (int i = 0; i < side * side * channels; ++i) img.pixels.push_back(static_cast<uint8_t>(i * 37));
    std::ofstream(calib + "/" + name, std::ios::binary) << data::encode_png(img);
  }
  // Runs quantize and checks: exit 2, the one-line message, no output file.
  void expect_error(const std::string& model_text, const std::string& batch,
                    const std::string& samples, const std::string& problem) const {
    const std::string model = tmp.file("net.onnx");
    test::write_onnx_text(model_text, model);
    const auto r = test::run_repq({"-q", "quantize", model, "--calib", calib, "-o", out, "--preset",
                                   "none", "--threads", "1", "--batch", batch});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    const std::string want = "repq: error: " + model + ": " + samples + ": " + problem;
    EXPECT_EQ(r.err.rfind(want, 0), 0u) << r.err << "\nwant: " << want;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(fs::is_empty(tmp.file("out"))) << r.err;
  }
};

TEST_F(CalibErrors, WrongImageSizeNamesTheImageOrTheBatch) {
  for (const char* n : {"a.png", "b.png", "c.png"}) add_png(n, 40, 3);
  expect_error(kFixed32, "1", calib + "/a.png", "input 'input' has shape [1,3,40,40]");
  expect_error(kFixed32, "2", calib + "/a.png .. " + calib + "/b.png (batch of 2)",
               "input 'input' has shape [2,3,40,40]");
}

TEST_F(CalibErrors, RgbImagesForAGreyModel) {
  for (const char* n : {"x1.png", "x2.png", "x3.png"}) add_png(n, 8, 3);
  expect_error(kGrey, "8", calib + "/x1.png .. " + calib + "/x3.png (batch of 3)",
               "input 'input' has shape [3,3,8,8]; the model expects float32[N,1,8,8]");
}

}  // namespace
}  // namespace repq
