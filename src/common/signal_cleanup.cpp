// A fixed table of temporary files to remove when the process is killed by a signal.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "repq/common/atomic_file.h"

namespace repq {

namespace {

constexpr int kSlots = 64;
constexpr size_t kMaxPath = 4096;

struct Slot {
  std::atomic<int> state{0};  // 0 free, 1 being filled, 2 holds a path
  char path[kMaxPath];
};
Slot g_slots[kSlots];

void on_signal(int sig) {
  const int saved = errno;
  detail::remove_registered_temp_files();
  errno = saved;
  // Die of the same signal, as without the handler.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  raise(sig);
}

}  // namespace

namespace detail {

int register_temp_file(const std::string& path) {
  if (path.size() >= kMaxPath) return -1;
  for (int i = 0; i < kSlots; ++i) {
    int expected = 0;
    if (!g_slots[i].state.compare_exchange_strong(expected, 1)) continue;
    std::memcpy(g_slots[i].path, path.c_str(), path.size() + 1);
    g_slots[i].state.store(2);
    return i;
  }
  return -1;
}

void unregister_temp_file(int slot) {
  if (slot >= 0 && slot < kSlots) g_slots[slot].state.store(0);
}

int remove_registered_temp_files() {
  int n = 0;
  for (auto& s : g_slots)
    if (s.state.load() == 2 && ::unlink(s.path) == 0) ++n;
  return n;
}

}  // namespace detail

void install_signal_cleanup() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction old {};
    if (sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) continue;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, nullptr);
  }
}

void install_cli_safety() {
  install_signal_cleanup();
  guard_input_files(true);
}

}  // namespace repq
