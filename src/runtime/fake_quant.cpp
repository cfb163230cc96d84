// FakeQuantizeLinear (repq-internal, not an ONNX op; only models repq builds in memory use it,
// e.g. the report's float form of a QDQ model): DequantizeLinear(QuantizeLinear(x)) in one pass
// over the tensor, with QuantizeLinear's inputs (x, y_scale, optional y_zero_point uint8 or
// int8; no zero point: uint8 with 0) and its `axis` attribute (per-tensor or per-axis);
// `in_place` = 1 writes into x when the executor hands it over (for x made by the model).
//
// y = clamp(round_half_even(x / s), qmin - z, qmax - z) * s, which is bit for bit the value of
// the pair: QuantizeLinear saturates round_half_even(x / s) + z to [qmin, qmax], and
// DequantizeLinear computes float(q - z) * s; for integer bounds clamping before or after the
// rounding gives the same integer. The rounding adds and subtracts 1.5 * 2^23 in float32 (round
// to nearest even, exact for |v| < 2^22, which the clamp ensures), so the loop vectorizes.
// +-inf saturate like finite values; NaN stays NaN (the QuantizeLinear kernel leaves the int8
// of a NaN undefined).
#include <cmath>
#include <limits>

#include "runtime/kernel_util.h"
#include "runtime/kernels.h"
#include "runtime/quant_params.h"
#include "runtime/thread_pool.h"

namespace repq::runtime {
namespace {

constexpr int64_t kChunk = int64_t{1} << 16;
constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23

struct FqParams {
  int64_t channels = 1, inner = 1;  // per-axis: element i uses index (i / inner) % channels
  std::vector<float> scale, lo, hi;
};

// The shapes are QuantizeLinear's (quant_layout); the zero point must be 8-bit.
FqParams fq_params(const Tensor& x, const Tensor& scale, const Tensor* zp, int64_t axis_attr) {
  check_quant_scale(scale);
  if (zp && zp->dtype() != DType::kUInt8 && zp->dtype() != DType::kInt8)
    throw InputError("zero point type " + dtype_name(zp->dtype()) +
                     " is not supported by FakeQuantizeLinear (uint8 and int8 are)");
  const QuantLayout l = quant_layout(x, scale, zp, axis_attr);
  FqParams p;
  p.channels = l.channels;
  p.inner = l.inner;
  const bool u8 = !zp || zp->dtype() == DType::kUInt8;
  const int64_t qmin = u8 ? 0 : -128, qmax = u8 ? 255 : 127;
  for (int64_t c = 0; c < scale.numel(); ++c) {
    const int64_t z = !zp ? 0 : (u8 ? zp->data<uint8_t>()[c] : zp->data<int8_t>()[c]);
    p.scale.push_back(scale.data<float>()[c]);
    p.lo.push_back(static_cast<float>(qmin - z));
    p.hi.push_back(static_cast<float>(qmax - z));
  }
  return p;
}

void fake_quant_span(const float* x, float* y, int64_t n, float s, float lo, float hi) {
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] / s;
    v = v < lo ? lo : (v > hi ? hi : v);
    v = (v + kMagic) - kMagic;
    y[i] = v * s;
  }
}

void run_fake_quant(int64_t axis, bool in_place, KernelCall& call) {
  // in_place: when the executor hands the input over (its last use), write into it. Only for
  // inputs the executor made: a graph input is still held by the caller, and writing to it
  // would copy it first. Otherwise into a buffer of the executor's cache (it recycles the input).
  Tensor owned = in_place ? call.take_input(0) : Tensor();
  const bool moved = in_place && !call.has_input(0);
  const Tensor& x = moved ? owned : call.input(0);
  require_float(x, "input x");
  const FqParams p = fq_params(x, call.input(1), call.has_input(2) ? &call.input(2) : nullptr, axis);
  Tensor y = moved ? std::move(owned) : call.alloc(DType::kFloat32, x.shape());
  float* yd = y.numel() > 0 ? y.mutable_data<float>() : nullptr;
  const float* xd = moved ? yd : x.data<float>();
  const int64_t n = y.numel();
  if (n > 0 && p.channels == 1) {
    parallel_chunks(call.pool(), n, kChunk, [&](int64_t b, int64_t e) {
      fake_quant_span(xd + b, yd + b, e - b, p.scale[0], p.lo[0], p.hi[0]);
    });
  } else if (n > 0) {
    const int64_t block = std::max<int64_t>(p.inner, 1);
    parallel_chunks(call.pool(), n / block, std::max<int64_t>(1, kChunk / block), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const auto c = static_cast<size_t>(b % p.channels);
        fake_quant_span(xd + b * block, yd + b * block, block, p.scale[c], p.lo[c], p.hi[c]);
      }
    });
  }
  call.set_output(0, std::move(y));
}

}  // namespace

Kernel make_fake_quantize_linear(const NodeContext& ctx) {
  check_attributes(ctx.node, {"axis", "in_place"});
  const int64_t axis = ctx.node.attr_int("axis", 1);
  const bool in_place = ctx.node.attr_int("in_place", 0) != 0;
  return [axis, in_place](KernelCall& call) { run_fake_quant(axis, in_place, call); };
}

}  // namespace repq::runtime
