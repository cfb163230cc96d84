#include <spdlog/spdlog.h>

#include <cstdio>

#include "commands.h"
#include "repq/ir/model_summary.h"
#include "repq/ir/onnx_io.h"
#include "repq/passes/fuse.h"

namespace repq::cli {

int run_info(const InfoOptions& o) {
  const Model m = load_model(o.model);
  ModelSummary s = summarize(m, o.model);
  try {
    add_reparam_blocks(s, m);
  } catch (const std::exception& e) {  // the summary stays useful without the block list
    spdlog::warn("{}: re-parameterizable blocks not analysed: {}", o.model, e.what());
  }
  const std::string out = o.json ? summary_to_json(s) : summary_to_text(s);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace repq::cli
