// Explains a protobuf parse failure by walking the wire format of the top-level ModelProto.
#include <google/protobuf/io/coded_stream.h>

#include <cstdint>
#include <string>

#include "ir/onnx_convert.h"

namespace repq::detail {

namespace {

struct Reader {
  const std::string& b;
  size_t pos = 0;
  bool varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= b.size()) return false;
      const auto byte = static_cast<uint8_t>(b[pos++]);
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return true;
    }
    return false;
  }
};

// Field numbers and wire types of onnx.ModelProto (onnx.proto, IR version 8).
bool model_field_ok(uint64_t field, uint64_t wire) {
  switch (field) {
    case 1: case 5: return wire == 0;                     // ir_version, model_version
    case 2: case 3: case 4: case 6: case 7: case 8:       // strings, graph, opset_import
    case 14: case 20: case 25: return wire == 2;          // metadata, training_info, functions
    default: return false;
  }
}

const char* field_name(uint64_t field) {
  switch (field) {
    case 1: return "ir_version";
    case 2: return "producer_name";
    case 3: return "producer_version";
    case 4: return "domain";
    case 5: return "model_version";
    case 6: return "doc_string";
    case 7: return "graph";
    case 8: return "opset_import";
    case 14: return "metadata_props";
    case 20: return "training_info";
    case 25: return "functions";
    default: return "?";
  }
}

}  // namespace

std::string diagnose_unparsable(const std::string& bytes) {
  if (bytes.empty()) return "not an ONNX model (the file is empty)";
  Reader r{bytes};
  int fields = 0;
  while (r.pos < bytes.size()) {
    const size_t start = r.pos;
    uint64_t tag = 0;
    if (!r.varint(tag))
      return fields ? "truncated: the file ends inside a field header at byte " +
                          std::to_string(start)
                    : "not an ONNX model (not a protobuf message)";
    const uint64_t field = tag >> 3, wire = tag & 7;
    if (!model_field_ok(field, wire))
      return fields ? "corrupt: unexpected data at byte " + std::to_string(start) +
                          " after " + std::to_string(fields) + " valid fields"
                    : "not an ONNX model (it does not start like an ONNX ModelProto)";
    uint64_t v = 0;
    if (wire == 0) {
      if (!r.varint(v)) return "truncated: the file ends inside field " +
                               std::string(field_name(field));
    } else {
      if (!r.varint(v)) return "truncated: the file ends inside field " +
                               std::string(field_name(field));
      const uint64_t remaining = bytes.size() - r.pos;
      if (v > remaining)
        return "truncated: field " + std::string(field_name(field)) + " declares " +
               std::to_string(v) + " bytes but only " + std::to_string(remaining) +
               " remain (the file is " + std::to_string(bytes.size()) + " bytes)";
      r.pos += static_cast<size_t>(v);
    }
    ++fields;
  }
  return "corrupt: the protobuf message is malformed inside its fields";
}

bool parses_when_nested_deeper(const std::string& bytes) {
  if (bytes.size() > (size_t{1} << 31) - 1) return false;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  in.SetRecursionLimit(1000);
  onnx::ModelProto mp;
  return mp.ParseFromCodedStream(&in) && in.ConsumedEntireMessage();
}

}  // namespace repq::detail
