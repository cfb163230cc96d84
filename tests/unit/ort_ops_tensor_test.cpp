// Executor vs ONNX Runtime: data movement (Flatten, Reshape, Transpose, Concat, Split, Slice,
// Pad, Resize, Identity, Dropout).
#include "support/ort_runner.h"

namespace repq::test {
namespace {

std::string model(int opset, const std::string& graph) {
  return "<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) + "]>\n" + graph;
}

const std::vector<OrtCase> kCases = {
    {"flatten_axis1", {"Flatten"}, model(13, R"(
g (float[2,3,4,5] x) => (float y) { y = Flatten (x) })")},
    {"flatten_axis2_and_0", {"Flatten"}, model(13, R"(
g (float[2,3,4,5] x) => (float y, float z) { y = Flatten <axis = 2> (x)  z = Flatten <axis = 0> (x) })")},
    {"reshape_zero_and_minus1", {"Reshape"}, model(13, R"(
g (float[2,3,4,5] x) => (float y) <int64[3] s = {0, -1, 5}> { y = Reshape (x, s) })")},
    {"reshape_then_conv_input", {"Reshape", "Add"}, model(13, R"(
g (float[2,60] x) => (float y) <int64[4] s = {2, 3, 4, 5}, float[3,1,1] b>
{ r = Reshape (x, s)  y = Add (r, b) })")},
    {"transpose_nchw_to_nhwc", {"Transpose"}, model(13, R"(
g (float[2,3,4,5] x) => (float y) { y = Transpose <perm = [0,2,3,1]> (x) })")},
    {"transpose_default_reverse", {"Transpose"}, model(13, R"(
g (float[2,3,4] x) => (float y) { y = Transpose (x) })")},
    {"concat_channels_three", {"Concat"}, model(13, R"(
g (float[2,3,4,5] a, float[2,1,4,5] b, float[2,2,4,5] c) => (float y)
{ y = Concat <axis = 1> (a, b, c) })")},
    {"concat_negative_axis", {"Concat"}, model(13, R"(
g (float[2,3,4] a, float[2,3,2] b) => (float y) { y = Concat <axis = -1> (a, b) })")},
    {"split_sizes_input", {"Split"}, model(13, R"(
g (float[2,6,4,5] x) => (float a, float b) <int64[2] s = {2, 4}>
{ a, b = Split <axis = 1> (x, s) })")},
    {"split_equal_last_axis", {"Split"}, model(13, R"(
g (float[2,3,9] x) => (float a, float b, float c) { a, b, c = Split <axis = -1> (x) })")},
    {"split_opset11_attribute", {"Split"}, model(11, R"(
g (float[2,6,4] x) => (float a, float b) { a, b = Split <axis = 1, split = [1, 5]> (x) })")},
    {"slice_axes_steps", {"Slice"}, model(13, R"(
g (float[4,6,8] x) => (float y)
<int64[2] st = {1, 7}, int64[2] en = {9223372036854775807, 0}, int64[2] ax = {0, 2}, int64[2] sp = {2, -2}>
{ y = Slice (x, st, en, ax, sp) })")},
    {"slice_negative_indices_default_axes", {"Slice"}, model(13, R"(
g (float[4,6,8] x) => (float y) <int64[3] st = {-3, 0, -5}, int64[3] en = {-1, 100, -1}>
{ y = Slice (x, st, en) })")},
    {"pad_constant", {"Pad"}, model(13, R"(
g (float[1,2,4,5] x) => (float y) <int64[8] p = {0, 0, 1, 2, 0, 1, 2, 0}, float v = {0.5}>
{ y = Pad <mode = "constant"> (x, p, v) })")},
    {"pad_constant_default_value", {"Pad"}, model(13, R"(
g (float[1,2,4,5] x) => (float y) <int64[8] p = {0, 1, 1, 1, 0, 0, 1, 1}>
{ y = Pad (x, p) })")},
    {"pad_reflect", {"Pad"}, model(13, R"(
g (float[1,2,4,5] x) => (float y) <int64[8] p = {0, 0, 2, 3, 0, 0, 1, 2}>
{ y = Pad <mode = "reflect"> (x, p) })")},
    {"pad_edge", {"Pad"}, model(13, R"(
g (float[1,2,4,5] x) => (float y) <int64[8] p = {0, 0, 3, 1, 0, 0, 2, 4}>
{ y = Pad <mode = "edge"> (x, p) })")},
    {"pad_negative_crops", {"Pad"}, model(13, R"(
g (float[1,2,6,6] x) => (float y) <int64[8] p = {0, 0, -1, 2, 0, 0, 1, -2}>
{ y = Pad (x, p) })")},
    {"resize_nearest_asymmetric_floor_x2", {"Resize"}, model(13, R"(
g (float[1,2,3,4] x) => (float y) <float[4] sc = {1.0, 1.0, 2.0, 2.0}>
{ y = Resize <mode = "nearest", coordinate_transformation_mode = "asymmetric", nearest_mode = "floor"> (x, , sc) })")},
    {"resize_nearest_half_pixel_sizes", {"Resize"}, model(13, R"(
g (float[1,2,5,4] x) => (float y) <int64[4] sz = {1, 2, 7, 9}>
{ y = Resize <mode = "nearest"> (x, , , sz) })")},
    {"resize_nearest_round_prefer_ceil_downscale", {"Resize"}, model(13, R"(
g (float[1,2,8,9] x) => (float y) <float[4] sc = {1.0, 1.0, 0.5, 0.6}>
{ y = Resize <mode = "nearest", nearest_mode = "round_prefer_ceil"> (x, , sc) })")},
    {"resize_nearest_align_corners_ceil", {"Resize"}, model(13, R"(
g (float[1,2,3,4] x) => (float y) <int64[4] sz = {1, 2, 7, 6}>
{ y = Resize <mode = "nearest", coordinate_transformation_mode = "align_corners", nearest_mode = "ceil"> (x, , , sz) })")},
    {"resize_linear_half_pixel_x2", {"Resize"}, model(13, R"(
g (float[1,2,4,5] x) => (float y) <float[4] sc = {1.0, 1.0, 2.0, 2.0}>
{ y = Resize <mode = "linear", coordinate_transformation_mode = "half_pixel"> (x, , sc) })")},
    {"resize_linear_pytorch_half_pixel", {"Resize"}, model(13, R"(
g (float[1,2,4,5] x) => (float y) <int64[4] sz = {1, 2, 1, 9}>
{ y = Resize <mode = "linear", coordinate_transformation_mode = "pytorch_half_pixel"> (x, , , sz) })")},
    {"resize_linear_align_corners", {"Resize"}, model(13, R"(
g (float[1,2,4,5] x) => (float y) <int64[4] sz = {1, 2, 7, 3}>
{ y = Resize <mode = "linear", coordinate_transformation_mode = "align_corners"> (x, , , sz) })")},
    {"resize_linear_asymmetric_downscale", {"Resize"}, model(13, R"(
g (float[1,2,8,9] x) => (float y) <float[4] sc = {1.0, 1.0, 0.5, 0.75}>
{ y = Resize <mode = "linear", coordinate_transformation_mode = "asymmetric"> (x, , sc) })")},
    {"resize_opset11_roi_input", {"Resize"}, model(11, R"(
g (float[1,2,3,4] x) => (float y) <float[0] roi, float[4] sc = {1.0, 1.0, 2.0, 1.5}>
{ y = Resize <mode = "linear"> (x, roi, sc) })")},
    {"identity_and_dropout", {"Identity", "Dropout"}, model(13, R"(
g (float[2,3,4] x) => (float y, float z) { y = Identity (x)  z = Dropout (x) })")},
};

[[maybe_unused]] const int kRegistered = register_ort_cases(kCases);

INSTANTIATE_TEST_SUITE_P(OrtTensor, OrtOps, ::testing::ValuesIn(kCases), ort_case_name);

}  // namespace
}  // namespace repq::test
