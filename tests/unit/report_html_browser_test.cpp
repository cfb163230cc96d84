// The HTML report in a real browser: Debian's chromium renders a generated report headless
// (one launch: --dump-dom and --screenshot together). The page's own script marks the <body>
// with data-status="ok" and the rows / charts it counted; window.onerror (installed first, in
// <head>) marks <html data-errors>. The screenshot must be a PNG of the window size holding
// the charts' colours. Skipped when chromium is absent, unless REPQ_REQUIRE_CHROMIUM=1.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>

#include "repq/data/image.h"
#include "repq/report/format.h"
#include "support/test_util.h"

namespace repq::report {
namespace {

namespace fs = std::filesystem;

std::string chromium_path() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (fs::exists(p)) return p;
  return "";
}

bool chromium_required() {
  const char* v = std::getenv("REPQ_REQUIRE_CHROMIUM");
  return v && std::string(v) == "1";
}

#define REPQ_REQUIRE_CHROMIUM()                                                              \
  do {                                                                                       \
    if (chromium_path().empty()) {                                                           \
      if (chromium_required()) FAIL() << "REPQ_REQUIRE_CHROMIUM=1 but chromium is not installed"; \
      GTEST_SKIP() << "chromium is not installed (apt install chromium): browser test skipped"; \
    }                                                                                        \
  } while (0)

// A report like a small RepVGG's: `n` layers, all but the last with an activation histogram.
Report make_sample(int n) {
  Report r;
  r.model_path = "models/repvgg/repvgg.train.onnx";
  r.method = r.act_method = "minmax";
  r.weight_mode = "per-channel";
  r.target = "ort";
  for (int i = 0; i < n; ++i) {
    LayerRow l;
    l.index = i;
    l.name = "/stage" + std::to_string(i) + "/conv";
    l.op = i + 1 == n ? "Gemm" : "Conv";
    if (i + 1 < n) {
      l.kernel = {3, 3};
      l.strides = {i % 2 ? 2 : 1, i % 2 ? 2 : 1};
    }
    l.in_channels = 16;
    l.out_channels = 16;
    l.encoding = "per-channel";
    l.weight_min = -0.4 - i;
    l.weight_max = 0.5 + i;
    l.centre_surround = 1 + i;
    l.identity_bn_factor = i == 2 ? 121 : std::numeric_limits<double>::quiet_NaN();
    l.w_sqnr_per_tensor = 25 + i;
    l.w_sqnr_per_channel = 35 + i;
    l.w_sqnr_cfws = i == 2 ? 41 : std::numeric_limits<double>::quiet_NaN();
    l.act_tensor = l.name + "_input";
    l.act_max = 4 + i;
    l.act_threshold = 3 + i;
    l.act_clipped = 1e-4;
    l.act_sqnr = 38;
    if (i + 1 < n) {
      l.act_hist.amax = 4 + i;
      for (int b = 0; b < 48; ++b) l.act_hist.counts.push_back(std::floor(5000 * std::exp(-b / 6.0)));
      l.act_hist.threshold = 3 + i;
    }
    l.out_sqnr_isolated = i == 2 ? 8 : 30 - i;
    l.out_sqnr_cumulative = 28 - 2 * i;
    l.out_cos_isolated = 0.999;
    l.out_cos_cumulative = 0.99;
    if (i == 2) {
      l.causes = {"identity-BN outlier (factor 121)"};
      l.advice = {"--weights cfws"};
    }
    r.layers.push_back(l);
  }
  r.layers[1].name = "<script>alert(1)</script>";  // must render as text
  r.summary = {14.5, 0.98, 0.96875, false, 0, 0, 32};
  r.worst = {2, 0, 1};
  return r;
}

std::string attribute(const std::string& dom, const std::string& tag, const std::string& name) {
  const std::regex tag_re("<" + tag + "\\b[^>]*>");
  std::smatch m;
  if (!std::regex_search(dom, m, tag_re)) return "<no " + tag + ">";
  const std::regex attr_re(name + "=\"([^\"]*)\"");
  std::smatch a;
  const std::string t = m.str();
  return std::regex_search(t, a, attr_re) ? a[1].str() : "";
}

TEST(ReportHtmlBrowser, SlowRendersWithoutScriptErrors) {
  REPQ_REQUIRE_CHROMIUM();
  test::TempDir tmp;
  const Report r = make_sample(6);
  const std::string page = tmp.file("report.html");
  {
    std::ofstream f(page, std::ios::binary);
    f << to_html(r);
  }
  const std::string png = tmp.file("shot.png");
  // --user-data-dir keeps chromium away from $HOME; --dump-dom prints the DOM after the
  // page's scripts ran; --screenshot writes the PNG in the same launch.
  const auto res = test::run_command(
      test::shell_quote(chromium_path()) +
      " --headless=new --no-sandbox --disable-gpu --no-first-run --disable-extensions"
      " --user-data-dir=" + test::shell_quote(tmp.file("profile")) + " --window-size=1280,2400" +
      " --screenshot=" + test::shell_quote(png) + " --dump-dom " +
      test::shell_quote("file://" + fs::absolute(page).string()));
  ASSERT_EQ(res.exit_code, 0) << res.err;
  const std::string& dom = res.out;
  ASSERT_NE(dom.find("<body"), std::string::npos) << res.err;
  EXPECT_EQ(attribute(dom, "html", "data-errors"), "") << "script errors on the page";
  EXPECT_EQ(attribute(dom, "body", "data-status"), "ok") << "the page's script did not finish";
  EXPECT_EQ(attribute(dom, "body", "data-rows"), "6");
  EXPECT_EQ(html_chart_count(r), 7);  // output SQNR, weight SQNR, 5 histograms
  EXPECT_EQ(attribute(dom, "body", "data-charts"), "7");
  // The injected name is text in a cell, not an element.
  EXPECT_NE(dom.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(dom.find("<script>alert(1)"), std::string::npos);

  // The screenshot: a PNG of the window's size with the bars' and histograms' colours.
  ASSERT_TRUE(fs::exists(png)) << res.err;
  const data::Image img = data::load_image(png);
  EXPECT_EQ(img.width, 1280);
  EXPECT_EQ(img.height, 2400);
  int64_t blue = 0, orange = 0, red = 0, white = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      const int R = img.at(x, y, 0), G = img.at(x, y, 1), B = img.at(x, y, 2);
      auto near = [&](int r0, int g0, int b0) {
        return std::abs(R - r0) < 12 && std::abs(G - g0) < 12 && std::abs(B - b0) < 12;
      };
      blue += near(0x4f, 0x7c, 0xac);    // isolated bars, per-channel bars, histogram bins
      orange += near(0xe8, 0xa3, 0x3d);  // cumulative bars
      red += near(0xd1, 0x49, 0x5b);     // threshold lines
      white += R == 255 && G == 255 && B == 255;
    }
  EXPECT_GT(blue, 2000) << "bars and histogram bins not drawn";
  EXPECT_GT(orange, 300) << "cumulative bars not drawn";
  EXPECT_GT(red, 100) << "threshold lines not drawn";
  EXPECT_LT(white, static_cast<int64_t>(img.width) * img.height * 99 / 100) << "blank page";
}

// The detector itself: a page whose script throws is reported (so the test above can fail).
TEST(ReportHtmlBrowser, SlowScriptErrorIsDetected) {
  REPQ_REQUIRE_CHROMIUM();
  test::TempDir tmp;
  std::string html = to_html(make_sample(2));
  const std::string tail = "</body>";
  html.insert(html.rfind(tail), "<script>undefined_function_of_the_test();</script>");
  const std::string page = tmp.file("broken.html");
  {
    std::ofstream f(page, std::ios::binary);
    f << html;
  }
  const auto res = test::run_command(
      test::shell_quote(chromium_path()) +
      " --headless=new --no-sandbox --disable-gpu --no-first-run --disable-extensions"
      " --user-data-dir=" + test::shell_quote(tmp.file("profile")) + " --dump-dom " +
      test::shell_quote("file://" + fs::absolute(page).string()));
  ASSERT_EQ(res.exit_code, 0) << res.err;
  EXPECT_EQ(attribute(res.out, "html", "data-errors"), "1") << res.out.substr(0, 400);
  EXPECT_EQ(attribute(res.out, "body", "data-rows"), "2");
}

}  // namespace
}  // namespace repq::report
