// Atomic outputs: no partial or temporary file after a write error or a signal; devices,
// symlinks and the input guard.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "repq/common/atomic_file.h"
#include "repq/error.h"
#include "support/test_util.h"

namespace repq {
namespace {

namespace fs = std::filesystem;

// Names of the files in `dir`, sorted, space-separated.
std::string listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : " ") + n;
  return s;
}

std::string slurp(const std::string& path) {
  std::stringstream ss;
  ss << std::ifstream(path, std::ios::binary).rdbuf();
  return ss.str();
}

// In a child: a file size limit of 1 KiB makes write() fail with EFBIG. Exits 7 when the
// write of 4 KiB threw InternalError naming the file and the reason.
[[noreturn]] void write_past_size_limit(const std::string& out) {
  ::signal(SIGXFSZ, SIG_IGN);
  rlimit lim{};
  lim.rlim_cur = lim.rlim_max = 1024;
  ::setrlimit(RLIMIT_FSIZE, &lim);
  try {
    write_file_atomic(out, std::string(4096, 'x'));
  } catch (const InternalError& e) {
    const bool named = std::string(e.what()).find(out + ": write failed: File too large") == 0;
    std::_Exit(named ? 7 : 8);
  }
  std::_Exit(9);
}

TEST(HardeningAtomic, WriteErrorLeavesNoFile) {
  test::TempDir tmp;
  const std::string out = tmp.file("out.bin");
  EXPECT_EXIT(write_past_size_limit(out), ::testing::ExitedWithCode(7), "");
  EXPECT_EQ(listing(tmp.path()), "");
}

TEST(HardeningAtomic, ExistingFileKeptOnWriteError) {
  test::TempDir tmp;
  const std::string out = tmp.file("out.bin");
  std::ofstream(out) << "old";
  EXPECT_EXIT(write_past_size_limit(out), ::testing::ExitedWithCode(7), "");
  EXPECT_EQ(listing(tmp.path()), "out.bin");
  EXPECT_EQ(slurp(out), "old");
}

TEST(HardeningAtomic, DevicesAreWrittenDirectly) {
  write_file_atomic("/dev/null", "fine");
  try {
    write_file_atomic("/dev/full", std::string(100, 'x'));
    FAIL() << "wrote to /dev/full";
  } catch (const InternalError& e) {
    EXPECT_EQ(std::string(e.what()), "/dev/full: write failed: No space left on device");
  }
  EXPECT_FALSE(fs::exists("/dev/full.tmp"));
  EXPECT_TRUE(fs::is_character_file("/dev/full"));  // not replaced by a regular file
}

TEST(HardeningAtomic, SymlinkTargetIsReplacedLinkKept) {
  test::TempDir tmp;
  std::ofstream(tmp.file("real.npy")) << "old";
  fs::create_symlink("real.npy", tmp.file("link.npy"));
  write_file_atomic(tmp.file("link.npy"), "new");
  EXPECT_TRUE(fs::is_symlink(tmp.file("link.npy")));
  EXPECT_EQ(slurp(tmp.file("real.npy")), "new");
  EXPECT_EQ(listing(tmp.path()), "link.npy real.npy");
}

TEST(HardeningAtomic, NonRegularTargetsRefused) {
  test::TempDir tmp;
  EXPECT_THROW(write_file_atomic(tmp.path().string(), "x"), InputError);
  EXPECT_THROW(write_file_atomic(tmp.file("no/such/dir/f"), "x"), InputError);
}

TEST(HardeningAtomic, InputGuardRefusesOverwritingAnInput) {
  test::TempDir tmp;
  const std::string in = tmp.file("in.onnx");
  std::ofstream(in) << "model";
  fs::create_hard_link(in, tmp.file("alias.onnx"));
  guard_input_files(true);
  (void)read_file(in);
  std::string msg;
  try {
    write_file_atomic(tmp.file("alias.onnx"), "clobbered");
  } catch (const InputError& e) {
    msg = e.what();
  }
  write_file_atomic(tmp.file("other.onnx"), "fine");  // new files are fine
  guard_input_files(false);
  EXPECT_EQ(msg, tmp.file("alias.onnx") +
                     ": refused: it is an input of this command (write the output to a new file)");
  EXPECT_EQ(slurp(in), "model");
}

TEST(HardeningAtomic, SignalRemovesTempFiles) {
  for (int sig : {SIGINT, SIGTERM}) {
    test::TempDir tmp;
    const std::string out = tmp.file("out.onnx");
    // The child dies of the signal (re-raised after cleanup) while its output is half written.
    EXPECT_EXIT(
        {
          install_signal_cleanup();
          AtomicFile f(out);
          f.write("half a model");
          ::raise(sig);
          std::_Exit(0);
        },
        ::testing::KilledBySignal(sig), "");
    EXPECT_EQ(listing(tmp.path()), "") << "signal " << sig;
  }
}

TEST(HardeningAtomic, RegistryTracksOpenTempFiles) {
  test::TempDir tmp;
  {
    AtomicFile a(tmp.file("a"));
    AtomicFile b(tmp.file("b"));
    a.write("x");
    b.write("y");
    b.commit();  // committed files are no longer registered
    EXPECT_EQ(detail::remove_registered_temp_files(), 1);
  }
  EXPECT_EQ(listing(tmp.path()), "b");
  // A full table is not an error: the file is then only removed by its destructor.
  std::vector<std::unique_ptr<AtomicFile>> many;
  for (int i = 0; i < 80; ++i) many.push_back(std::make_unique<AtomicFile>(tmp.file("m" + std::to_string(i))));
  many.clear();
  EXPECT_EQ(listing(tmp.path()), "b");
}

}  // namespace
}  // namespace repq
