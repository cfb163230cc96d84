// QuantPlan: target names, lookups, JSON round trip (bit-exact floats, stable
// bytes, non-UTF-8 names) and every validation error of plan_from_json. The model digest is
// tested in quant_build_plan_test.cpp.
#include <gtest/gtest.h>

#include <bit>
#include <cfloat>
#include <cmath>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "repq/error.h"
#include "repq/quant/plan.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

using quant::ActivationQuant;
using quant::LayerQuant;
using quant::QuantPlan;
using ojson = nlohmann::ordered_json;

QuantPlan sample_plan() {
  QuantPlan p;
  p.model_digest = "0123456789abcdef";
  p.target = quant::Target::kOrt;
  p.act_method = "kl";
  p.weight_mode = "cfws-auto";
  p.percentile = 99.99;
  p.calib_samples = 32;
  ActivationQuant a;
  a.tensor = "x";
  a.calibrated_on = "x";
  a.method = "kl";
  a.min = -2.1179039301310043;
  a.max = 2.6399999999999997;
  a.threshold = 0.1 + 0.2;  // 0.30000000000000004
  a.clipped = 1e-300;
  a.scale = 0.1f;
  a.zero_point = 128;
  p.activations.push_back(a);
  ActivationQuant r = a;
  r.tensor = "relu_out";
  r.calibrated_on = "relu_out";
  r.min = 0;
  r.scale = 1.0f / 3.0f;
  r.zero_point = 0;
  r.non_negative = true;
  p.activations.push_back(r);
  ActivationQuant s = r;
  s.tensor = "pool_out";
  s.calibrated_on = "pool_out";
  s.shared_with = "relu_out";
  p.activations.push_back(s);
  LayerQuant l;
  l.node = "conv1";
  l.op = "Conv";
  l.input = "x";
  l.weight = "w1";
  l.bias = "b1";
  l.output = "relu_out";
  l.relu_fused = true;
  l.relu_node = "relu1";
  l.encoding = "per-channel";
  l.scales = {0.1f, std::numeric_limits<float>::denorm_min(), FLT_MIN, FLT_MAX,
              std::nextafter(1.0f, 2.0f), 16777216.0f, 3.4e-5f, 1.0f / 3.0f};
  l.weight_sqnr_db = 41.25;
  l.note = "";
  p.layers.push_back(l);
  LayerQuant c = l;
  c.node = "conv2/cfws_fine";
  c.relu_fused = false;
  c.relu_node = "";
  c.encoding = "cfws-fine";
  c.cfws_of = "conv2";
  c.weight_axis = 1;
  c.scales = {0.5f};
  c.weight_sqnr_db = std::numeric_limits<double>::infinity();
  c.note = "kept: \"quoted\"\n";
  p.layers.push_back(c);
  p.float_nodes.push_back({"head", "Softmax", "--exclude"});
  return p;
}

void expect_same(const QuantPlan& a, const QuantPlan& b) {
  EXPECT_EQ(a.model_digest, b.model_digest);
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(a.act_method, b.act_method);
  EXPECT_EQ(a.weight_mode, b.weight_mode);
  EXPECT_EQ(std::bit_cast<uint64_t>(a.percentile), std::bit_cast<uint64_t>(b.percentile));
  EXPECT_EQ(a.calib_samples, b.calib_samples);
  ASSERT_EQ(a.activations.size(), b.activations.size());
  for (size_t i = 0; i < a.activations.size(); ++i) {
    const auto &x = a.activations[i], &y = b.activations[i];
    EXPECT_EQ(x.tensor, y.tensor);
    EXPECT_EQ(x.calibrated_on, y.calibrated_on);
    EXPECT_EQ(x.method, y.method);
    EXPECT_EQ(std::bit_cast<uint64_t>(x.min), std::bit_cast<uint64_t>(y.min));
    EXPECT_EQ(std::bit_cast<uint64_t>(x.max), std::bit_cast<uint64_t>(y.max));
    EXPECT_EQ(std::bit_cast<uint64_t>(x.threshold), std::bit_cast<uint64_t>(y.threshold));
    EXPECT_EQ(std::bit_cast<uint64_t>(x.clipped), std::bit_cast<uint64_t>(y.clipped));
    EXPECT_EQ(std::bit_cast<uint32_t>(x.scale), std::bit_cast<uint32_t>(y.scale)) << i;
    EXPECT_EQ(x.zero_point, y.zero_point);
    EXPECT_EQ(x.dtype, y.dtype);
    EXPECT_EQ(x.non_negative, y.non_negative);
    EXPECT_EQ(x.shared_with, y.shared_with);
  }
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const auto &x = a.layers[i], &y = b.layers[i];
    EXPECT_EQ(x.node, y.node);
    EXPECT_EQ(x.op, y.op);
    EXPECT_EQ(x.input, y.input);
    EXPECT_EQ(x.weight, y.weight);
    EXPECT_EQ(x.bias, y.bias);
    EXPECT_EQ(x.output, y.output);
    EXPECT_EQ(x.relu_fused, y.relu_fused);
    EXPECT_EQ(x.relu_node, y.relu_node);
    EXPECT_EQ(x.encoding, y.encoding);
    EXPECT_EQ(x.weight_axis, y.weight_axis);
    ASSERT_EQ(x.scales.size(), y.scales.size());
    for (size_t k = 0; k < x.scales.size(); ++k)
      EXPECT_EQ(std::bit_cast<uint32_t>(x.scales[k]), std::bit_cast<uint32_t>(y.scales[k]))
          << x.scales[k];
    EXPECT_EQ(x.cfws_of, y.cfws_of);
    EXPECT_EQ(std::bit_cast<uint64_t>(x.weight_sqnr_db), std::bit_cast<uint64_t>(y.weight_sqnr_db));
    EXPECT_EQ(x.note, y.note);
  }
  ASSERT_EQ(a.float_nodes.size(), b.float_nodes.size());
  for (size_t i = 0; i < a.float_nodes.size(); ++i) {
    EXPECT_EQ(a.float_nodes[i].node, b.float_nodes[i].node);
    EXPECT_EQ(a.float_nodes[i].op, b.float_nodes[i].op);
    EXPECT_EQ(a.float_nodes[i].reason, b.float_nodes[i].reason);
  }
}

TEST(QuantPlan, TargetNames) {
  EXPECT_EQ(quant::target_name(quant::Target::kOrt), "ort");
  EXPECT_EQ(quant::target_name(quant::Target::kTensorRT), "tensorrt");
  EXPECT_EQ(quant::parse_target("ort"), quant::Target::kOrt);
  EXPECT_EQ(quant::parse_target("tensorrt"), quant::Target::kTensorRT);
  try {
    quant::parse_target("trt");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "--target: unknown target 'trt' (valid: ort, tensorrt)");
  }
}

TEST(QuantPlan, Lookups) {
  const QuantPlan p = sample_plan();
  ASSERT_NE(p.activation("relu_out"), nullptr);
  EXPECT_EQ(p.activation("relu_out")->scale, 1.0f / 3.0f);
  EXPECT_EQ(p.activation("nope"), nullptr);
  ASSERT_NE(p.layer("conv2/cfws_fine"), nullptr);
  EXPECT_EQ(p.layer("conv2/cfws_fine")->cfws_of, "conv2");
  EXPECT_EQ(p.layer("conv2"), nullptr);
}

TEST(QuantPlan, JsonRoundTripIsBitExactAndStable) {
  const QuantPlan p = sample_plan();
  const std::string text = quant::plan_to_json(p);
  EXPECT_EQ(quant::plan_to_json(p), text);  // same plan, same bytes
  const QuantPlan back = quant::plan_from_json(text, "plan.json");
  expect_same(p, back);
  EXPECT_EQ(quant::plan_to_json(back), text);  // and the same bytes again after a reload
  // Fixed key order, readable floats.
  EXPECT_EQ(text.rfind("{\n  \"schema\": \"repq.plan/1\",\n  \"model_digest\": ", 0), 0u) << text;
  EXPECT_NE(text.find("\"scale\": 0.1,"), std::string::npos);
  EXPECT_NE(text.find("\"threshold\": 0.30000000000000004,"), std::string::npos);
  EXPECT_NE(text.find("\"weight_sqnr_db\": \"inf\","), std::string::npos);
  EXPECT_NE(text.find("\"weight_axis\": 1,"), std::string::npos);
}

TEST(QuantPlan, JsonRoundTripOfRandomFloatScales) {
  QuantPlan p = sample_plan();
  std::mt19937 rng(7);
  std::vector<float> scales;
  while (scales.size() < 20000) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(rng() & 0x7fffffffu));
    if (std::isfinite(f) && f > 0) scales.push_back(f);
  }
  p.layers[0].scales = scales;
  const QuantPlan back = quant::plan_from_json(quant::plan_to_json(p), "plan.json");
  ASSERT_EQ(back.layers[0].scales.size(), scales.size());
  for (size_t i = 0; i < scales.size(); ++i)
    ASSERT_EQ(std::bit_cast<uint32_t>(back.layers[0].scales[i]), std::bit_cast<uint32_t>(scales[i]))
        << scales[i];
}

TEST(QuantPlan, JsonNonUtf8NamesAreReplaced) {
  QuantPlan p = sample_plan();
  p.activations[0].tensor = "bad\xff name";
  const std::string text = quant::plan_to_json(p);
  EXPECT_NE(text.find("\"bad\xEF\xBF\xBD name\""), std::string::npos);
  EXPECT_EQ(quant::plan_from_json(text, "p.json").activations[0].tensor, "bad\xEF\xBF\xBD name");
}

TEST(QuantPlan, JsonNanDiagnosticsRoundTrip) {
  QuantPlan p = sample_plan();
  p.layers[0].weight_sqnr_db = std::nan("");
  p.activations[0].min = -std::numeric_limits<double>::infinity();
  const QuantPlan back = quant::plan_from_json(quant::plan_to_json(p), "p.json");
  EXPECT_TRUE(std::isnan(back.layers[0].weight_sqnr_db));
  EXPECT_EQ(back.activations[0].min, -std::numeric_limits<double>::infinity());
}

std::string error_of(const std::string& text) {
  try {
    quant::plan_from_json(text, "plan.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

// The sample plan's JSON, changed by `edit`, then loaded: the error message.
std::string error_after(const std::function<void(ojson&)>& edit) {
  ojson j = ojson::parse(quant::plan_to_json(sample_plan()));
  edit(j);
  return error_of(j.dump());
}

TEST(QuantPlan, JsonSyntaxAndSchemaErrors) {
  const std::string bad = error_of("{\"schema\": ");
  EXPECT_EQ(bad.rfind("plan.json: not a valid JSON plan: parse error at line 1, column 12", 0), 0u)
      << bad;
  EXPECT_EQ(bad.find('\n'), std::string::npos);
  EXPECT_EQ(error_of("[1]"), "plan.json: expected a JSON object (a repq.plan/1 plan)");
  const std::string huge = error_of("{\"schema\": 1e400}");  // nlohmann: out_of_range, not parse_error
  EXPECT_EQ(huge.rfind("plan.json: not a valid JSON plan: number overflow", 0), 0u) << huge;
  EXPECT_EQ(error_after([](ojson& j) { j["schema"] = "repq.plan/2"; }),
            "plan.json: schema: expected \"repq.plan/1\", got \"repq.plan/2\"");
  EXPECT_EQ(error_after([](ojson& j) { j.erase("schema"); }),
            "plan.json: schema: expected \"repq.plan/1\", got nothing");
  EXPECT_EQ(error_after([](ojson& j) { j["extra"] = 1; }), "plan.json: extra: unknown field \"extra\"");
  EXPECT_EQ(error_after([](ojson& j) { j.erase("layers"); }), "plan.json: layers: missing field");
}

TEST(QuantPlan, JsonTopLevelFieldErrors) {
  EXPECT_EQ(error_after([](ojson& j) { j["model_digest"] = "XYZ"; }),
            "plan.json: model_digest: expected 16 lowercase hex digits, got \"XYZ\"");
  EXPECT_EQ(error_after([](ojson& j) { j["model_digest"] = 5; }),
            "plan.json: model_digest: expected a string, got an integer");
  EXPECT_EQ(error_after([](ojson& j) { j["target"] = "gpu"; }),
            "plan.json: target: unknown target \"gpu\" (valid: ort, tensorrt)");
  EXPECT_EQ(error_after([](ojson& j) { j["act_method"] = "max"; }),
            "plan.json: act_method: unknown calibrator \"max\" (valid: minmax, percentile, mse, "
            "entropy, kl)");
  EXPECT_EQ(error_after([](ojson& j) { j["weight_mode"] = "cfws-all"; }),
            "plan.json: weight_mode: unknown weight mode \"cfws-all\" (valid: per-tensor, "
            "per-channel, cfws, cfws-auto, gptq)");
  EXPECT_EQ(error_after([](ojson& j) { j["percentile"] = 0; }),
            "plan.json: percentile: 0 is outside (0, 100]");
  EXPECT_EQ(error_after([](ojson& j) { j["percentile"] = "99"; }),
            "plan.json: percentile: expected a number, got \"99\"");
  EXPECT_EQ(error_after([](ojson& j) { j["calib_samples"] = -1; }),
            "plan.json: calib_samples: -1 is out of range [0, 9223372036854775807]");
  EXPECT_EQ(error_after([](ojson& j) { j["calib_samples"] = 1.5; }),
            "plan.json: calib_samples: expected an integer, got 1.5");
  EXPECT_EQ(error_after([](ojson& j) { j["activations"] = ojson::object(); }),
            "plan.json: activations: expected an array, got an object");
}

TEST(QuantPlan, JsonActivationErrors) {
  auto act = [](const char* key, ojson v) {
    return error_after([&](ojson& j) { j["activations"][1][key] = v; });
  };
  EXPECT_EQ(error_after([](ojson& j) { j["activations"][1] = 3; }),
            "plan.json: activations[1]: expected an object, got an integer");
  EXPECT_EQ(error_after([](ojson& j) { j["activations"][1].erase("scale"); }),
            "plan.json: activations[1].scale: missing field");
  EXPECT_EQ(act("tensor", ""), "plan.json: activations[1].tensor: must not be empty");
  EXPECT_EQ(act("tensor", "x"), "plan.json: activations[1].tensor: \"x\" appears twice");
  EXPECT_EQ(act("method", "kl2"),
            "plan.json: activations[1].method: unknown calibrator \"kl2\" (valid: minmax, "
            "percentile, mse, entropy, kl)");
  EXPECT_EQ(act("min", "big"),
            "plan.json: activations[1].min: expected a number (or \"nan\", \"inf\", \"-inf\"), "
            "got \"big\"");
  const char* positive = "plan.json: activations[1].scale: must be a finite positive float32 scale, got ";
  EXPECT_EQ(act("scale", 0), std::string(positive) + "0");
  EXPECT_EQ(act("scale", -0.5), std::string(positive) + "-0.5");
  EXPECT_EQ(act("scale", 1e39), std::string(positive) + "1e+39");    // float overflow
  EXPECT_EQ(act("scale", 1e-50), std::string(positive) + "1e-50");   // float underflow to 0
  EXPECT_EQ(act("scale", "0.1"),
            "plan.json: activations[1].scale: expected a finite positive number, got \"0.1\"");
  EXPECT_EQ(act("zero_point", 256), "plan.json: activations[1].zero_point: 256 is out of range [0, 255]");
  EXPECT_EQ(act("zero_point", -1), "plan.json: activations[1].zero_point: -1 is out of range [0, 255]");
  EXPECT_EQ(act("zero_point", 2.5), "plan.json: activations[1].zero_point: expected an integer, got 2.5");
  EXPECT_EQ(error_after([](ojson& j) {
              j["activations"][0]["dtype"] = "int8";
              j["activations"][0]["zero_point"] = 128;
            }),
            "plan.json: activations[0].zero_point: 128 is out of range [-128, 127]");
  EXPECT_EQ(act("dtype", "int16"),
            "plan.json: activations[1].dtype: expected \"uint8\" or \"int8\", got \"int16\"");
  EXPECT_EQ(act("non_negative", "yes"),
            "plan.json: activations[1].non_negative: expected true or false, got a string");
  EXPECT_EQ(act("shared_with", "nowhere"),
            "plan.json: activations[1].shared_with: \"nowhere\" is not another activation of the plan");
  EXPECT_EQ(act("shared_with", "relu_out"),
            "plan.json: activations[1].shared_with: \"relu_out\" is not another activation of the plan");
  EXPECT_EQ(error_after([](ojson& j) { j["activations"][2]["zero_point"] = 3; }),
            "plan.json: activations[2].shared_with: scale, zero point and dtype must equal those of "
            "\"relu_out\"");
}

TEST(QuantPlan, JsonTensorRTNeedsSymmetricInt8) {
  EXPECT_EQ(error_after([](ojson& j) { j["target"] = "tensorrt"; }),
            "plan.json: activations[0].dtype: target tensorrt needs \"int8\" activations");
  EXPECT_EQ(error_after([](ojson& j) {
              j["target"] = "tensorrt";
              for (auto& a : j["activations"]) a["dtype"] = "int8";
            }),
            "plan.json: activations[0].zero_point: 128 is out of range [-128, 127]");
  EXPECT_EQ(error_after([](ojson& j) {
              j["target"] = "tensorrt";
              for (auto& a : j["activations"]) a["dtype"] = "int8";
              j["activations"][0]["zero_point"] = 5;
            }),
            "plan.json: activations[0].zero_point: 5, but target tensorrt needs zero points 0");
}

TEST(QuantPlan, JsonLayerErrors) {
  auto lay = [](const char* key, ojson v) {
    return error_after([&](ojson& j) { j["layers"][1][key] = v; });
  };
  EXPECT_EQ(lay("node", "conv1"), "plan.json: layers[1].node: \"conv1\" appears twice");
  EXPECT_EQ(lay("weight", ""), "plan.json: layers[1].weight: must not be empty");
  EXPECT_EQ(lay("encoding", "fancy"),
            "plan.json: layers[1].encoding: unknown encoding \"fancy\" (valid: per-tensor, "
            "per-channel, cfws-coarse, cfws-fine)");
  EXPECT_EQ(lay("scales", ojson::array()), "plan.json: layers[1].scales: must hold at least one scale");
  EXPECT_EQ(lay("scales", 0.5), "plan.json: layers[1].scales: expected an array, got a number");
  EXPECT_EQ(error_after([](ojson& j) { j["layers"][0]["scales"][7] = -1; }),
            "plan.json: layers[0].scales[7]: must be a finite positive float32 scale, got -1");
  EXPECT_EQ(error_after([](ojson& j) { j["layers"][0]["scales"][3] = nullptr; }),
            "plan.json: layers[0].scales[3]: expected a finite positive number, got null");
  EXPECT_EQ(error_after([](ojson& j) { j["layers"][0]["encoding"] = "per-tensor"; }),
            "plan.json: layers[0].scales: encoding per-tensor needs exactly 1 scale, got 8");
  EXPECT_EQ(lay("cfws_of", ""),
            "plan.json: layers[1].cfws_of: must name the original Conv for encoding cfws-fine");
  EXPECT_EQ(error_after([](ojson& j) { j["layers"][0]["relu_node"] = ""; }),
            "plan.json: layers[0].relu_node: must name the Relu when relu_fused is true");
  EXPECT_EQ(lay("weight_axis", 8), "plan.json: layers[1].weight_axis: 8 is out of range [0, 7]");
  EXPECT_EQ(lay("relu_fused", 1), "plan.json: layers[1].relu_fused: expected true or false, got an integer");
  EXPECT_EQ(lay("scale", 1), "plan.json: layers[1].scale: unknown field \"scale\"");
  EXPECT_EQ(error_after([](ojson& j) { j["float_nodes"][0].erase("op"); }),
            "plan.json: float_nodes[0].op: missing field");
}

}  // namespace
}  // namespace repq::test
