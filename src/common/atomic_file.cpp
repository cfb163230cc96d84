#include "repq/common/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

#include "repq/error.h"

namespace repq {

namespace {

std::string errno_str() { return std::strerror(errno); }

// Files this process has read, by (device, inode), when the input guard is on.
struct InputGuard {
  std::mutex mu;
  bool on = false;
  std::set<std::pair<dev_t, ino_t>> files;
};
InputGuard& input_guard() {
  static InputGuard g;
  return g;
}

bool is_noted_input(const struct stat& st) {
  InputGuard& g = input_guard();
  std::lock_guard lock(g.mu);
  return g.on && g.files.count({st.st_dev, st.st_ino});
}

void sync_folder(const std::string& file) {
  std::string dir = std::filesystem::path(file).parent_path().string();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);  // best effort: some file systems cannot sync folders
  ::close(fd);
}

}  // namespace

void guard_input_files(bool on) {
  InputGuard& g = input_guard();
  std::lock_guard lock(g.mu);
  g.on = on;
}

void note_input_file(const std::string& path) {
  InputGuard& g = input_guard();
  struct stat st {};
  std::lock_guard lock(g.mu);
  if (g.on && ::stat(path.c_str(), &st) == 0) g.files.insert({st.st_dev, st.st_ino});
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), target_(path_) {
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) throw InputError(path_ + ": cannot write: is a directory");
    if (is_noted_input(st))
      throw InputError(path_ + ": refused: it is an input of this command (write the output "
                               "to a new file)");
    if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {  // /dev/null, /dev/full, a pipe
      fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd_ < 0) throw InputError(path_ + ": cannot write: " + errno_str());
      return;
    }
    if (!S_ISREG(st.st_mode))
      throw InputError(path_ + ": cannot write: not a regular file, a character device or a pipe");
    std::error_code ec;
    if (std::filesystem::is_symlink(path_, ec)) {  // replace the file, keep the link
      const auto real = std::filesystem::canonical(path_, ec);
      if (!ec) target_ = real.string();
    }
  }
  std::vector<char> tmpl(target_.begin(), target_.end());
  const char suffix[] = ".tmp.XXXXXX";
  tmpl.insert(tmpl.end(), suffix, suffix + sizeof(suffix));  // includes the NUL
  fd_ = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd_ < 0) throw InputError(path_ + ": cannot write: " + errno_str());
  tmp_path_ = tmpl.data();
  slot_ = detail::register_temp_file(tmp_path_);
  // mkstemp creates 0600; give the file the usual permissions (umask applies).
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd_, 0666 & ~mask);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) drop_temp();
}

void AtomicFile::drop_temp() {
  if (!tmp_path_.empty()) ::unlink(tmp_path_.c_str());
  detail::unregister_temp_file(slot_);
  slot_ = -1;
  tmp_path_.clear();
}

void AtomicFile::fail(const std::string& what) {
  const std::string reason = errno_str();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  drop_temp();
  throw InternalError(path_ + ": " + what + ": " + reason);
}

void AtomicFile::write(std::string_view data) {
  if (fd_ < 0) throw InternalError(path_ + ": write after failure or commit");
  while (!data.empty()) {
    const ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write failed");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) throw InternalError(path_ + ": commit after failure");
  if (::fsync(fd_) != 0 && errno != EINVAL && errno != EROFS) fail("sync failed");
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) fail("close failed");
  if (!tmp_path_.empty()) {
    if (::rename(tmp_path_.c_str(), target_.c_str()) != 0) fail("rename failed");
    detail::unregister_temp_file(slot_);
    slot_ = -1;
    sync_folder(target_);
  }
  committed_ = true;
}

void write_file_atomic(const std::string& path, std::string_view data) {
  AtomicFile f(path);
  f.write(data);
  f.commit();
}

std::string read_file(const std::string& path, uint64_t max_bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw InputError(path + ": cannot open: " + errno_str());
  if (S_ISDIR(st.st_mode)) throw InputError(path + ": cannot open: is a directory");
  if (static_cast<uint64_t>(st.st_size) > max_bytes)
    throw InputError(path + ": file is " + std::to_string(st.st_size) +
                     " bytes, more than the limit of " + std::to_string(max_bytes));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open: " + errno_str());
  note_input_file(path);
  std::string data(static_cast<size_t>(st.st_size), '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  if (in.gcount() != static_cast<std::streamsize>(data.size()))
    throw InputError(path + ": read error (the file shrank while being read?)");
  return data;
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

}  // namespace repq
