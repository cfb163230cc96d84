// Dataset listing: folders, ImageFolder classes, label files, .npy headers, limit.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "repq/data/dataset.h"
#include "repq/data/image.h"
#include "repq/data/labels.h"
#include "repq/data/npy.h"
#include "repq/error.h"

namespace repq::data {

namespace fs = std::filesystem;

namespace {

bool is_npy_path(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".npy";
}

bool hidden(const fs::path& p) {
  const std::string n = p.filename().string();
  return !n.empty() && n[0] == '.';
}

// Sample files under `dir`, recursively, skipping hidden entries.
std::vector<fs::path> walk(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  if (ec) throw InputError(dir.string() + ": cannot list: " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) throw InputError(dir.string() + ": cannot list: " + ec.message());
    const fs::path& p = it->path();
    if (hidden(p)) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    if (is_npy_path(p) || is_image_path(p.string())) files.push_back(p);
  }
  return files;
}

std::string key_of(const fs::path& p) {
  std::error_code ec;
  fs::path k = fs::weakly_canonical(p, ec);
  if (ec) k = fs::absolute(p).lexically_normal();
  return k.string();
}

}  // namespace

void DatasetOptions::set_labels(std::string_view value) {
  if (value.empty() || value == "none") {
    labels = LabelSource::kNone;
    label_file.clear();
  } else if (value == "folders") {
    labels = LabelSource::kFolders;
    label_file.clear();
  } else {
    labels = LabelSource::kFile;
    label_file = std::string(value);
  }
}

std::string Sample::name() const { return row < 0 ? path : path + "[" + std::to_string(row) + "]"; }

Dataset Dataset::open(const std::string& path, DatasetOptions options) {
  Dataset ds;
  if (!options.warn) options.warn = [](const std::string& m) { spdlog::warn("{}", m); };
  ds.options_ = options;
  ds.root_ = path;
  const auto& warn = ds.options_.warn;
  const auto bad = [&](const std::string& msg) {
    if (!options.skip_bad) throw InputError(msg);
    warn(msg + " (skipped)");
  };
  options.preprocess.validate();

  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw InputError(path + ": no such file or folder");
  const bool is_dir = fs::is_directory(st);
  if (!is_dir && options.labels == LabelSource::kFolders)
    throw InputError(path + ": ImageFolder labels need a folder");

  // (file, label) pairs, sorted.
  std::vector<std::pair<fs::path, int64_t>> files;
  if (!is_dir) {
    if (!is_npy_path(path) && !is_image_path(path))
      throw InputError(path + ": not an image (.jpg .jpeg .png .bmp .ppm .pgm .pnm .gif) or .npy file");
    files.emplace_back(path, -1);
  } else if (options.labels == LabelSource::kFolders) {
    ds.classes_ = image_folder_classes(path);
    for (size_t c = 0; c < ds.classes_.size(); ++c) {
      const auto found = walk(fs::path(path) / ds.classes_[c]);
      if (found.empty()) warn(path + "/" + ds.classes_[c] + ": class folder holds no images");
      for (const auto& f : found) files.emplace_back(f, static_cast<int64_t>(c));
    }
  } else {
    for (const auto& f : walk(path)) files.emplace_back(f, -1);
  }
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  if (files.empty()) throw InputError(path + ": no images or .npy files found");

  const size_t n_npy = static_cast<size_t>(std::count_if(files.begin(), files.end(),
                                                         [](const auto& f) { return is_npy_path(f.first); }));
  if (n_npy != 0 && n_npy != files.size())
    throw InputError(path + ": holds both .npy files and images; point at a folder of one kind");
  ds.npy_ = n_npy != 0;

  if (options.labels == LabelSource::kFile) {
    const auto entries = read_label_file(options.label_file);
    const fs::path label_dir = fs::path(options.label_file).parent_path();
    const fs::path data_dir = is_dir ? fs::path(path) : fs::path(path).parent_path();
    std::map<std::string, int64_t> by_key;
    size_t missing = 0;
    std::string first_missing;
    for (const auto& e : entries) {
      fs::path p = label_dir / e.file;
      if (!fs::exists(p, ec)) p = data_dir / e.file;
      if (!fs::exists(p, ec)) {
        if (missing++ == 0) first_missing = e.file;
        continue;
      }
      by_key[key_of(p)] = e.class_index;
    }
    if (missing > 0)
      warn(options.label_file + ": " + std::to_string(missing) + " of " + std::to_string(entries.size()) +
           " entries name files that do not exist (first: " + first_missing + ")");
    std::vector<std::pair<fs::path, int64_t>> kept;
    for (auto& [f, label] : files) {
      const auto it = by_key.find(key_of(f));
      if (it == by_key.end()) {
        bad(f.string() + ": no label in " + options.label_file);
        continue;
      }
      kept.emplace_back(f, it->second);
    }
    files = std::move(kept);
  }

  const size_t limit = options.limit > 0 ? static_cast<size_t>(options.limit) : SIZE_MAX;
  for (const auto& [f, label] : files) {
    if (ds.samples_.size() >= limit) break;
    Sample s;
    s.path = f.string();
    s.label = label;
    if (!ds.npy_) {
      ds.samples_.push_back(std::move(s));
      continue;
    }
    NpyHeader h;
    try {
      h = read_npy_header(s.path);
    } catch (const InputError& e) {
      bad(e.what());
      continue;
    }
    const int r = static_cast<int>(h.shape.size());
    const int rank = options.input_rank;
    s.npy_dtype = h.dtype;
    if (rank <= 0 || r == rank - 1) {
      s.npy_shape = h.shape;
      s.npy_offset = h.data_offset;
      ds.samples_.push_back(std::move(s));
    } else if (r == rank) {
      s.npy_shape.assign(h.shape.begin() + 1, h.shape.end());
      const uint64_t row_bytes = static_cast<uint64_t>(shape_numel(s.npy_shape)) * dtype_size(h.dtype);
      for (int64_t row = 0; row < h.shape[0] && ds.samples_.size() < limit; ++row) {
        Sample rs = s;
        rs.row = row;
        rs.npy_offset = h.data_offset + static_cast<uint64_t>(row) * row_bytes;
        ds.samples_.push_back(std::move(rs));
      }
    } else {
      bad(s.path + ": .npy shape " + shape_str(h.shape) + " has rank " + std::to_string(r) + "; expected " +
          std::to_string(rank - 1) + " (one sample) or " + std::to_string(rank) + " (a batch)");
    }
  }
  if (ds.samples_.empty()) throw InputError(path + ": no usable samples");
  return ds;
}

}  // namespace repq::data
