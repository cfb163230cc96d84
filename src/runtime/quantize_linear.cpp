// QuantizeLinear and DequantizeLinear, per tensor or per axis, for uint8, int8 and int32:
// q = saturate(round_half_to_even(x / scale) + zero_point); x = (q - zero_point) * scale.
#include <cmath>
#include <limits>

#include "runtime/kernel_util.h"
#include "runtime/kernels.h"
#include "runtime/quant_params.h"
#include "runtime/thread_pool.h"

namespace repq::runtime {

QuantLayout quant_layout(const Tensor& x, const Tensor& scale, const Tensor* zp, int64_t axis_attr) {
  QuantLayout l;
  if (scale.numel() == 1 && scale.rank() <= 1) {
    if (zp && zp->numel() != 1) throw InputError("zero point must have one value like the scale");
    return l;
  }
  if (scale.rank() != 1)
    throw InputError("scale has shape " + shape_str(scale.shape()) +
                     "; expected a scalar (per tensor) or 1-D (per axis)");
  const size_t axis = static_cast<size_t>(normalize_axis(axis_attr, static_cast<int64_t>(x.rank())));
  if (scale.numel() != x.dim(axis))
    throw InputError("scale has " + std::to_string(scale.numel()) + " values but axis " +
                     std::to_string(axis) + " of the input " + shape_str(x.shape()) + " has " +
                     std::to_string(x.dim(axis)));
  if (zp && zp->shape() != scale.shape())
    throw InputError("zero point shape " + shape_str(zp->shape()) + " differs from scale shape " +
                     shape_str(scale.shape()));
  l.channels = x.dim(axis);
  l.inner = dims_product(x.shape(), axis + 1, x.rank());
  return l;
}

void check_quant_scale(const Tensor& scale) {
  require_float(scale, "scale");
  for (float s : scale.span<float>())
    if (!(s > 0.0f) || !std::isfinite(s))
      throw InputError("scale " + std::to_string(s) + " is not a positive finite number");
}

namespace {

template <class Q>
void quantize(const Tensor& x, const float* scale, const Tensor* zp, const QuantLayout& l,
              Tensor& y, ThreadPool& pool) {
  const float* xd = x.data<float>();
  Q* yd = y.mutable_data<Q>();
  const Q* zd = zp ? zp->data<Q>() : nullptr;
  const double lo = static_cast<double>(std::numeric_limits<Q>::lowest());
  const double hi = static_cast<double>(std::numeric_limits<Q>::max());
  const int64_t block = l.inner;
  parallel_chunks(pool, x.numel() / std::max<int64_t>(block, 1), std::max<int64_t>(1, 65536 / std::max<int64_t>(block, 1)),
                  [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t c = b % l.channels;
      const float s = scale[c];
      const double z = zd ? static_cast<double>(zd[c]) : 0.0;
      for (int64_t i = b * block; i < (b + 1) * block; ++i) {
        double v = static_cast<double>(std::nearbyint(xd[i] / s)) + z;
        v = v < lo ? lo : (v > hi ? hi : v);
        yd[i] = static_cast<Q>(v);
      }
    }
  });
}

template <class Q>
void dequantize(const Tensor& x, const float* scale, const Tensor* zp, const QuantLayout& l,
                Tensor& y, ThreadPool& pool) {
  const Q* xd = x.data<Q>();
  float* yd = y.mutable_data<float>();
  const Q* zd = zp ? zp->data<Q>() : nullptr;
  const int64_t block = l.inner;
  parallel_chunks(pool, x.numel() / std::max<int64_t>(block, 1), std::max<int64_t>(1, 65536 / std::max<int64_t>(block, 1)),
                  [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t c = b % l.channels;
      const float s = scale[c];
      const int64_t z = zd ? static_cast<int64_t>(zd[c]) : 0;
      for (int64_t i = b * block; i < (b + 1) * block; ++i)
        yd[i] = static_cast<float>(static_cast<int64_t>(xd[i]) - z) * s;
    }
  });
}

void run_quantize(int64_t axis, KernelCall& call) {
  const Tensor& x = call.input(0);
  require_float(x, "input x");
  const Tensor& scale = call.input(1);
  check_quant_scale(scale);
  const Tensor* zp = call.has_input(2) ? &call.input(2) : nullptr;
  const DType qt = zp ? zp->dtype() : DType::kUInt8;
  const QuantLayout l = quant_layout(x, scale, zp, axis);
  Tensor y(qt, x.shape());
  if (y.numel() > 0) {
    switch (qt) {
      case DType::kUInt8: quantize<uint8_t>(x, scale.data<float>(), zp, l, y, call.pool()); break;
      case DType::kInt8: quantize<int8_t>(x, scale.data<float>(), zp, l, y, call.pool()); break;
      case DType::kInt32: quantize<int32_t>(x, scale.data<float>(), zp, l, y, call.pool()); break;
      default:
        throw InputError("zero point type " + dtype_name(qt) +
                         " is not supported (uint8, int8 and int32 are)");
    }
  }
  call.set_output(0, std::move(y));
}

void run_dequantize(int64_t axis, KernelCall& call) {
  const Tensor& x = call.input(0);
  const Tensor& scale = call.input(1);
  check_quant_scale(scale);
  const Tensor* zp = call.has_input(2) ? &call.input(2) : nullptr;
  if (zp && zp->dtype() != x.dtype())
    throw InputError("zero point is " + dtype_name(zp->dtype()) + " but x is " + dtype_name(x.dtype()));
  const QuantLayout l = quant_layout(x, scale, zp, axis);
  Tensor y = call.alloc(DType::kFloat32, x.shape());
  if (y.numel() > 0) {
    switch (x.dtype()) {
      case DType::kUInt8: dequantize<uint8_t>(x, scale.data<float>(), zp, l, y, call.pool()); break;
      case DType::kInt8: dequantize<int8_t>(x, scale.data<float>(), zp, l, y, call.pool()); break;
      case DType::kInt32: dequantize<int32_t>(x, scale.data<float>(), zp, l, y, call.pool()); break;
      default:
        throw InputError("input x is " + dtype_name(x.dtype()) +
                         "; DequantizeLinear supports uint8, int8 and int32");
    }
  }
  call.set_output(0, std::move(y));
}

}  // namespace

Kernel make_quantize_linear(const NodeContext& ctx) {
  check_attributes(ctx.node, {"axis", "saturate"});
  const int64_t axis = ctx.node.attr_int("axis", 1);
  return [axis](KernelCall& call) { run_quantize(axis, call); };
}

Kernel make_dequantize_linear(const NodeContext& ctx) {
  check_attributes(ctx.node, {"axis"});
  const int64_t axis = ctx.node.attr_int("axis", 1);
  return [axis](KernelCall& call) { run_dequantize(axis, call); };
}

}  // namespace repq::runtime
