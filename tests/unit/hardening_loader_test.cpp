// The loader's limits against hostile models (LoadOptions) and the IR checks on names.
#include <gtest/gtest.h>
#include <onnx/defs/parser.h>
#include <onnx/onnx_pb.h>

#include <fstream>
#include <string>

#include "repq/error.h"
#include "repq/ir/model_summary.h"
#include "repq/ir/onnx_io.h"
#include "support/test_util.h"

namespace repq {
namespace {

onnx::ModelProto proto(const char* text) {
  onnx::ModelProto mp;
  onnx::OnnxParser parser(text);
  const auto st = parser.Parse(mp);
  EXPECT_TRUE(st.IsOK()) << st.ErrorMessage();
  return mp;
}

// The InputError message of parsing `mp` with `opts`, or "" when it loads.
std::string refusal(const onnx::ModelProto& mp, const LoadOptions& opts = {},
                    const std::string& dir = "") {
  try {
    (void)parse_model(mp.SerializeAsString(), "m.onnx", dir, opts);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_REFUSED(msg, needle) \
  EXPECT_NE((msg).find(needle), std::string::npos) << "message: " << (msg)

const char* kThree = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x) => (float[2] y)
<float[2] a = {1, 2}, float[2] b = {3, 4}>
{ p = Add (x, a)  q = Mul (p, b)  y = Relu (q) }
)";

TEST(HardeningLoader, NodeAndInitializerCounts) {
  LoadOptions o;
  EXPECT_EQ(refusal(proto(kThree), o), "");
  o.max_nodes = 2;
  EXPECT_REFUSED(refusal(proto(kThree), o),
                 "m.onnx: the graph has 3 nodes, over the limit of 2 (LoadOptions::max_nodes)");
  o = {};
  o.max_initializers = 1;
  EXPECT_REFUSED(refusal(proto(kThree), o), "2 initializers, over the limit of 1");
}

TEST(HardeningLoader, Rank) {
  LoadOptions o;
  o.max_rank = 1;
  EXPECT_EQ(refusal(proto(kThree), o), "");
  auto mp = proto(kThree);
  mp.mutable_graph()->mutable_initializer(0)->add_dims(1);  // a: [2,1]
  EXPECT_REFUSED(refusal(mp, o), "tensor 'a': rank 2 is over the limit of 1 (LoadOptions::max_rank)");
  EXPECT_REFUSED(refusal(proto(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1,1,1,1] x) => (float[1,1,1,1] y) { y = Relu (x) }
)"), o), "value 'x' is declared with rank 4, over the limit of 1");
}

TEST(HardeningLoader, TensorBytes) {
  LoadOptions o;
  o.max_tensor_bytes = 7;
  EXPECT_REFUSED(refusal(proto(kThree), o),
                 "tensor 'a': needs 8 bytes, over the per-tensor limit of 7");
  o = {};
  o.max_total_tensor_bytes = 12;
  EXPECT_REFUSED(refusal(proto(kThree), o), "tensor 'b': tensors so far need 8 + 8 bytes, over "
                                            "the limit of 12 for all tensors");
}

TEST(HardeningLoader, NegativeDimsAndLongRawData) {
  auto mp = proto(kThree);
  auto* a = mp.mutable_graph()->mutable_initializer(0);
  a->set_dims(0, -2);
  EXPECT_REFUSED(refusal(mp), "tensor 'a': negative dimension in shape [-2]");
  a->set_dims(0, 2);
  a->clear_float_data();
  a->set_raw_data(std::string(12, '\0'));  // longer than [2] float32
  EXPECT_REFUSED(refusal(mp), "tensor 'a': raw_data has 12 bytes but shape [2] of float32 needs 8");
}

// `depth` If nodes, each holding the next in its then_branch.
onnx::ModelProto nested_ifs(int depth) {
  onnx::ModelProto mp = proto(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (bool c) => (float[2] y0) { y0 = Identity (c) }
)");
  onnx::GraphProto* cur = mp.mutable_graph();
  cur->clear_node();
  for (int i = 0; i < depth; ++i) {
    auto* n = cur->add_node();
    n->set_op_type("If");
    n->set_name("if" + std::to_string(i));
    n->add_input("c");
    n->add_output("y" + std::to_string(i));
    auto* attr = n->add_attribute();
    attr->set_name("then_branch");
    attr->set_type(onnx::AttributeProto::GRAPH);
    cur = attr->mutable_g();
    cur->set_name("body" + std::to_string(i));
  }
  return mp;
}

TEST(HardeningLoader, SubgraphNesting) {
  EXPECT_EQ(refusal(nested_ifs(16)), "");
  EXPECT_REFUSED(refusal(nested_ifs(17)), "node 'if16' (If) holds subgraphs nested 17 deep, over "
                                          "the limit of 16 (LoadOptions::max_subgraph_depth)");
  // Past protobuf's recursion limit (100 messages deep): a clean refusal, no stack overflow.
  EXPECT_REFUSED(refusal(nested_ifs(40)), "m.onnx: messages are nested more than 100 levels deep");
  auto mp = proto(kThree);
  onnx::TypeProto* t = mp.mutable_graph()->add_value_info()->mutable_type();
  for (int i = 0; i < 60; ++i) t = t->mutable_sequence_type()->mutable_elem_type();
  EXPECT_REFUSED(refusal(mp), "nested more than 100 levels deep");
}

TEST(HardeningLoader, DuplicateNames) {
  const char* twins = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x) => (float[2] y) { p = Relu (x)  y = Neg (p) }
)";
  auto mp = proto(twins);
  mp.mutable_graph()->mutable_node(0)->set_name("n");
  mp.mutable_graph()->mutable_node(1)->set_name("n");
  EXPECT_REFUSED(refusal(mp), "m.onnx: two nodes are named 'n' (node names must be unique");
  LoadOptions o;
  o.allow_duplicate_node_names = true;
  EXPECT_EQ(refusal(mp, o), "");
  mp.mutable_graph()->mutable_node(1)->set_name("");  // empty names are not names
  mp.mutable_graph()->mutable_node(0)->set_name("");
  EXPECT_EQ(refusal(mp), "");
  // One value produced twice, an input declared twice, an output listed twice.
  EXPECT_REFUSED(refusal(proto(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x) => (float[2] y) { y = Relu (x)  y = Neg (x) }
)")), "output 'y' is already defined by another node, an input or an initializer");
  EXPECT_REFUSED(refusal(proto(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x, float[2] x) => (float[2] y) { y = Relu (x) }
)")), "graph input 'x' is declared twice");
  auto two_out = proto(twins);
  *two_out.mutable_graph()->add_output() = two_out.graph().output(0);
  EXPECT_REFUSED(refusal(two_out), "graph output 'y' is listed twice");
}

TEST(HardeningLoader, InitializerAsInputDefault) {
  // IR >= 4: an initializer named like an input is the input's default value.
  const Model m = parse_model(proto(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x, float[2] bias) => (float[2] y) <float[2] bias = {1, 2}> { y = Add (x, bias) }
)").SerializeAsString(), "m.onnx");
  ASSERT_EQ(m.graph.runtime_inputs().size(), 1u);
  EXPECT_EQ(m.graph.runtime_inputs()[0]->name, "x");
  // A default that disagrees with its declaration is ambiguous.
  EXPECT_REFUSED(refusal(proto(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x, int64[2] bias) => (float[2] y) <float[2] bias = {1, 2}> { y = Add (x, bias) }
)")), "graph input 'bias' is declared int64 of rank 1 but its initializer (default value) is "
      "float32[2]; ambiguous, refused");
  EXPECT_REFUSED(refusal(proto(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x, float[3] bias) => (float[2] y) <float[2] bias = {1, 2}> { y = Add (x, bias) }
)")), "graph input 'bias' is declared float32 of rank 1 but its initializer");
}

TEST(HardeningLoader, ExternalDataReadTwiceIsRefused) {
  test::TempDir tmp;
  std::ofstream(tmp.file("w.bin"), std::ios::binary) << std::string(8, '\0');
  auto mp = proto(kThree);
  for (int i = 0; i < 2; ++i) {
    auto* t = mp.mutable_graph()->mutable_initializer(i);
    t->clear_float_data();
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* kv = t->add_external_data();
    kv->set_key("location");
    kv->set_value("w.bin");
  }
  EXPECT_REFUSED(refusal(mp, {}, tmp.path().string()),
                 "tensor 'b': external data file '" + tmp.file("w.bin") +
                     "' has 8 bytes but its tensors read 16 (overlapping or repeated ranges)");
}

TEST(HardeningLoader, FileOver2GiBRefusedBeforeReading) {
  test::TempDir tmp;
  const std::string big = tmp.file("big.onnx");
  std::ofstream(big).put('x');
  std::filesystem::resize_file(big, uint64_t{3} << 30);  // sparse: no 3 GiB written
  try {
    (void)load_model(big);
    FAIL() << "loaded";
  } catch (const InputError& e) {
    EXPECT_REFUSED(std::string(e.what()), big + ": the file is 3221225472 bytes, over the limit "
                                                "of 2147483647 (protobuf cannot parse");
  }
}

// Found by fuzz_onnx_load: ONNX's version converter dereferenced a null value (SEGV) when an
// old-opset model had a node input nothing defines. Old models are now checked first.
TEST(HardeningLoader, OldOpsetModelsAreCheckedBeforeConversion) {
  EXPECT_EQ(refusal(proto(R"(
<ir_version: 4, opset_import: ["" : 9]>
old (float[1,2] x) => (float[1,2] y) { u = Relu (x)  y = Neg (u) }
)")), "");
  EXPECT_REFUSED(refusal(proto(R"(
<ir_version: 4, opset_import: ["" : 9]>
old (float[1,2] x) => (float[1,2] y) { u = Relu (x)  y = Neg (ghost) }
)")), "m.onnx: node 'y' (Neg) input 'ghost' is not produced by any node");
  EXPECT_REFUSED(refusal(proto(R"(
<ir_version: 4, opset_import: ["" : 9]>
old (float[1,2] x) => (float[1,2] y) { y = Relu (x, x) }
)")), "m.onnx: opset 9 model fails ONNX's checker, so it cannot be converted to opset 11 (");
}

// Found by fuzz_onnx_load: names are bytes, not UTF-8; the JSON summary threw
// nlohmann::type_error (316) and `repq info --json` ended as an internal error.
TEST(HardeningLoader, NonUtf8NamesInJsonSummary) {
  auto mp = proto(kThree);
  mp.mutable_graph()->mutable_node(0)->set_name("conv\x94\xff");
  mp.set_producer_name("\xc3");
  const Model m = parse_model(mp.SerializeAsString(), "m.onnx");
  const std::string j = summary_to_json(summarize(m, "m\xfe.onnx"));
  EXPECT_NE(j.find("\xef\xbf\xbd"), std::string::npos) << j;  // U+FFFD
}

}  // namespace
}  // namespace repq
