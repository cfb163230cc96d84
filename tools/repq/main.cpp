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
  fuse_cmd->add_option("--max-kernel", fuse.max_kernel_size,
                       "Largest folded kernel in taps per axis (default 64); a larger fold is "
                       "listed as not folded")
      ->check(CLI::PositiveNumber);

  repq::cli::QuantizeCmdOptions quant;
  auto* quant_cmd = app.add_subcommand(
      "quantize",
      "Fold branches, calibrate and write a QDQ INT8 ONNX model that ONNX Runtime runs with "
      "integer ops (QLinearConv)");
  quant_cmd->add_option("model", quant.model, "ONNX model (train or deploy form)")->required();
  quant_cmd->add_option("-o,--output", quant.output, "Write the INT8 (QDQ) model here")->required();
  quant_cmd->add_option("--calib", quant.calib,
                        "Calibration data: a folder (or file) of images or .npy samples");
  quant_cmd->add_option(
      "--method", quant.method,
      "Preset: minmax (per-channel weights + min-max activations), percentile, mse, entropy "
      "(TensorRT-style KL, 2048 bins, calibrated on the conv output before its Relu), kl "
      "(the CFWS paper's KL on the post-Relu tensor, numerically safe), cfws (cfws-auto "
      "weights + kl activations), gptq (percentile activations + gptq weights with bias "
      "correction)");
  quant_cmd->add_option("--act", quant.act,
                        "Activation calibrator, overrides the preset's: minmax, percentile, mse, "
                        "entropy (calibrates a conv+Relu on the conv output, before the Relu, as "
                        "TensorRT-style PTQ does), kl (on the post-Relu tensor, its exact zeros "
                        "left out). The network input and the outputs of CFWS halves always "
                        "keep their min-max range");
  quant_cmd->add_option("--weights", quant.weights,
                        "Weight encoding, overrides the preset's: per-tensor, per-channel, cfws "
                        "(split every kxk conv), cfws-auto (only where it lowers the weight error), "
                        "gptq (per-channel, rounded with GPTQ error feedback on the calibration "
                        "data; --gptq-* options)");
  quant_cmd->add_option("--gptq-inputs", quant.gptq_inputs,
                        "gptq: layer inputs from the float model (float, default) or from the "
                        "QDQ model with the float-input GPTQ weights (quantized)");
  quant_cmd->add_option("--gptq-damp", quant.gptq_damp,
                        "gptq: damping added to H's diagonal, times its mean (default 0.01)");
  quant_cmd->add_flag("--gptq-act-order", quant.gptq_act_order,
                      "gptq: round columns in order of decreasing H diagonal");
  quant_cmd->add_flag("--gptq-clip-search", quant.gptq_clip_search,
                      "gptq: per-channel clip ratio minimizing the H-weighted rounding error");
  quant_cmd->add_flag("--gptq-bias-correction", quant.gptq_bias_correction,
                      "gptq: bias -= (Wq - W) E[x]");
  quant_cmd->add_option("--target", quant.target,
                        "ort (uint8 asymmetric activations, Relu absorbed) or tensorrt "
                        "(int8 symmetric everywhere, zero points 0)");
  quant_cmd->add_option("--percentile", quant.percentile,
                        "Percentile of |x| for --act percentile (default 99.99)");
  quant_cmd->add_option("--exclude", quant.exclude,
                        "Node names or op types to keep in float (repeatable, comma lists)");
  quant_cmd->add_option("--num-calib", quant.num_calib,
                        "Calibration samples: the first N of the sorted listing (0 = all; default 32)")
      ->check(CLI::NonNegativeNumber);
  quant_cmd->add_flag("--no-fuse", quant.no_fuse, "Do not fold branches first");
  quant_cmd->add_flag("--float-stem", quant.float_stem,
                      "Target ort: keep a first conv with <= 4 input channels in float (faster "
                      "in ONNX Runtime at batch 1, slower at large batches)");
  quant_cmd->add_option("--plan-in", quant.plan_in,
                        "Use this plan (repq.plan/1 JSON) instead of calibrating");
  quant_cmd->add_option("--plan-out", quant.plan_out, "Write the plan (repq.plan/1 JSON) here");
  quant_cmd->add_option("--fallback", quant.fallback,
                        "auto: keep the worst layers in float until the top-1 agreement with "
                        "float reaches --min-agreement; none (default)")
      ->check(CLI::IsMember({"none", "auto"}));
  quant_cmd->add_option("--min-agreement", quant.min_agreement,
                        "Target top-1 agreement with float for --fallback auto (0..1)")
      ->check(CLI::Range(0.0, 1.0));
  quant_cmd->add_option("--fallback-criterion", quant.fallback_criterion,
                        "--fallback auto: what picks the layer(s) kept float at each step: "
                        "agreement (default; ties by logit SQNR), sqnr (logit SQNR), kl (mean "
                        "KL of the softmax), margin (mean float top-1 margin in the quantized "
                        "logits)")
      ->check(CLI::IsMember({"agreement", "sqnr", "kl", "margin"}));
  quant_cmd->add_option("--fallback-margin", quant.fallback_margin,
                        "--fallback auto: a sample counts towards --min-agreement only when its "
                        "quantized logits keep the float top-1 with at least this fraction of "
                        "the float margin (0..1, default 0: top-1 agreement)")
      ->check(CLI::Range(0.0, 1.0));
  quant_cmd->add_option("--fallback-candidates", quant.fallback_candidates,
                        "--fallback auto: moves tried per step, this many by isolated SQNR plus "
                        "this many by their last gain (default 6; <= 0: every layer)");
  quant_cmd->add_flag("--refine-act", quant.refine_act,
                      "After calibration: rescale each activation clip (x0.8 / x1.25 steps, last "
                      "tensors first) while the logit SQNR of the exact INT8 simulation against "
                      "float on the calibration samples rises (each trial re-runs the graph after the changed "
                      "tensor; with --plan-in the plan's clips are used, no search)");
  quant_cmd->add_flag("--json", quant.json,
                      "Print the summary as JSON on stdout (schema repq.quantize/1, see "
                      "docs/cli-json.md)");
  add_data_flags(quant_cmd, quant.data);

  repq::cli::ReportCmdOptions rep;
  auto* rep_cmd = app.add_subcommand(
      "report", "Per-layer quantization error (weights, activations, isolated and cumulative "
                "output error) and the diagnosis of why a layer quantizes badly");
  rep_cmd->add_option("model", rep.model, "ONNX model (train or deploy form)")->required();
  rep_cmd->add_option("--calib", rep.calib, "Calibration data (not needed with --static or --plan-in)");
  rep_cmd->add_option("--method", rep.method, "Preset, as for quantize");
  rep_cmd->add_option("--act", rep.act, "Activation calibrator, as for quantize");
  rep_cmd->add_option("--weights", rep.weights, "Weight encoding, as for quantize");
  rep_cmd->add_option("--target", rep.target, "ort or tensorrt, as for quantize");
  rep_cmd->add_option("--percentile", rep.percentile, "Percentile for --act percentile");
  rep_cmd->add_option("--exclude", rep.exclude, "Node names or op types kept in float");
  rep_cmd->add_option("--num-calib", rep.num_calib, "Calibration samples (0 = all; default 32)")
      ->check(CLI::NonNegativeNumber);
  rep_cmd->add_flag("--no-fuse", rep.no_fuse, "Do not fold branches first");
  rep_cmd->add_option("--plan-in", rep.plan_in, "Report on this plan instead of calibrating");
  rep_cmd->add_flag("--refine-act", rep.refine_act,
                    "Refine the activation clips on the logits after calibration, as quantize "
                    "--refine-act (not with --plan-in: the plan holds its clips)");
  rep_cmd->add_option("--format", rep.format, "table (default), csv, json (schema repq.report/1), md, html")
      ->check(CLI::IsMember({"table", "csv", "json", "md", "html"}));
  rep_cmd->add_option("-o,--output", rep.output, "Write the report here (default: stdout)");
  rep_cmd->add_option("--data", rep.eval_data,
                      "Images for the output measures (default: the calibration data)");
  rep_cmd->add_option("--labels", rep.labels,
                      "'folders' or a label file: accuracy in the summary");
  rep_cmd->add_flag("--static", rep.static_only, "Weights only: no data needed");
  rep_cmd->add_flag("--exact", rep.exact,
                    "Cumulative errors and summary on the exact integer kernels (as ONNX Runtime; "
                    "slower) instead of the float form of the QDQ model");
  rep_cmd->add_option("--fail-under-sqnr", rep.fail_under_sqnr,
                      "Exit 3 when the model output SQNR (dB) is below this");
  rep_cmd->add_option("--fail-under-agreement", rep.fail_under_agreement,
                      "Exit 3 when the top-1 agreement with float (0..1) is below this")
      ->check(CLI::Range(0.0, 1.0));
  rep_cmd->add_option("--top", rep.top, "Worst layers listed (default 5)")->check(CLI::NonNegativeNumber);
  add_data_flags(rep_cmd, rep.data);

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
    if (*rep_cmd) {
      rep.quiet = quiet;
      return repq::cli::run_report(rep);
    }
    if (*quant_cmd) {
      quant.quiet = quiet;
      return repq::cli::run_quantize(quant);
    }
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
