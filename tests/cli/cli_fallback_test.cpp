// repq quantize --fallback auto with the search options: --fallback-criterion, --fallback-margin
// and --method gptq (the model written equals `quantize --method gptq --exclude <kept>`).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "repq/common/atomic_file.h"
#include "support/test_util.h"

namespace repq {
namespace {

using test::run_repq;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string models() { return test::source_dir() + "/models"; }
std::string mobileone() { return models() + "/mobileone/mobileone.train.onnx"; }

std::vector<std::string> quantize_args(const std::string& out, std::vector<std::string> extra) {
  std::vector<std::string> a = {"quantize", mobileone(), "--calib", models() + "/data/fashion_mnist/calib",
                                "-o", out, "--threads", "2", "--num-calib", "8", "--preset", "none",
                                "--color", "grey", "--mean", "0.2860", "--std", "0.3530"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

TEST(CliFallback, GptqWithKlCriterionAndMarginEqualsExclude) {
  test::TempDir tmp;
  const std::string fb = tmp.file("fb.onnx"), ex = tmp.file("ex.onnx");
  const auto r = run_repq(quantize_args(fb, {"--method", "gptq", "--fallback", "auto", "--min-agreement", "1",
                                             "--fallback-criterion", "kl", "--fallback-margin", "0.95",
                                             "--fallback-candidates", "1", "--json"}));
  ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 3) << r.err;
  const auto j = nlohmann::json::parse(r.out)["fallback"];
  EXPECT_EQ(j["criterion"], "kl");
  EXPECT_EQ(j["margin_ratio"], 0.95);
  ASSERT_EQ(j["margin_agreement"].size(), j["agreement"].size());
  ASSERT_EQ(j["kl"].size(), j["agreement"].size());
  EXPECT_LT(j["margin_agreement"][0].get<double>(), 1.0);  // the stricter rule misses at first
  EXPECT_EQ(j["reached"], j["margin_agreement"].back().get<double>() >= 1.0);
  EXPECT_EQ(r.exit_code, j["reached"] ? 0 : 3);
  ASSERT_FALSE(j["kept_float"].empty());
  std::string kept;
  for (const auto& k : j["kept_float"]) kept += (kept.empty() ? "" : ",") + k["layer"].get<std::string>();
  const auto q = run_repq(quantize_args(ex, {"--method", "gptq", "--exclude", kept}));
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_EQ(read_file(fb), read_file(ex)) << kept;
  const auto bad = run_repq(quantize_args(tmp.file("bad.onnx"), {"--fallback", "auto", "--fallback-criterion", "loss"}));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(contains(bad.err, "--fallback-criterion")) << bad.err;
}

}  // namespace
}  // namespace repq
