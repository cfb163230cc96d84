// The subcommands' options and entry points. Only main.cpp sees CLI11; each command lives in
// its own file and returns the process exit code.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace repq::cli {

struct InfoOptions {
  std::string model;
  bool json = false;
};
int run_info(const InfoOptions& o);

// Options shared by the commands that read images or .npy files.
struct DataFlags {
  std::vector<std::string> preprocess_args;  // "--key", "value" pairs for data::Preprocess
  int threads = 0;
  int64_t batch = 32;
  int64_t limit = 0;
  bool skip_bad = false;
};

struct RunOptions {
  std::string model;
  std::vector<std::string> inputs;  // "file" or "name=file" (.npy or an image)
  std::string output;               // -o: the first output as .npy
  std::string outputs_dir;          // every output as <name>.npy
  bool json = false;
  DataFlags data;
};
int run_run(const RunOptions& o);

struct EvalOptions {
  std::string model;
  std::string data;
  std::string labels;  // "", "folders" or a label file
  std::string reference;
  std::string output;  // score output name
  bool json = false;
  bool quiet = false;
  DataFlags flags;
};
int run_eval(const EvalOptions& o);

struct FuseCmdOptions {
  std::string model;
  std::string output;  // -o; required unless dry_run
  bool dry_run = false;
  bool json = false;
  double tolerance = 1e-4;  // relative, per fold
  int threads = 1;
};
int run_fuse(const FuseCmdOptions& o);

}  // namespace repq::cli
