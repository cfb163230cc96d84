// Times repq's float executor on a model with random input: 2 warm-up runs, then N timed runs.
// Usage: repq-bench-executor MODEL.onnx [--batch B] [--threads T] [--runs N]
// Prints one JSON line: {"median_ms", "min_ms", "median_ms_per_item", "batch", "threads", ...}.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "repq/ir/onnx_io.h"
#include "repq/runtime/executor.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: repq-bench-executor MODEL.onnx [--batch B] [--threads T] [--runs N]\n");
    return 2;
  }
  int64_t batch = 1;
  int threads = 0, runs = 30;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--batch")) batch = std::stoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads")) threads = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--runs")) runs = std::stoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  try {
    const repq::Model model = repq::load_model(argv[1]);
    repq::ExecutorOptions opts;
    opts.threads = threads;
    repq::Executor ex(model, opts);
    const std::string& in_name = ex.input_names().at(0);
    const repq::ValueInfo* vi = model.graph.find_value_info(in_name);
    repq::Shape shape = vi->shape();
    shape.at(0) = batch;
    for (auto& d : shape)
      if (d < 0) throw std::runtime_error("input '" + in_name + "' has an unknown dimension");
    repq::Tensor x(repq::DType::kFloat32, shape);
    std::mt19937 rng(1);
    std::normal_distribution<float> dist;
    for (float& v : x.mutable_span<float>()) v = dist(rng);
    using Clock = std::chrono::steady_clock;
    std::vector<double> ms;
    for (int r = 0; r < runs + 2; ++r) {
      const auto t0 = Clock::now();
      ex.run({{in_name, x}});
      const double dt = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      if (r >= 2) ms.push_back(dt);
    }
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2];
    std::printf(
        "{\"engine\": \"repq\", \"batch\": %lld, \"threads\": %d, \"runs\": %d, \"median_ms\": %.4f, "
        "\"min_ms\": %.4f, \"median_ms_per_item\": %.4f}\n",
        static_cast<long long>(batch), ex.threads(), runs, median, ms.front(),
        median / static_cast<double>(batch));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "repq-bench-executor: %s\n", e.what());
    return 1;
  }
}
