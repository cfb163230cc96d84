// repq's Executor vs ONNX Runtime on the real MobileOne-S0.
#include <algorithm>
#include <cmath>

#include "repq/ir/onnx_io.h"
#include "repq/runtime/executor.h"
#include "support/mobileone.h"
#include "support/ort_runner.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

// The apple image and a second, random image.
Tensor two_images() {
  const Tensor apple = mobileone_apple_input();
  std::vector<float> v(apple.span<float>().begin(), apple.span<float>().end());
  const auto noise = random_floats(3 * 224 * 224, 11, -2.0f, 2.0f);
  v.insert(v.end(), noise.begin(), noise.end());
  return Tensor::from_vector<float>({2, 3, 224, 224}, v);
}

TEST(OrtMobileOne, OrtReproducesTheReferenceLogits) {
  REPQ_REQUIRE_MOBILEONE(path);
  REPQ_REQUIRE_ORT();
  const auto out = ort_run(path, {{"input", mobileone_apple_input()}});
  const auto ref = mobileone_reference_logits();
  const auto got = out.at("logits").span<float>();
  ASSERT_EQ(got.size(), ref.size());
  double max_diff = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    max_diff = std::max(max_diff, std::fabs(double(got[i]) - ref[i]));
  std::printf("MobileOne-S0 ONNX Runtime vs vector.txt: max abs diff %.3g\n", max_diff);
  EXPECT_LT(max_diff, 1e-4);
}

class OrtMobileOneLevels : public ::testing::TestWithParam<std::string> {};

TEST_P(OrtMobileOneLevels, ExecutorMatchesOrt) {
  REPQ_REQUIRE_MOBILEONE(path);
  REPQ_REQUIRE_ORT();
  const Tensor x = two_images();
  OrtRunOptions opts;
  opts.level = GetParam();
  opts.threads = 2;
  const auto want = ort_run(path, {{"input", x}}, opts);
  Executor ex(load_model(path));
  const auto got = ex.run({{"input", x}});
  const auto result = tensors_close(got.at("logits"), want.at("logits"), 1e-4);
  std::printf("MobileOne-S0 executor vs ONNX Runtime (level %s): %s\n", GetParam().c_str(),
              result.message());
  EXPECT_TRUE(result);
}

INSTANTIATE_TEST_SUITE_P(OrtMobileOne, OrtMobileOneLevels, ::testing::Values("all", "disabled"));

}  // namespace
}  // namespace repq::test
