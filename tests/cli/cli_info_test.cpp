// `repq info` end to end: text and JSON output, and every bad-input case's message and exit code.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <onnx/defs/parser.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <fstream>
#include <functional>

#include "support/test_util.h"

namespace repq {
namespace {

const char* kModel = R"(
<ir_version: 8, opset_import: ["" : 13], producer_name: "repq-test", producer_version: "2.0">
net (float[N,3,16,16] input) => (float[N,8,8,8] out)
<float[8,3,3,3] w0, float[8] b0, float[8,1,3,3] wd, float[8] bd>
{
  c0 = Conv <kernel_shape = [3,3], pads = [1,1,1,1], strides = [2,2]> (input, w0, b0)
  r0 = Relu (c0)
  dw = Conv <kernel_shape = [3,3], pads = [1,1,1,1], group = 8> (r0, wd, bd)
  out = Relu (dw)
}
)";

onnx::ModelProto text_proto(const char* text) {
  onnx::ModelProto mp;
  onnx::OnnxParser parser(text);
  EXPECT_TRUE(parser.Parse(mp).IsOK());
  return mp;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// kModel with an initializer "w0" of the given dims and no data yet (the text parser declares
// w0 in value_info only).
onnx::TensorProto* add_w0(onnx::ModelProto& mp, std::initializer_list<int64_t> dims) {
  auto* w = mp.mutable_graph()->add_initializer();
  w->set_name("w0");
  w->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) w->add_dims(d);
  return w;
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

TEST(CliInfo, PrintsSummary) {
  test::TempDir tmp;
  test::write_onnx_text(kModel, tmp.file("m.onnx"));
  const auto r = test::run_repq({"info", tmp.file("m.onnx")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "IR version 8")) << r.out;
  EXPECT_TRUE(contains(r.out, "ai.onnx=13"));
  EXPECT_TRUE(contains(r.out, "repq-test 2.0"));
  EXPECT_TRUE(contains(r.out, "input  float32[N,3,16,16]"));
  EXPECT_TRUE(contains(r.out, "Conv 2"));
  EXPECT_TRUE(contains(r.out, "Relu 2"));
  EXPECT_TRUE(contains(r.out, "Parameters: 304"));  // 216 + 8 + 72 + 8
  EXPECT_TRUE(contains(r.out, "8 (dw)"));
}

TEST(CliInfo, JsonFollowsSchema) {
  test::TempDir tmp;
  test::write_onnx_text(kModel, tmp.file("m.onnx"));
  const auto r = test::run_repq({"info", "--json", tmp.file("m.onnx")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema"], "repq.info/1");
  EXPECT_EQ(j["ir_version"], 8);
  EXPECT_EQ(j["opsets"]["ai.onnx"], 13);
  EXPECT_EQ(j["producer"]["name"], "repq-test");
  EXPECT_EQ(j["inputs"][0]["name"], "input");
  EXPECT_EQ(j["inputs"][0]["dtype"], "float32");
  EXPECT_EQ(j["inputs"][0]["shape"], nlohmann::json::parse(R"(["N",3,16,16])"));
  EXPECT_EQ(j["outputs"][0]["name"], "out");
  EXPECT_EQ(j["node_count"], 4);
  EXPECT_EQ(j["op_histogram"]["Conv"], 2);
  EXPECT_EQ(j["parameters"]["count"], 304);
  EXPECT_EQ(j["parameters"]["bytes"], 304 * 4);
  ASSERT_EQ(j["convs"].size(), 2u);
  EXPECT_EQ(j["convs"][0]["name"], "c0");
  EXPECT_EQ(j["convs"][0]["kernel"], nlohmann::json::parse("[3,3]"));
  EXPECT_EQ(j["convs"][0]["strides"], nlohmann::json::parse("[2,2]"));
  EXPECT_EQ(j["convs"][0]["in_channels"], 3);
  EXPECT_EQ(j["convs"][0]["out_channels"], 8);
  EXPECT_EQ(j["convs"][1]["groups"], 8);
  EXPECT_EQ(j["convs"][1]["depthwise"], true);
  EXPECT_TRUE(r.err.empty()) << "stderr must stay quiet for machine output: " << r.err;
}

TEST(CliInfo, HelpAndVersion) {
  auto r = test::run_repq({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.out, "repq 0.")) << r.out;
  r = test::run_repq({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.out, "info"));
  EXPECT_TRUE(contains(r.out, "Exit codes"));
  r = test::run_repq({"info", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.out, "--json"));
}

TEST(CliInfo, BadUsageExitsTwo) {
  EXPECT_EQ(test::run_repq({}).exit_code, 2);
  EXPECT_EQ(test::run_repq({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(test::run_repq({"info"}).exit_code, 2);
  EXPECT_EQ(test::run_repq({"info", "--no-such-flag", "x.onnx"}).exit_code, 2);
}

// Each bad input: exit code 2, one line on stderr naming the file and the problem.
struct BadCase {
  const char* name;
  std::function<void(const std::string& path)> make;
  const char* expected;
};

void expect_refused(const std::string& path, const std::string& expected) {
  const auto r = test::run_repq({"info", path});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_TRUE(contains(r.err, "repq: error: " + path + ": ")) << r.err;
  EXPECT_TRUE(contains(r.err, expected)) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
}

TEST(CliInfoBadInput, MissingFile) {
  test::TempDir tmp;
  expect_refused(tmp.file("nope.onnx"), "cannot open: No such file or directory");
}

TEST(CliInfoBadInput, Directory) {
  test::TempDir tmp;
  expect_refused(tmp.path().string(), "is a directory");
}

TEST(CliInfoBadInput, EmptyFile) {
  test::TempDir tmp;
  write_bytes(tmp.file("e.onnx"), "");
  expect_refused(tmp.file("e.onnx"), "not an ONNX model (the file is empty)");
}

TEST(CliInfoBadInput, NotOnnx) {
  test::TempDir tmp;
  write_bytes(tmp.file("img.onnx"), "\x89PNG\r\n\x1a\n some image bytes that are not a model");
  expect_refused(tmp.file("img.onnx"), "not an ONNX model");
  write_bytes(tmp.file("text.onnx"), "hello, this is a text file\n");
  expect_refused(tmp.file("text.onnx"), "not an ONNX model");
}

TEST(CliInfoBadInput, TruncatedProtobuf) {
  test::TempDir tmp;
  const std::string bytes = text_proto(kModel).SerializeAsString();
  write_bytes(tmp.file("t.onnx"), bytes.substr(0, bytes.size() / 2));
  expect_refused(tmp.file("t.onnx"), "truncated: field graph declares");
}

TEST(CliInfoBadInput, GraphWithCycle) {
  test::TempDir tmp;
  write_bytes(tmp.file("c.onnx"), text_proto(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x) => (float[2] y)
{ a = Add (x, b)  b = Relu (a)  y = Neg (b) }
)").SerializeAsString());
  expect_refused(tmp.file("c.onnx"), "graph has a cycle through node");
}

TEST(CliInfoBadInput, NodeConsumesItsOwnOutput) {
  test::TempDir tmp;
  write_bytes(tmp.file("s.onnx"), text_proto(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x) => (float[2] y)
{ a = Add (x, a)  y = Neg (a) }
)").SerializeAsString());
  expect_refused(tmp.file("s.onnx"), "consumes its own output 'a'");
}

TEST(CliInfoBadInput, UndefinedNodeInput) {
  test::TempDir tmp;
  write_bytes(tmp.file("u.onnx"), text_proto(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x) => (float[2] y)
{ y = Add (x, ghost) }
)").SerializeAsString());
  expect_refused(tmp.file("u.onnx"),
                 "node 'y' (Add) input 'ghost' is not produced by any node, initializer or graph input");
}

TEST(CliInfoBadInput, TensorByteSizeMismatch) {
  test::TempDir tmp;
  auto mp = text_proto(kModel);
  add_w0(mp, {8, 3, 3, 3})->set_raw_data(std::string(100, '\0'));
  write_bytes(tmp.file("b.onnx"), mp.SerializeAsString());
  expect_refused(tmp.file("b.onnx"),
                 "tensor 'w0': raw_data has 100 bytes but shape [8,3,3,3] of float32 needs 864");
}

TEST(CliInfoBadInput, AbsurdDimensions) {
  test::TempDir tmp;
  auto mp = text_proto(kModel);
  add_w0(mp, {int64_t{1} << 40, int64_t{1} << 40});
  write_bytes(tmp.file("big.onnx"), mp.SerializeAsString());
  expect_refused(tmp.file("big.onnx"), "more elements than int64 can count");
}

TEST(CliInfoBadInput, UnsupportedOpset) {
  test::TempDir tmp;
  write_bytes(tmp.file("o.onnx"), text_proto(R"(
<ir_version: 8, opset_import: ["" : 21]>
g (float[2] x) => (float[2] y) { y = Relu (x) }
)").SerializeAsString());
  expect_refused(tmp.file("o.onnx"), "opset 21 is newer than repq supports (11 to 19)");
}

TEST(CliInfoBadInput, ExternalDataEscapingTheFolderIsRefused) {
  test::TempDir tmp;
  auto mp = text_proto(kModel);
  auto* w = add_w0(mp, {8, 3, 3, 3});
  w->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* kv = w->add_external_data();
  kv->set_key("location");
  kv->set_value("../../etc/passwd");
  write_bytes(tmp.file("x.onnx"), mp.SerializeAsString());
  expect_refused(tmp.file("x.onnx"), "leaves the model's folder; refused");
  kv->set_value("/etc/passwd");
  write_bytes(tmp.file("y.onnx"), mp.SerializeAsString());
  expect_refused(tmp.file("y.onnx"), "is an absolute path; refused");
}

}  // namespace
}  // namespace repq
