#include <gtest/gtest.h>

#include "repq/error.h"
#include "repq/ir/tensor.h"

namespace repq {
namespace {

TEST(Tensor, ZeroFilledWithShape) {
  Tensor t(DType::kFloat32, {2, 3});
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.nbytes(), 24u);
  for (float v : t.span<float>()) EXPECT_EQ(v, 0.0f);
}

TEST(Tensor, CopyOnWriteKeepsCopiesIndependent) {
  Tensor a = Tensor::from_vector<float>({2}, {1.0f, 2.0f});
  Tensor b = a;
  b.mutable_data<float>()[0] = 5.0f;
  EXPECT_EQ(a.data<float>()[0], 1.0f);
  EXPECT_EQ(b.data<float>()[0], 5.0f);
}

TEST(Tensor, FromBytesRejectsWrongSize) {
  EXPECT_THROW(Tensor::from_bytes(DType::kFloat32, {2, 3}, std::string(20, '\0')), InputError);
}

TEST(Tensor, ShapeOverflowIsRefused) {
  EXPECT_THROW(shape_numel({int64_t{1} << 40, int64_t{1} << 40}), InputError);
  EXPECT_THROW(shape_numel({-1, 3}), InputError);
}

TEST(Tensor, WrongTypeAccessThrows) {
  Tensor t(DType::kInt64, {1});
  EXPECT_THROW((void)t.data<float>(), InternalError);
}

TEST(Tensor, HalfConversionRoundTrips) {
  for (float v : {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.333251953125f}) {
    EXPECT_EQ(half_to_float(float_to_half(v)), v) << v;
  }
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(half_to_float(0xc000), -2.0f);
  // 1 + 2^-11 is half way between 1 and the next half: rounds to even (1.0).
  EXPECT_EQ(half_to_float(float_to_half(1.0f + 1.0f / 2048)), 1.0f);
}

TEST(Tensor, CastBetweenTypes) {
  Tensor d = Tensor::from_vector<double>({3}, {1.5, -2.0, 3.25});
  Tensor f = d.cast(DType::kFloat32);
  EXPECT_EQ(f.dtype(), DType::kFloat32);
  EXPECT_EQ(f.data<float>()[2], 3.25f);
  Tensor h = f.cast(DType::kFloat16);
  EXPECT_EQ(h.cast(DType::kFloat32).data<float>()[1], -2.0f);
  EXPECT_EQ(Tensor::from_vector<int64_t>({2}, {7, -3}).to_doubles(), (std::vector<double>{7, -3}));
}

TEST(Tensor, ReshapeChecksCount) {
  Tensor t(DType::kFloat32, {2, 3});
  EXPECT_EQ(t.reshaped({3, 2}).shape(), (Shape{3, 2}));
  EXPECT_THROW(t.reshaped({4}), InputError);
}

}  // namespace
}  // namespace repq
