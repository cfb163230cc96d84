// Load -> save -> load keeps everything; saved models pass ONNX's checker and strict shape
// inference.
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <fstream>

#include "repq/common/atomic_file.h"
#include "repq/error.h"
#include "repq/ir/graph_utils.h"
#include "repq/ir/onnx_io.h"
#include "support/test_util.h"

namespace repq {
namespace {

const char* kRepBlock = R"(
<ir_version: 8, opset_import: ["" : 13], producer_name: "repq-test", producer_version: "1.0">
block (float[N,4,8,8] x) => (float[N,4,8,8] y)
<float[4,4,3,3] w3, float[4] b3, float[4,4,1,1] w1, float[4] b1>
{
  c3 = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3, b3)
  c1 = Conv (x, w1, b1)
  s = Add (c3, c1)
  y = Relu (s)
}
)";

void expect_same(const Model& a, const Model& b) {
  EXPECT_EQ(a.ir_version, b.ir_version);
  EXPECT_EQ(a.opset(), b.opset());
  EXPECT_EQ(a.producer_name, b.producer_name);
  EXPECT_EQ(a.producer_version, b.producer_version);
  EXPECT_EQ(a.metadata, b.metadata);
  EXPECT_EQ(a.doc_string, b.doc_string);
  EXPECT_EQ(a.opaque_rest, b.opaque_rest);
  ASSERT_EQ(a.graph.nodes.size(), b.graph.nodes.size());
  for (size_t i = 0; i < a.graph.nodes.size(); ++i) {
    const Node& x = a.graph.nodes[i];
    const Node& y = b.graph.nodes[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.op_type, y.op_type);
    EXPECT_EQ(x.domain, y.domain);
    EXPECT_EQ(x.inputs, y.inputs);
    EXPECT_EQ(x.outputs, y.outputs);
    EXPECT_EQ(x.doc_string, y.doc_string);
    ASSERT_EQ(x.attributes.size(), y.attributes.size());
    for (size_t k = 0; k < x.attributes.size(); ++k) {
      EXPECT_EQ(x.attributes[k].name, y.attributes[k].name);
      EXPECT_EQ(x.attributes[k].kind, y.attributes[k].kind);
      EXPECT_EQ(x.attributes[k].ints, y.attributes[k].ints);
      EXPECT_EQ(x.attributes[k].i, y.attributes[k].i);
      EXPECT_EQ(x.attributes[k].f, y.attributes[k].f);
      EXPECT_EQ(x.attributes[k].s, y.attributes[k].s);
      EXPECT_EQ(x.attributes[k].opaque, y.attributes[k].opaque);
      EXPECT_TRUE(x.attributes[k].t.equals(y.attributes[k].t));
    }
  }
  EXPECT_EQ(a.graph.initializer_names(), b.graph.initializer_names());
  for (const auto& n : a.graph.initializer_names())
    EXPECT_TRUE(a.graph.initializer(n)->equals(*b.graph.initializer(n))) << n;
  auto same_vi = [](const std::vector<ValueInfo>& p, const std::vector<ValueInfo>& q) {
    ASSERT_EQ(p.size(), q.size());
    for (size_t i = 0; i < p.size(); ++i) {
      EXPECT_EQ(p[i].name, q[i].name);
      EXPECT_EQ(p[i].type_str(), q[i].type_str());
      EXPECT_EQ(p[i].opaque_type, q[i].opaque_type);
    }
  };
  same_vi(a.graph.inputs, b.graph.inputs);
  same_vi(a.graph.outputs, b.graph.outputs);
  same_vi(a.graph.value_info, b.graph.value_info);
}

void expect_valid_onnx(const std::string& path) {
  onnx::ModelProto mp;
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(mp.ParseFromIstream(&in));
  EXPECT_NO_THROW(onnx::checker::check_model(mp));
  onnx::ShapeInferenceOptions strict{true, 1, false};
  EXPECT_NO_THROW(onnx::shape_inference::InferShapes(mp, onnx::OpSchemaRegistry::Instance(), strict));
}

TEST(OnnxRoundTrip, RepVggBlockIsLossless) {
  test::TempDir tmp;
  const std::string src = tmp.file("in.onnx"), out = tmp.file("out.onnx");
  test::write_onnx_text(kRepBlock, src);
  const Model a = load_model(src);
  EXPECT_EQ(a.graph.nodes.size(), 4u);
  EXPECT_EQ(a.opset(), 13);
  save_model(a, out);
  expect_valid_onnx(out);
  expect_same(a, load_model(out));
}

TEST(OnnxRoundTrip, KeepsUnknownOpsMetadataDocStringsAndSubgraphs) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 15, "com.example" : 1], producer_name: "pytorch",
 doc_string: "model doc", metadata_props: ["author" : "someone", "license" : "MIT"]>
g (float[2,3] x, bool c) => (float[2,3] y, float[2,3] z)
{
  t = com.example.Mystery <alpha = 0.5, tags = ["a", "b"]> (x)
  y = If (c) <then_branch = g1 () => (float[2,3] o1) { o1 = Relu (x) },
              else_branch = g2 () => (float[2,3] o2) { o2 = Neg (x) }>
  z = Identity (t)
}
)";
  test::TempDir tmp;
  const Model a = test::parse_onnx_text(text);
  EXPECT_EQ(a.doc_string, "model doc");
  ASSERT_EQ(a.metadata.size(), 2u);
  EXPECT_EQ(a.graph.nodes[0].domain, "com.example");
  EXPECT_EQ(a.graph.nodes[1].attr("then_branch")->kind, Attribute::Kind::kOpaque);
  save_model(a, tmp.file("out.onnx"));
  expect_same(a, load_model(tmp.file("out.onnx")));
}

TEST(OnnxRoundTrip, ConstantsBecomeInitializersAndFloat16Float64AreKept) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x) => (float[2] y, double[2] dd)
<double[2] d = {0.25, 8.0}, float[2] h>
{
  k = Constant <value = float[2] {3.0, 4.0}> ()
  hf = Cast <to = 1> (h)
  a = Mul (x, k)
  y = Add (a, hf)
  dd = Identity (d)
}
)";
  test::TempDir tmp;
  Model a = test::parse_onnx_text(text);
  // The text syntax has no float16 literals: add the initializer through the IR.
  a.graph.set_initializer("h", Tensor::from_vector<float>({2}, {1.5f, -2.0f}).cast(DType::kFloat16));
  EXPECT_EQ(a.graph.nodes.size(), 4u);  // the Constant became an initializer
  ASSERT_TRUE(a.graph.has_initializer("k"));
  EXPECT_EQ(a.graph.initializer("k")->data<float>()[1], 4.0f);
  EXPECT_EQ(a.graph.initializer("h")->dtype(), DType::kFloat16);
  EXPECT_EQ(a.graph.initializer("h")->cast(DType::kFloat32).data<float>()[0], 1.5f);
  EXPECT_EQ(a.graph.initializer("d")->data<double>()[1], 8.0);
  save_model(a, tmp.file("out.onnx"));
  expect_valid_onnx(tmp.file("out.onnx"));
  expect_same(a, load_model(tmp.file("out.onnx")));
}

TEST(OnnxRoundTrip, ExternalDataLoadsAndSaves) {
  test::TempDir tmp;
  Model a = test::parse_onnx_text(kRepBlock);
  const auto w = test::random_floats(4 * 4 * 9, 7);
  a.graph.set_initializer("w3", Tensor::from_vector<float>({4, 4, 3, 3}, w));
  SaveOptions opts;
  opts.external_data = true;
  opts.external_threshold = 64;
  save_model(a, tmp.file("ext.onnx"), opts);
  ASSERT_TRUE(std::filesystem::exists(tmp.file("ext.onnx.data")));
  const Model b = load_model(tmp.file("ext.onnx"));
  EXPECT_TRUE(b.external_data);
  expect_same(a, b);
  // Saving the loaded model again keeps external data by default.
  std::filesystem::create_directories(tmp.path() / "again");
  save_model(b, (tmp.path() / "again" / "m.onnx").string());
  EXPECT_TRUE(std::filesystem::exists(tmp.path() / "again" / "m.onnx.data"));
  expect_same(a, load_model((tmp.path() / "again" / "m.onnx").string()));
}

TEST(OnnxRoundTrip, TypedFieldTensorsLoad) {
  // The text parser writes typed fields (float_data, int64_data), not raw_data.
  const Model a = test::parse_onnx_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x) => (float[2] y) <float[2] s = {2.0, 3.0}, int64[1] shp = {2}>
{ r = Reshape (x, shp)  y = Mul (r, s) }
)");
  EXPECT_EQ(a.graph.initializer("s")->data<float>()[1], 3.0f);
  EXPECT_EQ(a.graph.initializer("shp")->data<int64_t>()[0], 2);
}

TEST(OnnxRoundTrip, OldOpsetIsConverted) {
  const Model a = test::parse_onnx_text(R"(
<ir_version: 4, opset_import: ["" : 9]>
g (float[1,2,4,4] x) => (float[1,2,4,4] y)
<float[2] sc = {1.0, 2.0}, float[2] bi = {0.0, 1.0}, float[2] mu = {0.5, 0.5}, float[2] va = {1.0, 4.0}>
{ b = BatchNormalization (x, sc, bi, mu, va)  y = Relu (b) }
)");
  EXPECT_EQ(a.opset(), 11);
  EXPECT_EQ(a.graph.nodes.size(), 2u);
}

TEST(OnnxRoundTrip, TooNewOpsetIsRefused) {
  try {
    test::parse_onnx_text(R"(
<ir_version: 8, opset_import: ["" : 20]>
g (float[2] x) => (float[2] y) { y = Relu (x) }
)");
    FAIL() << "expected a refusal";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("opset 20 is newer than repq supports"), std::string::npos);
  }
}

TEST(OnnxRoundTrip, OpsetsElevenToNineteenAreAccepted) {
  for (int opset : {11, 13, 17, 18, 19}) {
    const std::string text = "<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) +
                             "]>\ng (float[2] x) => (float[2] y) { y = Relu (x) }";
    const Model m = test::parse_onnx_text(text);
    EXPECT_EQ(m.opset(), opset);
  }
}

TEST(OnnxRoundTrip, ModelWithoutDefaultOpsetIsRefused) {
  EXPECT_THROW(test::parse_onnx_text(R"(
<ir_version: 8, opset_import: ["com.example" : 1]>
g (float[2] x) => (float[2] y) { y = com.example.Foo (x) }
)"),
               InputError);
}

TEST(GraphUtils, TopoOrderDeadNodesAndNames) {
  Model m = test::parse_onnx_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x) => (float[2] y)
{ y = Relu (a)  a = Neg (x)  dead = Abs (x)  dead2 = Relu (dead) }
)");
  const auto order = topo_order(m.graph);
  ASSERT_EQ(order.size(), 4u);
  EXPECT_EQ(m.graph.nodes[order[0]].outputs[0], "a");
  EXPECT_EQ(remove_dead_nodes(m.graph), 2u);
  topo_sort(m.graph);
  EXPECT_EQ(m.graph.nodes[0].op_type, "Neg");
  NameGen names(m.graph);
  EXPECT_EQ(names.make("a"), "a_1");
  EXPECT_EQ(names.make("a"), "a_2");
  EXPECT_EQ(names.make("fresh"), "fresh");
  GraphIndex idx(m.graph);
  EXPECT_EQ(idx.use_count("a"), 1u);
  EXPECT_EQ(idx.use_count("y"), 1u);  // a graph output
}

}  // namespace
}  // namespace repq
