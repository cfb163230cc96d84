// repq-dump-inputs DATA -o X.npy [--labels folders|FILE --labels-out Y.npy] [--skip N]
//                  [--count N] [--threads N] [--KEY VALUE ...preprocessing as in repq]
// Writes the samples of a dataset (images or .npy, sorted as repq reads them), preprocessed
// exactly as `repq eval` / `repq quantize` do, as one float32 [N, C, H, W] .npy file, and
// optionally their labels as float64 [N] (integer values, -1 = unlabelled). --skip drops the first N samples of
// the listing, --count keeps at most N after that. A benchmark helper: it feeds ONNX Runtime
// (tools/ort/ort_eval.js) the same tensors repq's executor sees.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "repq/data/dataset.h"
#include "repq/data/npy.h"
#include "repq/error.h"

namespace {

constexpr const char* kUsage =
    "usage: repq-dump-inputs DATA -o X.npy [--labels folders|FILE --labels-out Y.npy] "
    "[--skip N] [--count N] [--threads N] [--batch N] [--KEY VALUE (preprocessing, see repq "
    "eval --help)]";

struct Args {
  std::string data, out, labels, labels_out;
  int64_t skip = 0, count = 0, batch = 32;
  int threads = 0;
  std::vector<std::string> preprocess;
};

int64_t parse_count(const std::string& flag, const std::string& v) {
  int64_t n = -1;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < 0)
    throw repq::InputError(flag + ": expected a non-negative integer, got '" + v + "'");
  return n;
}

Args parse_args(int argc, char** argv) {
  Args a;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    if (s == "-h" || s == "--help") {
      std::puts(kUsage);
      std::exit(0);
    }
    if (s.rfind("-", 0) != 0) {
      positional.push_back(s);
      continue;
    }
    if (i + 1 >= argc) throw repq::InputError(s + " needs a value");
    const std::string v = argv[++i];
    if (s == "-o") a.out = v;
    else if (s == "--labels") a.labels = v;
    else if (s == "--labels-out") a.labels_out = v;
    else if (s == "--skip") a.skip = parse_count(s, v);
    else if (s == "--count") a.count = parse_count(s, v);
    else if (s == "--batch") a.batch = std::max<int64_t>(1, parse_count(s, v));
    else if (s == "--threads") a.threads = static_cast<int>(parse_count(s, v));
    else {  // preprocessing, validated by the library
      a.preprocess.push_back(s);
      a.preprocess.push_back(v);
    }
  }
  if (positional.size() != 1) throw repq::InputError("expected one DATA path");
  if (a.out.empty()) throw repq::InputError("-o X.npy is required");
  if (!a.labels_out.empty() && a.labels.empty())
    throw repq::InputError("--labels-out needs --labels folders|FILE");
  a.data = positional[0];
  return a;
}

int run(const Args& a) {
  repq::data::DatasetOptions d;
  d.preprocess = repq::data::Preprocess::from_args(a.preprocess);
  d.set_labels(a.labels);
  d.threads = a.threads;
  if (a.count > 0) d.limit = a.skip + a.count;
  const auto ds = repq::data::Dataset::open(a.data, d);
  repq::data::BatchReader reader(ds, a.batch);
  std::vector<float> values;
  std::vector<double> labels;  // .npy writes float32/float64/uint8: labels as float64
  repq::Shape sample_shape;
  int64_t index = 0, kept = 0;
  while (auto b = reader.next()) {
    const repq::Tensor& x = b->input;
    const int64_t per = x.numel() / x.dim(0);
    if (sample_shape.empty()) sample_shape.assign(x.shape().begin() + 1, x.shape().end());
    const float* p = x.data<float>();
    for (int64_t i = 0; i < x.dim(0); ++i, ++index) {
      if (index < a.skip) continue;
      values.insert(values.end(), p + i * per, p + (i + 1) * per);
      labels.push_back(static_cast<double>(b->labels[static_cast<size_t>(i)]));
      ++kept;
    }
  }
  if (kept == 0)
    throw repq::InputError(a.data + ": no samples left after --skip " + std::to_string(a.skip));
  repq::Shape shape = {kept};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  repq::data::write_npy(a.out, repq::Tensor::from_vector<float>(shape, values));
  if (!a.labels_out.empty())
    repq::data::write_npy(a.labels_out, repq::Tensor::from_vector<double>({kept}, labels));
  std::fprintf(stderr, "repq-dump-inputs: %lld samples -> %s\n", static_cast<long long>(kept),
               a.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const repq::InputError& e) {
    std::fprintf(stderr, "repq-dump-inputs: error: %s\n%s\n", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "repq-dump-inputs: error: %s\n", e.what());
    return 1;
  }
}
