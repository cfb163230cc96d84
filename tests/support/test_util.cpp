#include "support/test_util.h"

#include <onnx/defs/parser.h>
#include <onnx/onnx_pb.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <fstream>
#include <random>
#include <sstream>

#include "repq/ir/onnx_io.h"

namespace repq::test {

namespace fs = std::filesystem;

namespace {
std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
std::atomic<int> g_counter{0};
}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("REPQ_TEST_TMP");
  fs::path root = base ? fs::path(base) : fs::path(REPQ_BUILD_DIR) / "test-tmp";
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "tmp";
  for (auto& c : name)
    if (c == '/') c = '_';
  path_ = root / (name + "." + std::to_string(::getpid()) + "." + std::to_string(g_counter++));
  fs::remove_all(path_);
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

CommandResult run_command(const std::string& command_line) {
  TempDir tmp;
  const auto out = tmp.path() / "stdout", err = tmp.path() / "stderr";
  const std::string cmd = command_line + " >" + shell_quote(out.string()) + " 2>" +
                          shell_quote(err.string()) + " </dev/null";
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

CommandResult run_repq(const std::vector<std::string>& args) {
  std::string cmd = shell_quote(REPQ_BIN);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  return run_command(cmd);
}

namespace {
onnx::ModelProto parse_text_proto(const std::string& text) {
  onnx::ModelProto mp;
  onnx::OnnxParser parser(text.c_str());
  auto status = parser.Parse(mp);
  if (!status.IsOK()) throw std::runtime_error("bad ONNX text in test: " + status.ErrorMessage());
  // Initializers declared without values ("<float[4,4,3,3] w>") land in value_info: give them
  // deterministic random values in [-1, 1) (seeded by their position).
  auto* g = mp.mutable_graph();
  std::set<std::string> produced;
  for (const auto& n : g->node())
    for (const auto& o : n.output()) produced.insert(o);
  google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> kept;
  uint32_t seed = 1;
  for (const auto& vi : g->value_info()) {
    const auto& tt = vi.type().tensor_type();
    if (produced.count(vi.name()) || tt.elem_type() != onnx::TensorProto::FLOAT ||
        !tt.has_shape()) {
      *kept.Add() = vi;
      continue;
    }
    auto* t = g->add_initializer();
    t->set_name(vi.name());
    t->set_data_type(onnx::TensorProto::FLOAT);
    size_t n = 1;
    for (const auto& d : tt.shape().dim()) {
      t->add_dims(d.dim_value());
      n *= static_cast<size_t>(d.dim_value());
    }
    for (float v : random_floats(n, seed++)) t->add_float_data(v);
  }
  g->mutable_value_info()->Swap(&kept);
  return mp;
}
}  // namespace

Model parse_onnx_text(const std::string& text) {
  return parse_model(parse_text_proto(text).SerializeAsString(), "<test model>");
}

void write_onnx_text(const std::string& text, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  out << parse_text_proto(text).SerializeAsString();
}

std::vector<float> random_floats(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::string shared_dir() {
  const fs::path p(REPQ_SHARED_DIR);
  return fs::is_directory(p / "models") ? p.string() : std::string();
}
std::string source_dir() { return REPQ_SOURCE_DIR; }
std::string build_dir() { return REPQ_BUILD_DIR; }

}  // namespace repq::test
