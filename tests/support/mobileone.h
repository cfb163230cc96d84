// MobileOne-S0 for tests: the ONNX model built from ../shared by repq-make-mobileone, its
// reference input (apple.bin) and reference logits (vector.txt).
#pragma once

#include <string>
#include <vector>

#include "repq/ir/tensor.h"

namespace repq::test {

// The shared model folder (../shared/models/mobileone_s0), or "" when ../shared is absent.
std::string mobileone_dir();

// Builds the model once per build tree into <build>/models/mobileone_s0.onnx (symbolic batch)
// by running <build>/bin/repq-make-mobileone, and returns its path; again when the tool is
// newer than the file. Safe with several test processes at once (the tool writes atomically).
// Returns "" when ../shared is absent; throws std::runtime_error when the tool fails.
std::string mobileone_onnx_path();

// apple.bin: float32 [1,3,224,224], already normalized.
Tensor mobileone_apple_input();
// vector.txt: the 1000 reference logits for apple.bin.
std::vector<float> mobileone_reference_logits();

// Skips the current test when ../shared is absent, otherwise sets `path` to the model.
#define REPQ_REQUIRE_MOBILEONE(path)                                                      \
  REPQ_REQUIRE_SHARED();                                                                  \
  const std::string path = ::repq::test::mobileone_onnx_path();                           \
  ASSERT_FALSE(path.empty())

}  // namespace repq::test
