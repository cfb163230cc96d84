// JSON -> QuantPlan (schema repq.plan/1, docs/plan.md) with full validation: every problem is
// one line "<source>: <field path>: <problem>", e.g. "plan.json: layers[3].scales[7]: ...".
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "repq/calib/calibrators.h"
#include "repq/error.h"
#include "repq/quant/gptq.h"
#include "repq/quant/plan.h"
#include "repq/quant/weights.h"

namespace repq::quant {

using ojson = nlohmann::ordered_json;

namespace {

// A JSON string of `s` (quotes, escapes, bad UTF-8 replaced): safe inside a one-line message.
std::string json_quoted(const std::string& s) {
  return ojson(s).dump(-1, ' ', false, ojson::error_handler_t::replace);
}

std::string kind_of(const ojson& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

std::string show(const ojson& v) {
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  std::string s = v.dump(-1, ' ', false, ojson::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

class Reader {
 public:
  explicit Reader(const std::string& source) : source_(source) {}
  const std::string& source() const { return source_; }

  [[noreturn]] void fail(const std::string& path, const std::string& problem) const {
    throw InputError(source_ + ": " + path + ": " + problem);
  }

  // The object at `path` must have exactly these keys.
  void keys(const ojson& obj, const std::string& path, std::initializer_list<const char*> names,
            std::initializer_list<const char*> optional = {}) {
    if (!obj.is_object()) fail(path, "expected an object, got " + kind_of(obj));
    std::set<std::string, std::less<>> known(names.begin(), names.end());
    known.insert(optional.begin(), optional.end());
    for (const auto& [k, v] : obj.items())
      if (!known.count(k)) fail(join(path, k), "unknown field " + json_quoted(k));
    for (const char* n : names)
      if (!obj.contains(n)) fail(join(path, n), "missing field");
  }

  std::string str(const ojson& obj, const std::string& path, const char* key) {
    const ojson& v = obj.at(key);
    if (!v.is_string()) fail(join(path, key), "expected a string, got " + kind_of(v));
    return v.get<std::string>();
  }
  std::string nonempty(const ojson& obj, const std::string& path, const char* key) {
    std::string s = str(obj, path, key);
    if (s.empty()) fail(join(path, key), "must not be empty");
    return s;
  }
  bool boolean(const ojson& obj, const std::string& path, const char* key) {
    const ojson& v = obj.at(key);
    if (!v.is_boolean()) fail(join(path, key), "expected true or false, got " + kind_of(v));
    return v.get<bool>();
  }
  int64_t integer(const ojson& obj, const std::string& path, const char* key, int64_t lo,
                  int64_t hi) {
    const ojson& v = obj.at(key);
    const std::string p = join(path, key);
    if (!v.is_number_integer()) fail(p, "expected an integer, got " + show(v));
    if (v.is_number_unsigned() &&
        v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(p, show(v) + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi)
      fail(p, std::to_string(x) + " is out of range [" + std::to_string(lo) + ", " +
                  std::to_string(hi) + "]");
    return x;
  }
  // A finite number.
  double number(const ojson& v, const std::string& p) {
    if (!v.is_number()) fail(p, "expected a number, got " + show(v));
    const double d = v.get<double>();
    if (!std::isfinite(d)) fail(p, "must be finite");
    return d;
  }
  // A diagnostic value: a number, or "nan" / "inf" / "-inf".
  double diagnostic(const ojson& obj, const std::string& path, const char* key) {
    const ojson& v = obj.at(key);
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
      if (s == "inf") return std::numeric_limits<double>::infinity();
      if (s == "-inf") return -std::numeric_limits<double>::infinity();
    }
    if (!v.is_number())
      fail(join(path, key), "expected a number (or \"nan\", \"inf\", \"-inf\"), got " + show(v));
    return v.get<double>();
  }
  // A quantization scale: a finite positive number that is a finite positive float.
  float scale(const ojson& v, const std::string& p) {
    if (!v.is_number()) fail(p, "expected a finite positive number, got " + show(v));
    const double d = v.get<double>();
    const float f = static_cast<float>(d);
    if (!(d > 0) || !std::isfinite(f) || !(f > 0))
      fail(p, "must be a finite positive float32 scale, got " + show(v));
    return f;
  }
  const ojson& array(const ojson& obj, const std::string& path, const char* key) {
    const ojson& v = obj.at(key);
    if (!v.is_array()) fail(join(path, key), "expected an array, got " + kind_of(v));
    return v;
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }
  static std::string at(const std::string& path, size_t i) {
    return path + "[" + std::to_string(i) + "]";
  }

 private:
  const std::string& source_;
};

ActivationQuant read_activation(Reader& r, const ojson& j, const std::string& p, Target target) {
  r.keys(j, p, {"tensor", "calibrated_on", "method", "min", "max", "threshold", "clipped", "scale",
                "zero_point", "dtype", "non_negative", "shared_with"});
  ActivationQuant a;
  a.tensor = r.nonempty(j, p, "tensor");
  a.calibrated_on = r.nonempty(j, p, "calibrated_on");
  a.method = r.str(j, p, "method");
  try {
    calib::parse_method(a.method);
  } catch (const InputError&) {
    r.fail(Reader::join(p, "method"),
           "unknown calibrator " + json_quoted(a.method) + " (valid: minmax, percentile, mse, entropy, kl)");
  }
  a.min = r.diagnostic(j, p, "min");
  a.max = r.diagnostic(j, p, "max");
  a.threshold = r.diagnostic(j, p, "threshold");
  a.clipped = r.diagnostic(j, p, "clipped");
  a.scale = r.scale(j.at("scale"), Reader::join(p, "scale"));
  const std::string dtype = r.str(j, p, "dtype");
  if (dtype == "uint8") a.dtype = DType::kUInt8;
  else if (dtype == "int8") a.dtype = DType::kInt8;
  else r.fail(Reader::join(p, "dtype"), "expected \"uint8\" or \"int8\", got " + json_quoted(dtype));
  if (target == Target::kTensorRT && a.dtype != DType::kInt8)
    r.fail(Reader::join(p, "dtype"), "target tensorrt needs \"int8\" activations");
  const bool u8 = a.dtype == DType::kUInt8;
  a.zero_point = static_cast<int32_t>(r.integer(j, p, "zero_point", u8 ? 0 : -128, u8 ? 255 : 127));
  if (target == Target::kTensorRT && a.zero_point != 0)
    r.fail(Reader::join(p, "zero_point"),
           std::to_string(a.zero_point) + ", but target tensorrt needs zero points 0");
  a.non_negative = r.boolean(j, p, "non_negative");
  a.shared_with = r.str(j, p, "shared_with");
  return a;
}

LayerQuant read_layer(Reader& r, const ojson& j, const std::string& p) {
  r.keys(j, p, {"node", "op", "input", "weight", "bias", "output", "relu_fused", "relu_node",
                "encoding", "weight_axis", "scales", "cfws_of", "weight_sqnr_db", "note"},
         {"qweight", "bias_values"});
  LayerQuant l;
  l.node = r.nonempty(j, p, "node");
  l.op = r.nonempty(j, p, "op");
  l.input = r.nonempty(j, p, "input");
  l.weight = r.nonempty(j, p, "weight");
  l.bias = r.str(j, p, "bias");
  l.output = r.nonempty(j, p, "output");
  l.relu_fused = r.boolean(j, p, "relu_fused");
  l.relu_node = r.str(j, p, "relu_node");
  if (l.relu_fused && l.relu_node.empty())
    r.fail(Reader::join(p, "relu_node"), "must name the Relu when relu_fused is true");
  l.encoding = r.str(j, p, "encoding");
  if (l.encoding != "per-tensor" && l.encoding != "per-channel" && l.encoding != "cfws-coarse" &&
      l.encoding != "cfws-fine")
    r.fail(Reader::join(p, "encoding"),
           "unknown encoding " + json_quoted(l.encoding) +
               " (valid: per-tensor, per-channel, cfws-coarse, cfws-fine)");
  l.weight_axis = static_cast<int>(r.integer(j, p, "weight_axis", 0, 7));
  const std::string sp = Reader::join(p, "scales");
  const ojson& scales = r.array(j, p, "scales");
  if (scales.empty()) r.fail(sp, "must hold at least one scale");
  if (l.encoding == "per-tensor" && scales.size() != 1)
    r.fail(sp, "encoding per-tensor needs exactly 1 scale, got " + std::to_string(scales.size()));
  for (size_t i = 0; i < scales.size(); ++i) l.scales.push_back(r.scale(scales[i], Reader::at(sp, i)));
  l.cfws_of = r.str(j, p, "cfws_of");
  if (l.encoding.starts_with("cfws-") && l.cfws_of.empty())
    r.fail(Reader::join(p, "cfws_of"), "must name the original Conv for encoding " + l.encoding);
  l.weight_sqnr_db = r.diagnostic(j, p, "weight_sqnr_db");
  l.note = r.str(j, p, "note");
  if (j.contains("qweight")) {  // GPTQ's int8 values (base64), never empty when present
    const std::string qp = Reader::join(p, "qweight");
    l.qweight = base64_decode(r.str(j, p, "qweight"), r.source() + ": " + qp);
    if (l.qweight.empty()) r.fail(qp, "must hold at least one value when present");
    if (l.encoding != "per-channel" && l.encoding != "per-tensor")
      r.fail(qp, "only per-channel or per-tensor layers carry int8 values");
  }
  if (j.contains("bias_values")) {
    const std::string bp = Reader::join(p, "bias_values");
    const ojson& bv = r.array(j, p, "bias_values");
    if (bv.empty()) r.fail(bp, "must hold at least one value when present");
    if (l.bias.empty()) r.fail(bp, "the layer has no bias");
    for (size_t i = 0; i < bv.size(); ++i) {
      const double d = r.number(bv[i], Reader::at(bp, i));
      if (!std::isfinite(static_cast<float>(d))) r.fail(Reader::at(bp, i), "is not a finite float32");
      l.bias_values.push_back(static_cast<float>(d));
    }
  }
  return l;
}

}  // namespace

QuantPlan plan_from_json(const std::string& text, const std::string& source) {
  ojson j;
  try {
    j = ojson::parse(text);
  } catch (const ojson::exception& e) {  // parse_error, or out_of_range for a number like 1e400
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> from "parse error"
    if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
    for (char& c : what)
      if (c == '\n' || c == '\r') c = ' ';
    throw InputError(source + ": not a valid JSON plan: " + what);
  }
  Reader r(source);
  if (!j.is_object()) throw InputError(source + ": expected a JSON object (a repq.plan/1 plan)");
  if (!j.contains("schema") || !j["schema"].is_string() || j["schema"] != QuantPlan::kSchema)
    r.fail("schema", std::string("expected \"") + QuantPlan::kSchema + "\", got " +
                         (j.contains("schema") ? show(j["schema"]) : std::string("nothing")));
  r.keys(j, "", {"schema", "model_digest", "target", "act_method", "weight_mode", "percentile",
                 "calib_samples", "activations", "layers", "float_nodes"});
  QuantPlan plan;
  plan.model_digest = r.str(j, "", "model_digest");
  if (plan.model_digest.size() != 16 ||
      plan.model_digest.find_first_not_of("0123456789abcdef") != std::string::npos)
    r.fail("model_digest", "expected 16 lowercase hex digits, got " + json_quoted(plan.model_digest));
  const std::string target = r.str(j, "", "target");
  if (target == "ort") plan.target = Target::kOrt;
  else if (target == "tensorrt") plan.target = Target::kTensorRT;
  else r.fail("target", "unknown target " + json_quoted(target) + " (valid: ort, tensorrt)");
  plan.act_method = r.str(j, "", "act_method");
  try {
    calib::parse_method(plan.act_method);
  } catch (const InputError&) {
    r.fail("act_method", "unknown calibrator " + json_quoted(plan.act_method) +
                             " (valid: minmax, percentile, mse, entropy, kl)");
  }
  plan.weight_mode = r.str(j, "", "weight_mode");
  try {
    parse_weight_mode(plan.weight_mode);
  } catch (const InputError&) {
    r.fail("weight_mode", "unknown weight mode " + json_quoted(plan.weight_mode) +
                              " (valid: per-tensor, per-channel, cfws, cfws-auto, gptq)");
  }
  plan.percentile = r.number(j.at("percentile"), "percentile");
  if (!(plan.percentile > 0 && plan.percentile <= 100))
    r.fail("percentile", show(j.at("percentile")) + " is outside (0, 100]");
  plan.calib_samples = r.integer(j, "", "calib_samples", 0, std::numeric_limits<int64_t>::max());

  const ojson& acts = r.array(j, "", "activations");
  std::map<std::string, size_t> act_index;
  for (size_t i = 0; i < acts.size(); ++i) {
    const std::string p = Reader::at("activations", i);
    plan.activations.push_back(read_activation(r, acts[i], p, plan.target));
    if (!act_index.emplace(plan.activations.back().tensor, i).second)
      r.fail(p + ".tensor", json_quoted(plan.activations.back().tensor) + " appears twice");
  }
  for (size_t i = 0; i < plan.activations.size(); ++i) {
    const ActivationQuant& a = plan.activations[i];
    if (a.shared_with.empty()) continue;
    const std::string p = Reader::at("activations", i) + ".shared_with";
    auto it = act_index.find(a.shared_with);
    if (it == act_index.end() || it->second == i)
      r.fail(p, json_quoted(a.shared_with) + " is not another activation of the plan");
    const ActivationQuant& b = plan.activations[it->second];
    if (a.scale != b.scale || a.zero_point != b.zero_point || a.dtype != b.dtype)
      r.fail(p, "scale, zero point and dtype must equal those of " + json_quoted(b.tensor));
  }
  const ojson& layers = r.array(j, "", "layers");
  std::set<std::string> nodes;
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string p = Reader::at("layers", i);
    plan.layers.push_back(read_layer(r, layers[i], p));
    if (!nodes.insert(plan.layers.back().node).second)
      r.fail(p + ".node", json_quoted(plan.layers.back().node) + " appears twice");
  }
  const ojson& floats = r.array(j, "", "float_nodes");
  for (size_t i = 0; i < floats.size(); ++i) {
    const std::string p = Reader::at("float_nodes", i);
    r.keys(floats[i], p, {"node", "op", "reason"});
    plan.float_nodes.push_back(
        {r.str(floats[i], p, "node"), r.nonempty(floats[i], p, "op"), r.str(floats[i], p, "reason")});
  }
  return plan;
}

}  // namespace repq::quant
