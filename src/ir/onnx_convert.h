// Internal: conversions between onnx protobuf messages and the IR.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>

#include "repq/ir/graph.h"

namespace repq::detail {

// Where external data of tensors lives and how it may be read.
struct ExternalDataContext {
  std::string base_dir;  // "" refuses external data
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

}  // namespace repq::detail
