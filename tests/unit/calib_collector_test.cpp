// collect_stats on tiny models fed from .npy files: exact range, counts, zeros and histograms
// worked out by hand, the same result for any batch size and thread count, num_samples, and
// the errors a user can cause.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "repq/calib/collector.h"
#include "repq/data/dataset.h"
#include "repq/data/npy.h"
#include "repq/error.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

using calib::CollectOptions;
using calib::CollectResult;

Model relu_mul_model() {
  return parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[N,4] x) => (float[N,4] y) <float[1] two = {2}>
{ r = Relu (x)  y = Mul (r, two) })");
}

// Five samples of 4 values.
void write_samples(const TempDir& dir) {
  const std::vector<std::vector<float>> rows = {
      {0, 1.5f, -2, 3}, {-0.5f, 0, 0, 4}, {2.5f, -3.75f, 1, 0.25f}, {0, 0, 0, 0}, {7, -1, 0.5f, -8}};
  for (size_t k = 0; k < rows.size(); ++k)
    data::write_npy(dir.file("s" + std::to_string(k) + ".npy"), Tensor::from_vector<float>({4}, rows[k]));
}

data::Dataset open_npy(const TempDir& dir, int input_rank) {
  data::DatasetOptions o;
  o.input_rank = input_rank;
  o.threads = 1;
  return data::Dataset::open(dir.path().string(), o);
}

CollectOptions options(int bins, int64_t batch, int threads) {
  CollectOptions o;
  o.bins = bins;
  o.batch = batch;
  o.threads = threads;
  o.progress = false;
  return o;
}

void expect_same(const CollectResult& a, const CollectResult& b, const std::string& what) {
  ASSERT_EQ(a.stats.size(), b.stats.size()) << what;
  EXPECT_EQ(a.samples, b.samples) << what;
  for (const auto& [name, s] : a.stats) {
    const auto& t = b.stats.at(name);
    EXPECT_EQ(s.min, t.min) << what << " " << name;
    EXPECT_EQ(s.max, t.max) << what << " " << name;
    EXPECT_EQ(s.count, t.count) << what << " " << name;
    EXPECT_EQ(s.zeros, t.zeros) << what << " " << name;
    EXPECT_EQ(s.nans, t.nans) << what << " " << name;
    EXPECT_EQ(s.hist.amax, t.hist.amax) << what << " " << name;
    EXPECT_EQ(s.hist.counts, t.hist.counts) << what << " " << name;
  }
}

TEST(CalibCollector, ExactStatisticsByHand) {
  TempDir dir;
  write_samples(dir);
  const auto ds = open_npy(dir, 2);
  const auto r = calib::collect_stats(relu_mul_model(), ds, {"x", "r", "y"}, options(4, 2, 1));
  EXPECT_EQ(r.samples, 5);
  ASSERT_EQ(r.stats.size(), 3u);
  const auto& x = r.stats.at("x");
  EXPECT_EQ(x.name, "x");
  EXPECT_EQ(x.min, -8.0);
  EXPECT_EQ(x.max, 7.0);
  EXPECT_EQ(x.count, 20u);
  EXPECT_EQ(x.zeros, 7u);
  EXPECT_EQ(x.nans, 0u);
  // |x| over [0, 8], w = 2.
  EXPECT_EQ(x.hist.amax, 8.0);
  EXPECT_EQ(x.hist.counts, (std::vector<uint64_t>{13, 4, 1, 2}));
  const auto& relu = r.stats.at("r");
  EXPECT_EQ(relu.min, 0.0);
  EXPECT_EQ(relu.max, 7.0);
  EXPECT_EQ(relu.count, 20u);
  EXPECT_EQ(relu.zeros, 12u);
  // Over [0, 7], w = 1.75: 12 zeros + 1.5, 1, 0.25, 0.5 | 3, 2.5 | 4 | 7.
  EXPECT_EQ(relu.hist.counts, (std::vector<uint64_t>{16, 2, 1, 1}));
  const auto& y = r.stats.at("y");
  EXPECT_EQ(y.max, 14.0);
  EXPECT_EQ(y.zeros, 12u);
  EXPECT_EQ(y.hist.total(), y.count);
  EXPECT_GE(r.forward_seconds, 0.0);
  EXPECT_GE(r.total_seconds, r.forward_seconds);
}

TEST(CalibCollector, BatchSizeAndNumSamples) {
  TempDir dir;
  write_samples(dir);
  const auto ds = open_npy(dir, 2);
  const Model m = relu_mul_model();
  const auto ref = calib::collect_stats(m, ds, {"x", "r", "y"}, options(16, 1, 1));
  for (int64_t batch : {2, 3, 5, 8}) {
    for (int threads : {1, 2})
      expect_same(ref, calib::collect_stats(m, ds, {"x", "r", "y"}, options(16, batch, threads)),
                  "batch " + std::to_string(batch) + " threads " + std::to_string(threads));
  }
  // The first 3 samples only, with a batch of 2 and of 5 (the batch is cut).
  for (int64_t batch : {2, 5}) {
    auto o = options(16, batch, 1);
    o.num_samples = 3;
    const auto r = calib::collect_stats(m, ds, {"x"}, o);
    EXPECT_EQ(r.samples, 3);
    const auto& x = r.stats.at("x");
    EXPECT_EQ(x.count, 12u);
    EXPECT_EQ(x.min, -3.75);
    EXPECT_EQ(x.max, 4.0);
    EXPECT_EQ(x.zeros, 3u);
    EXPECT_EQ(x.hist.total(), 12u);
  }
}

TEST(CalibCollector, ConvModelIndependentOfBatchAndThreads) {
  // 3 x 65536 values per sample after the conv: the histogram's sub-histogram path, and a
  // real convolution whose executor threads and batch blocking must not change anything.
  TempDir dir;
  for (uint32_t k = 0; k < 5; ++k)
    data::write_npy(dir.file("s" + std::to_string(k) + ".npy"),
                    Tensor::from_vector<float>({2, 256, 256}, random_floats(2 * 256 * 256, 40 + k, -2.0f, 1.0f)));
  const auto ds = open_npy(dir, 4);
  const Model m = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[N,2,256,256] x) => (float[N,3,256,256] y) <float[3,2,3,3] w, float[3] b>
{ c = Conv <pads = [1,1,1,1]> (x, w, b)  y = Relu (c) })");
  const std::vector<std::string> names = {"x", "c", "y"};
  const auto ref = calib::collect_stats(m, ds, names, options(2048, 1, 1));
  const auto& c = ref.stats.at("c");
  EXPECT_EQ(c.count, 5u * 3 * 65536);
  EXPECT_EQ(c.hist.total(), c.count);
  EXPECT_LT(c.min, 0.0);
  EXPECT_EQ(ref.stats.at("y").min, 0.0);
  EXPECT_EQ(ref.stats.at("y").max, c.max);
  EXPECT_GE(ref.stats.at("x").min, -2.0);
  EXPECT_LT(ref.stats.at("x").max, 1.0);
  expect_same(ref, calib::collect_stats(m, ds, names, options(2048, 3, 2)), "batch 3, 2 threads");
  expect_same(ref, calib::collect_stats(m, ds, names, options(2048, 5, 1)), "batch 5, 1 thread");
}

TEST(CalibCollector, ErrorsNameTheProblem) {
  TempDir dir;
  write_samples(dir);
  const auto ds = open_npy(dir, 2);
  const Model m = relu_mul_model();
  auto message = [&](const std::vector<std::string>& names, CollectOptions o) {
    try {
      calib::collect_stats(m, ds, names, o);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("(no InputError)");
  };
  EXPECT_NE(message({"x", "nope"}, options(8, 2, 1)).find("'nope' is not a value"), std::string::npos);
  // An initializer is not something the executor computes.
  EXPECT_NE(message({"two"}, options(8, 2, 1)).find("'two'"), std::string::npos);
  EXPECT_NE(message({"x"}, options(0, 2, 1)).find("bins"), std::string::npos);
  EXPECT_NE(message({"x"}, options(8, 0, 1)).find("batch"), std::string::npos);
}

TEST(CalibCollector, DecodeCacheGivesTheSameStatistics) {
  // Five samples of 16 bytes in batches of 2: 32 + 32 + 16 bytes. Pass 2 takes the most
  // recent batches that fit the budget from the cache and decodes the others again.
  TempDir dir;
  write_samples(dir);
  const auto ds = open_npy(dir, 2);
  const Model m = relu_mul_model();
  auto o = options(16, 2, 1);
  o.cache_bytes = 0;
  const auto ref = calib::collect_stats(m, ds, {"x", "r", "y"}, o);
  EXPECT_EQ(ref.cached_batches, 0);
  for (const auto& [budget, cached] : std::vector<std::pair<int64_t, int64_t>>{{16, 1}, {40, 1}, {48, 2}, {80, 3}}) {
    o.cache_bytes = budget;
    const auto r = calib::collect_stats(m, ds, {"x", "r", "y"}, o);
    EXPECT_EQ(r.cached_batches, cached) << budget;
    expect_same(ref, r, "cache " + std::to_string(budget) + " bytes");
  }
}

TEST(CalibCollector, ModelErrorsNameTheModelAndTheSamples) {
  TempDir dir;
  write_samples(dir);
  const auto ds = open_npy(dir, 2);
  const Model m = parse_onnx_text(R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[1,4] x) => (float[1,4] y) { y = Relu (x) })");
  auto message = [&](int64_t batch, const std::string& model_name) {
    auto o = options(8, batch, 1);
    o.model_name = model_name;
    try {
      calib::collect_stats(m, ds, {"x"}, o);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("(no InputError)");
  };
  const std::string s0 = dir.file("s0.npy"), s1 = dir.file("s1.npy");
  EXPECT_EQ(message(2, "net.onnx").rfind("net.onnx: " + s0 + " .. " + s1 + " (batch of 2): input 'x' has shape [2,4]", 0), 0u)
      << message(2, "net.onnx");
  // A model name left empty reads "model"; batch 1 fits the model.
  EXPECT_EQ(message(2, "").rfind("model: " + s0 + " .. " + s1 + " (batch of 2): ", 0), 0u) << message(2, "");
  EXPECT_EQ(message(1, ""), "(no InputError)");
}

}  // namespace
}  // namespace repq::test
