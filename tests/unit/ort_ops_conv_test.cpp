// Executor vs ONNX Runtime: convolutions, batch normalization and pooling.
#include "support/ort_runner.h"

namespace repq::test {
namespace {

std::string model(int opset, const std::string& graph) {
  return "<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) + "]>\n" + graph;
}

const std::vector<OrtCase> kCases = {
    {"conv_3x3_pad1_bias", {"Conv"}, model(13, R"(
g (float[2,4,9,9] x) => (float y) <float[6,4,3,3] w, float[6] b>
{ y = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w, b) })")},
    {"conv_stride2_asymmetric_pads_no_bias", {"Conv"}, model(13, R"(
g (float[1,3,10,11] x) => (float y) <float[5,3,3,3] w>
{ y = Conv <strides = [2,2], pads = [0,1,1,2]> (x, w) })")},
    {"conv_dilated_rect_kernel", {"Conv"}, model(13, R"(
g (float[1,3,12,10] x) => (float y) <float[4,3,3,2] w, float[4] b>
{ y = Conv <dilations = [2,3], pads = [2,1,2,1], strides = [1,2]> (x, w, b) })")},
    {"conv_groups2", {"Conv"}, model(13, R"(
g (float[2,4,8,8] x) => (float y) <float[6,2,3,3] w, float[6] b>
{ y = Conv <group = 2, pads = [1,1,1,1]> (x, w, b) })")},
    {"conv_depthwise_stride2", {"Conv"}, model(13, R"(
g (float[2,8,9,9] x) => (float y) <float[8,1,3,3] w, float[8] b>
{ y = Conv <group = 8, kernel_shape = [3,3], strides = [2,2], pads = [1,1,1,1]> (x, w, b) })")},
    {"conv_depthwise_multiplier2", {"Conv"}, model(13, R"(
g (float[1,4,7,7] x) => (float y) <float[8,1,3,3] w, float[8] b>
{ y = Conv <group = 4> (x, w, b) })")},
    {"conv_pointwise_wide", {"Conv"}, model(13, R"(
g (float[2,40,5,6] x) => (float y) <float[72,40,1,1] w, float[72] b>
{ y = Conv (x, w, b) })")},
    // ONNX Runtime refuses auto_pad SAME_* with dilations for Conv, so no case has both.
    {"conv_auto_pad_same_upper", {"Conv"}, model(13, R"(
g (float[1,3,9,8] x) => (float y) <float[4,3,3,3] w>
{ y = Conv <auto_pad = "SAME_UPPER", strides = [2,2]> (x, w) })")},
    {"conv_auto_pad_same_lower", {"Conv"}, model(13, R"(
g (float[1,3,9,8] x) => (float y) <float[4,3,4,4] w>
{ y = Conv <auto_pad = "SAME_LOWER", strides = [2,1]> (x, w) })")},
    {"conv_auto_pad_valid", {"Conv"}, model(13, R"(
g (float[1,3,9,8] x) => (float y) <float[4,3,3,3] w, float[4] b>
{ y = Conv <auto_pad = "VALID", strides = [2,2]> (x, w, b) })")},
    {"conv_symbolic_batch", {"Conv", "Relu"}, model(13, R"(
g (float[N,3,6,6] x) => (float y) <float[4,3,3,3] w, float[4] b>
{ c = Conv <pads = [1,1,1,1]> (x, w, b)  y = Relu (c) })")},
    {"conv_transpose_stride2", {"ConvTranspose"}, model(13, R"(
g (float[2,4,5,5] x) => (float y) <float[4,3,3,3] w, float[3] b>
{ y = ConvTranspose <strides = [2,2], pads = [1,1,1,1], output_padding = [1,1]> (x, w, b) })")},
    {"conv_transpose_groups_dilation", {"ConvTranspose"}, model(13, R"(
g (float[1,4,4,5] x) => (float y) <float[4,2,3,2] w>
{ y = ConvTranspose <group = 2, dilations = [2,1], strides = [1,2], pads = [0,1,1,0]> (x, w) })")},
    {"conv_transpose_output_shape", {"ConvTranspose"}, model(13, R"(
g (float[1,2,4,4] x) => (float y) <float[2,3,3,3] w, float[3] b>
{ y = ConvTranspose <strides = [2,2], output_shape = [9,9]> (x, w, b) })")},
    {"batch_norm", {"BatchNormalization"}, model(13, R"(
g (float[2,3,4,5] x) => (float y)
<float[3] s, float[3] b, float[3] mu = {0.1, -0.2, 0.3}, float[3] var = {0.5, 1.5, 0.25}>
{ y = BatchNormalization <epsilon = 0.001> (x, s, b, mu, var) })")},
    {"batch_norm_opset15", {"BatchNormalization"}, model(15, R"(
g (float[2,3,4] x) => (float y)
<float[3] s, float[3] b, float[3] mu = {0.1, -0.2, 0.3}, float[3] var = {0.5, 1.5, 0.25}>
{ y = BatchNormalization (x, s, b, mu, var) })")},
    {"max_pool_3x3_s2_pad1", {"MaxPool"}, model(13, R"(
g (float[2,3,9,9] x) => (float y)
{ y = MaxPool <kernel_shape = [3,3], strides = [2,2], pads = [1,1,1,1]> (x) })")},
    {"max_pool_ceil_mode", {"MaxPool"}, model(13, R"(
g (float[1,2,8,7] x) => (float y)
{ y = MaxPool <kernel_shape = [3,2], strides = [2,2], ceil_mode = 1> (x) })")},
    // Not with auto_pad SAME and dilations: ONNX Runtime then pads for the undilated kernel and
    // returns ceil(in/stride) - 1 outputs where the spec says ceil(in/stride).
    {"max_pool_dilated", {"MaxPool"}, model(13, R"(
g (float[1,2,9,9] x) => (float y)
{ y = MaxPool <kernel_shape = [2,2], dilations = [2,2], pads = [1,0,1,1], strides = [2,1]> (x) })")},
    {"max_pool_same_upper", {"MaxPool"}, model(13, R"(
g (float[1,2,9,8] x) => (float y)
{ y = MaxPool <kernel_shape = [3,3], auto_pad = "SAME_UPPER", strides = [2,2]> (x) })")},
    {"avg_pool_exclude_pad", {"AveragePool"}, model(13, R"(
g (float[2,3,7,7] x) => (float y)
{ y = AveragePool <kernel_shape = [3,3], strides = [2,2], pads = [1,1,1,1]> (x) })")},
    {"avg_pool_include_pad", {"AveragePool"}, model(13, R"(
g (float[2,3,7,7] x) => (float y)
{ y = AveragePool <kernel_shape = [3,3], strides = [2,2], pads = [1,1,1,1], count_include_pad = 1> (x) })")},
    {"avg_pool_ceil_mode", {"AveragePool"}, model(13, R"(
g (float[1,2,8,8] x) => (float y)
{ y = AveragePool <kernel_shape = [3,3], strides = [2,2], ceil_mode = 1> (x) })")},
    {"avg_pool_ceil_mode_include_pad", {"AveragePool"}, model(13, R"(
g (float[1,2,8,8] x) => (float y)
{ y = AveragePool <kernel_shape = [3,3], strides = [2,2], pads = [1,1,1,1], ceil_mode = 1, count_include_pad = 1> (x) })")},
    {"avg_pool_2x2_s2", {"AveragePool"}, model(13, R"(
g (float[2,4,8,6] x) => (float y)
{ y = AveragePool <kernel_shape = [2,2], strides = [2,2]> (x) })")},
    {"global_average_pool", {"GlobalAveragePool"}, model(13, R"(
g (float[2,5,7,6] x) => (float y) { y = GlobalAveragePool (x) })")},
    {"global_max_pool", {"GlobalMaxPool"}, model(13, R"(
g (float[2,5,7,6] x) => (float y) { y = GlobalMaxPool (x) })")},
};

[[maybe_unused]] const int kRegistered = register_ort_cases(kCases);

INSTANTIATE_TEST_SUITE_P(OrtConv, OrtOps, ::testing::ValuesIn(kCases), ort_case_name);

}  // namespace
}  // namespace repq::test
