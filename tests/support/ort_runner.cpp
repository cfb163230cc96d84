#include "support/ort_runner.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "repq/data/npy.h"
#include "repq/ir/onnx_io.h"
#include "repq/runtime/executor.h"
#include "support/test_util.h"

namespace repq::test {

namespace fs = std::filesystem;

namespace {

fs::path ort_dir() { return fs::path(source_dir()) / "tools" / "ort"; }

// "" when ONNX Runtime can run, otherwise why not. Computed once.
const std::string& missing_reason() {
  static std::once_flag once;
  static std::string reason;
  std::call_once(once, [] {
    if (!fs::is_directory(ort_dir() / "node_modules" / "onnxruntime-node")) {
      reason = (ort_dir() / "node_modules" / "onnxruntime-node").string() + " is not installed";
      return;
    }
    const auto r = run_command("node --version");
    if (r.exit_code != 0) reason = "'node' does not run (exit " + std::to_string(r.exit_code) + ")";
  });
  return reason;
}

}  // namespace

bool ort_available() { return missing_reason().empty(); }
std::string ort_missing_reason() { return missing_reason(); }

bool ort_required() {
  const char* v = std::getenv("REPQ_REQUIRE_ORT");
  return v && std::string(v) == "1";
}

std::map<std::string, Tensor> ort_run(const std::string& model,
                                      const std::map<std::string, Tensor>& inputs,
                                      const OrtRunOptions& opts) {
  TempDir tmp;
  std::string cmd = "node " + shell_quote((ort_dir() / "ort_run.js").string()) + " " +
                    shell_quote(model) + " --float32-outputs --level " + shell_quote(opts.level) +
                    " --threads " + std::to_string(opts.threads) + " --out-dir " +
                    shell_quote(tmp.file("out"));
  if (!opts.optimized_model_path.empty())
    cmd += " --optimized-model " + shell_quote(opts.optimized_model_path);
  int i = 0;
  for (const auto& [name, t] : inputs) {
    const std::string file = tmp.file("input_" + std::to_string(i++) + ".npy");
    if (t.dtype() != DType::kFloat32 && t.dtype() != DType::kUInt8)
      throw std::runtime_error("ort_run: input '" + name + "' is " + dtype_name(t.dtype()) +
                               "; only float32 and uint8 inputs are supported");
    data::write_npy(file, t);
    cmd += " --input " + shell_quote(name + "=" + file);
  }
  const CommandResult r = run_command(cmd);
  if (r.exit_code != 0)
    throw std::runtime_error("ONNX Runtime failed on " + model + " (exit " +
                             std::to_string(r.exit_code) + "): " + r.err);
  std::map<std::string, Tensor> out;
  // The report is the last line of stdout.
  std::string line = r.out;
  while (!line.empty() && line.back() == '\n') line.pop_back();
  line = line.substr(line.find_last_of('\n') + 1);
  const auto report = nlohmann::json::parse(line);
  for (const auto& o : report.at("outputs"))
    out[o.at("name").get<std::string>()] = data::read_npy(o.at("file").get<std::string>());
  return out;
}

// ---- cases ----

void PrintTo(const OrtCase& c, std::ostream* os) { *os << c.name; }

std::string ort_case_name(const ::testing::TestParamInfo<OrtCase>& info) { return info.param.name; }

namespace {
std::vector<OrtCase>& case_registry() {
  static std::vector<OrtCase> cases;
  return cases;
}

uint32_t name_seed(const std::string& s) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}
}  // namespace

int register_ort_cases(const std::vector<OrtCase>& cases) {
  auto& all = case_registry();
  all.insert(all.end(), cases.begin(), cases.end());
  return static_cast<int>(cases.size());
}

const std::vector<OrtCase>& registered_ort_cases() { return case_registry(); }

std::map<std::string, Tensor> random_inputs(
    const Model& m, uint32_t seed, const std::map<std::string, std::pair<float, float>>& ranges,
    int64_t unknown_dim) {
  std::map<std::string, Tensor> out;
  for (const ValueInfo* vi : m.graph.runtime_inputs()) {
    if (vi->elem_type != DType::kFloat32)
      throw std::runtime_error("random_inputs: input '" + vi->name + "' is not float32");
    Shape shape = vi->shape();
    for (auto& d : shape)
      if (d < 0) d = unknown_dim;
    const auto it = ranges.find(vi->name);
    const auto [lo, hi] = it == ranges.end() ? std::pair{-1.0f, 1.0f} : it->second;
    const auto n = static_cast<size_t>(shape_numel(shape));
    out[vi->name] = Tensor::from_vector<float>(shape, random_floats(n, seed++, lo, hi));
  }
  return out;
}

::testing::AssertionResult tensors_close(const Tensor& got, const Tensor& want, double rel_tol) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure()
           << "shape " << shape_str(got.shape()) << ", want " << shape_str(want.shape());
  const Tensor g = got.cast(DType::kFloat32), w = want.cast(DType::kFloat32);
  const auto gs = g.span<float>(), ws = w.span<float>();
  double max_ref = 0;
  for (float v : ws) max_ref = std::max(max_ref, std::fabs(double(v)));
  const bool is_float = got.dtype() == DType::kFloat32 || got.dtype() == DType::kFloat64 ||
                        got.dtype() == DType::kFloat16;
  const bool is_8bit = got.dtype() == DType::kInt8 || got.dtype() == DType::kUInt8;
  const double tol = is_float ? rel_tol * max_ref + 1e-6 : (is_8bit ? 1.0 : 0.0);
  double worst = 0;
  size_t worst_i = 0, bad = 0;
  for (size_t i = 0; i < gs.size(); ++i) {
    const double d = std::isnan(gs[i]) != std::isnan(ws[i]) ? INFINITY
                     : std::isnan(gs[i])                    ? 0.0
                                                            : std::fabs(double(gs[i]) - ws[i]);
    if (d > tol) ++bad;
    if (d > worst) worst = d, worst_i = i;
  }
  if (bad == 0) return ::testing::AssertionSuccess() << "max abs diff " << worst;
  return ::testing::AssertionFailure()
         << bad << " of " << gs.size() << " values differ by more than " << tol
         << "; worst at flat index " << worst_i << ": " << gs[worst_i] << " vs ORT "
         << ws[worst_i] << " (max |ORT| " << max_ref << ", dtype " << dtype_name(got.dtype())
         << ")";
}

void check_case_against_ort(const OrtCase& c) {
  TempDir tmp;
  const std::string file = tmp.file(c.name + ".onnx");
  write_onnx_text(c.text, file);
  const Model m = load_model(file);
  const auto inputs = random_inputs(m, name_seed(c.name), c.ranges);
  OrtRunOptions ort_opts;
  ort_opts.level = "disabled";
  const auto want = ort_run(file, inputs, ort_opts);
  for (int threads : {1, 3}) {
    Executor ex(m, ExecutorOptions{threads});
    const auto got = ex.run(inputs);
    for (const ValueInfo& o : m.graph.outputs) {
      const auto g = got.find(o.name);
      const auto w = want.find(o.name);
      if (g == got.end() || w == want.end()) {
        ADD_FAILURE() << "output '" << o.name << "' missing from "
                      << (g == got.end() ? "repq" : "ORT");
        continue;
      }
      EXPECT_TRUE(tensors_close(g->second, w->second, c.rel_tol))
          << "output '" << o.name << "', " << threads << " thread(s)";
    }
  }
}

}  // namespace repq::test
