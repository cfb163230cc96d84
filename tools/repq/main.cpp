// repq command line: parses flags (the only file that includes CLI11), sets up logging and
// turns exceptions into exit codes (0 ok, 1 internal failure, 2 bad usage/input, 3 gate failed).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <new>

#include "commands.h"
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
    if (*info_cmd) return repq::cli::run_info(info);
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
