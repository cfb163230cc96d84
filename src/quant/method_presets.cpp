// `--method` presets: sensible calibrator + weight quantizer combinations (docs/plan.md).
#include <string>

#include "repq/error.h"
#include "repq/quant/quantize.h"

namespace repq::quant {

void apply_method_preset(const std::string& method, QuantizeOptions& o) {
  struct Preset {
    const char* name;
    calib::Method act;
    WeightMode weights;
  };
  static constexpr Preset kPresets[] = {
      {"minmax", calib::Method::kMinMax, WeightMode::kPerChannel},
      {"percentile", calib::Method::kPercentile, WeightMode::kPerChannel},
      {"mse", calib::Method::kMse, WeightMode::kPerChannel},
      {"entropy", calib::Method::kEntropy, WeightMode::kPerChannel},
      {"kl", calib::Method::kKl, WeightMode::kPerChannel},
      {"cfws", calib::Method::kKl, WeightMode::kCfwsAuto},
      // percentile activations + GPTQ weights with bias correction: the best combination
      // measured on MobileOne-S0 (docs/quantize.md, "GPTQ weight rounding")
      {"gptq", calib::Method::kPercentile, WeightMode::kGptq},
  };
  for (const Preset& p : kPresets) {
    if (method == p.name) {
      o.act = p.act;
      o.weights = p.weights;
      if (p.weights == WeightMode::kGptq) o.gptq.bias_correction = true;
      return;
    }
  }
  throw InputError("--method: unknown method '" + method +
                   "' (valid: minmax, percentile, mse, entropy, kl, cfws, gptq)");
}

}  // namespace repq::quant
