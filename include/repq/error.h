// Errors that reach the user: a message they can act on and an exit code.
#pragma once

#include <stdexcept>
#include <string>

namespace repq {

// Exit codes, documented in the README.
enum class ExitCode : int {
  kOk = 0,
  kInternal = 1,    // a bug, or a failure of the machine (a write error, out of memory)
  kBadInput = 2,    // bad usage or bad input: the user can fix it
  kGateFailed = 3,  // a quality gate (report / quantize) failed
};

// Thrown for anything the user can fix: a malformed model, a missing file, an unsupported op.
// The message is one line, and names the file (or node) and the problem.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown when repq itself (or the machine) fails: write errors, broken invariants.
class InternalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace repq
