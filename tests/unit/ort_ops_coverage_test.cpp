// The executor-vs-ONNX-Runtime op cases (instantiated by the ort_ops_*_test.cpp files), and the
// check that every op the executor supports has at least one case.
#include <onnx/defs/schema.h>

#include <set>

#include "repq/runtime/executor.h"
#include "support/ort_runner.h"

namespace repq::test {
namespace {

TEST_P(OrtOps, MatchesOrt) {
  REPQ_REQUIRE_ORT();
  check_case_against_ort(GetParam());
}

TEST(OrtOpCoverage, EveryExecutorOpHasACase) {
  std::set<std::string> covered;
  for (const OrtCase& c : registered_ort_cases()) covered.insert(c.ops.begin(), c.ops.end());
  ASSERT_GT(registered_ort_cases().size(), 50u);
  std::set<std::string> onnx_ops;
  for (const auto& schema : onnx::OpSchemaRegistry::get_all_schemas())
    if (schema.domain().empty()) onnx_ops.insert(schema.Name());
  size_t supported = 0;
  for (const std::string& op : onnx_ops) {
    if (!executor_supports("", op)) continue;
    ++supported;
    EXPECT_TRUE(covered.count(op)) << "the executor supports " << op
                                   << " but no ort_ops_*_test.cpp case checks it against ONNX Runtime";
  }
  EXPECT_GT(supported, 30u);
  for (const std::string& op : covered)
    EXPECT_TRUE(executor_supports("", op)) << "a case checks " << op << ", which the executor lacks";
}

TEST(OrtOpCoverage, CaseNamesAreUnique) {
  std::set<std::string> names;
  for (const OrtCase& c : registered_ort_cases())
    EXPECT_TRUE(names.insert(c.name).second) << "duplicate case name " << c.name;
}

}  // namespace
}  // namespace repq::test
