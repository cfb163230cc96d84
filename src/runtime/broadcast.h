// Numpy-style broadcasting of two operands: the output shape, and an iteration plan that walks
// the output as rows of a contiguous inner dim with the operands' matching offsets.
#pragma once

#include <cstdint>
#include <vector>

#include "repq/ir/tensor.h"

namespace repq::runtime {

// The broadcast shape of a and b; throws InputError when they are incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b);

struct BroadcastPlan {
  // Collapsed outer dims (the output's, outermost first) and the operands' strides along them.
  std::vector<int64_t> dims, stride_a, stride_b;
  int64_t outer = 1;  // rows: product of dims
  int64_t inner = 1;  // contiguous output elements per row
  int64_t inner_stride_a = 0, inner_stride_b = 0;  // 0 (broadcast) or 1
};
// `out` must be broadcast_shapes(a, b) (or a shape both broadcast to).
BroadcastPlan plan_broadcast(const Shape& a, const Shape& b, const Shape& out);

// Offsets of a and b for consecutive rows of a plan.
class BroadcastCursor {
 public:
  BroadcastCursor(const BroadcastPlan& plan, int64_t row);
  void next();
  int64_t offset_a = 0, offset_b = 0;

 private:
  const BroadcastPlan& plan_;
  std::vector<int64_t> index_;
};

}  // namespace repq::runtime
