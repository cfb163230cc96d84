// Calibration / evaluation data: a folder of images or .npy files, optionally labelled, read
// in batches of float32 tensors.
//
//  * Listing: a folder is walked recursively; hidden entries (".name") are skipped; files
//    with an image extension (see is_image_path) or .npy are samples, anything else is
//    ignored. Samples are sorted by path, compared folder by folder and then by file name
//    (so ImageFolder's order: class by class, then file name). A folder may hold images or
//    .npy files, not both. The path may also name a single image or .npy file.
//  * .npy: a file of rank input_rank - 1 is one sample; of rank input_rank, a batch whose rows
//    are samples. Values are used as they are (no preprocessing); uint8 becomes float32
//    unchanged, float64 is narrowed.
//  * Labels: ImageFolder (class = first-level subfolder, index = position in sorted order) or
//    a label file (see labels.h) whose paths are relative to the label file's folder or to the
//    data folder. A labelled dataset refuses samples without a label (or skips them with
//    skip_bad). Unlabelled samples have label -1.
//  * limit keeps the first N samples of the sorted listing (a batched .npy counts its rows).
//  * skip_bad: unreadable samples (corrupt, truncated, over the pixel limit, wrong shape) are
//    skipped with a warning naming the file; otherwise the first one (in order) throws
//    InputError("<file>: <problem>").
//  * Samples are decoded on `threads` threads, at least `threads` at a time (so batch size 1
//    is parallel too); batch content and order do not depend on the thread count.
#pragma once

#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "repq/data/preprocess.h"
#include "repq/ir/tensor.h"

namespace repq::data {

enum class LabelSource { kNone, kFolders, kFile };

struct DatasetOptions {
  Preprocess preprocess;
  LabelSource labels = LabelSource::kNone;
  std::string label_file;  // for LabelSource::kFile
  bool skip_bad = false;
  int64_t limit = 0;   // 0 = all samples
  int threads = 0;     // 0 = the machine's hardware threads
  int input_rank = 4;  // rank of the model input (N included), to tell a .npy sample from a batch
  // Receives one-line warnings (skipped files, ignored entries); default: spdlog::warn.
  std::function<void(const std::string&)> warn;

  // Sets the label source from a CLI value: "" or "none", "folders" (ImageFolder), or the
  // path of a label file.
  void set_labels(std::string_view value);
};

struct Sample {
  std::string path;
  int64_t row = -1;    // row of a batched .npy file; -1 = the whole file is the sample
  int64_t label = -1;  // -1 = no label
  // .npy only: element type, the sample's shape and where its bytes start in the file.
  DType npy_dtype = DType::kUndefined;
  Shape npy_shape;
  uint64_t npy_offset = 0;

  // "path" or "path[row]", for messages.
  std::string name() const;
};

struct Batch {
  Tensor input;                     // float32 [N, ...], N >= 1
  std::vector<int64_t> labels;      // N labels (-1 when unlabelled)
  std::vector<size_t> indices;      // N positions in the dataset
  std::vector<std::string> names;   // N sample names (Sample::name)
};

class Dataset {
 public:
  // Lists the samples of a folder or single file and attaches labels. Throws InputError for a
  // missing path, no samples, mixed images and .npy, malformed label files or unlabelled samples
  // (unless skip_bad).
  static Dataset open(const std::string& path, DatasetOptions options = {});

  size_t size() const { return samples_.size(); }
  const std::vector<Sample>& samples() const { return samples_; }
  const Sample& sample(size_t i) const { return samples_.at(i); }
  bool is_npy() const { return npy_; }
  bool labelled() const { return options_.labels != LabelSource::kNone; }
  // ImageFolder class names (index = position); empty otherwise.
  const std::vector<std::string>& class_names() const { return classes_; }
  const DatasetOptions& options() const { return options_; }
  const std::string& root() const { return root_; }

  // One sample as float32: [C, H, W] for images, the sample shape for .npy. Throws InputError
  // naming the file when it cannot be read.
  Tensor load(size_t index) const;

 private:
  std::string root_;
  DatasetOptions options_;
  std::vector<Sample> samples_;
  std::vector<std::string> classes_;
  bool npy_ = false;
};

// Reads a dataset in order, batch_size samples at a time (the last batch may be smaller).
class BatchReader {
 public:
  BatchReader(const Dataset& dataset, int64_t batch_size);
  // The next batch, or nullopt at the end. Throws InputError for a bad sample (unless
  // skip_bad) or when samples of one batch differ in shape.
  std::optional<Batch> next();
  // Start again from the first sample.
  void reset();
  // Samples skipped so far (skip_bad).
  int64_t skipped() const { return skipped_; }

 private:
  struct Loaded {
    size_t index = 0;
    Tensor tensor;
    std::string error;  // an InputError's message
    std::exception_ptr fatal;
  };
  const Dataset* dataset_;
  int64_t batch_size_;
  size_t cursor_ = 0;      // next sample to decode
  std::deque<Loaded> ready_;  // decoded ahead, in order
  int64_t skipped_ = 0;
};

// The first `rows` rows (0 < rows <= dim 0) of a numeric batch tensor, copied: for the last
// batch of a pass limited to fewer samples than the reader gives.
Tensor first_rows(const Tensor& batch, int64_t rows);

// Loads everything as one batch (small calibration sets); throws InputError when empty.
Batch load_all(const Dataset& dataset);

}  // namespace repq::data
