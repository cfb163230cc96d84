// The executor itself: refusal of unsupported ops, input checks, observers, extra outputs,
// freeing of intermediates, and thread-count independence of the results.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "repq/error.h"
#include "repq/runtime/executor.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

Model parse(const std::string& graph, int opset = 13) {
  return parse_onnx_text("<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) + "]>\n" +
                         graph);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

Tensor rnd(const Shape& s, uint32_t seed) {
  return Tensor::from_vector<float>(s, random_floats(static_cast<size_t>(shape_numel(s)), seed));
}

TEST(RuntimeExecutor, RefusesUnsupportedOpInTheConstructor) {
  const Model m = parse(R"(g (float[2] x) => (float y) { t = Relu (x)  y = Erf (t) })");
  EXPECT_EQ(error_of([&] { Executor ex(m); }),
            "node 'y' (Erf): op is not supported by repq's executor");
  Model named = m;
  named.graph.nodes[1].name = "erf_1";
  EXPECT_EQ(error_of([&] { Executor ex(named); }),
            "node 'erf_1' (Erf): op is not supported by repq's executor");
  Model custom = m;
  custom.graph.nodes[1].op_type = "Relu";
  custom.graph.nodes[1].domain = "com.example";
  EXPECT_EQ(error_of([&] { Executor ex(custom); }),
            "node 'y' (com.example:Relu): op is not supported by repq's executor");
  EXPECT_FALSE(executor_supports("", "Erf"));
  EXPECT_FALSE(executor_supports("com.example", "Relu"));
  EXPECT_TRUE(executor_supports("", "Conv"));
  EXPECT_TRUE(executor_supports("ai.onnx", "QuantizeLinear"));
}

TEST(RuntimeExecutor, RefusesBadOrUnknownAttributesInTheConstructor) {
  const std::string bad_pad = error_of([] {
    Executor ex(parse(R"(g (float[1,1,4,4] x) => (float y) <float[1,1,3,3] w>
{ y = Conv <auto_pad = "SAME"> (x, w) })"));
  });
  EXPECT_NE(bad_pad.find("node 'y' (Conv)"), std::string::npos) << bad_pad;
  EXPECT_NE(bad_pad.find("auto_pad 'SAME'"), std::string::npos) << bad_pad;
  const std::string unknown = error_of([] {
    Executor ex(parse(R"(g (float[1,1,4,4] x) => (float y) { y = Relu <frobnicate = 1> (x) })"));
  });
  EXPECT_NE(unknown.find("node 'y' (Relu)"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("'frobnicate'"), std::string::npos) << unknown;
  EXPECT_THROW(Executor(parse(R"(g (float[1,1,4,4] x) => (float y) { y = MaxPool <kernel_shape = [2,2], strides = [0,1]> (x) })")),
               InputError);
  EXPECT_THROW(Executor(parse("g (float[2] x) => (float y) { y = Relu (x) }"), {-1}), InputError);
}

TEST(RuntimeExecutor, ChecksInputsByName) {
  const Model m = parse(R"(g (float[N,3] x, int64[2] k) => (float y) { y = Relu (x) })");
  Executor ex(m, {1});
  EXPECT_EQ(ex.input_names(), (std::vector<std::string>{"x", "k"}));
  EXPECT_EQ(ex.output_names(), (std::vector<std::string>{"y"}));
  const Tensor k = Tensor::from_vector<int64_t>({2}, {1, 2});
  const std::string missing = error_of([&] { ex.run({{"x", rnd({2, 3}, 1)}}); });
  EXPECT_NE(missing.find("input 'k' is missing"), std::string::npos) << missing;
  const std::string shape = error_of([&] { ex.run({{"x", rnd({2, 4}, 1)}, {"k", k}}); });
  EXPECT_NE(shape.find("input 'x' has shape [2,4]"), std::string::npos) << shape;
  EXPECT_NE(shape.find("float32[N,3]"), std::string::npos) << shape;
  const std::string rank = error_of([&] { ex.run({{"x", rnd({3}, 1)}, {"k", k}}); });
  EXPECT_NE(rank.find("input 'x'"), std::string::npos) << rank;
  const std::string type = error_of([&] {
    ex.run({{"x", rnd({2, 3}, 1)}, {"k", Tensor(DType::kInt32, {2})}});
  });
  EXPECT_NE(type.find("input 'k' is int32"), std::string::npos) << type;
  const std::string unknown = error_of([&] {
    ex.run({{"x", rnd({2, 3}, 1)}, {"k", k}, {"z", k}});
  });
  EXPECT_NE(unknown.find("'z' is not an input"), std::string::npos) << unknown;
  // Symbolic batch dims take any size.
  EXPECT_EQ(ex.run({{"x", rnd({5, 3}, 1)}, {"k", k}}).at("y").shape(), (Shape{5, 3}));
}

TEST(RuntimeExecutor, RunTimeErrorsNameTheNode) {
  const Model m = parse(R"(g (float[N] x) => (float y) <int64[2] s = {3, -1}> { y = Reshape (x, s) })");
  Executor ex(m, {1});
  const std::string e = error_of([&] { ex.run({{"x", rnd({4}, 1)}}); });
  EXPECT_EQ(e.rfind("node 'y' (Reshape): ", 0), 0u) << e;
}

TEST(RuntimeExecutor, ObserverSeesEveryProducedValueInOrder) {
  const Model m = parse(R"(g (float[2,3] x) => (float y) <float[3] b = {1, 2, 3}>
{ a = Add (x, b)  r = Relu (a)  n = Neg2 (r)  y = Mul (a, r) })");
  Model ok = m;
  ok.graph.nodes[2].op_type = "Sigmoid";
  Executor ex(ok, {2});
  const Tensor x = rnd({2, 3}, 4);
  std::vector<std::string> names;
  std::map<std::string, Tensor> seen;
  const auto out = ex.run({{"x", x}}, [&](const std::string& name, const Tensor& t) {
    names.push_back(name);
    seen[name] = t;
  });
  EXPECT_EQ(names, (std::vector<std::string>{"x", "a", "r", "n", "y"}));
  EXPECT_TRUE(seen.at("y").equals(out.at("y")));
  for (int i = 0; i < 6; ++i) {
    const float a = x.data<float>()[i] + static_cast<float>(i % 3 + 1);
    EXPECT_EQ(seen.at("a").data<float>()[i], a);
    EXPECT_EQ(seen.at("r").data<float>()[i], a > 0 ? a : 0.0f);
  }
}

TEST(RuntimeExecutor, ExtraOutputsKeepIntermediates) {
  const Model m = parse(R"(g (float[4] x) => (float y) { a = Relu (x)  b = Sigmoid (a)  y = Relu (b) })");
  Executor ex(m, {1});
  const Tensor x = Tensor::from_vector<float>({4}, {-1, 0, 1, 2});
  const auto out = ex.run({{"x", x}}, nullptr, {"a", "x"});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out.at("a").to_doubles(), (std::vector<double>{0, 0, 1, 2}));
  EXPECT_TRUE(out.at("x").equals(x));
  EXPECT_THROW(ex.run({{"x", x}}, nullptr, {"nope"}), InputError);
}

TEST(RuntimeExecutor, FreesIntermediatesAfterTheirLastUse) {
  // A chain of 8 same-sized convs: freed outputs are recycled, so few distinct buffers show.
  std::string body;
  std::string inits;
  std::string prev = "x";
  for (int i = 0; i < 8; ++i) {
    const std::string v = i == 7 ? "y" : "v" + std::to_string(i);
    inits += (i ? ", " : "") + std::string("float[16,16,1,1] w") + std::to_string(i);
    body += "  " + v + " = Conv (" + prev + ", w" + std::to_string(i) + ")\n";
    prev = v;
  }
  const Model m = parse("g (float[1,16,32,32] x) => (float y) <" + inits + ">\n{\n" + body + "}");
  Executor ex(m, {1});
  const Tensor x = rnd({1, 16, 32, 32}, 5);
  auto buffers = [&](const std::vector<std::string>& extra) {
    std::set<const std::byte*> seen;
    std::map<std::string, const std::byte*> where;
    ex.run({{"x", x}}, [&](const std::string& n, const Tensor& t) {
      if (n != "x") seen.insert(t.raw());
      where[n] = t.raw();
    }, extra);
    return std::make_pair(seen.size(), where);
  };
  const auto [distinct, where] = buffers({});
  EXPECT_LE(distinct, 3u);  // without freeing: 8
  // A value kept as an extra output is not recycled: no later value reuses its buffer.
  const auto [distinct2, where2] = buffers({"v2"});
  for (const std::string n : {"v3", "v4", "v5", "v6", "y"}) EXPECT_NE(where2.at(n), where2.at("v2")) << n;
  EXPECT_LE(distinct2, 4u);
}

TEST(RuntimeExecutor, ResultsDoNotDependOnTheThreadCount) {
  const Model m = parse(R"(g (float[N,3,40,40] x) => (float y)
<float[16,3,3,3] w0, float[16] b0, float[16,1,3,3] w1, float[16] b1, float[48,16,1,1] w2, float[48] b2,
 float[48,1,3,3] w3, float[96,48,1,1] w4, float[10,96] fc, float[10] fb>
{ c0 = Conv <strides = [2,2], pads = [1,1,1,1]> (x, w0, b0)  r0 = Relu (c0)
  c1 = Conv <group = 16, pads = [1,1,1,1]> (r0, w1, b1)  r1 = Relu (c1)
  c2 = Conv (r1, w2, b2)  r2 = Relu (c2)
  c3 = Conv <group = 48, strides = [2,2], pads = [1,1,1,1]> (r2, w3)
  c4 = Conv (c3, w4)  p = GlobalAveragePool (c4)  f = Flatten (p)
  y = Gemm <transB = 1> (f, fc, fb) })");
  const Tensor x = rnd({3, 3, 40, 40}, 6);
  Executor one(m, {1});
  const Tensor ref = one.run({{"x", x}}).at("y");
  for (int threads : {2, 3, 4}) {
    Executor ex(m, {threads});
    EXPECT_EQ(ex.threads(), threads);
    for (int rep = 0; rep < 3; ++rep) {  // repeated runs reuse recycled buffers
      const Tensor y = ex.run({{"x", x}}).at("y");
      EXPECT_TRUE(y.equals(ref)) << threads << " threads, run " << rep;
    }
  }
  const unsigned hc = std::thread::hardware_concurrency();
  EXPECT_EQ(Executor(m).threads(), hc == 0 ? 1 : static_cast<int>(hc));
}

TEST(RuntimeExecutor, OutputsThatAreInputsOrInitializers) {
  const Model m = parse(R"(g (float[2] x) => (float x2, float k) <float[2] k = {4, 5}> { x2 = Identity (x) })");
  Executor ex(m, {1});
  const auto out = ex.run({{"x", Tensor::from_vector<float>({2}, {1, 2})}});
  EXPECT_EQ(out.at("x2").to_doubles(), (std::vector<double>{1, 2}));
  EXPECT_EQ(out.at("k").to_doubles(), (std::vector<double>{4, 5}));
}

TEST(RuntimeExecutor, ExecutorOutlivesTheModel) {
  std::unique_ptr<Executor> ex;
  {
    const Model m = parse(R"(g (float[2] x) => (float y) <float[2] k = {4, 5}> { y = Add (x, k) })");
    ex = std::make_unique<Executor>(m, ExecutorOptions{1});
  }
  EXPECT_EQ(ex->run({{"x", Tensor::from_vector<float>({2}, {1, 2})}}).at("y").to_doubles(),
            (std::vector<double>{5, 7}));
}

}  // namespace
}  // namespace repq::test
