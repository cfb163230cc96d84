// A progress bar on stderr when it is a terminal; silent otherwise (CI logs, pipes).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace repq {

class ProgressBar {
 public:
  // `enabled` false, or stderr not a TTY, or TERM=dumb: draws nothing.
  ProgressBar(std::string label, int64_t total, bool enabled = true);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Sets the number of items done; redraws at most ~10 times a second.
  void update(int64_t done);
  // Clears the bar line.
  void finish();
  bool active() const { return active_; }

 private:
  void draw(int64_t done);

  std::string label_;
  int64_t total_;
  bool active_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// True when stderr is an interactive terminal.
bool stderr_is_tty();

}  // namespace repq
