// The subcommands' options and entry points. Only main.cpp sees CLI11; each command lives in
// its own file and returns the process exit code.
#pragma once

#include <cstdint>
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
  int64_t max_kernel_size = 64;  // FuseOptions::max_kernel_size (taps per axis of a fold)
};
int run_fuse(const FuseCmdOptions& o);

// `repq quantize` (tools/repq/cmd_quantize.cpp).
struct QuantizeCmdOptions {
  std::string model;
  std::string output;        // -o, required
  std::string calib;         // --calib DIR (required unless plan_in)
  std::string method = "minmax";  // --method preset; --act / --weights override its parts
  std::string act;           // --act minmax|percentile|mse|entropy|kl
  std::string weights;       // --weights per-tensor|per-channel|cfws|cfws-auto|gptq
  std::string target = "ort";  // --target ort|tensorrt
  double percentile = 99.99;
  std::vector<std::string> exclude;  // --exclude NAME_OR_OP (repeatable, comma lists)
  int64_t num_calib = 32;    // --num-calib (0: all)
  bool no_fuse = false;
  bool float_stem = false;   // --float-stem (target ort: a <= 4-channel stem conv stays float)
  std::string gptq_inputs = "float";  // --gptq-inputs float|quantized (weights gptq)
  double gptq_damp = 0.01;            // --gptq-damp
  bool gptq_act_order = false, gptq_clip_search = false, gptq_bias_correction = false;
  std::string plan_in, plan_out;
  std::string fallback = "none";  // --fallback none|auto
  double min_agreement = 0.99;    // --min-agreement (with --fallback auto)
  std::string fallback_criterion = "agreement";  // --fallback-criterion agreement|sqnr|kl|margin
  double fallback_margin = 0;     // --fallback-margin R (stricter stop rule, 0..1)
  int fallback_candidates = 6;    // --fallback-candidates N (<= 0: every layer each step)
  bool refine_act = false;        // --refine-act: clip refinement on the logits (quant/refine.h)
  bool json = false;         // summary as JSON on stdout
  bool quiet = false;        // -q: no summary and no progress bar on stderr
  DataFlags data;
};
int run_quantize(const QuantizeCmdOptions& o);

// `repq report` (tools/repq/cmd_report.cpp).
struct ReportCmdOptions {
  std::string model;
  std::string calib;         // --calib DIR (not needed with --static)
  std::string method = "minmax";
  std::string act, weights, target = "ort";
  double percentile = 99.99;
  std::vector<std::string> exclude;
  int64_t num_calib = 32;
  bool no_fuse = false;
  std::string plan_in;
  bool refine_act = false;       // --refine-act (QuantizeOptions::refine_act)
  std::string format = "table";  // table|csv|json|md|html
  std::string output;            // -o FILE (default stdout; html requires -o? no: stdout too)
  std::string eval_data;         // --data DIR: images for the output measures (default: calib)
  std::string labels;            // --labels (accuracy in the summary)
  bool static_only = false;      // --static
  bool exact = false;            // --exact: cumulative pass on the exact integer kernels
  double fail_under_sqnr = -1e300;       // --fail-under-sqnr DB (model output SQNR)
  double fail_under_agreement = -1;      // --fail-under-agreement X (0..1)
  int top = 5;                   // --top N worst layers
  bool quiet = false;            // -q: no progress bar
  DataFlags data;
};
int run_report(const ReportCmdOptions& o);

}  // namespace repq::cli
