// repq command line: parses flags (the only file that includes CLI11), sets up logging and
// turns exceptions into exit codes (0 ok, 1 internal failure, 2 bad usage/input, 3 gate failed).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <new>

#include "commands.h"
#include "repq/common/atomic_file.h"
#include "repq/data/preprocess.h"
#include "repq/error.h"

namespace {

constexpr int kBadInput = static_cast<int>(repq::ExitCode::kBadInput);
constexpr int kInternal = static_cast<int>(repq::ExitCode::kInternal);

void setup_logging(int verbosity) {
  auto logger = spdlog::stderr_color_mt("repq");
  logger->set_pattern("repq: %^%l%$: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(verbosity < 0 ? spdlog::level::err
                    : verbosity == 0 ? spdlog::level::info
                                     : spdlog::level::debug);
}

void error_line(const char* what) { std::fprintf(stderr, "repq: error: %s\n", what); }

// Preprocessing and reading flags shared by the commands that read images or .npy files.
// Each data::Preprocess option becomes --KEY VALUE; they are passed on as strings and parsed
// (and validated) by the library.
void add_data_flags(CLI::App* cmd, repq::cli::DataFlags& f) {
  for (const auto& opt : repq::data::Preprocess::options()) {
    const std::string key = opt.key;
    cmd->add_option_function<std::string>(
           "--" + key,
           [&f, key](const std::string& v) {
             f.preprocess_args.push_back("--" + key);
             f.preprocess_args.push_back(v);
           },
           opt.help)
        ->type_name(opt.value)
        ->group("Preprocessing (images)");
  }
  cmd->add_option("--threads", f.threads, "Threads for the model and for decoding (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch", f.batch, "Samples per forward pass")->check(CLI::PositiveNumber);
  cmd->add_option("--limit", f.limit, "Use only the first N samples (0 = all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--skip-bad", f.skip_bad, "Skip unreadable images with a warning instead of failing");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"repq: post-training quantization of re-parameterized CNNs (RepVGG, QARepVGG, "
               "MobileOne) to INT8 ONNX",
               "repq"};
  app.set_version_flag("--version", std::string("repq ") + REPQ_VERSION);
  app.require_subcommand(1);
  bool quiet = false;
  int verbose = 0;
  app.add_flag("-q,--quiet", quiet, "Only print errors on stderr");
  app.add_flag("-v,--verbose", verbose, "More log output on stderr (repeatable)");
  app.footer("Exit codes: 0 success, 1 internal failure, 2 bad usage or bad input, "
             "3 a quality gate failed.");

  repq::cli::InfoOptions info;
  auto* info_cmd = app.add_subcommand("info", "Summarize a model: inputs, outputs, ops, "
                                              "parameters, convolutions");
  info_cmd->add_option("model", info.model, "ONNX model")->required();
  info_cmd->add_flag("--json", info.json, "Print JSON (schema repq.info/1, see docs/cli-json.md)");

  repq::cli::RunOptions run;
  auto* run_cmd = app.add_subcommand("run", "One forward pass: .npy or image inputs, outputs as .npy");
  run_cmd->add_option("model", run.model, "ONNX model")->required();
  run_cmd->add_option("-i,--input", run.inputs,
                      "Input file (.npy, or an image preprocessed per the flags below); "
                      "NAME=FILE for a named input; repeat for several inputs")
      ->required();
  run_cmd->add_option("-o,--output", run.output, "Write the first output here (.npy)");
  run_cmd->add_option("--outputs-dir", run.outputs_dir, "Write every output as DIR/<name>.npy");
  run_cmd->add_flag("--json", run.json, "Print the outputs' names, types and shapes as JSON");
  add_data_flags(run_cmd, run.data);

  repq::cli::EvalOptions eval;
  auto* eval_cmd = app.add_subcommand(
      "eval", "Accuracy on labelled images (top-1/top-5), agreement with a reference model, speed");
  eval_cmd->add_option("model", eval.model, "ONNX model")->required();
  eval_cmd->add_option("--data", eval.data, "Folder (or file) of images or .npy samples")->required();
  eval_cmd->add_option("--labels", eval.labels,
                       "'folders' (one subfolder per class, sorted) or a TSV/CSV file of "
                       "file,class_index; default: no labels");
  eval_cmd->add_option("--ref", eval.reference,
                       "Reference model (e.g. the float model) for top-1 agreement and SQNR");
  eval_cmd->add_option("--output", eval.output, "Name of the score output (default: the first)");
  eval_cmd->add_flag("--json", eval.json, "Print JSON (schema repq.eval/1, see docs/cli-json.md)");
  add_data_flags(eval_cmd, eval.flags);

  repq::cli::FuseCmdOptions fuse;
  auto* fuse_cmd = app.add_subcommand(
      "fuse", "Fold re-parameterizable branches (RepVGG, QARepVGG, MobileOne, ACNet, DBB, Conv+BN) "
              "into one Conv each, every fold checked on random input");
  fuse_cmd->add_option("model", fuse.model, "ONNX model")->required();
  fuse_cmd->add_option("-o,--output", fuse.output, "Write the fused model here");
  fuse_cmd->add_flag("--dry-run", fuse.dry_run, "Only list what would be folded (and check it)");
  fuse_cmd->add_flag("--json", fuse.json, "Print JSON (schema repq.fuse/1, see docs/cli-json.md)");
  fuse_cmd->add_option("--tolerance", fuse.tolerance,
                       "Largest accepted max|before-after| / max|before| per fold; a fold that "
                       "misses it is left unfolded and the exit code is 3")
      ->check(CLI::NonNegativeNumber);
  fuse_cmd->add_option("--threads", fuse.threads, "Threads for the checks (0 = all cores)")
      ->check(CLI::NonNegativeNumber);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kBadInput;
  }

  try {
    setup_logging(quiet ? -1 : verbose);
    repq::install_cli_safety();
    if (*info_cmd) return repq::cli::run_info(info);
    if (*run_cmd) return repq::cli::run_run(run);
    if (*fuse_cmd) return repq::cli::run_fuse(fuse);
    if (*eval_cmd) {
      eval.quiet = quiet;
      return repq::cli::run_eval(eval);
    }
    return kBadInput;
  } catch (const repq::InputError& e) {
    error_line(e.what());
    return kBadInput;
  } catch (const repq::InternalError& e) {
    error_line(e.what());
    return kInternal;
  } catch (const std::bad_alloc&) {
    error_line("out of memory");
    return kInternal;
  } catch (const std::exception& e) {
    error_line((std::string("internal error: ") + e.what()).c_str());
    return kInternal;
  }
}
