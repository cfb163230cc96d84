#include "runtime/tensor_cache.h"

namespace repq::runtime {

Tensor TensorCache::take(DType dtype, Shape shape) {
  const int64_t n = shape_numel(shape);
  for (size_t i = free_.size(); i-- > 0;) {
    if (free_[i].dtype() != dtype || free_[i].numel() != n) continue;
    Tensor t = std::move(free_[i]);
    free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
    bytes_ -= t.nbytes();
    return t.reshaped(std::move(shape));
  }
  return Tensor(dtype, std::move(shape));
}

void TensorCache::give(Tensor t) {
  if (t.raw() == nullptr || t.dtype() == DType::kString || t.nbytes() == 0) return;
  if (t.nbytes() > max_bytes_) return;
  bytes_ += t.nbytes();
  free_.push_back(std::move(t));
  while (bytes_ > max_bytes_) {  // drop the oldest
    bytes_ -= free_.front().nbytes();
    free_.erase(free_.begin());
  }
}

}  // namespace repq::runtime
