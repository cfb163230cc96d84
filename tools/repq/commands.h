// The subcommands' options and entry points. Only main.cpp sees CLI11; each command lives in
// its own file and returns the process exit code.
#pragma once

#include <string>

namespace repq::cli {

struct InfoOptions {
  std::string model;
  bool json = false;
};
int run_info(const InfoOptions& o);

}  // namespace repq::cli
