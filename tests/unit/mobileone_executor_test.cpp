// repq's Executor on the real MobileOne-S0: it reproduces the reference logits of vector.txt.
#include <algorithm>
#include <cmath>

#include "repq/ir/onnx_io.h"
#include "repq/runtime/executor.h"
#include "support/mobileone.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

TEST(MobileOneExecutor, ReproducesTheReferenceLogits) {
  REPQ_REQUIRE_MOBILEONE(path);
  Executor ex(load_model(path));
  const auto out = ex.run({{"input", mobileone_apple_input()}});
  const Tensor& logits = out.at("logits");
  ASSERT_EQ(logits.shape(), (Shape{1, 1000}));
  const auto ref = mobileone_reference_logits();
  const auto got = logits.span<float>();
  double max_diff = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    max_diff = std::max(max_diff, std::fabs(double(got[i]) - ref[i]));
  RecordProperty("max_abs_diff", std::to_string(max_diff));
  std::printf("MobileOne-S0 executor vs vector.txt: max abs diff %.3g\n", max_diff);
  EXPECT_LT(max_diff, 1e-4);
  EXPECT_EQ(std::max_element(got.begin(), got.end()) - got.begin(), 957);
}

TEST(MobileOneExecutor, BatchRowsMatchSingleImages) {
  REPQ_REQUIRE_MOBILEONE(path);
  Executor ex(load_model(path), ExecutorOptions{2});
  const Tensor apple = mobileone_apple_input();
  const auto noise = random_floats(3 * 224 * 224, 5, -2.0f, 2.0f);
  std::vector<float> both(apple.span<float>().begin(), apple.span<float>().end());
  both.insert(both.end(), noise.begin(), noise.end());
  const auto batch = ex.run({{"input", Tensor::from_vector<float>({2, 3, 224, 224}, both)}});
  const auto one = ex.run({{"input", apple}});
  const auto b = batch.at("logits").span<float>();
  const auto o = one.at("logits").span<float>();
  ASSERT_EQ(b.size(), 2000u);
  for (size_t i = 0; i < 1000; ++i) ASSERT_NEAR(b[i], o[i], 1e-4) << "logit " << i;
}

}  // namespace
}  // namespace repq::test
