// Executor vs ONNX Runtime: activations, broadcasting arithmetic, Gemm/MatMul, Softmax,
// ReduceMean.
#include "support/ort_runner.h"

namespace repq::test {
namespace {

std::string model(int opset, const std::string& graph) {
  return "<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) + "]>\n" + graph;
}

const std::pair<float, float> kAwayFromZero{0.5f, 2.0f};

const std::vector<OrtCase> kCases = {
    {"relu", {"Relu"}, model(13, "g (float[2,3,4,5] x) => (float y) { y = Relu (x) }")},
    {"leaky_relu", {"LeakyRelu"}, model(13, R"(
g (float[2,3,4,5] x) => (float y) { y = LeakyRelu <alpha = 0.1> (x) })")},
    {"leaky_relu_default_alpha", {"LeakyRelu"}, model(13, R"(
g (float[64] x) => (float y) { y = LeakyRelu (x) })")},
    {"clip_min_max", {"Clip"}, model(13, R"(
g (float[2,3,4,5] x) => (float y) <float lo = {-0.5}, float hi = {0.25}>
{ y = Clip (x, lo, hi) })")},
    {"clip_max_only", {"Clip"}, model(13, R"(
g (float[2,3,4,5] x) => (float y) <float hi = {0.25}>
{ y = Clip (x, , hi) })")},
    {"clip_relu6_opset11", {"Clip"}, model(11, R"(
g (float[2,3,4,5] x) => (float y) <float lo = {0.0}, float hi = {0.5}>
{ y = Clip (x, lo, hi) })")},
    {"sigmoid", {"Sigmoid"}, model(13, R"(
g (float[2,3,4,5] x) => (float y) { y = Sigmoid (x) })"), {{"x", {-8.0f, 8.0f}}}},
    {"hard_sigmoid", {"HardSigmoid"}, model(13, R"(
g (float[2,3,4,5] x) => (float y) { y = HardSigmoid <alpha = 0.3, beta = 0.6> (x) })"),
     {{"x", {-4.0f, 4.0f}}}},
    {"hard_sigmoid_default", {"HardSigmoid"}, model(13, R"(
g (float[2,3,4,5] x) => (float y) { y = HardSigmoid (x) })"), {{"x", {-4.0f, 4.0f}}}},
    {"hard_swish", {"HardSwish"}, model(14, R"(
g (float[2,3,4,5] x) => (float y) { y = HardSwish (x) })"), {{"x", {-5.0f, 5.0f}}}},
    {"add_broadcast", {"Add"}, model(13, R"(
g (float[2,3,4,5] a, float[3,1,5] b) => (float y) { y = Add (a, b) })")},
    {"add_same_shape_and_scalar", {"Add"}, model(13, R"(
g (float[2,3,4,5] a, float[2,3,4,5] b) => (float y) <float s = {0.75}>
{ c = Add (a, b)  y = Add (s, c) })")},
    {"sub_broadcast_both_sides", {"Sub"}, model(13, R"(
g (float[2,1,4,1] a, float[3,1,6] b) => (float y) { y = Sub (a, b) })")},
    {"sub_vector", {"Sub"}, model(13, R"(
g (float[2,3,4,5] a) => (float y) <float[5] b> { y = Sub (b, a) })")},
    {"mul_channel_scale", {"Mul"}, model(13, R"(
g (float[2,3,4,5] a) => (float y) <float[3,1,1] s> { y = Mul (a, s) })")},
    {"mul_outer", {"Mul"}, model(13, R"(
g (float[2,1,4,1] a, float[1,3,1,5] b) => (float y) { y = Mul (a, b) })")},
    {"div_broadcast", {"Div"}, model(13, R"(
g (float[2,3,4,5] a, float[2,3,1,1] d) => (float y) { y = Div (a, d) })"), {{"d", kAwayFromZero}}},
    {"div_scalar_by_tensor", {"Div"}, model(13, R"(
g (float[2,3,4,5] d) => (float y) <float one = {1.0}> { y = Div (one, d) })"), {{"d", kAwayFromZero}}},
    {"gemm_transb_bias", {"Gemm"}, model(13, R"(
g (float[4,16] a) => (float y) <float[10,16] w, float[10] c>
{ y = Gemm <transB = 1> (a, w, c) })")},
    {"gemm_transa_alpha_beta", {"Gemm"}, model(13, R"(
g (float[16,3] a) => (float y) <float[16,7] w, float[3,7] c>
{ y = Gemm <transA = 1, alpha = 0.5, beta = 2.0> (a, w, c) })")},
    {"gemm_no_bias_both_transposed", {"Gemm"}, model(13, R"(
g (float[9,5] a) => (float y) <float[6,9] w>
{ y = Gemm <transA = 1, transB = 1> (a, w) })")},
    {"gemm_bias_scalar_and_row", {"Gemm"}, model(13, R"(
g (float[5,8] a) => (float y, float z) <float[8,4] w, float c = {0.5}, float[1,4] r>
{ y = Gemm (a, w, c)  z = Gemm <beta = 0.25> (a, w, r) })")},
    {"matmul_2d", {"MatMul"}, model(13, R"(
g (float[7,33] a) => (float y) <float[33,12] w> { y = MatMul (a, w) })")},
    {"matmul_batched_weight", {"MatMul"}, model(13, R"(
g (float[2,3,4,5] a) => (float y) <float[5,6] w> { y = MatMul (a, w) })")},
    {"matmul_broadcast_batches", {"MatMul"}, model(13, R"(
g (float[2,1,4,5] a, float[3,5,6] b) => (float y) { y = MatMul (a, b) })")},
    {"matmul_vector", {"MatMul"}, model(13, R"(
g (float[3,4,5] a, float[5] v) => (float y) { y = MatMul (a, v) })")},
    {"softmax_last_axis", {"Softmax"}, model(13, R"(
g (float[2,3,10] x) => (float y) { y = Softmax (x) })"), {{"x", {-10.0f, 10.0f}}}},
    {"softmax_axis1", {"Softmax"}, model(13, R"(
g (float[2,5,3,4] x) => (float y) { y = Softmax <axis = 1> (x) })"), {{"x", {-10.0f, 10.0f}}}},
    {"softmax_opset11_flattening", {"Softmax"}, model(11, R"(
g (float[2,3,4] x) => (float y) { y = Softmax <axis = 1> (x) })")},
    {"reduce_mean_spatial", {"ReduceMean"}, model(13, R"(
g (float[2,3,4,5] x) => (float y) { y = ReduceMean <axes = [2,3], keepdims = 1> (x) })")},
    {"reduce_mean_no_keepdims_neg_axis", {"ReduceMean"}, model(13, R"(
g (float[2,3,4,5] x) => (float y) { y = ReduceMean <axes = [-1], keepdims = 0> (x) })")},
    {"reduce_mean_all", {"ReduceMean"}, model(13, R"(
g (float[2,3,4] x) => (float y) { y = ReduceMean (x) })")},
    {"reduce_mean_opset18_axes_input", {"ReduceMean"}, model(18, R"(
g (float[2,3,4,5] x) => (float y) <int64[2] ax = {1, 3}> { y = ReduceMean (x, ax) })")},
};

[[maybe_unused]] const int kRegistered = register_ort_cases(kCases);

INSTANTIATE_TEST_SUITE_P(OrtElementwise, OrtOps, ::testing::ValuesIn(kCases), ort_case_name);

}  // namespace
}  // namespace repq::test
