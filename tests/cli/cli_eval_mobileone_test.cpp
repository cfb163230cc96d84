// Issue-level proof on real data: `repq eval` of Apple's MobileOne-S0 on the 500 ImageNet
// photos gives the top-1 / top-5 that the shared README reports (80.8 % / 94.4 %), and `repq
// run` reproduces the reference logits. Skipped without ../shared.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "repq/data/npy.h"
#include "support/mobileone.h"
#include "support/test_util.h"

namespace repq {
namespace {

TEST(CliEvalMobileOne, SlowImageNetSampleAccuracyMatchesReference) {
  REPQ_REQUIRE_MOBILEONE(model);
  const std::string data = test::shared_dir() + "/data/imagenet_sample";
  const auto r = test::run_repq({"eval", model, "--data", data + "/images", "--labels",
                                 data + "/labels.tsv", "--preset", "imagenet", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["samples"], 500);
  EXPECT_EQ(j["labelled"], 500);
  EXPECT_EQ(j["classes"], 1000);
  EXPECT_NEAR(j["top1"].get<double>(), 0.808, 1e-9);
  EXPECT_NEAR(j["top5"].get<double>(), 0.944, 1e-9);
}

TEST(CliEvalMobileOne, RunReproducesReferenceLogits) {
  REPQ_REQUIRE_MOBILEONE(model);
  test::TempDir tmp;
  data::write_npy(tmp.file("apple.npy"), test::mobileone_apple_input());
  const auto r = test::run_repq({"run", model, "--input", tmp.file("apple.npy"), "-o",
                                 tmp.file("logits.npy")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Tensor y = data::read_npy(tmp.file("logits.npy"));
  const auto ref = test::mobileone_reference_logits();
  ASSERT_EQ(y.numel(), static_cast<int64_t>(ref.size()));
  double max_diff = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(y.data<float>()[i] - ref[i])));
  EXPECT_LT(max_diff, 1e-4);
}

}  // namespace
}  // namespace repq
