// Output files that appear whole or not at all: written to a temporary file in the same
// folder, flushed to disk, then renamed over the target.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace repq {

class AtomicFile {
 public:
  // Creates `<path>.tmp.XXXXXX` beside `path` (beside the file a symlink points to). An
  // existing character device or FIFO (/dev/null, /dev/full, a pipe) is written directly.
  // Throws InputError when the folder cannot be written, the target is a directory or another
  // non-regular file, or (with guard_input_files on) the target is a file this process read.
  explicit AtomicFile(std::string path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  // Removes the temporary file unless commit() succeeded.
  ~AtomicFile();

  // Throws InternalError on a write error (disk full, I/O error, file size limit).
  void write(std::string_view data);
  // fsync + rename over the target. Throws InternalError on failure (temp file removed).
  void commit();
  const std::string& path() const { return path_; }

 private:
  void fail(const std::string& what);
  void drop_temp();

  std::string path_;      // as given (messages)
  std::string target_;    // where the file lands (symlinks resolved)
  std::string tmp_path_;  // empty when writing a device directly
  int fd_ = -1;
  int slot_ = -1;  // in the signal-cleanup registry
  bool committed_ = false;
};

// Writes `data` to `path` atomically.
void write_file_atomic(const std::string& path, std::string_view data);
// Reads a whole file; throws InputError("path: cannot open: reason") when it cannot, or when it
// is larger than `max_bytes` (checked before reading). Notes the file as an input (see below).
std::string read_file(const std::string& path, uint64_t max_bytes = UINT64_MAX);
// True when both paths name the same existing file.
bool same_file(const std::string& a, const std::string& b);

// Input guard: when on, every file read through read_file() or note_input_file() is
// remembered, and AtomicFile refuses to replace one of them ("-o equal to an input").
// Off by default for the library; the CLI turns it on.
void guard_input_files(bool on);
void note_input_file(const std::string& path);

// Signal cleanup: installs handlers for SIGINT, SIGTERM and SIGHUP (where their disposition
// is the default) that remove every AtomicFile temporary file still open, then re-raise the
// signal so the process dies of it as before. Async-signal-safe (unlink from a fixed table).
void install_signal_cleanup();
// Both of the above: what a command-line program that writes files calls first.
void install_cli_safety();

namespace detail {
// The registry behind install_signal_cleanup (also for tests): a slot index, or -1 when the
// table is full or the path too long (the file is then only removed by its destructor).
int register_temp_file(const std::string& path);
void unregister_temp_file(int slot);
// Unlinks every registered file (what the signal handler does); returns how many.
int remove_registered_temp_files();
}  // namespace detail

}  // namespace repq
