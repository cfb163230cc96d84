// Shared helpers for repq's tests: temporary folders, running the CLI, building models.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "repq/ir/graph.h"

namespace repq::test {

// A fresh folder under the build tree, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs a shell command line, capturing stdout and stderr.
CommandResult run_command(const std::string& command_line);
// Runs the repq binary of this build with the given arguments (each shell-quoted).
CommandResult run_repq(const std::vector<std::string>& args);
std::string shell_quote(const std::string& s);

// Parses ONNX's textual syntax (onnx::OnnxParser), e.g.
//   <ir_version: 8, opset_import: ["" : 13]> agraph (float[1,3,8,8] x) => (float[...] y) {...}
// into the IR. Initializers may be given in the text; float initializers declared without
// values ("<float[4,4,3,3] w>") get deterministic random values in [-1, 1).
Model parse_onnx_text(const std::string& text);
// The same, serialized as an ONNX file at `path`.
void write_onnx_text(const std::string& text, const std::string& path);

// Deterministic pseudo-random floats in [lo, hi).
std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f);

// Path to ../shared (from the build's configuration); empty when the folder is absent.
std::string shared_dir();
// Skips the current test with a clear message when ../shared is absent.
#define REPQ_REQUIRE_SHARED()                                                          \
  do {                                                                                 \
    if (::repq::test::shared_dir().empty())                                            \
      GTEST_SKIP() << "../shared (third-party models and images) is absent: skipped"; \
  } while (0)

std::string source_dir();
std::string build_dir();

}  // namespace repq::test
