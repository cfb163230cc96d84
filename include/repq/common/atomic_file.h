// Output files that appear whole or not at all: written to a temporary file in the same
// folder, flushed to disk, then renamed over the target.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace repq {

class AtomicFile {
 public:
  // Creates `<path>.tmp.XXXXXX` beside `path`. Throws InputError when the folder cannot be
  // written (with the path and the reason).
  explicit AtomicFile(std::string path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  // Removes the temporary file unless commit() succeeded.
  ~AtomicFile();

  // Throws InternalError on a write error (disk full, I/O error).
  void write(std::string_view data);
  // fsync + rename over the target. Throws InternalError on failure (temp file removed).
  void commit();
  const std::string& path() const { return path_; }

 private:
  void fail(const std::string& what);

  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// Writes `data` to `path` atomically.
void write_file_atomic(const std::string& path, std::string_view data);
// Reads a whole file; throws InputError("path: cannot open: reason") when it cannot.
std::string read_file(const std::string& path, uint64_t max_bytes = UINT64_MAX);
// True when both paths name the same existing file.
bool same_file(const std::string& a, const std::string& b);

}  // namespace repq
