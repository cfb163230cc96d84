#include "layer_table.h"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "repq/error.h"

namespace repq::mobileone {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kColumns = {
    "order",  "name",   "op",          "cin",               "cout",      "kernel",    "stride",
    "pad",    "groups", "weight_file", "weight_shape_OIHW", "bias_file", "activation"};

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

class LineParser {
 public:
  LineParser(std::string where, std::vector<std::string> fields)
      : where_(std::move(where)), fields_(std::move(fields)) {}

  [[noreturn]] void fail(const std::string& what) const { throw InputError(where_ + ": " + what); }

  const std::string& str(size_t col) const { return fields_.at(col); }
  bool absent(size_t col) const { return str(col) == "-"; }

  int64_t num(size_t col) const {
    const std::string& s = str(col);
    int64_t v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v < 0)
      fail("column '" + kColumns[col] + "': expected a non-negative integer, got '" + s + "'");
    return v;
  }

  Shape shape(size_t col) const {
    Shape out;
    for (const std::string& part : split(str(col), 'x')) {
      int64_t v = 0;
      const auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
      if (part.empty() || ec != std::errc() || p != part.data() + part.size() || v <= 0)
        fail("column '" + kColumns[col] + "': bad shape '" + str(col) + "'");
      out.push_back(v);
    }
    return out;
  }

 private:
  std::string where_;
  std::vector<std::string> fields_;
};

LayerOp parse_op(const LineParser& lp, const std::string& s) {
  static const std::map<std::string, LayerOp> ops = {
      {"conv", LayerOp::kConv},
      {"depthwise_conv", LayerOp::kDepthwiseConv},
      {"global_avg_pool", LayerOp::kGlobalAvgPool},
      {"fully_connected", LayerOp::kFullyConnected}};
  const auto it = ops.find(s);
  if (it == ops.end()) lp.fail("unknown op '" + s + "'");
  return it->second;
}

Layer parse_line(const LineParser& lp, int line_no) {
  Layer l;
  l.line = line_no;
  l.name = lp.str(1);
  if (l.name.empty()) lp.fail("empty layer name");
  l.op = parse_op(lp, lp.str(2));
  l.cin = lp.num(3);
  l.cout = lp.num(4);
  l.relu = lp.str(12) == "relu";
  if (!l.relu && lp.str(12).rfind("none", 0) != 0)
    lp.fail("unknown activation '" + lp.str(12) + "'");
  const bool conv = l.op == LayerOp::kConv || l.op == LayerOp::kDepthwiseConv;
  if (conv) {
    l.kernel = lp.num(5);
    l.stride = lp.num(6);
    l.pad = lp.num(7);
    l.groups = lp.num(8);
    if (l.kernel == 0 || l.stride == 0 || l.groups == 0) lp.fail("kernel, stride and groups must be positive");
    if (l.cin % l.groups != 0 || l.cout % l.groups != 0)
      lp.fail("groups " + std::to_string(l.groups) + " does not divide the channel counts");
    if (l.op == LayerOp::kDepthwiseConv && (l.groups != l.cin || l.cin != l.cout))
      lp.fail("a depthwise conv needs groups == cin == cout");
  }
  if (l.op == LayerOp::kGlobalAvgPool) {
    if (l.cin != l.cout) lp.fail("global_avg_pool must keep the channel count");
    if (!lp.absent(9) || !lp.absent(11)) lp.fail("global_avg_pool has no weights");
    return l;
  }
  if (lp.absent(9) || lp.absent(11)) lp.fail("missing weight or bias file");
  l.weight_file = lp.str(9);
  l.bias_file = lp.str(11);
  l.weight_shape = lp.shape(10);
  const Shape want = conv ? Shape{l.cout, l.cin / l.groups, l.kernel, l.kernel} : Shape{l.cout, l.cin};
  if (l.weight_shape != want)
    lp.fail("weight shape " + shape_str(l.weight_shape) + " does not match cin/cout/kernel/groups (" +
            shape_str(want) + ")");
  return l;
}

// The channel counts must chain: each layer's cin is the previous layer's cout.
void check_chain(const std::string& path, const std::vector<Layer>& layers) {
  if (layers.empty()) throw InputError(path + ": no layers");
  for (size_t i = 1; i < layers.size(); ++i)
    if (layers[i].cin != layers[i - 1].cout)
      throw InputError(path + ":" + std::to_string(layers[i].line) + ": layer '" + layers[i].name +
                       "' takes " + std::to_string(layers[i].cin) + " channels but '" +
                       layers[i - 1].name + "' gives " + std::to_string(layers[i - 1].cout));
  if (layers.back().op != LayerOp::kFullyConnected)
    throw InputError(path + ": the last layer must be fully_connected");
  for (size_t i = 0; i + 1 < layers.size(); ++i)
    if (layers[i].op == LayerOp::kFullyConnected)
      throw InputError(path + ":" + std::to_string(layers[i].line) +
                       ": fully_connected must be the last layer");
}

Tensor read_raw_float(const fs::path& path, const Shape& shape) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) throw InputError(path.string() + ": cannot read: " + ec.message());
  const auto want = static_cast<uintmax_t>(shape_numel(shape)) * sizeof(float);
  if (size != want)
    throw InputError(path.string() + ": " + std::to_string(size) + " bytes, but float32" +
                     shape_str(shape) + " needs " + std::to_string(want));
  std::ifstream in(path, std::ios::binary);
  std::string bytes(static_cast<size_t>(size), '\0');
  if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size())))
    throw InputError(path.string() + ": read failed");
  return Tensor::from_bytes(DType::kFloat32, shape, bytes);
}

}  // namespace

std::vector<Layer> parse_layer_table(const std::string& dir) {
  const std::string path = (fs::path(dir) / "layers.tsv").string();
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open");
  std::string line;
  if (!std::getline(in, line) || split(line, '\t') != kColumns)
    throw InputError(path + ":1: unexpected header (want the 13 columns order..activation)");
  std::vector<Layer> layers;
  int line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line == "\r") continue;
    const std::string where = path + ":" + std::to_string(line_no);
    auto fields = split(line, '\t');
    if (fields.size() != kColumns.size())
      throw InputError(where + ": " + std::to_string(fields.size()) + " columns, want " +
                       std::to_string(kColumns.size()));
    layers.push_back(parse_line(LineParser(where, std::move(fields)), line_no));
  }
  check_chain(path, layers);
  return layers;
}

void load_weights(const std::string& dir, std::vector<Layer>& layers) {
  for (Layer& l : layers) {
    if (l.weight_file.empty()) continue;
    l.weight = read_raw_float(fs::path(dir) / l.weight_file, l.weight_shape);
    l.bias = read_raw_float(fs::path(dir) / l.bias_file, {l.cout});
  }
}

}  // namespace repq::mobileone
