// Recycles the buffers of freed intermediate tensors: a forward pass allocates the same sizes
// again and again, and fresh large buffers cost page faults and zero-filling.
#pragma once

#include <cstddef>
#include <vector>

#include "repq/ir/tensor.h"

namespace repq::runtime {

class TensorCache {
 public:
  // At most this many bytes are kept.
  explicit TensorCache(size_t max_bytes = size_t{1} << 30) : max_bytes_(max_bytes) {}

  // A tensor of this type and shape whose contents are unspecified (a recycled buffer, or a
  // new zero-filled one).
  Tensor take(DType dtype, Shape shape);
  // Keeps t's buffer for a later take(). The caller guarantees nothing else holds it.
  void give(Tensor t);
  void clear() {
    free_.clear();
    bytes_ = 0;
  }

 private:
  size_t max_bytes_;
  size_t bytes_ = 0;
  std::vector<Tensor> free_;  // most recently given last
};

}  // namespace repq::runtime
