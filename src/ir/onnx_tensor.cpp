// TensorProto <-> Tensor, including ONNX's external data files.
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "ir/onnx_convert.h"
#include "repq/common/atomic_file.h"
#include "repq/error.h"

namespace repq::detail {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void bad(const onnx::TensorProto& p, const std::string& what) {
  throw InputError("tensor '" + p.name() + "': " + what);
}

// Counts `bytes` against the per-tensor and total limits before they are allocated.
void charge(const onnx::TensorProto& p, const ExternalDataContext& ctx, uint64_t bytes) {
  LoadBudget* b = ctx.budget;
  if (!b) return;
  if (bytes > b->max_tensor_bytes)
    bad(p, "needs " + std::to_string(bytes) + " bytes, over the per-tensor limit of " +
               std::to_string(b->max_tensor_bytes) + " (LoadOptions::max_tensor_bytes)");
  if (bytes > b->max_total_tensor_bytes - b->total_bytes)
    bad(p, "tensors so far need " + std::to_string(b->total_bytes) + " + " + std::to_string(bytes) +
               " bytes, over the limit of " + std::to_string(b->max_total_tensor_bytes) +
               " for all tensors (LoadOptions::max_total_tensor_bytes)");
  b->total_bytes += bytes;
}

// Reads the external data of a tensor, refusing locations outside the model's folder.
std::string read_external(const onnx::TensorProto& p, const ExternalDataContext& ctx,
                          uint64_t expected_bytes) {
  std::string location;
  uint64_t offset = 0;
  bool has_length = false;
  uint64_t length = 0;
  for (const auto& kv : p.external_data()) {
    try {
      if (kv.key() == "location") {
        location = kv.value();
      } else if (kv.key() == "offset") {
        offset = std::stoull(kv.value());
      } else if (kv.key() == "length") {
        length = std::stoull(kv.value());
        has_length = true;
      }
    } catch (const std::exception&) {
      bad(p, "external data " + kv.key() + " '" + kv.value() + "' is not a number");
    }
  }
  if (location.empty()) bad(p, "external data without a location");
  if (ctx.base_dir.empty()) bad(p, "external data '" + location + "' but the model has no folder");
  const fs::path rel(location);
  if (rel.is_absolute() || location.find('\0') != std::string::npos)
    bad(p, "external data location '" + location + "' is an absolute path; refused");
  for (const auto& part : rel)
    if (part == "..") bad(p, "external data location '" + location +
                             "' leaves the model's folder; refused");
  const fs::path full = fs::path(ctx.base_dir) / rel;
  std::error_code ec;
  const auto canon_base = fs::weakly_canonical(ctx.base_dir, ec);
  const auto canon_full = fs::weakly_canonical(full, ec);
  if (ec) bad(p, "cannot open external data '" + full.string() + "': " + ec.message());
  const auto [b, f] = std::mismatch(canon_base.begin(), canon_base.end(), canon_full.begin(),
                                    canon_full.end());
  if (b != canon_base.end())
    bad(p, "external data location '" + location + "' leaves the model's folder; refused");
  struct stat st {};
  if (::stat(full.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    bad(p, "cannot open external data file '" + full.string() + "'");
  const auto size = static_cast<uint64_t>(st.st_size);
  if (!has_length) length = offset <= size ? size - offset : 0;
  if (offset > size || length > size - offset)
    bad(p, "external data file '" + full.string() + "' has " + std::to_string(size) +
               " bytes; offset " + std::to_string(offset) + " + length " +
               std::to_string(length) + " is past its end");
  if (length != expected_bytes)
    bad(p, "external data has " + std::to_string(length) + " bytes but the shape needs " +
               std::to_string(expected_bytes));
  if (ctx.budget) {  // tensors may not read one file's bytes twice (overlapping ranges)
    uint64_t& used = ctx.budget->external_bytes[canon_full.string()];
    if (length > size - std::min(used, size))
      bad(p, "external data file '" + full.string() + "' has " + std::to_string(size) +
                 " bytes but its tensors read " + std::to_string(used + length) +
                 " (overlapping or repeated ranges); refused");
    used += length;
  }
  charge(p, ctx, length);
  note_input_file(full.string());
  std::ifstream in(full, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::string data(static_cast<size_t>(length), '\0');
  in.read(data.data(), static_cast<std::streamsize>(length));
  if (!in) bad(p, "read error in external data file '" + full.string() + "'");
  return data;
}

template <class Field, class T>
Tensor from_field(const onnx::TensorProto& p, DType dt, Shape shape, const Field& field,
                  int64_t per_elem, const char* field_name) {
  const int64_t n = shape_numel(shape);
  if (field.size() != n * per_elem)
    bad(p, std::string(field_name) + " has " + std::to_string(field.size()) +
               " values but shape " + shape_str(shape) + " needs " +
               std::to_string(n * per_elem));
  Tensor t(dt, std::move(shape));
  std::byte* out = t.mutable_raw();
  const size_t es = dtype_size(dt) / static_cast<size_t>(per_elem);
  for (int i = 0; i < field.size(); ++i) {
    const T v = static_cast<T>(field.Get(i));
    std::memcpy(out + static_cast<size_t>(i) * es, &v, es);
  }
  return t;
}

}  // namespace

Tensor tensor_from_proto(const onnx::TensorProto& p, const ExternalDataContext& ctx) {
  if (!dtype_known(p.data_type()) || p.data_type() == 0)
    bad(p, "unknown data type " + std::to_string(p.data_type()));
  if (p.has_segment()) bad(p, "segmented tensors are not supported");
  const auto dt = static_cast<DType>(p.data_type());
  if (ctx.budget && p.dims_size() > ctx.budget->max_rank)
    bad(p, "rank " + std::to_string(p.dims_size()) + " is over the limit of " +
               std::to_string(ctx.budget->max_rank) + " (LoadOptions::max_rank)");
  Shape shape(p.dims().begin(), p.dims().end());
  int64_t n = 0;
  try {
    n = shape_numel(shape);
  } catch (const InputError& e) {
    bad(p, e.what());
  }
  if (dt == DType::kString) {
    if (p.string_data_size() != n)
      bad(p, "has " + std::to_string(p.string_data_size()) + " strings but shape " +
                 shape_str(shape) + " needs " + std::to_string(n));
    uint64_t bytes = 0;
    for (const auto& str : p.string_data()) bytes += str.size() + sizeof(std::string);
    charge(p, ctx, bytes);
    return Tensor::strings(shape, {p.string_data().begin(), p.string_data().end()});
  }
  const uint64_t es = dtype_size(dt);
  if (static_cast<uint64_t>(n) > UINT64_MAX / es) bad(p, "shape " + shape_str(shape) + " is too large");
  const uint64_t need = static_cast<uint64_t>(n) * es;
  if (p.data_location() == onnx::TensorProto::EXTERNAL) {
    const std::string data = read_external(p, ctx, need);
    return Tensor::from_bytes(dt, shape, data);
  }
  if (p.has_raw_data()) {
    if (p.raw_data().size() != need)
      bad(p, "raw_data has " + std::to_string(p.raw_data().size()) + " bytes but shape " +
                 shape_str(shape) + " of " + dtype_name(dt) + " needs " + std::to_string(need));
    charge(p, ctx, need);
    return Tensor::from_bytes(dt, shape, p.raw_data());
  }
  charge(p, ctx, need);  // the typed field's size is checked against the shape below
  switch (dt) {
    case DType::kFloat32:
      return from_field<decltype(p.float_data()), float>(p, dt, shape, p.float_data(), 1, "float_data");
    case DType::kComplex64:
      return from_field<decltype(p.float_data()), float>(p, dt, shape, p.float_data(), 2, "float_data");
    case DType::kFloat64:
      return from_field<decltype(p.double_data()), double>(p, dt, shape, p.double_data(), 1, "double_data");
    case DType::kComplex128:
      return from_field<decltype(p.double_data()), double>(p, dt, shape, p.double_data(), 2, "double_data");
    case DType::kInt64:
      return from_field<decltype(p.int64_data()), int64_t>(p, dt, shape, p.int64_data(), 1, "int64_data");
    case DType::kUInt32:
      return from_field<decltype(p.uint64_data()), uint32_t>(p, dt, shape, p.uint64_data(), 1, "uint64_data");
    case DType::kUInt64:
      return from_field<decltype(p.uint64_data()), uint64_t>(p, dt, shape, p.uint64_data(), 1, "uint64_data");
    case DType::kInt32:
      return from_field<decltype(p.int32_data()), int32_t>(p, dt, shape, p.int32_data(), 1, "int32_data");
    case DType::kInt16:
      return from_field<decltype(p.int32_data()), int16_t>(p, dt, shape, p.int32_data(), 1, "int32_data");
    case DType::kUInt16: case DType::kFloat16: case DType::kBFloat16:
      return from_field<decltype(p.int32_data()), uint16_t>(p, dt, shape, p.int32_data(), 1, "int32_data");
    case DType::kInt8:
      return from_field<decltype(p.int32_data()), int8_t>(p, dt, shape, p.int32_data(), 1, "int32_data");
    case DType::kUInt8: case DType::kBool:
      return from_field<decltype(p.int32_data()), uint8_t>(p, dt, shape, p.int32_data(), 1, "int32_data");
    default:
      bad(p, "unsupported data type " + dtype_name(dt));
  }
}

void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto* p) {
  p->Clear();
  p->set_name(name);
  p->set_data_type(static_cast<int32_t>(t.dtype()));
  for (int64_t d : t.shape()) p->add_dims(d);
  if (t.dtype() == DType::kString) {
    for (const auto& s : t.string_data()) p->add_string_data(s);
  } else {
    p->set_raw_data(std::string(t.bytes()));
  }
}

ValueInfo value_info_from_proto(const onnx::ValueInfoProto& p) {
  ValueInfo v;
  v.name = p.name();
  v.doc_string = p.doc_string();
  if (!p.has_type()) return v;
  const auto& type = p.type();
  if (!type.has_tensor_type()) {
    v.opaque_type = type.SerializeAsString();
    return v;
  }
  const auto& tt = type.tensor_type();
  v.elem_type = dtype_known(tt.elem_type()) ? static_cast<DType>(tt.elem_type()) : DType::kUndefined;
  if (tt.has_shape()) {
    v.has_shape = true;
    for (const auto& d : tt.shape().dim()) {
      Dim dim;
      if (d.has_dim_value()) dim.value = d.dim_value();
      else if (d.has_dim_param()) dim.param = d.dim_param();
      v.dims.push_back(std::move(dim));
    }
  }
  return v;
}

void value_info_to_proto(const ValueInfo& v, onnx::ValueInfoProto* p) {
  p->Clear();
  p->set_name(v.name);
  if (!v.doc_string.empty()) p->set_doc_string(v.doc_string);
  if (!v.opaque_type.empty()) {
    p->mutable_type()->ParseFromString(v.opaque_type);
    return;
  }
  if (v.elem_type == DType::kUndefined && !v.has_shape) return;
  auto* tt = p->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(v.elem_type));
  if (v.has_shape) {
    auto* shape = tt->mutable_shape();
    for (const auto& d : v.dims) {
      auto* pd = shape->add_dim();
      if (d.known()) pd->set_dim_value(d.value);
      else if (!d.param.empty()) pd->set_dim_param(d.param);
    }
  }
}

Attribute attribute_from_proto(const onnx::AttributeProto& p, const ExternalDataContext& ctx) {
  Attribute a;
  a.name = p.name();
  a.doc_string = p.doc_string();
  using AP = onnx::AttributeProto;
  if (!p.ref_attr_name().empty()) {
    a.kind = Attribute::Kind::kOpaque;
    a.opaque = p.SerializeAsString();
    return a;
  }
  switch (p.type()) {
    case AP::FLOAT: a.kind = Attribute::Kind::kFloat; a.f = p.f(); break;
    case AP::INT: a.kind = Attribute::Kind::kInt; a.i = p.i(); break;
    case AP::STRING: a.kind = Attribute::Kind::kString; a.s = p.s(); break;
    case AP::TENSOR:
      a.kind = Attribute::Kind::kTensor;
      a.t = tensor_from_proto(p.t(), ctx);
      break;
    case AP::FLOATS:
      a.kind = Attribute::Kind::kFloats;
      a.floats.assign(p.floats().begin(), p.floats().end());
      break;
    case AP::INTS:
      a.kind = Attribute::Kind::kInts;
      a.ints.assign(p.ints().begin(), p.ints().end());
      break;
    case AP::STRINGS:
      a.kind = Attribute::Kind::kStrings;
      a.strings.assign(p.strings().begin(), p.strings().end());
      break;
    default:
      a.kind = Attribute::Kind::kOpaque;
      a.opaque = p.SerializeAsString();
  }
  return a;
}

void attribute_to_proto(const Attribute& a, onnx::AttributeProto* p) {
  p->Clear();
  using AP = onnx::AttributeProto;
  if (a.kind == Attribute::Kind::kOpaque) {
    p->ParseFromString(a.opaque);
    return;
  }
  p->set_name(a.name);
  if (!a.doc_string.empty()) p->set_doc_string(a.doc_string);
  switch (a.kind) {
    case Attribute::Kind::kFloat: p->set_type(AP::FLOAT); p->set_f(a.f); break;
    case Attribute::Kind::kInt: p->set_type(AP::INT); p->set_i(a.i); break;
    case Attribute::Kind::kString: p->set_type(AP::STRING); p->set_s(a.s); break;
    case Attribute::Kind::kTensor:
      p->set_type(AP::TENSOR);
      tensor_to_proto(a.t, "", p->mutable_t());
      p->mutable_t()->clear_name();
      break;
    case Attribute::Kind::kFloats:
      p->set_type(AP::FLOATS);
      for (float f : a.floats) p->add_floats(f);
      break;
    case Attribute::Kind::kInts:
      p->set_type(AP::INTS);
      for (int64_t i : a.ints) p->add_ints(i);
      break;
    case Attribute::Kind::kStrings:
      p->set_type(AP::STRINGS);
      for (const auto& s : a.strings) p->add_strings(s);
      break;
    case Attribute::Kind::kOpaque: break;
  }
}

}  // namespace repq::detail
