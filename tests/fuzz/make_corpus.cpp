// Writes the seed corpora of the fuzz targets: tiny ONNX models, .npy files and images.
// Usage: repq_fuzz_make_corpus <tests/fuzz/corpus>
#include <onnx/defs/parser.h>
#include <onnx/onnx_pb.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "repq/data/image.h"
#include "repq/data/npy.h"
#include "repq/ir/tensor.h"
#include "repq/quant/plan.h"

namespace fs = std::filesystem;

namespace {

void put(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

std::string model(const char* text) {
  onnx::ModelProto mp;
  onnx::OnnxParser parser(text);
  if (!parser.Parse(mp).IsOK()) {
    std::fprintf(stderr, "bad model text: %s\n", text);
    std::exit(1);
  }
  return mp.SerializeAsString();
}

repq::data::Image image(int w, int h, int c) {
  repq::data::Image img{w, h, c, {}};
  for (int i = 0; i < w * h * c; ++i) img.pixels.push_back(static_cast<uint8_t>(i * 37));
  return img;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  const fs::path onnx_dir = root / "onnx_load";
  put(onnx_dir, "conv_relu.onnx", model(R"(
<ir_version: 8, opset_import: ["" : 13]>
net (float[N,3,8,8] x) => (float[N,4,8,8] y)
<float[4,3,3,3] w = {1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9,
                     1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9,
                     1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9,
                     1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9},
 float[4] b = {0.5, -0.5, 1, 0}>
{ c = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w, b)  y = Relu (c) }
)"));
  put(onnx_dir, "repvgg_block.onnx", model(R"(
<ir_version: 8, opset_import: ["" : 13]>
blk (float[1,2,4,4] x) => (float[1,2,4,4] y)
<float[2,2,3,3] w3 = {1,0,1,0,1,0,1,0,1, 0,1,0,1,0,1,0,1,0, 1,1,1,0,0,0,1,1,1, 2,2,2,2,2,2,2,2,2},
 float[2,2,1,1] w1 = {1, 0, 0, 1},
 float[2] s = {1, 2}, float[2] bb = {0, 1}, float[2] m = {0, 0.5}, float[2] v = {1, 4}>
{
  a = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3)
  an = BatchNormalization (a, s, bb, m, v)
  c = Conv <kernel_shape = [1,1]> (x, w1)
  cn = BatchNormalization (c, s, bb, m, v)
  idn = BatchNormalization (x, s, bb, m, v)
  t = Sum (an, cn, idn)
  y = Relu (t)
}
)"));
  put(onnx_dir, "shapes.onnx", model(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1,8,2,2] x) => (float[1,10] y)
<int64[2] shp = {1, 32}, float[32,10] fc = {1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10}>
{
  p = MaxPool <kernel_shape = [2,2], strides = [2,2]> (x)
  q = GlobalAveragePool (x)
  k = Constant <value = float[1] {2.0}> ()
  r = Mul (q, k)
  z = Add (p, r)
  f = Reshape (z, shp)
  h = Pad (f)
  y = MatMul (f, fc)
}
)"));
  put(onnx_dir, "opset9.onnx", model(R"(
<ir_version: 4, opset_import: ["" : 9]>
old (float[1,2] x) => (float[1,2] y) { u = Relu (x)  y = Neg (u) }
)"));
  put(onnx_dir, "subgraph.onnx", model(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (bool c, float[2] x) => (float[2] y)
{
  y = If (c) <then_branch = t () => (float[2] a) { a = Neg (x) },
              else_branch = e () => (float[2] b) { b = Relu (x) }>
}
)"));

  // fuse: blocks the folder recognises (RepVGG, MobileOne-style scalar Add, Conv+BN chains,
  // ACNet-style asymmetric kernels) and near-misses (stride mismatch, Relu inside).
  const fs::path fuse_dir = root / "fuse";
  fs::create_directories(fuse_dir);
  for (const char* name : {"repvgg_block.onnx", "conv_relu.onnx"})
    fs::copy_file(onnx_dir / name, fuse_dir / name, fs::copy_options::overwrite_existing);
  put(fuse_dir, "conv_bn_chain.onnx", model(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1,2,5,5] x) => (float[1,2,5,5] y)
<float[2,2,3,3] w = {1,0,-1,2,0,-2,1,0,-1, 0,1,0,1,-4,1,0,1,0, 1,1,1,1,1,1,1,1,1, -1,0,1,-2,0,2,-1,0,1},
 float[2,2,1,1] p = {1, 2, 3, 4}, float[2] s = {0.5, 2}, float[2] bb = {0.1, -0.2},
 float[2] m = {0.3, 0}, float[2] v = {1, 0.25}, float[1,2,1,1] k = {2, 3}>
{
  a = Conv <kernel_shape = [3,3], pads = [1,1,1,1], dilations = [1,1]> (x, w)
  b = BatchNormalization (a, s, bb, m, v)
  c = Conv <kernel_shape = [1,1]> (b, p)
  y = Mul (c, k)
}
)"));
  put(fuse_dir, "acnet_scalar_add.onnx", model(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1,2,4,4] x) => (float[1,2,4,4] y)
<float[2,2,3,3] w3 = {1,2,3,4,5,6,7,8,9, 9,8,7,6,5,4,3,2,1, 1,0,1,0,1,0,1,0,1, 0,1,0,1,0,1,0,1,0},
 float[2,2,1,3] w13 = {1,2,1, 0,1,0, 2,1,2, 1,1,1}, float[2,2,3,1] w31 = {1,0,1, 2,2,2, 0,1,0, 1,2,3},
 float[2] bias = {0.5, -1}, float zero = {0.0}>
{
  a = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w3, bias)
  b = Conv <kernel_shape = [1,3], pads = [0,1,0,1]> (x, w13)
  c = Conv <kernel_shape = [3,1], pads = [1,0,1,0]> (x, w31)
  ab = Add (a, b)
  abc = Add (ab, c)
  t = Add (abc, zero)
  y = Relu (t)
}
)"));
  put(fuse_dir, "near_miss.onnx", model(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1,1,6,6] x) => (float[1,1,3,3] y, float[1,1,6,6] z)
<float[1,1,3,3] w = {1,1,1,1,1,1,1,1,1}, float[1,1,1,1] w1 = {2}>
{
  a = Conv <kernel_shape = [3,3], pads = [1,1,1,1], strides = [2,2]> (x, w)
  b = Conv <kernel_shape = [1,1], strides = [2,2], pads = [0,0,0,0]> (x, w1)
  y = Add (a, b)
  c = Conv <kernel_shape = [3,3], pads = [1,1,1,1]> (x, w)
  r = Relu (c)
  d = Conv <kernel_shape = [1,1]> (x, w1)
  z = Add (r, d)
}
)"));

  // plan: two plans written by plan_to_json (a per-channel Conv with a fused Relu, a per-tensor
  // Gemm, a float node), and one with empty lists.
  const fs::path plan_dir = root / "plan";
  {
    using namespace repq::quant;
    QuantPlan p;
    p.model_digest = "0123456789abcdef";
    p.act_method = "percentile";
    p.weight_mode = "per-channel";
    p.calib_samples = 16;
    ActivationQuant in{"input", "input", "percentile", -1.5, 2.5, 2.4, 0.001, 0.0188f, 80,
                       repq::DType::kUInt8, false, ""};
    ActivationQuant relu{"r", "r", "percentile", 0, 6, 5.9, 0.0001, 0.0231f, 0,
                         repq::DType::kUInt8, true, ""};
    p.activations = {in, relu};
    LayerQuant conv;
    conv.node = "conv";
    conv.op = "Conv";
    conv.input = "input";
    conv.weight = "w";
    conv.bias = "b";
    conv.output = "r";
    conv.relu_fused = true;
    conv.relu_node = "relu";
    conv.encoding = "per-channel";
    conv.scales = {0.01f, 0.02f, 0.005f};
    conv.weight_sqnr_db = 41.5;
    LayerQuant fc = conv;
    fc.node = "fc";
    fc.op = "Gemm";
    fc.input = "r";
    fc.weight = "fc.w";
    fc.bias = "";
    fc.output = "logits";
    fc.relu_fused = false;
    fc.relu_node = "";
    fc.encoding = "per-tensor";
    fc.scales = {0.003f};
    fc.weight_axis = 1;
    p.layers = {conv, fc};
    p.float_nodes = {{"softmax", "Softmax", "not quantized"}};
    put(plan_dir, "ort_two_layers.json", plan_to_json(p));
    p.target = Target::kTensorRT;
    p.activations[0].dtype = repq::DType::kInt8;
    p.activations[0].zero_point = 0;
    put(plan_dir, "tensorrt_int8.json", plan_to_json(p));
    put(plan_dir, "empty.json", plan_to_json(QuantPlan{}));
  }

  const fs::path npy_dir = root / "npy";
  put(npy_dir, "f4_1x3x2x2.npy",
      repq::data::encode_npy(repq::Tensor::from_vector<float>({1, 3, 2, 2},
                                                              {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})));
  put(npy_dir, "f8_scalar.npy", repq::data::encode_npy(repq::Tensor::from_vector<double>({}, {2.5})));
  put(npy_dir, "u1_2x3.npy",
      repq::data::encode_npy(repq::Tensor::from_vector<uint8_t>({2, 3}, {0, 1, 2, 253, 254, 255})));
  put(npy_dir, "f4_empty.npy", repq::data::encode_npy(repq::Tensor(repq::DType::kFloat32, {0, 4})));

  const fs::path img_dir = root / "image";
  put(img_dir, "rgb_5x3.png", repq::data::encode_png(image(5, 3, 3)));
  put(img_dir, "grey_4x4.png", repq::data::encode_png(image(4, 4, 1)));
  put(img_dir, "rgb_9x7.jpg", repq::data::encode_jpeg(image(9, 7, 3), 75));
  put(img_dir, "grey_8x8.jpg", repq::data::encode_jpeg(image(8, 8, 1), 90));
  put(img_dir, "grey_3x2.pgm", std::string("P5\n3 2\n255\n") + std::string("\x01\x02\x03\x04\x05\x06", 6));
  put(img_dir, "rgb_2x1.ppm", std::string("P6\n2 1\n255\n") + std::string("\xff\x00\x00\x00\xff\x00", 6));
  // 2x2 24-bit BMP (bottom-up rows padded to 4 bytes).
  std::string bmp = "BM";
  const auto u32 = [](uint32_t v) { return std::string{char(v), char(v >> 8), char(v >> 16), char(v >> 24)}; };
  const auto u16 = [](uint16_t v) { return std::string{char(v), char(v >> 8)}; };
  bmp += u32(70) + u32(0) + u32(54) + u32(40) + u32(2) + u32(2) + u16(1) + u16(24) + u32(0) +
         u32(16) + u32(2835) + u32(2835) + u32(0) + u32(0);
  bmp += std::string("\x00\x00\xff\xff\xff\xff\x00\x00", 8) + std::string("\xff\x00\x00\x00\xff\x00\x00\x00", 8);
  put(img_dir, "rgb_2x2.bmp", bmp);
  std::printf("corpus written to %s\n", root.string().c_str());
  return 0;
}
