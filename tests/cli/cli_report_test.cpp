// repq report end to end on the bundled MobileOne-style model (train form) with the bundled
// Fashion-MNIST calibration images: every format and its schema (docs/report.md), the gates'
// exit codes and messages, --static without data, and bad inputs (exit 2).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "repq/report/format.h"
#include "support/test_util.h"

namespace repq {
namespace {

namespace fs = std::filesystem;
using test::run_repq;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

size_t count(const std::string& s, const std::string& part) {
  size_t n = 0;
  for (size_t p = s.find(part); p != std::string::npos; p = s.find(part, p + part.size())) ++n;
  return n;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string model() { return test::source_dir() + "/models/mobileone/mobileone.train.onnx"; }
std::string calib() { return test::source_dir() + "/models/data/fashion_mnist/calib"; }

// `repq report MODEL --calib ... --num-calib 16` with the models' preprocessing, then `extra`.
std::vector<std::string> report_args(const std::vector<std::string>& extra) {
  std::vector<std::string> a = {"-q",       "report",  model(),   "--calib", calib(),
                                "--num-calib", "16",   "--preset", "none",   "--color",
                                "grey",     "--mean",  "0.2860",  "--std",   "0.3530"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// One JSON report shared by the tests that only read it.
const nlohmann::json& json_report() {
  static const nlohmann::json j = [] {
    const auto r = run_repq(report_args({"--format", "json"}));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
  }();
  return j;
}

TEST(CliReport, JsonSchema) {
  const auto& j = json_report();
  ASSERT_TRUE(j.contains("layers")) << j.dump();
  EXPECT_EQ(j["schema"], "repq.report/1");
  EXPECT_EQ(j["method"], "minmax");
  EXPECT_EQ(j["static_only"], false);
  for (const char* k : {"model_path", "act_method", "weight_mode", "target", "summary", "worst"})
    EXPECT_TRUE(j.contains(k)) << k;
  const auto& s = j["summary"];
  EXPECT_EQ(s["samples"], 16);
  ASSERT_TRUE(s["output_sqnr"].is_number()) << s.dump();
  ASSERT_TRUE(s["top1_agreement"].is_number());
  EXPECT_GE(s["top1_agreement"].get<double>(), 0.0);
  EXPECT_LE(s["top1_agreement"].get<double>(), 1.0);
  EXPECT_EQ(s["has_labels"], false);
  EXPECT_TRUE(s["top1_float"].is_null());
  ASSERT_GE(j["layers"].size(), 3u);
  int index = 0;
  for (const auto& l : j["layers"]) {
    EXPECT_EQ(l.size(), report::csv_columns().size() + 1) << l.dump();  // + act_hist
    for (const auto& c : report::csv_columns()) EXPECT_TRUE(l.contains(c)) << c;
    EXPECT_EQ(l["index"], index++);
    EXPECT_TRUE(l["w_sqnr_per_channel"].is_number()) << l["name"];
    EXPECT_TRUE(l["act_tensor"].is_string()) << l["name"];
  }
  EXPECT_EQ(j["worst"].size(), j["layers"].size());
}

TEST(CliReport, CsvHeaderAndRows) {
  const auto r = run_repq(report_args({"--format", "csv"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string header;
  for (const auto& c : report::csv_columns()) header += (header.empty() ? "" : ",") + c;
  EXPECT_EQ(r.out.substr(0, r.out.find("\r\n")), header);
  // Names of this model hold no quotes or line breaks: one CRLF per record.
  EXPECT_EQ(count(r.out, "\r\n"), json_report()["layers"].size() + 1);
}

TEST(CliReport, TableMarkdownAndHtml) {
  const size_t layers = json_report()["layers"].size();
  auto t = run_repq(report_args({"--top", "3"}));
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_TRUE(contains(t.out, "repq report: " + model())) << t.out;
  EXPECT_TRUE(contains(t.out, "top-1 agreement with float")) << t.out;
  EXPECT_TRUE(contains(t.out, "Worst layers (by isolated output error):\n  1. ")) << t.out;
  EXPECT_TRUE(contains(t.out, "\n  3. ")) << t.out;
  EXPECT_FALSE(contains(t.out, "\n  4. ")) << t.out;

  auto md = run_repq(report_args({"--format", "md"}));
  ASSERT_EQ(md.exit_code, 0) << md.err;
  EXPECT_EQ(md.out.rfind("## repq report: ", 0), 0u) << md.out;
  EXPECT_TRUE(contains(md.out, "### Worst layers")) << md.out;

  test::TempDir tmp;
  const std::string html = tmp.file("report.html");
  auto h = run_repq(report_args({"--format", "html", "-o", html}));
  ASSERT_EQ(h.exit_code, 0) << h.err;
  EXPECT_EQ(h.out, "");  // the report went to the file
  const std::string page = slurp(html);
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  const size_t body = page.find("<tbody>");
  ASSERT_NE(body, std::string::npos);
  EXPECT_EQ(count(page.substr(body, page.find("</tbody>") - body), "<tr"), layers);
  EXPECT_GE(count(page, "<svg class=\"chart"), 2u);
  EXPECT_TRUE(contains(page, "data-expected-rows=\"" + std::to_string(layers) + "\""));
  std::vector<std::string> leftovers;
  for (const auto& e : fs::directory_iterator(tmp.path())) leftovers.push_back(e.path().filename().string());
  EXPECT_EQ(leftovers, std::vector<std::string>{"report.html"});  // no temporary file left
}

TEST(CliReport, GatesExitCodes) {
  const auto& s = json_report()["summary"];
  ASSERT_TRUE(s["output_sqnr"].is_number());
  const double sqnr = s["output_sqnr"].get<double>(), agree = s["top1_agreement"].get<double>();
  auto pass = run_repq(report_args({"--format", "csv", "--fail-under-sqnr", std::to_string(sqnr - 1),
                                    "--fail-under-agreement", std::to_string(agree - 0.01)}));
  EXPECT_EQ(pass.exit_code, 0) << pass.err;
  EXPECT_FALSE(pass.out.empty());

  auto fail = run_repq(report_args({"--format", "csv", "--fail-under-sqnr", std::to_string(sqnr + 1)}));
  EXPECT_EQ(fail.exit_code, 3) << fail.err;
  EXPECT_FALSE(fail.out.empty());  // the report is still written
  EXPECT_TRUE(contains(fail.err, "gate failed: model output SQNR ")) << fail.err;
  EXPECT_TRUE(contains(fail.err, "(--fail-under-sqnr); worst layer ")) << fail.err;
  EXPECT_EQ(count(fail.err, "\n"), 1u) << fail.err;

  // Agreement 1.0 fails exactly when some sample's top-1 changed.
  auto full = run_repq(report_args({"--format", "csv", "--fail-under-agreement", "1"}));
  EXPECT_EQ(full.exit_code, agree < 1 ? 3 : 0) << full.err;
  if (agree < 1) {
    EXPECT_TRUE(contains(full.err, "top-1 agreement with float")) << full.err;
  }
}

// --exact runs the cumulative pass on the exact integer kernels: the same rows and isolated
// errors, cumulative errors and summary within rounding of the default float form.
TEST(CliReport, ExactSimulationAgreesWithTheFloatForm) {
  const auto r = run_repq(report_args({"--format", "json", "--exact"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto e = nlohmann::json::parse(r.out);
  const auto& f = json_report();
  ASSERT_EQ(e["layers"].size(), f["layers"].size());
  for (size_t i = 0; i < e["layers"].size(); ++i) {
    EXPECT_EQ(e["layers"][i]["out_sqnr_isolated"], f["layers"][i]["out_sqnr_isolated"]) << i;
    EXPECT_NEAR(e["layers"][i]["out_sqnr_cumulative"].get<double>(),
                f["layers"][i]["out_sqnr_cumulative"].get<double>(), 0.5) << i;
  }
  EXPECT_NEAR(e["summary"]["output_sqnr"].get<double>(), f["summary"]["output_sqnr"].get<double>(), 0.5);
  EXPECT_NEAR(e["summary"]["top1_agreement"].get<double>(), f["summary"]["top1_agreement"].get<double>(),
              1.0 / 16 + 1e-9);
}

TEST(CliReport, StaticWithoutData) {
  const auto r = run_repq({"-q", "report", model(), "--static", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["static_only"], true);
  EXPECT_TRUE(j["summary"]["output_sqnr"].is_null());
  EXPECT_EQ(j["layers"].size(), json_report()["layers"].size());
  for (const auto& l : j["layers"]) {
    EXPECT_TRUE(l["w_sqnr_per_tensor"].is_number()) << l["name"];
    EXPECT_TRUE(l["out_sqnr_isolated"].is_null()) << l["name"];
    EXPECT_TRUE(l["act_hist"].is_null());
  }
  const auto t = run_repq({"-q", "report", model(), "--static"});
  EXPECT_EQ(t.exit_code, 0) << t.err;
  EXPECT_TRUE(contains(t.out, "static: weights only, no data")) << t.out;
}

TEST(CliReport, BadInputsExitTwo) {
  auto no_calib = run_repq({"report", model()});
  EXPECT_EQ(no_calib.exit_code, 2);
  EXPECT_TRUE(contains(no_calib.err, "--calib")) << no_calib.err;

  auto static_gate = run_repq({"report", model(), "--static", "--fail-under-sqnr", "20"});
  EXPECT_EQ(static_gate.exit_code, 2);
  EXPECT_TRUE(contains(static_gate.err, "--static")) << static_gate.err;

  auto bad_format = run_repq({"report", model(), "--static", "--format", "xml"});
  EXPECT_EQ(bad_format.exit_code, 2) << bad_format.err;

  auto missing = run_repq({"report", "/nonexistent/model.onnx", "--static"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_TRUE(contains(missing.err, "/nonexistent/model.onnx")) << missing.err;

  auto bad_calib = run_repq({"report", model(), "--calib", "/nonexistent/images"});
  EXPECT_EQ(bad_calib.exit_code, 2);
  EXPECT_TRUE(contains(bad_calib.err, "/nonexistent/images")) << bad_calib.err;
}

}  // namespace
}  // namespace repq
