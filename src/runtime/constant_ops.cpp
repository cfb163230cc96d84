// Constant, ConstantOfShape (its output size limited: it comes from values,
// check_value_sized_output in kernel_util) and Cast.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/kernel_util.h"
#include "runtime/kernels.h"

namespace repq::runtime {

Kernel make_constant(const NodeContext& ctx) {
  const Node& node = ctx.node;
  check_attributes(node, {"value", "value_float", "value_floats", "value_int", "value_ints",
                          "value_string", "value_strings", "sparse_value"});
  if (node.attributes.size() != 1)
    throw InputError("needs exactly one value attribute, found " +
                     std::to_string(node.attributes.size()));
  const Attribute& a = node.attributes[0];
  Tensor value;
  if (a.name == "value" && a.kind == Attribute::Kind::kTensor) {
    value = a.t;
  } else if (a.name == "value_float" && a.kind == Attribute::Kind::kFloat) {
    value = Tensor::from_vector<float>({}, {a.f});
  } else if (a.name == "value_floats" && a.kind == Attribute::Kind::kFloats) {
    value = Tensor::from_vector<float>({static_cast<int64_t>(a.floats.size())}, a.floats);
  } else if (a.name == "value_int" && a.kind == Attribute::Kind::kInt) {
    value = Tensor::from_vector<int64_t>({}, {a.i});
  } else if (a.name == "value_ints" && a.kind == Attribute::Kind::kInts) {
    value = Tensor::from_vector<int64_t>({static_cast<int64_t>(a.ints.size())}, a.ints);
  } else if (a.name == "value_string" && a.kind == Attribute::Kind::kString) {
    value = Tensor::strings({}, {a.s});
  } else if (a.name == "value_strings" && a.kind == Attribute::Kind::kStrings) {
    value = Tensor::strings({static_cast<int64_t>(a.strings.size())}, a.strings);
  } else {
    throw InputError("attribute '" + a.name + "' of this kind is not supported by repq's executor");
  }
  return [value](KernelCall& call) { call.set_output(0, value); };
}

Kernel make_constant_of_shape(const NodeContext& ctx) {
  check_attributes(ctx.node, {"value"});
  Tensor value = Tensor::from_vector<float>({1}, {0.0f});
  if (const Attribute* a = ctx.node.attr("value")) {
    if (a->kind != Attribute::Kind::kTensor || a->t.numel() != 1)
      throw InputError("attribute 'value' must be a tensor of one element");
    value = a->t;
    element_size(value, "attribute 'value'");
  }
  return [value](KernelCall& call) {
    const std::vector<int64_t> dims = int_values(call.input(0), "input shape");
    check_value_sized_output(dims, value.dtype());
    Tensor y(value.dtype(), dims);
    const size_t es = dtype_size(value.dtype());
    std::byte* o = y.mutable_raw();
    for (int64_t i = 0; i < y.numel(); ++i) std::memcpy(o + i * es, value.raw(), es);
    call.set_output(0, std::move(y));
  };
}

Kernel make_cast(const NodeContext& ctx) {
  check_attributes(ctx.node, {"to", "saturate"});
  const int64_t to = ctx.node.attr_int("to", 0);
  if (!dtype_known(static_cast<int32_t>(to)) || to == 0)
    throw InputError("attribute 'to' (" + std::to_string(to) + ") is not a known type");
  const DType dt = static_cast<DType>(to);
  switch (dt) {
    case DType::kFloat32: case DType::kFloat64: case DType::kInt8: case DType::kUInt8:
    case DType::kInt32: case DType::kInt64: case DType::kBool: case DType::kFloat16:
      break;
    default:
      throw InputError("casting to " + dtype_name(dt) + " is not supported by repq's executor");
  }
  return [dt](KernelCall& call) { call.set_output(0, call.input(0).cast(dt)); };
}

}  // namespace repq::runtime
