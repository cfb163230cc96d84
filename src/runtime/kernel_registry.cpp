// Op type -> kernel factory, for the default ONNX domain.
#include <map>
#include <string>

#include "repq/error.h"
#include "runtime/kernels.h"
#include "runtime/tensor_cache.h"

namespace repq::runtime {

const Tensor& KernelCall::input(size_t i) const {
  if (!has_input(i))
    throw InputError("required input " + std::to_string(i) + " is missing");
  return *inputs_[i];
}

Tensor KernelCall::take_input(size_t i) {
  const Tensor& t = input(i);
  if (i < dying_.size() && dying_[i]) {
    Tensor moved = std::move(*dying_[i]);
    dying_[i] = nullptr;
    inputs_[i] = nullptr;
    return moved;
  }
  return t;
}

Tensor KernelCall::alloc(DType dtype, Shape shape) {
  return cache_ ? cache_->take(dtype, std::move(shape)) : Tensor(dtype, std::move(shape));
}

KernelFactory find_kernel(const std::string& domain, const std::string& op_type) {
  static const std::map<std::string, KernelFactory> registry = {
      {"Add", make_add},
      {"AveragePool", make_average_pool},
      {"BatchNormalization", make_batch_normalization},
      {"Cast", make_cast},
      {"Clip", make_clip},
      {"Concat", make_concat},
      {"Constant", make_constant},
      {"ConstantOfShape", make_constant_of_shape},
      {"Conv", make_conv},
      {"ConvTranspose", make_conv_transpose},
      {"DequantizeLinear", make_dequantize_linear},
      {"Div", make_div},
      {"Dropout", make_dropout},
      {"FakeQuantizeLinear", make_fake_quantize_linear},  // repq-internal (fake_quant.cpp)
      {"Flatten", make_flatten},
      {"Gather", make_gather},
      {"Gemm", make_gemm},
      {"GlobalAveragePool", make_global_average_pool},
      {"GlobalMaxPool", make_global_max_pool},
      {"HardSigmoid", make_hard_sigmoid},
      {"HardSwish", make_hard_swish},
      {"Identity", make_identity},
      {"LeakyRelu", make_leaky_relu},
      {"MatMul", make_matmul},
      {"MaxPool", make_max_pool},
      {"Mul", make_mul},
      {"Pad", make_pad},
      {"QuantizeLinear", make_quantize_linear},
      {"ReduceMean", make_reduce_mean},
      {"Relu", make_relu},
      {"Reshape", make_reshape},
      {"Resize", make_resize},
      {"Shape", make_shape},
      {"Sigmoid", make_sigmoid},
      {"Slice", make_slice},
      {"Softmax", make_softmax},
      {"Split", make_split},
      {"Squeeze", make_squeeze},
      {"Sub", make_sub},
      {"Transpose", make_transpose},
      {"Unsqueeze", make_unsqueeze},
  };
  if (!domain.empty() && domain != "ai.onnx") return nullptr;
  auto it = registry.find(op_type);
  return it == registry.end() ? nullptr : it->second;
}

}  // namespace repq::runtime
