// Internal: conversions between onnx protobuf messages and the IR.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <string>

#include "repq/ir/graph.h"

namespace repq::detail {

// What a load may still allocate, and what it has read so far (LoadOptions' limits).
struct LoadBudget {
  int64_t max_rank = INT64_MAX;
  uint64_t max_tensor_bytes = UINT64_MAX;
  uint64_t max_total_tensor_bytes = UINT64_MAX;
  uint64_t total_bytes = 0;
  std::map<std::string, uint64_t> external_bytes;  // bytes read per external data file
};

// Where external data of tensors lives and how it may be read.
struct ExternalDataContext {
  std::string base_dir;         // "" refuses external data
  LoadBudget* budget = nullptr;  // null: no limits
};

// TensorProto -> Tensor. Throws InputError("tensor 'name': problem").
Tensor tensor_from_proto(const onnx::TensorProto& p, const ExternalDataContext& ctx);
// Tensor -> TensorProto (raw_data, or string_data for strings).
void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto* p);

ValueInfo value_info_from_proto(const onnx::ValueInfoProto& p);
void value_info_to_proto(const ValueInfo& v, onnx::ValueInfoProto* p);

Attribute attribute_from_proto(const onnx::AttributeProto& p, const ExternalDataContext& ctx);
void attribute_to_proto(const Attribute& a, onnx::AttributeProto* p);

// Explains why bytes that failed to parse are not a usable ModelProto:
// "not an ONNX model (...)" or "truncated: ...".
std::string diagnose_unparsable(const std::string& bytes);
// True when bytes that failed to parse do parse with protobuf's recursion limit raised from
// 100 to 1000: the file is only nested too deeply.
bool parses_when_nested_deeper(const std::string& bytes);

}  // namespace repq::detail
