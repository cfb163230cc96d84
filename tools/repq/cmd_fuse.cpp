// repq fuse: fold every re-parameterizable branch structure into one Conv, each fold checked.
#include <spdlog/spdlog.h>

#include <cstdio>

#include "commands.h"
#include "repq/common/atomic_file.h"
#include "repq/error.h"
#include "repq/ir/onnx_io.h"
#include "repq/passes/fuse.h"

namespace repq::cli {

int run_fuse(const FuseCmdOptions& o) {
  if (o.output.empty() && !o.dry_run) throw InputError("fuse: give -o OUTPUT (or --dry-run)");
  if (!o.output.empty() && same_file(o.model, o.output))
    throw InputError(o.output + ": -o names the input model; write to another file");
  if (!(o.tolerance >= 0)) throw InputError("--tolerance must be a non-negative number");
  Model model = load_model(o.model);
  FuseOptions fo;
  fo.apply = !o.dry_run;
  fo.tolerance = o.tolerance;
  fo.threads = o.threads;
  fo.max_kernel_size = o.max_kernel_size;
  FuseReport rep = fuse_branches(model, fo);
  rep.path = o.model;
  if (!o.dry_run) save_model(model, o.output);
  const std::string out = o.json ? fuse_report_to_json(rep) : fuse_report_to_text(rep);
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (!rep.passed()) {
    size_t failed = 0;
    for (const auto& f : rep.folds) failed += f.passed ? 0 : 1;
    spdlog::error("{} fold(s) missed the tolerance {:g} and were left unfolded", failed, o.tolerance);
    return static_cast<int>(ExitCode::kGateFailed);
  }
  return 0;
}

}  // namespace repq::cli
