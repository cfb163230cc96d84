// .npy reading and writing, and every malformed case.
#include <gtest/gtest.h>

#include "data/fixtures.h"
#include "repq/data/npy.h"
#include "repq/error.h"
#include "support/test_util.h"

namespace repq::test {
namespace {

// A .npy file built by hand, as NumPy writes it (header padded to 64 bytes).
std::string npy_bytes(const std::string& dict, const std::string& data, int version = 1) {
  std::string header = dict;
  const size_t prefix = version == 1 ? 10 : 12;
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string out = std::string("\x93NUMPY", 6) + static_cast<char>(version) + '\0';
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>(header.size() >> 8);
  if (version != 1) out += std::string(2, '\0');
  return out + header + data;
}

std::string floats_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

void expect_error(const std::string& bytes, const std::string& what) {
  TempDir dir;
  const std::string path = dir.file("bad.npy");
  write_bytes(path, bytes);
  for (int via_header = 0; via_header < 2; ++via_header) {
    try {
      if (via_header)
        data::read_npy_header(path);
      else
        data::read_npy(path);
      ADD_FAILURE() << "no error, expected: " << what;
    } catch (const InputError& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
    }
  }
}

TEST(DataNpy, Float32RoundTripAnyRank) {
  TempDir dir;
  for (const Shape& shape : {Shape{}, Shape{5}, Shape{2, 3}, Shape{1, 3, 4, 5}, Shape{2, 1, 1, 2, 3}}) {
    const Tensor t = Tensor::from_vector<float>(shape, random_floats(static_cast<size_t>(shape_numel(shape)), 7));
    const std::string path = dir.file("t.npy");
    data::write_npy(path, t);
    const Tensor back = data::read_npy(path);
    EXPECT_TRUE(back.equals(t)) << shape_str(shape);
    EXPECT_EQ(data::read_npy_header(path).shape, shape);
    EXPECT_EQ(data::read_npy_header(path).data_offset % 64, 0u);
  }
}

TEST(DataNpy, HeaderTextMatchesNumpy) {
  const std::string b = data::encode_npy(Tensor::from_vector<float>({3}, {1, 2, 3}));
  EXPECT_NE(b.find("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"), std::string::npos);
  const std::string b4 = data::encode_npy(Tensor(DType::kFloat32, {1, 3, 2, 2}));
  EXPECT_NE(b4.find("'shape': (1, 3, 2, 2), }"), std::string::npos);
}

TEST(DataNpy, ReadsUint8AndFloat64) {
  const std::string u8 = npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }", std::string("\x00\x01\x80\xff", 4));
  const Tensor raw = data::decode_npy(u8, "u8.npy");
  EXPECT_EQ(raw.dtype(), DType::kUInt8);
  const Tensor f = data::decode_npy(u8, "u8.npy", /*to_float=*/true);
  EXPECT_EQ(f.dtype(), DType::kFloat32);
  EXPECT_EQ(std::vector<float>(f.span<float>().begin(), f.span<float>().end()), (std::vector<float>{0, 1, 128, 255}));

  const std::vector<double> d = {1.5, -2.25, 1e-3};
  const std::string f8 = npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
                                   std::string(reinterpret_cast<const char*>(d.data()), 24));
  const Tensor t = data::decode_npy(f8, "f8.npy");
  EXPECT_EQ(t.dtype(), DType::kFloat32);
  EXPECT_EQ(t.data<float>()[1], -2.25f);
  EXPECT_EQ(t.data<float>()[2], 1e-3f);
}

TEST(DataNpy, Version2AndKeyOrder) {
  const std::string b = npy_bytes("{'shape': (2,), 'fortran_order': False, 'descr': '<f4'}", floats_bytes({1, 2}), 2);
  const Tensor t = data::decode_npy(b, "v2.npy");
  EXPECT_EQ(t.shape(), (Shape{2}));
  EXPECT_EQ(t.data<float>()[1], 2.0f);
}

TEST(DataNpy, MalformedFilesAreInputErrors) {
  const std::string ok_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
  const std::string data16 = floats_bytes({1, 2, 3, 4});
  expect_error("", "empty file");
  expect_error("PK\x03\x04 not npy at all", "bad magic");
  expect_error(std::string("\x93NUMPY\x01\x00\xff\x00{'descr'", 16), "truncated .npy header");
  expect_error(std::string("\x93NUMPY\x07\x00", 8) + "xx", "version 7");
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", data16), "Fortran");
  expect_error(npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", data16), "big-endian");
  expect_error(npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", data16), "unsupported .npy dtype '<i8'");
  expect_error(npy_bytes("{'descr': '<f4', 'shape': (2, 2), }", data16), "missing");
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", data16), "malformed .npy header");
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': [2, 2], }", data16), "expected '('");
  expect_error(npy_bytes("'descr': '<f4'", data16), "expected '{'");
  expect_error(npy_bytes(ok_dict, data16.substr(0, 10)), "truncated .npy data");
  expect_error(npy_bytes(ok_dict, data16 + "xx"), "after the array data");
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999, 99999999, 99999999), }", ""),
               "shape too large");
}

TEST(DataNpy, WriteIsAtomicAndRefusesOtherTypes) {
  TempDir dir;
  EXPECT_THROW(data::write_npy(dir.file("i.npy"), Tensor(DType::kInt64, {2})), InputError);
  EXPECT_FALSE(std::filesystem::exists(dir.file("i.npy")));
  std::filesystem::create_directory(dir.file("sub"));
  EXPECT_THROW(data::write_npy(dir.file("sub"), Tensor(DType::kFloat32, {2})), InputError);
}

}  // namespace
}  // namespace repq::test
