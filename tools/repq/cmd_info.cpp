#include <cstdio>

#include "commands.h"
#include "repq/ir/model_summary.h"
#include "repq/ir/onnx_io.h"

namespace repq::cli {

int run_info(const InfoOptions& o) {
  const Model m = load_model(o.model);
  const ModelSummary s = summarize(m, o.model);
  const std::string out = o.json ? summary_to_json(s) : summary_to_text(s);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace repq::cli
