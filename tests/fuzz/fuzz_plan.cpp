// libFuzzer target: text -> plan_from_json (the repq.plan/1 reader of `repq quantize --plan-in`
// and `repq report`) -> plan_to_json -> plan_from_json again. A plan the reader accepts must
// write back to JSON that it accepts again, and that JSON must be a fixed point (writing the
// re-read plan gives the same text).
#include <cstddef>
#include <cstdint>
#include <string>

#include "repq/error.h"
#include "repq/quant/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  repq::quant::QuantPlan plan;
  try {
    plan = repq::quant::plan_from_json(text, "fuzz.plan.json");
  } catch (const repq::InputError&) {
    return 0;  // a refusal with a message is the expected answer to bad text
  }
  // Accepted: the round trip must hold (InputError here escapes: a finding).
  const std::string once = repq::quant::plan_to_json(plan);
  const repq::quant::QuantPlan again = repq::quant::plan_from_json(once, "fuzz-again.plan.json");
  if (repq::quant::plan_to_json(again) != once) __builtin_trap();
  return 0;
}
