// Loading samples, in parallel, into batches.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <fstream>
#include <thread>

#include "repq/data/dataset.h"
#include "repq/data/image.h"
#include "repq/error.h"

namespace repq::data {

namespace {

Tensor load_npy_sample(const Sample& s) {
  const size_t bytes = static_cast<size_t>(shape_numel(s.npy_shape)) * dtype_size(s.npy_dtype);
  std::ifstream in(s.path, std::ios::binary);
  if (!in) throw InputError(s.path + ": cannot open");
  std::string data(bytes, '\0');
  in.seekg(static_cast<std::streamoff>(s.npy_offset));
  in.read(data.data(), static_cast<std::streamsize>(bytes));
  if (!in || static_cast<size_t>(in.gcount()) != bytes)
    throw InputError(s.name() + ": truncated .npy data (the file changed after it was listed?)");
  Tensor t = Tensor::from_bytes(s.npy_dtype, s.npy_shape, data);
  return t.dtype() == DType::kFloat32 ? t : t.cast(DType::kFloat32);
}

size_t resolve_threads(int threads) {
  return threads > 0 ? static_cast<size_t>(threads) : std::max(1u, std::thread::hardware_concurrency());
}

// Runs fn(0..n-1) on up to `threads` threads.
template <class Fn>
void parallel_for(size_t n, size_t threads, Fn fn) {
  const size_t t = std::min(threads, n);
  if (t <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  pool.reserve(t);
  for (size_t k = 0; k < t; ++k)
    pool.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) fn(i);
    });
  for (auto& th : pool) th.join();
}

}  // namespace

Tensor Dataset::load(size_t index) const {
  const Sample& s = samples_.at(index);
  if (npy_) return load_npy_sample(s);
  const Preprocess& pp = options_.preprocess;
  const Image img = load_image(s.path, {pp.color, pp.max_pixels});
  return preprocess_image(img, pp);
}

BatchReader::BatchReader(const Dataset& dataset, int64_t batch_size)
    : dataset_(&dataset), batch_size_(batch_size) {
  if (batch_size < 1) throw InputError("batch size must be at least 1, got " + std::to_string(batch_size));
}

void BatchReader::reset() {
  cursor_ = 0;
  ready_.clear();
  skipped_ = 0;
}

std::optional<Batch> BatchReader::next() {
  const Dataset& ds = *dataset_;
  const DatasetOptions& opt = ds.options();
  const size_t want = static_cast<size_t>(batch_size_);
  const size_t threads = resolve_threads(opt.threads);
  std::vector<Tensor> got;
  std::vector<size_t> indices;
  while (got.size() < want) {
    if (ready_.empty()) {
      if (cursor_ >= ds.size()) break;
      // Decode at least one sample per thread, so small batches still use every thread; what
      // the batch does not take waits in ready_ for the next one.
      const size_t first = cursor_;
      const size_t count = std::min(std::max(want - got.size(), threads), ds.size() - cursor_);
      cursor_ += count;
      std::vector<Loaded> loaded(count);
      parallel_for(count, threads, [&](size_t k) {
        loaded[k].index = first + k;
        try {
          loaded[k].tensor = ds.load(first + k);
        } catch (const InputError& e) {
          loaded[k].error = e.what();
        } catch (...) {
          loaded[k].fatal = std::current_exception();
        }
      });
      for (auto& l : loaded) ready_.push_back(std::move(l));
    }
    Loaded l = std::move(ready_.front());
    ready_.pop_front();
    if (l.fatal) std::rethrow_exception(l.fatal);
    if (!l.error.empty()) {
      if (!opt.skip_bad) throw InputError(l.error);
      if (opt.warn) opt.warn(l.error + " (skipped)");
      ++skipped_;
      continue;
    }
    got.push_back(std::move(l.tensor));
    indices.push_back(l.index);
  }
  if (got.empty()) return std::nullopt;

  // Collate. Samples whose shape differs from the batch's first one are bad samples too.
  Batch b;
  const Shape& shape = got[0].shape();
  const size_t per = static_cast<size_t>(got[0].numel());
  size_t n = 0;
  for (size_t k = 0; k < got.size(); ++k) {
    if (got[k].shape() == shape) {
      ++n;
      continue;
    }
    const std::string msg = ds.sample(indices[k]).name() + ": sample shape " + shape_str(got[k].shape()) +
                            " differs from " + shape_str(shape) + " of " + ds.sample(indices[0]).name() +
                            " in the same batch (set a fixed resize/crop, or use batch size 1)";
    if (!opt.skip_bad) throw InputError(msg);
    if (opt.warn) opt.warn(msg + " (skipped)");
    ++skipped_;
  }
  Shape full = shape;
  full.insert(full.begin(), static_cast<int64_t>(n));
  b.input = Tensor(DType::kFloat32, full);
  float* dst = b.input.mutable_data<float>();
  for (size_t k = 0; k < got.size(); ++k) {
    if (got[k].shape() != shape) continue;
    std::memcpy(dst, got[k].data<float>(), per * sizeof(float));
    dst += per;
    const Sample& s = ds.sample(indices[k]);
    b.labels.push_back(s.label);
    b.indices.push_back(indices[k]);
    b.names.push_back(s.name());
  }
  return b;
}

Batch load_all(const Dataset& dataset) {
  BatchReader reader(dataset, static_cast<int64_t>(std::max<size_t>(dataset.size(), 1)));
  auto b = reader.next();
  if (!b) throw InputError(dataset.root() + ": no usable samples");
  return std::move(*b);
}

Tensor first_rows(const Tensor& batch, int64_t rows) {
  if (batch.rank() == 0 || rows <= 0 || rows > batch.dim(0))
    throw InputError("first_rows: " + std::to_string(rows) + " rows of a tensor of shape " +
                     shape_str(batch.shape()));
  Shape shape = batch.shape();
  const size_t row_bytes = batch.nbytes() / static_cast<size_t>(shape[0]);
  shape[0] = rows;
  return Tensor::from_bytes(batch.dtype(), shape,
                            std::string_view(reinterpret_cast<const char*>(batch.raw()),
                                             row_bytes * static_cast<size_t>(rows)));
}

}  // namespace repq::data
