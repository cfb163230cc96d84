// Hostile and broken inputs end to end: each case's message and exit code, and no partial or
// temporary output file after a failure. (Bad models already covered by cli_info_test.cpp:
// missing, directory, empty, not ONNX, truncated, cycle, self-consuming node, undefined input,
// byte-size mismatch, absurd dims, unsupported opset, external data escaping the folder.)
#include <gtest/gtest.h>
#include <onnx/defs/parser.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <fstream>

#include "repq/data/image.h"
#include "repq/data/npy.h"
#include "support/test_util.h"

namespace repq {
namespace {

namespace fs = std::filesystem;

const char* kNet = R"(
<ir_version: 8, opset_import: ["" : 13]>
net (float[N,3,32,32] input) => (float[N,3,32,32] y) { y = Relu (input) }
)";

onnx::ModelProto text_proto(const char* text) {
  onnx::ModelProto mp;
  onnx::OnnxParser parser(text);
  EXPECT_TRUE(parser.Parse(mp).IsOK());
  return mp;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : " ") + n;
  return s;
}

uint32_t crc32(const std::string& s) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

// A valid 1x1 PNG whose header claims width x height (IHDR patched, CRC fixed).
std::string png_claiming(uint32_t width, uint32_t height) {
  data::Image img{1, 1, 3, {1, 2, 3}};
  std::string png = data::encode_png(img);
  const auto be32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) png[at + i] = static_cast<char>(v >> (24 - 8 * i));
  };
  be32(16, width);
  be32(20, height);
  be32(29, crc32(png.substr(12, 17)));  // over "IHDR" + its 13 data bytes
  return png;
}

struct Hostile : ::testing::Test {
  test::TempDir tmp;
  std::string model, input;
  void SetUp() override {
    model = tmp.file("net.onnx");
    input = tmp.file("x.npy");
    test::write_onnx_text(kNet, model);
    data::write_npy(input, Tensor(DType::kFloat32, {1, 3, 32, 32}));  // 12 KiB in and out
  }
  // exit code 2, one line naming `file` and containing `needle`.
  void expect_refused(const std::vector<std::string>& args, const std::string& file,
                      const std::string& needle) {
    const auto r = test::run_repq(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("repq: error: " + file + ": "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
};

TEST_F(Hostile, ModelOver2GiBRefusedBeforeReading) {
  const std::string big = tmp.file("big.onnx");
  write_bytes(big, "x");
  fs::resize_file(big, uint64_t{5} << 30);  // sparse
  expect_refused({"info", big}, big, "the file is 5368709120 bytes, over the limit of 2147483647");
}

TEST_F(Hostile, NestedSubgraphsAndTypes) {
  auto mp = text_proto(kNet);
  onnx::TypeProto* t = mp.mutable_graph()->add_value_info()->mutable_type();
  for (int i = 0; i < 80; ++i) t = t->mutable_sequence_type()->mutable_elem_type();
  write_bytes(tmp.file("deep.onnx"), mp.SerializeAsString());
  expect_refused({"info", tmp.file("deep.onnx")}, tmp.file("deep.onnx"),
                 "messages are nested more than 100 levels deep");
}

TEST_F(Hostile, DuplicateNodeNamesAndAmbiguousDefaults) {
  auto mp = text_proto(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x) => (float[2] y) { p = Relu (x)  y = Neg (p) }
)");
  mp.mutable_graph()->mutable_node(0)->set_name("conv");
  mp.mutable_graph()->mutable_node(1)->set_name("conv");
  write_bytes(tmp.file("twins.onnx"), mp.SerializeAsString());
  expect_refused({"info", tmp.file("twins.onnx")}, tmp.file("twins.onnx"), "two nodes are named 'conv'");
  write_bytes(tmp.file("amb.onnx"), text_proto(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x, int64[2] b) => (float[2] y) <float[2] b = {1, 2}> { y = Add (x, b) }
)").SerializeAsString());
  expect_refused({"info", tmp.file("amb.onnx")}, tmp.file("amb.onnx"), "ambiguous, refused");
}

TEST_F(Hostile, NonUtf8NamesInJson) {
  auto mp = text_proto(kNet);
  mp.set_producer_name("exporter\x94");
  write_bytes(tmp.file("utf.onnx"), mp.SerializeAsString());
  const auto r = test::run_repq({"info", "--json", tmp.file("utf.onnx")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("exporter\xef\xbf\xbd"), std::string::npos) << r.out;
}

TEST_F(Hostile, NegativeDimsAndLongRawData) {
  auto mp = text_proto(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x) => (float[2] y) <float[2] a = {1, 2}> { y = Add (x, a) }
)");
  auto* a = mp.mutable_graph()->mutable_initializer(0);
  a->set_dims(0, -1);
  write_bytes(tmp.file("neg.onnx"), mp.SerializeAsString());
  expect_refused({"info", tmp.file("neg.onnx")}, tmp.file("neg.onnx"), "negative dimension in shape [-1]");
  a->set_dims(0, 2);
  a->clear_float_data();
  a->set_raw_data(std::string(1000, '\0'));
  write_bytes(tmp.file("long.onnx"), mp.SerializeAsString());
  expect_refused({"info", tmp.file("long.onnx")}, tmp.file("long.onnx"),
                 "raw_data has 1000 bytes but shape [2] of float32 needs 8");
}

TEST_F(Hostile, BadImages) {
  const std::vector<std::string> run = {"run", model, "--preset", "none", "-o", tmp.file("y.npy"), "-i"};
  auto with = [&](const std::string& f) { auto a = run; a.push_back(f); return a; };
  write_bytes(tmp.file("empty.png"), "");
  expect_refused(with(tmp.file("empty.png")), tmp.file("empty.png"), "empty file");
  const std::string png = data::encode_png(data::Image{32, 32, 3, std::vector<uint8_t>(3072, 7)});
  write_bytes(tmp.file("cut.png"), png.substr(0, png.size() / 2));
  expect_refused(with(tmp.file("cut.png")), tmp.file("cut.png"), "");
  write_bytes(tmp.file("text.jpg"), "this is not an image\n");
  expect_refused(with(tmp.file("text.jpg")), tmp.file("text.jpg"), "unrecognized content");
  // A PNG named .jpg is read by its content.
  write_bytes(tmp.file("png.jpg"), png);
  EXPECT_EQ(test::run_repq(with(tmp.file("png.jpg"))).exit_code, 0);
  // A decompression bomb: 100k x 100k declared in 70 bytes, refused before decoding.
  write_bytes(tmp.file("bomb.png"), png_claiming(100000, 100000));
  expect_refused(with(tmp.file("bomb.png")), tmp.file("bomb.png"),
                 "image is 100000x100000 = 10000000000 pixels, over the limit of 100000000 "
                 "(refused before decoding)");
  auto limited = with(tmp.file("png.jpg"));
  limited.insert(limited.end(), {"--max-pixels", "1000"});
  expect_refused(limited, tmp.file("png.jpg"), "1024 pixels, over the limit of 1000");
  EXPECT_EQ(listing(tmp.path()), "bomb.png cut.png empty.png net.onnx png.jpg text.jpg x.npy y.npy");
}

TEST_F(Hostile, BadNpy) {
  const auto run = [&](const std::string& f) {
    return std::vector<std::string>{"run", model, "-i", f, "-o", tmp.file("y.npy")};
  };
  const std::string dict =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000000, 100000000000000), }\n";
  write_bytes(tmp.file("huge.npy"), std::string("\x93NUMPY\x01\x00", 8) +
                                        char(dict.size()) + '\0' + dict);
  expect_refused(run(tmp.file("huge.npy")), tmp.file("huge.npy"), "shape too large");
  const std::string good = data::encode_npy(Tensor(DType::kFloat32, {1, 3, 32, 32}));
  write_bytes(tmp.file("cut.npy"), good.substr(0, good.size() - 5));
  expect_refused(run(tmp.file("cut.npy")), tmp.file("cut.npy"), "truncated .npy data");
  write_bytes(tmp.file("zero.npy"), "");
  expect_refused(run(tmp.file("zero.npy")), tmp.file("zero.npy"), "empty file");
  EXPECT_FALSE(fs::exists(tmp.file("y.npy")));
}

TEST_F(Hostile, WriteErrorExitsOneAndLeavesNoFile) {
  // write() fails with EFBIG past a 4 KiB file size limit (SIGXFSZ ignored).
  std::string cmd = "trap '' XFSZ; ulimit -f 8; exec " + test::shell_quote(REPQ_BIN);
  for (const char* a : {"-q", "run"}) cmd += std::string(" ") + a;
  cmd += " " + test::shell_quote(model) + " -i " + test::shell_quote(input) + " -o " +
         test::shell_quote(tmp.file("out/y.npy"));
  fs::create_directories(tmp.file("out"));
  const auto r = test::run_command(cmd);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("y.npy: write failed: File too large"), std::string::npos) << r.err;
  EXPECT_EQ(listing(tmp.file("out")), "");  // no partial file, no temporary file
}

TEST_F(Hostile, WriteToDevFullExitsOne) {
  const auto r = test::run_repq({"run", model, "-i", input, "-o", "/dev/full"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("repq: error: /dev/full: write failed: No space left on device"),
            std::string::npos) << r.err;
  EXPECT_TRUE(fs::is_character_file("/dev/full"));
}

TEST_F(Hostile, OutputEqualToInputRefused) {
  const auto r = test::run_repq({"run", model, "-i", input, "-o", input});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("-o names an input file"), std::string::npos) << r.err;
}

// The input guard (repq::install_cli_safety() in main.cpp) refuses -o naming the model.
TEST_F(Hostile, OutputEqualToTheModelRefused) {
  const auto before = fs::file_size(model);
  const auto r = test::run_repq({"run", model, "-i", input, "-o", model});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(model + ": refused: it is an input of this command"), std::string::npos)
      << r.err;
  EXPECT_EQ(fs::file_size(model), before);
}

// Paths need not be UTF-8 (Linux file names are bytes): --json replaces the invalid bytes
// with U+FFFD instead of failing with an internal error (nlohmann type_error 316).
TEST_F(Hostile, NonUtf8PathsInRunAndEvalJson) {
  const std::string out = tmp.file("y\xff.npy");
  auto r = test::run_repq({"run", model, "-i", input, "-o", out, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("y\xef\xbf\xbd.npy"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(out));

  const std::string net = tmp.file("colour.onnx");
  test::write_onnx_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
net (float[N,3,4,4] input) => (float[N,3] scores)
{ p = GlobalAveragePool (input)  scores = Flatten (p) }
)", net);
  const std::string data = tmp.file("data\xfe");
  fs::create_directories(data + "/0_red");
  write_bytes(data + "/0_red/a.png",
              data::encode_png(data::Image{4, 4, 3, std::vector<uint8_t>(48, 200)}));
  r = test::run_repq({"eval", net, "--data", data, "--labels", "folders", "--preset", "none",
                      "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("data\xef\xbf\xbd"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"samples\": 1"), std::string::npos) << r.out;
}

// An error of a model while running images names the model and the images:
// "<model>: <image> | <first> .. <last> (batch of N): <problem>" (the wording of calibration).
TEST_F(Hostile, ModelErrorsNameTheModelAndTheImages) {
  fs::create_directory(tmp.file("imgs"));
  const std::string png = data::encode_png(data::Image{8, 8, 3, std::vector<uint8_t>(192, 7)});
  for (const char* f : {"a.png", "b.png", "c.png"}) write_bytes(tmp.file("imgs/") + f, png);
  const std::string imgs = tmp.file("imgs"), a = imgs + "/a.png", c = imgs + "/c.png";
  const std::string grey = tmp.file("grey.onnx"), rgb8 = tmp.file("rgb8.onnx"), erf = tmp.file("erf.onnx");
  test::write_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[N,1,8,8] input) => (float y) { y = Relu (input) })", grey);
  test::write_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[N,3,8,8] input) => (float y) { y = Relu (input) })", rgb8);
  test::write_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[N,3,8,8] input) => (float y) { y = Erf (input) })", erf);
  const std::vector<std::string> eval = {"eval", "--data", imgs, "--preset", "none"};
  const auto with = [](std::vector<std::string> v, const std::vector<std::string>& more) {
    v.insert(v.end(), more.begin(), more.end());
    return v;
  };
  // A 32x32 model fed 8x8 images: the batch, then (--batch 1) the first image alone.
  expect_refused(with(eval, {model}), model,
                 a + " .. " + c + " (batch of 3): input 'input' has shape [3,3,8,8]; the model "
                 "expects float32[N,3,32,32]");
  expect_refused(with(eval, {model, "--batch", "1"}), model, a + ": input 'input' has shape [1,3,8,8]");
  // A grey model fed RGB images.
  expect_refused(with(eval, {grey, "--batch", "2"}), grey,
                 a + " .. " + imgs + "/b.png (batch of 2): input 'input' has shape [2,3,8,8]; the "
                 "model expects float32[N,1,8,8]");
  // The reference model's error names the reference.
  expect_refused(with(eval, {rgb8, "--ref", model}), model, a + " .. " + c + " (batch of 3): input 'input'");
  // An op the executor lacks: the model is named (before: the node only).
  expect_refused(with(eval, {erf}), erf, "node 'y' (Erf): op is not supported by repq's executor");
  // repq run: the model and the input file.
  const std::vector<std::string> run = {"run", "--preset", "none", "-o", tmp.file("y.npy"), "-i", a};
  expect_refused(with(run, {model}), model, a + ": input 'input' has shape [1,3,8,8]; the model expects "
                 "float32[N,3,32,32]");
  expect_refused(with(run, {erf}), erf, "node 'y' (Erf): op is not supported by repq's executor");
  EXPECT_FALSE(fs::exists(tmp.file("y.npy")));
}

// A 3x3 conv of stride S then a 3x3 conv fold into one kernel of 2S+3 taps per axis: over
// --max-kernel (default 64) the chain is left alone and listed, quickly (S = 2000 took 10 s and
// 1 GB before the limit).
TEST_F(Hostile, FuseLeavesHugeComposedKernelsUnfolded) {
  const auto chain = [&](const std::string& stride) {
    const std::string path = tmp.file("chain" + stride + ".onnx");
    test::write_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[1,1,9000,9000] x) => (float z) <float[1,1,3,3] a, float[1,1,3,3] b>
{
  m = Conv <kernel_shape = [3,3], strides = [)" + stride + "," + stride + R"(]> (x, a)
  z = Conv <kernel_shape = [3,3]> (m, b)
})", path);
    return path;
  };
  const std::string big = chain("2000"), small = chain("1");
  auto r = test::run_repq({"fuse", big, "-o", tmp.file("f.onnx")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Folded 0 blocks"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'z' after 'm': the composed kernel would be 4003x4003, over the limit of 64 taps per "
                       "axis"),
            std::string::npos)
      << r.out;
  EXPECT_LT(fs::file_size(tmp.file("f.onnx")), 1000u);
  // 1 + 2 + 2 = 5 taps: folded by default, not with --max-kernel 4.
  r = test::run_repq({"fuse", small, "--dry-run"});
  EXPECT_NE(r.out.find("Would fold 1 block"), std::string::npos) << r.out;
  r = test::run_repq({"fuse", small, "--dry-run", "--max-kernel", "4"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("the composed kernel would be 5x5, over the limit of 4 taps per axis"), std::string::npos)
      << r.out;
}

}  // namespace
}  // namespace repq
