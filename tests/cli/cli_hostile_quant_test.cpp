// Hostile and broken inputs for `repq quantize` and `repq report`: each case's message and exit
// code, and never an output or temporary file after a failure (docs/hostile-inputs.md).
// Ctrl-C during calibration: the child is sent SIGINT mid-calibration and leaves nothing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "repq/common/atomic_file.h"
#include "repq/data/image.h"
#include "repq/data/npy.h"
#include "repq/ir/onnx_io.h"
#include "support/test_util.h"

namespace repq {
namespace {

namespace fs = std::filesystem;

// Conv 3->4 + Relu + GlobalAveragePool: scores of 4 classes from 8x8 RGB images.
const char* kTiny = R"(
<ir_version: 8, opset_import: ["" : 13]>
net (float[N,3,8,8] input) => (float[N,4] scores)
<float[4,3,3,3] w, float[4] b>
{ c = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (input, w, b)  r = Relu (c)
  p = GlobalAveragePool (r)  scores = Flatten (p) }
)";

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string png(int w, int h, int c) {
  data::Image img{w, h, c, {}};
  for (int i = 0; i < w * h * c; ++i) img.pixels.push_back(static_cast<uint8_t>(i * 37));
  return data::encode_png(img);
}

std::string listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : " ") + n;
  return s;
}

struct HostileQuant : ::testing::Test {
  test::TempDir tmp;
  std::string model, calib, out, plan;
  void SetUp() override {
    model = tmp.file("net.onnx");
    calib = tmp.file("calib");
    out = tmp.file("out/q.onnx");
    plan = tmp.file("out/plan.json");
    test::write_onnx_text(kTiny, model);
    fs::create_directories(calib);
    for (int i = 0; i < 4; ++i) write_bytes(calib + "/" + std::to_string(i) + ".png", png(8, 8, 3));
    fs::create_directories(tmp.file("out"));
  }
  std::vector<std::string> quantize(const std::string& data, const std::string& o,
                                    std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {"-q", "quantize", model, "--calib", data, "-o", o,
                                  "--preset", "none", "--threads", "1"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  // Exit code `code`, one line on stderr starting "repq: error: <file>: " and containing
  // `needle`; the out/ folder empty afterwards (no output, no plan, no temporary file).
  void expect_refused(const std::vector<std::string>& args, const std::string& file,
                      const std::string& needle, int code = 2) {
    const auto r = test::run_repq(args);
    EXPECT_EQ(r.exit_code, code) << r.err;
    EXPECT_EQ(r.err.rfind("repq: error: " + file + ": ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(listing(tmp.file("out")), "") << r.err;
  }
};

TEST_F(HostileQuant, CorruptAndUnsupportedModels) {
  const std::string good = read_file(model);
  write_bytes(tmp.file("cut.onnx"), good.substr(0, good.size() / 2));
  auto args = quantize(calib, out);
  args[2] = tmp.file("cut.onnx");
  expect_refused(args, tmp.file("cut.onnx"), "truncated");
  // An op the executor cannot run (calibration needs it).
  test::write_onnx_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
net (float[N,3,8,8] input) => (float[N,3,8,8] y) { y = Erf (input) }
)", tmp.file("erf.onnx"));
  args[2] = tmp.file("erf.onnx");
  const auto r = test::run_repq(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  // One line naming the model file, then the node.
  EXPECT_NE(r.err.find("repq: error: " + tmp.file("erf.onnx") + ": node 'y' (Erf)"), std::string::npos)
      << r.err;
  EXPECT_EQ(listing(tmp.file("out")), "");
  const auto rep = test::run_repq({"report", tmp.file("erf.onnx"), "--calib", calib});
  EXPECT_EQ(rep.exit_code, 2) << rep.err;
  EXPECT_NE(rep.err.find("repq: error: " + tmp.file("erf.onnx") + ": node 'y' (Erf)"), std::string::npos)
      << rep.err;
}

TEST_F(HostileQuant, EmptyOrMissingCalibrationFolder) {
  fs::create_directories(tmp.file("empty"));
  write_bytes(tmp.file("empty/notes.txt"), "no images here\n");
  expect_refused(quantize(tmp.file("empty"), out), tmp.file("empty"), "no images or .npy files found");
  expect_refused(quantize(tmp.file("missing"), out), tmp.file("missing"), "");
}

TEST_F(HostileQuant, ImagesOfTheWrongSizeOrChannels) {
  // A 16x16 image among 8x8 ones: refused naming it.
  write_bytes(calib + "/z_big.png", png(16, 16, 3));
  expect_refused(quantize(calib, out), calib + "/z_big.png", "sample shape [3,16,16] differs from [3,8,8]");
  // A corrupt image: named; --skip-bad goes on without it.
  fs::remove(calib + "/z_big.png");
  write_bytes(calib + "/z_bad.png", png(8, 8, 3).substr(0, 40));
  expect_refused(quantize(calib, out), calib + "/z_bad.png", "corrupt or truncated");
  auto skip = quantize(calib, out, {"--skip-bad"});
  EXPECT_EQ(test::run_repq(skip).exit_code, 0);
  EXPECT_TRUE(fs::exists(out));
  fs::remove(out);
  // A greyscale image in an RGB set is converted (as PIL's convert("RGB")): accepted.
  fs::remove(calib + "/z_bad.png");
  write_bytes(calib + "/z_grey.png", png(8, 8, 1));
  EXPECT_EQ(test::run_repq(quantize(calib, out)).exit_code, 0);
  fs::remove(out);
  // Greyscale preprocessing for an RGB model: the executor refuses the shape.
  const auto r = test::run_repq(quantize(calib, out, {"--color", "grey"}));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("has shape [5,1,8,8]; the model expects float32[N,3,8,8]"), std::string::npos)
      << r.err;
  EXPECT_EQ(listing(tmp.file("out")), "");
}

TEST_F(HostileQuant, BadPlanIn) {
  const std::string good_plan = tmp.file("plan.json");
  ASSERT_EQ(test::run_repq(quantize(calib, tmp.file("first.onnx"), {"--plan-out", good_plan})).exit_code, 0);
  const std::string text = read_file(good_plan);
  const auto with_plan = [&](const std::string& p) {
    return std::vector<std::string>{"-q", "quantize", model, "--plan-in", p, "-o", out};
  };
  write_bytes(tmp.file("cut.json"), text.substr(0, text.size() / 2));
  expect_refused(with_plan(tmp.file("cut.json")), tmp.file("cut.json"), "not a valid JSON plan");
  write_bytes(tmp.file("garbage.json"), std::string("\x89PNG\r\n\x1a\n\0\0", 10));
  expect_refused(with_plan(tmp.file("garbage.json")), tmp.file("garbage.json"), "not a valid JSON plan");
  write_bytes(tmp.file("empty.json"), "");
  expect_refused(with_plan(tmp.file("empty.json")), tmp.file("empty.json"), "");
  expect_refused(with_plan(model), model, "not a valid JSON plan");  // a model given as the plan
  // Valid JSON, another schema.
  write_bytes(tmp.file("other.json"), R"({"schema": "repq.report/1"})");
  expect_refused(with_plan(tmp.file("other.json")), tmp.file("other.json"), "");
  // A plan made for another model (other weights: another digest).
  auto m = test::parse_onnx_text(kTiny);  // the same deterministic weights, one bias changed
  m.graph.mutable_initializer("b")->mutable_data<float>()[0] += 1.0f;
  save_model(m, tmp.file("other.onnx"));
  auto args = with_plan(good_plan);
  args[2] = tmp.file("other.onnx");
  expect_refused(args, good_plan, "made for another model");
}

TEST_F(HostileQuant, OutputsThatCannotBeWritten) {
  // -o equal to the model: refused, the model unchanged.
  const std::string before = read_file(model);
  expect_refused(quantize(calib, model), model, "names the input model");
  EXPECT_EQ(read_file(model), before);
  // -o in a folder that does not exist.
  expect_refused(quantize(calib, tmp.file("nowhere/q.onnx")), tmp.file("nowhere/q.onnx"), "");
  EXPECT_FALSE(fs::exists(tmp.file("nowhere")));
  // /dev/full as the model or as the plan: exit 1, nothing else left.
  expect_refused(quantize(calib, "/dev/full"), "/dev/full", "write failed: No space left on device", 1);
  expect_refused(quantize(calib, out, {"--plan-out", "/dev/full"}), "/dev/full",
                 "write failed: No space left on device", 1);
}

TEST_F(HostileQuant, ReportRefusals) {
  const std::string good = read_file(model);
  write_bytes(tmp.file("cut.onnx"), good.substr(0, good.size() / 2));
  const auto report = [&](const std::string& m, std::vector<std::string> extra) {
    std::vector<std::string> a = {"report", m, "--calib", calib, "--preset", "none", "--threads", "1"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  expect_refused(report(tmp.file("cut.onnx"), {"-o", out}), tmp.file("cut.onnx"), "truncated");
  fs::create_directories(tmp.file("empty"));
  auto empty = report(model, {"-o", out});
  empty[3] = tmp.file("empty");
  expect_refused(empty, tmp.file("empty"), "no images or .npy files found");
  write_bytes(tmp.file("cut.json"), "{\"schema\": \"repq.plan/1\", \"model_dig");
  expect_refused(report(model, {"--plan-in", tmp.file("cut.json"), "-o", out}), tmp.file("cut.json"),
                 "not a valid JSON plan");
  expect_refused(report(model, {"-o", model}), model, "refused: it is an input of this command");
  EXPECT_EQ(read_file(model), good);
  expect_refused(report(model, {"-o", "/dev/full"}), "/dev/full", "write failed: No space left on device", 1);
}

// Two 3x3 convs of 64 channels on 256x256 inputs: about 5 GFLOP per sample, so calibrating
// on 16 samples takes seconds (more under sanitizers) and the signal lands in the middle.
const char* kHeavy = R"(
<ir_version: 8, opset_import: ["" : 13]>
net (float[N,3,256,256] input) => (float[N,64] scores)
<float[64,3,3,3] w1, float[64,64,3,3] w2>
{ a = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (input, w1)  r = Relu (a)
  b = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (r, w2)  s = Relu (b)
  p = GlobalAveragePool (s)  scores = Flatten (p) }
)";

// Ctrl-C during calibration: the process dies of SIGINT (after removing any temporary file)
// and leaves no output model, no plan and no temporary file.
TEST_F(HostileQuant, SigintDuringCalibrationLeavesNothing) {
  test::write_onnx_text(kHeavy, model);
  fs::remove_all(calib);
  fs::create_directories(calib);
  for (int i = 0; i < 16; ++i) {
    Tensor t(DType::kFloat32, {3, 256, 256});
    t.mutable_data<float>()[i] = 1.0f;
    data::write_npy(calib + "/" + std::to_string(i) + ".npy", t);
  }
  const std::vector<std::string> args = {REPQ_BIN, "-v", "quantize", model, "--calib", calib,
                                         "-o", out, "--plan-out", plan, "--threads", "1",
                                         "--num-calib", "0"};
  int err[2];
  ASSERT_EQ(::pipe(err), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(err[1], 2);
    ::close(err[0]);
    ::close(err[1]);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::_Exit(127);
  }
  ::close(err[1]);
  // Wait for the debug line written just before calibration starts (at most 60 s).
  std::string log;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (log.find("quantize: quant points") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{err[0], POLLIN, 0};
    if (::poll(&pfd, 1, 100) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(err[0], buf, sizeof buf);
    if (n <= 0) break;
    log.append(buf, static_cast<size_t>(n));
  }
  EXPECT_NE(log.find("quantize: quant points"), std::string::npos) << log;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // now inside calibration
  ::kill(pid, SIGINT);
  char buf[4096];
  for (ssize_t n; (n = ::read(err[0], buf, sizeof buf)) > 0;) log.append(buf, static_cast<size_t>(n));
  ::close(err[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_FALSE(log.find("quantize: calibration") != std::string::npos)
      << "calibration finished before the signal: the test proves nothing\n" << log;
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << "status " << status << "\n" << log;
  EXPECT_EQ(listing(tmp.file("out")), "");
}

}  // namespace
}  // namespace repq
