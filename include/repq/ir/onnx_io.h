// Loading and saving ONNX files (including external data) to and from the IR.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "repq/ir/graph.h"

namespace repq {

struct LoadOptions {
  // Default-domain opsets accepted as they are. Older models are converted up to
  // kConvertTarget with ONNX's version converter when that succeeds.
  int64_t min_opset = 11;
  int64_t max_opset = 19;
  bool convert_old_opsets = true;
  // Run the structural checks of validate_graph() (inputs defined, no cycles, sizes).
  bool validate = true;
  // Largest file accepted (bytes), checked before reading; protobuf itself cannot parse
  // more than 2 GiB.
  uint64_t max_file_bytes = (uint64_t{2} << 30) - 1;

  // Limits against hostile files; each refusal names the limit. Tensor data stored in the
  // file is bounded by the file itself (its declared size must match the bytes present);
  // these bound what the file can make repq allocate beyond that (external data, counts).
  int64_t max_nodes = 1'000'000;         // nodes in the main graph
  int64_t max_initializers = 1'000'000;  // initializers in the main graph
  int64_t max_rank = 32;                 // dims of a tensor or of a declared value
  uint64_t max_tensor_bytes = uint64_t{8} << 30;         // one initializer / attribute tensor
  uint64_t max_total_tensor_bytes = uint64_t{32} << 30;  // all of them together
  // If/Loop/Scan bodies inside bodies. Protobuf refuses messages nested more than 100
  // levels (about 33 subgraph levels) before this check runs.
  int max_subgraph_depth = 16;
  // Two nodes with the same non-empty name make plans and reports ambiguous: refused unless
  // allowed here.
  bool allow_duplicate_node_names = false;
};

// Reads an ONNX model. Throws InputError("path: problem") for anything wrong with the file.
Model load_model(const std::string& path, const LoadOptions& opts = {});
// Parses an in-memory ONNX model; `name` is used in error messages, `base_dir` resolves
// external data ("" refuses external data).
Model parse_model(const std::string& bytes, const std::string& name,
                  const std::string& base_dir = "", const LoadOptions& opts = {});

struct SaveOptions {
  // Write tensors of at least `external_threshold` bytes to `<output file name>.data`
  // beside the model. Unset: as the loaded model did, or when the weights pass 1.5 GiB
  // (protobuf cannot write more than 2 GiB in one message).
  std::optional<bool> external_data;
  size_t external_threshold = 1024;
};

// Writes atomically: a temporary file in the same folder, flushed, then renamed.
// Throws InternalError on a write failure (no partial file is left behind).
void save_model(const Model& model, const std::string& path, const SaveOptions& opts = {});
// The serialized ModelProto (no external data).
std::string serialize_model(const Model& model);

}  // namespace repq
