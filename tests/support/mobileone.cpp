#include "support/mobileone.h"

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "support/test_util.h"

namespace repq::test {

namespace fs = std::filesystem;

std::string mobileone_dir() {
  const std::string shared = shared_dir();
  if (shared.empty()) return "";
  const fs::path dir = fs::path(shared) / "models" / "mobileone_s0";
  return fs::is_regular_file(dir / "layers.tsv") ? dir.string() : "";
}

std::string mobileone_onnx_path() {
  static std::mutex mu;
  std::lock_guard lock(mu);
  const std::string dir = mobileone_dir();
  if (dir.empty()) return "";
  const fs::path tool = fs::path(build_dir()) / "bin" / "repq-make-mobileone";
  const fs::path out = fs::path(build_dir()) / "models" / "mobileone_s0.onnx";
  if (!fs::exists(tool))
    throw std::runtime_error(tool.string() + " is missing: build the repq-make-mobileone target");
  std::error_code ec;
  if (fs::exists(out) && fs::last_write_time(out, ec) >= fs::last_write_time(tool, ec) && !ec)
    return out.string();
  fs::create_directories(out.parent_path());
  const auto r = run_command(shell_quote(tool.string()) + " " + shell_quote(dir) + " " +
                             shell_quote(out.string()));
  if (r.exit_code != 0)
    throw std::runtime_error("repq-make-mobileone failed (exit " + std::to_string(r.exit_code) +
                             "): " + r.err);
  return out.string();
}

Tensor mobileone_apple_input() {
  const fs::path p = fs::path(mobileone_dir()) / "apple.bin";
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in) throw std::runtime_error(p.string() + ": cannot read");
  return Tensor::from_bytes(DType::kFloat32, {1, 3, 224, 224}, ss.str());
}

std::vector<float> mobileone_reference_logits() {
  const fs::path p = fs::path(mobileone_dir()) / "vector.txt";
  std::ifstream in(p);
  if (!in) throw std::runtime_error(p.string() + ": cannot read");
  std::vector<float> v;
  float x = 0;
  while (in >> x) v.push_back(x);
  if (v.size() != 1000) throw std::runtime_error(p.string() + ": expected 1000 values");
  return v;
}

}  // namespace repq::test
