// libFuzzer target: ONNX bytes -> parse_model (limits, IR checks) -> summarize -> serialize,
// and the serialized model parsed again (the round trip must stay loadable).
#include <cstddef>
#include <cstdint>
#include <string>

#include "repq/error.h"
#include "repq/ir/model_summary.h"
#include "repq/ir/onnx_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  repq::LoadOptions opts;
  opts.max_total_tensor_bytes = 64u << 20;  // keep each run small; the checks are the same
  try {
    const repq::Model m = repq::parse_model(bytes, "fuzz.onnx", "", opts);
    (void)repq::summary_to_json(repq::summarize(m, "fuzz.onnx"));
    (void)repq::summary_to_text(repq::summarize(m, "fuzz.onnx"));
    const std::string again = repq::serialize_model(m);
    (void)repq::parse_model(again, "fuzz-again.onnx", "", opts);
  } catch (const repq::InputError&) {
    // A refusal with a message is the expected answer to bad bytes.
  }
  // TODO(fuse): once passes/fuse exists, run the whole `repq fuse` path on the loaded model
  // here (fold BN, fuse branches, validate_graph, serialize) in its own target fuzz_fuse.
  return 0;
}
