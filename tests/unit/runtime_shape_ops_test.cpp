// Shape and data-movement ops: Reshape, Flatten, Squeeze/Unsqueeze (attribute and input
// forms), Shape, Transpose, Concat, Split, Slice, Gather, Pad, Cast, Constant(OfShape).
#include <gtest/gtest.h>

#include "repq/error.h"
#include "repq/runtime/executor.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

std::map<std::string, Tensor> run_model(const std::string& graph,
                                        const std::map<std::string, Tensor>& in, int opset = 13) {
  Model model = parse_onnx_text("<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) +
                                "]>\n" + graph);
  Executor ex(model, {2});
  return ex.run(in);
}

Tensor iota(const Shape& s) {
  std::vector<float> v(static_cast<size_t>(shape_numel(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  return Tensor::from_vector<float>(s, v);
}

std::vector<double> range(int n, int start = 0) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(start + i);
  return v;
}

TEST(RuntimeShapeOps, ReshapeZeroMinusOneAndAllowzero) {
  const Tensor x = iota({2, 3, 4});
  auto out = run_model(R"(g (float[2,3,4] x) => (float a, float b) <int64[3] s1 = {0, -1, 2}, int64[2] s2 = {-1, 6}>
{ a = Reshape (x, s1)  b = Reshape (x, s2) })", {{"x", x}});
  EXPECT_EQ(out.at("a").shape(), (Shape{2, 6, 2}));
  EXPECT_EQ(out.at("b").shape(), (Shape{4, 6}));
  EXPECT_EQ(out.at("a").to_doubles(), range(24));
  // allowzero = 1: a 0 in the shape is a real 0-sized dim.
  auto z = run_model(R"(g (float[0,3] x) => (float y) <int64[2] s = {3, 0}>
{ y = Reshape <allowzero = 1> (x, s) })", {{"x", Tensor(DType::kFloat32, {0, 3})}}, 14);
  EXPECT_EQ(z.at("y").shape(), (Shape{3, 0}));
  EXPECT_THROW(run_model(R"(g (float[2,3,4] x) => (float y) <int64[2] s = {5, -1}>
{ y = Reshape (x, s) })", {{"x", x}}), InputError);
  EXPECT_THROW(run_model(R"(g (float[2,3,4] x) => (float y) <int64[2] s = {-1, -1}>
{ y = Reshape (x, s) })", {{"x", x}}), InputError);
}

TEST(RuntimeShapeOps, FlattenSqueezeUnsqueezeShape) {
  const Tensor x = iota({2, 1, 3, 1});
  auto out = run_model(R"(g (float[2,1,3,1] x) => (float f, float s, float t, float u, int64 sh, int64 part)
<int64[1] ax = {-1}, int64[2] uax = {0, 5}>
{ f = Flatten <axis = 2> (x)  s = Squeeze (x)  t = Squeeze (x, ax)  u = Unsqueeze (x, uax)
  sh = Shape (x)  part = Shape <start = 1, end = -1> (x) })", {{"x", x}}, 15);
  EXPECT_EQ(out.at("f").shape(), (Shape{2, 3}));
  EXPECT_EQ(out.at("s").shape(), (Shape{2, 3}));
  EXPECT_EQ(out.at("t").shape(), (Shape{2, 1, 3}));
  EXPECT_EQ(out.at("u").shape(), (Shape{1, 2, 1, 3, 1, 1}));
  EXPECT_EQ(out.at("sh").to_int64s(), (std::vector<int64_t>{2, 1, 3, 1}));
  EXPECT_EQ(out.at("part").to_int64s(), (std::vector<int64_t>{1, 3}));
  // Before opset 13 the axes are attributes.
  auto old = run_model(R"(g (float[2,1,3,1] x) => (float s, float u)
{ s = Squeeze <axes = [1]> (x)  u = Unsqueeze <axes = [-1]> (x) })", {{"x", x}}, 11);
  EXPECT_EQ(old.at("s").shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(old.at("u").shape(), (Shape{2, 1, 3, 1, 1}));
  EXPECT_THROW(run_model(R"(g (float[2,1,3,1] x) => (float s) <int64[1] ax = {0}>
{ s = Squeeze (x, ax) })", {{"x", x}}), InputError);
}

TEST(RuntimeShapeOps, TransposeMovesData) {
  const Tensor x = iota({2, 3, 4});
  auto out = run_model(R"(g (float[2,3,4] x) => (float y, float r)
{ y = Transpose <perm = [1, 2, 0]> (x)  r = Transpose (x) })", {{"x", x}});
  const Tensor& y = out.at("y");
  ASSERT_EQ(y.shape(), (Shape{3, 4, 2}));
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 4; ++c)
        EXPECT_EQ(y.data<float>()[(b * 4 + c) * 2 + a], x.data<float>()[(a * 3 + b) * 4 + c]);
  ASSERT_EQ(out.at("r").shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(out.at("r").data<float>()[(3 * 3 + 2) * 2 + 1], x.data<float>()[(1 * 3 + 2) * 4 + 3]);
}

TEST(RuntimeShapeOps, ConcatAndSplitForms) {
  const Tensor a = iota({2, 2});
  const Tensor b = Tensor::from_vector<float>({2, 1}, {10, 11});
  auto c = run_model("g (float[2,2] a, float[2,1] b) => (float y) { y = Concat <axis = -1> (a, b) }",
                     {{"a", a}, {"b", b}});
  EXPECT_EQ(c.at("y").shape(), (Shape{2, 3}));
  EXPECT_EQ(c.at("y").to_doubles(), (std::vector<double>{0, 1, 10, 2, 3, 11}));

  const Tensor x = iota({2, 5});
  auto s11 = run_model(R"(g (float[2,5] x) => (float p, float q) { p, q = Split <axis = 1, split = [2, 3]> (x) })",
                       {{"x", x}}, 11);
  EXPECT_EQ(s11.at("p").to_doubles(), (std::vector<double>{0, 1, 5, 6}));
  EXPECT_EQ(s11.at("q").to_doubles(), (std::vector<double>{2, 3, 4, 7, 8, 9}));
  auto s13 = run_model(R"(g (float[2,5] x) => (float p, float q) <int64[2] sp = {4, 1}>
{ p, q = Split <axis = 1> (x, sp) })", {{"x", x}});
  EXPECT_EQ(s13.at("q").to_doubles(), (std::vector<double>{4, 9}));
  // opset 18 num_outputs: ceil-sized chunks, the last one smaller (5 -> 2, 2, 1).
  auto s18 = run_model(R"(g (float[2,5] x) => (float p, float q, float r)
{ p, q, r = Split <axis = 1, num_outputs = 3> (x) })", {{"x", x}}, 18);
  EXPECT_EQ(s18.at("p").shape(), (Shape{2, 2}));
  EXPECT_EQ(s18.at("r").to_doubles(), (std::vector<double>{4, 9}));
  EXPECT_THROW(run_model("g (float[2,5] x) => (float p, float q) { p, q = Split <axis = 1> (x) }",
                         {{"x", x}}),
               InputError);  // 5 does not split evenly in two
}

TEST(RuntimeShapeOps, SliceNegativeClampedAndSteps) {
  const Tensor x = iota({10});
  auto run = [&](const std::string& starts, const std::string& ends, const std::string& steps) {
    return run_model("g (float[10] x) => (float y) <int64[1] s = {" + starts + "}, int64[1] e = {" +
                         ends + "}, int64[1] a = {0}, int64[1] t = {" + steps +
                         "}>\n{ y = Slice (x, s, e, a, t) }",
                     {{"x", x}})
        .at("y")
        .to_doubles();
  };
  EXPECT_EQ(run("2", "5", "1"), (std::vector<double>{2, 3, 4}));
  EXPECT_EQ(run("-3", "1000", "1"), (std::vector<double>{7, 8, 9}));
  EXPECT_EQ(run("-100", "3", "2"), (std::vector<double>{0, 2}));
  EXPECT_EQ(run("8", "1", "-3"), (std::vector<double>{8, 5, 2}));
  EXPECT_EQ(run("100", "-100", "-4"), (std::vector<double>{9, 5, 1}));
  EXPECT_EQ(run("5", "5", "1"), (std::vector<double>{}));
  // Reversal with extreme bounds (the way exporters write "to the end").
  EXPECT_EQ(run("9223372036854775807", "-9223372036854775807", "-1"),
            (std::vector<double>{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}));
  // 2-D with default axes and steps.
  auto two = run_model(R"(g (float[3,4] x) => (float y) <int64[2] s = {1, -3}, int64[2] e = {3, -1}>
{ y = Slice (x, s, e) })", {{"x", iota({3, 4})}});
  EXPECT_EQ(two.at("y").shape(), (Shape{2, 2}));
  EXPECT_EQ(two.at("y").to_doubles(), (std::vector<double>{5, 6, 9, 10}));
}

TEST(RuntimeShapeOps, GatherWithNegativeIndices) {
  auto out = run_model(R"(g (float[3,4] x) => (float y, float z) <int64[2] i = {-1, 0}, int64 k = {2}>
{ y = Gather <axis = 0> (x, i)  z = Gather <axis = 1> (x, k) })", {{"x", iota({3, 4})}});
  EXPECT_EQ(out.at("y").shape(), (Shape{2, 4}));
  EXPECT_EQ(out.at("y").to_doubles(), (std::vector<double>{8, 9, 10, 11, 0, 1, 2, 3}));
  EXPECT_EQ(out.at("z").shape(), (Shape{3}));
  EXPECT_EQ(out.at("z").to_doubles(), (std::vector<double>{2, 6, 10}));
}

TEST(RuntimeShapeOps, PadModes) {
  const Tensor x = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto pad = [&](const std::string& mode, const std::string& pads, int opset = 13) {
    return run_model("g (float[2,3] x) => (float y) <int64[4] p = {" + pads +
                         "}, float v = {9}>\n{ y = Pad <mode = \"" + mode + "\"> (x, p, v) }",
                     {{"x", x}}, opset)
        .at("y");
  };
  const Tensor c = pad("constant", "0, 1, 1, 0");
  EXPECT_EQ(c.shape(), (Shape{3, 4}));
  EXPECT_EQ(c.to_doubles(), (std::vector<double>{9, 1, 2, 3, 9, 4, 5, 6, 9, 9, 9, 9}));
  const Tensor r = pad("reflect", "0, 2, 0, 1");
  EXPECT_EQ(r.to_doubles(), (std::vector<double>{3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5}));
  const Tensor e = pad("edge", "1, 1, 0, 0");
  EXPECT_EQ(e.to_doubles(), (std::vector<double>{1, 1, 2, 3, 1, 1, 2, 3, 4, 4, 5, 6}));
  const Tensor w = pad("wrap", "0, 1, 0, 1", 19);
  EXPECT_EQ(w.to_doubles(), (std::vector<double>{3, 1, 2, 3, 1, 6, 4, 5, 6, 4}));
  const Tensor crop = pad("constant", "0, -1, 0, 0");
  EXPECT_EQ(crop.to_doubles(), (std::vector<double>{2, 3, 5, 6}));
  // opset 18: axes input.
  auto ax = run_model(R"(g (float[2,3] x) => (float y) <int64[2] p = {1, 1}, float v = {0}, int64[1] a = {-1}>
{ y = Pad (x, p, v, a) })", {{"x", x}}, 18);
  EXPECT_EQ(ax.at("y").shape(), (Shape{2, 5}));
  // opset 2 attribute form.
  auto old = run_model(R"(g (float[2,3] x) => (float y) { y = Pad <pads = [1, 0, 0, 0], value = 7.0> (x) })",
                       {{"x", x}}, 2);
  EXPECT_EQ(old.at("y").to_doubles(), (std::vector<double>{7, 7, 7, 1, 2, 3, 4, 5, 6}));
}

TEST(RuntimeShapeOps, CastConstantConstantOfShape) {
  auto out = run_model(R"(g (float[3] x) => (int64 i, float c, int64 z, float one)
<int64[2] shp = {2, 2}>
{ i = Cast <to = 7> (x)  c = Constant <value_floats = [1.5, 2.5]> ()
  z = ConstantOfShape <value = int64[1] {4}> (shp)  one = ConstantOfShape (shp) })",
                       {{"x", Tensor::from_vector<float>({3}, {1.7f, -2.2f, 3.0f})}});
  EXPECT_EQ(out.at("i").to_int64s(), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(out.at("c").to_doubles(), (std::vector<double>{1.5, 2.5}));
  EXPECT_EQ(out.at("z").dtype(), DType::kInt64);
  EXPECT_EQ(out.at("z").to_int64s(), (std::vector<int64_t>{4, 4, 4, 4}));
  EXPECT_EQ(out.at("one").dtype(), DType::kFloat32);
  EXPECT_EQ(out.at("one").to_doubles(), (std::vector<double>{0, 0, 0, 0}));
}

TEST(RuntimeShapeOps, ShapeArithmeticChainAsPyTorchExportsIt) {
  // Shape -> Gather -> Unsqueeze -> Concat -> Reshape: flatten keeping the batch dim.
  auto out = run_model(R"(g (float[2,3,4] x) => (float y) <int64 zero = {0}, int64[1] minus1 = {-1}, int64[1] ax = {0}>
{ s = Shape (x)  n = Gather <axis = 0> (s, zero)  nn = Unsqueeze (n, ax)
  shp = Concat <axis = 0> (nn, minus1)  y = Reshape (x, shp) })", {{"x", iota({2, 3, 4})}});
  EXPECT_EQ(out.at("y").shape(), (Shape{2, 12}));
}

}  // namespace
}  // namespace repq::test
