// Executor vs ONNX Runtime: shape arithmetic as PyTorch exports it (Shape, Gather, Unsqueeze,
// Squeeze, Cast, Concat, ConstantOfShape, Constant) and QuantizeLinear / DequantizeLinear.
#include "support/ort_runner.h"

namespace repq::test {
namespace {

std::string model(int opset, const std::string& graph) {
  return "<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) + "]>\n" + graph;
}

const std::vector<OrtCase> kCases = {
    // torch.flatten(x, 1) with a dynamic batch: Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), -1))
    {"shape_gather_unsqueeze_concat_reshape", {"Shape", "Gather", "Unsqueeze", "Concat", "Reshape"},
     model(13, R"(
g (float[N,3,4,5] x) => (float y) <int64 i0 = {0}, int64[1] ax0 = {0}, int64[1] m1 = {-1}>
{ s = Shape (x)  n = Gather <axis = 0> (s, i0)  u = Unsqueeze (n, ax0)
  c = Concat <axis = 0> (u, m1)  y = Reshape (x, c) })")},
    // F.interpolate(x, scale_factor=2) sizes: Cast(Mul(Cast(Slice(Shape(x), 2, 4)), 2))
    {"shape_slice_cast_mul_resize", {"Shape", "Slice", "Cast", "Mul", "Concat", "Resize"},
     model(13, R"(
g (float[N,2,3,4] x) => (float y)
<int64[1] b = {0}, int64[1] m = {2}, int64[1] e = {4}, float[1] two = {2.0}>
{ s = Shape (x)  nc = Slice (s, b, m)  hw = Slice (s, m, e)  hwf = Cast <to = 1> (hw)
  hw2 = Mul (hwf, two)  hwi = Cast <to = 7> (hw2)  sz = Concat <axis = 0> (nc, hwi)
  y = Resize <mode = "nearest", coordinate_transformation_mode = "asymmetric", nearest_mode = "floor"> (x, , , sz) })")},
    {"constant_of_shape_add", {"Shape", "ConstantOfShape", "Add"}, model(13, R"(
g (float[N,3,4] x) => (float y)
{ s = Shape (x)  z = ConstantOfShape <value = float[1] {0.5}> (s)  y = Add (x, z) })")},
    {"constant_of_shape_default_zero", {"ConstantOfShape", "Sub"}, model(13, R"(
g (float[2,3,4] x) => (float y) <int64[3] s = {2, 3, 4}>
{ z = ConstantOfShape (s)  y = Sub (z, x) })")},
    {"constant_node_mul", {"Constant", "Mul"}, model(13, R"(
g (float[2,3] x) => (float y) { k = Constant <value = float[3] {1.0, -2.0, 0.5}> ()  y = Mul (x, k) })")},
    {"unsqueeze_squeeze_opset13", {"Unsqueeze", "Squeeze"}, model(13, R"(
g (float[3,1,4] x) => (float y, float z) <int64[2] a = {0, -1}, int64[1] b = {1}>
{ y = Unsqueeze (x, a)  z = Squeeze (x, b) })")},
    {"unsqueeze_squeeze_opset11_attributes", {"Unsqueeze", "Squeeze"}, model(11, R"(
g (float[3,1,4,1] x) => (float y, float z)
{ y = Unsqueeze <axes = [1, 5]> (x)  z = Squeeze (x) })")},
    {"gather_data_axis1", {"Gather"}, model(13, R"(
g (float[2,5,3] x) => (float y, float z) <int64[2,2] idx = {4, 0, -1, 2}, int64 one = {1}>
{ y = Gather <axis = 1> (x, idx)  z = Gather <axis = -1> (x, one) })")},
    {"cast_float_int_float", {"Cast"}, model(13, R"(
g (float[2,3,4] x) => (float y) { i = Cast <to = 6> (x)  l = Cast <to = 7> (i)  y = Cast <to = 1> (l) })"),
     {{"x", {-6.0f, 6.0f}}}},
    {"shape_output_int64", {"Shape", "Cast"}, model(13, R"(
g (float[N,3,5] x) => (int64[3] s, float f) { s = Shape (x)  f = Cast <to = 1> (s) })")},
    {"quantize_dequantize_per_tensor_uint8", {"QuantizeLinear", "DequantizeLinear"}, model(13, R"(
g (float[2,3,4,5] x) => (uint8 q, float y) <float s = {0.01}, uint8 zp = {128}>
{ q = QuantizeLinear (x, s, zp)  y = DequantizeLinear (q, s, zp) })"), {{"x", {-1.5f, 1.5f}}}},
    {"quantize_dequantize_per_tensor_int8", {"QuantizeLinear", "DequantizeLinear"}, model(13, R"(
g (float[2,3,4,5] x) => (int8 q, float y) <float s = {0.007}, int8 zp = {-3}>
{ q = QuantizeLinear (x, s, zp)  y = DequantizeLinear (q, s, zp) })"), {{"x", {-1.2f, 1.2f}}}},
    {"quantize_no_zero_point_uint8", {"QuantizeLinear", "DequantizeLinear"}, model(13, R"(
g (float[4,8] x) => (uint8 q, float y) <float s = {0.02}>
{ q = QuantizeLinear (x, s)  y = DequantizeLinear (q, s) })"), {{"x", {-1.0f, 6.0f}}}},
    {"quantize_per_axis_channels", {"QuantizeLinear", "DequantizeLinear"}, model(13, R"(
g (float[2,3,4,5] x) => (int8 q, float y) <float[3] s = {0.01, 0.004, 0.02}, int8[3] zp = {0, 5, -7}>
{ q = QuantizeLinear <axis = 1> (x, s, zp)  y = DequantizeLinear <axis = 1> (q, s, zp) })")},
    {"dequantize_per_axis_weights_conv", {"DequantizeLinear", "Conv"}, model(13, R"(
g (float[1,2,5,5] x) => (float y)
<int8[4,2,1,1] wq = {127, -128, 5, -5, 0, 64, -64, 1}, float[4] ws = {0.01, 0.002, 0.05, 0.1},
 int8[4] wz = {0, 0, 0, 0}, float[4] b>
{ w = DequantizeLinear <axis = 0> (wq, ws, wz)  y = Conv (x, w, b) })")},
    {"qdq_around_conv_uint8_activations", {"QuantizeLinear", "DequantizeLinear", "Conv"}, model(13, R"(
g (float[1,3,6,6] x) => (float y)
<float s = {0.0078}, uint8 zp = {120}, float[4,3,3,3] w, float[4] b>
{ q = QuantizeLinear (x, s, zp)  d = DequantizeLinear (q, s, zp)
  y = Conv <pads = [1,1,1,1]> (d, w, b) })")},
};

[[maybe_unused]] const int kRegistered = register_ort_cases(kCases);

INSTANTIATE_TEST_SUITE_P(OrtShapeQuant, OrtOps, ::testing::ValuesIn(kCases), ort_case_name);

}  // namespace
}  // namespace repq::test
