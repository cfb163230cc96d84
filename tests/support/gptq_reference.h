// Scalar references for GPTQ's H accumulation (src/quant/gptq_hessian.cpp): its documented
// summation order written out plainly, for bit-for-bit tests of the fast kernels.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace repq::test {

// A product rounded to float before it is added (no fused multiply-add).
inline float no_contract(float p) {
  volatile float v = p;
  return v;
}

// One entry of one sample: per chunk of 256 patches, eight fma lanes, the tail (length % 8)
// into lane 0 (four rounded products added in order when there are four or more, the rest
// fma), the lanes added as ((0+1)+(2+3))+((4+5)+(6+7)), chunk sums in order into a double.
inline double reference_entry(const float* a, const float* b, int64_t P) {
  double acc = 0;
  for (int64_t p0 = 0; p0 < P; p0 += 256) {
    const int64_t end = std::min(P, p0 + 256);
    float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t p = p0;
    for (; p + 8 <= end; p += 8)
      for (int t = 0; t < 8; ++t) l[t] = std::fma(a[p + t], b[p + t], l[t]);
    if (end - p >= 4)
      for (int t = 0; t < 4; ++t, ++p) l[0] = l[0] + no_contract(a[p] * b[p]);
    for (; p < end; ++p) l[0] = std::fma(a[p], b[p], l[0]);
    acc += static_cast<double>(((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])));
  }
  return acc;
}

}  // namespace repq::test
