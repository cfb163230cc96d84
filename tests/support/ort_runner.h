// ONNX Runtime as a reference for repq's executor: runs a model file through onnxruntime-node
// (tools/ort/ort_run.js) with inputs and outputs passed as .npy files in a temporary folder.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "repq/ir/graph.h"

namespace repq::test {

struct OrtRunOptions {
  std::string level = "all";  // graph optimization level: disabled, basic, extended, all
  int threads = 1;
  std::string optimized_model_path;  // when set, ORT writes its optimized graph there
};

// True when `node` runs and tools/ort/node_modules/onnxruntime-node is installed
// (cd tools/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci). Checked once per process.
bool ort_available();

// Runs `model` (an .onnx file) on CPU and returns every graph output by name, in its own
// dtype. Throws std::runtime_error with ORT's message when the run fails.
std::map<std::string, Tensor> ort_run(const std::string& model,
                                      const std::map<std::string, Tensor>& inputs,
                                      const OrtRunOptions& opts = {});

// Skips the current test when ONNX Runtime is not installed; fails it instead when the
// environment sets REPQ_REQUIRE_ORT=1 (CI does, so the cross-checks cannot silently vanish).
#define REPQ_REQUIRE_ORT()                                                                  \
  do {                                                                                      \
    if (!::repq::test::ort_available()) {                                                   \
      if (::repq::test::ort_required())                                                     \
        FAIL() << "REPQ_REQUIRE_ORT=1 but ONNX Runtime is not available: "                  \
               << ::repq::test::ort_missing_reason();                                       \
      GTEST_SKIP() << "ONNX Runtime cross-check skipped: "                                  \
                   << ::repq::test::ort_missing_reason()                                    \
                   << " (install: cd tools/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci)";   \
    }                                                                                       \
  } while (0)

bool ort_required();
// Why ort_available() is false ("" when it is true).
std::string ort_missing_reason();

// ---- Executor vs ONNX Runtime on small models (tests/unit/ort_ops_*_test.cpp) ----

// One small model in ONNX text syntax (see parse_onnx_text), run on random inputs.
struct OrtCase {
  std::string name;              // a test name: letters, digits, '_'
  std::vector<std::string> ops;  // the op types it checks
  std::string text;
  // Value range of some float inputs (default [-1, 1)), e.g. a divisor kept away from 0.
  std::map<std::string, std::pair<float, float>> ranges = {};
  double rel_tol = 1e-4;  // of the largest |value| of each output
};
void PrintTo(const OrtCase& c, std::ostream* os);
std::string ort_case_name(const ::testing::TestParamInfo<OrtCase>& info);

// Each test file registers its cases (for the check that every executor op has one).
int register_ort_cases(const std::vector<OrtCase>& cases);
const std::vector<OrtCase>& registered_ort_cases();

// Deterministic random values for every runtime input of `m` (float32 only); unknown or
// symbolic dims become `unknown_dim`.
std::map<std::string, Tensor> random_inputs(
    const Model& m, uint32_t seed,
    const std::map<std::string, std::pair<float, float>>& ranges = {}, int64_t unknown_dim = 2);

// `got` (any numeric dtype) equals `want` within rel_tol * max|want| + 1e-6, same shape.
// Integer outputs must be equal, except 8-bit ones which may differ by 1 (rounding ties).
::testing::AssertionResult tensors_close(const Tensor& got, const Tensor& want, double rel_tol);

// Writes the case's model, runs it with repq's Executor (1 and 3 threads) and with ONNX
// Runtime (optimizations disabled, so each op's own kernel is the reference), and compares
// every output. Reports failures with gtest's EXPECT/ADD_FAILURE.
void check_case_against_ort(const OrtCase& c);

class OrtOps : public ::testing::TestWithParam<OrtCase> {};

}  // namespace repq::test
