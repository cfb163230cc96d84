#include "weights_digest.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <vector>

#include "repq/error.h"

#ifdef REPQ_HAVE_OPENSSL
#include <openssl/evp.h>
#endif

namespace repq::mobileone {

namespace fs = std::filesystem;

namespace {

// The first 64-hex-digit code on the line after one mentioning "concatenated", or "".
std::string readme_digest(const fs::path& readme) {
  std::ifstream in(readme);
  std::string line;
  bool armed = false;
  static const std::regex hex("[0-9a-f]{64}");
  while (std::getline(in, line)) {
    if (line.find("concatenated") != std::string::npos) armed = true;
    std::smatch m;
    if (armed && std::regex_search(line, m, hex)) return m.str();
  }
  return "";
}

[[maybe_unused]] std::vector<fs::path> weight_files(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir / "weights"))
    if (e.is_regular_file() && e.path().extension() == ".bin") files.push_back(e.path());
  std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
    return a.filename().string() < b.filename().string();
  });
  return files;
}

}  // namespace

bool verify_weights_digest(const std::string& dir, std::string* skipped_reason) {
  const std::string want = readme_digest(fs::path(dir) / "README.md");
  if (want.empty()) {
    *skipped_reason = "README.md states no sha256 for the weights";
    return false;
  }
#ifdef REPQ_HAVE_OPENSSL
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 16);
  for (const fs::path& p : weight_files(dir)) {
    std::ifstream in(p, std::ios::binary);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(in.gcount()));
    }
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  std::ostringstream got;
  for (unsigned int i = 0; i < len; ++i) {
    static const char* digits = "0123456789abcdef";
    got << digits[md[i] >> 4] << digits[md[i] & 15];
  }
  if (got.str() != want)
    throw InputError(dir + "/weights: sha256 of the concatenated .bin files is " + got.str() +
                     ", README.md says " + want + " (use --no-verify to build anyway)");
  return true;
#else
  *skipped_reason = "built without OpenSSL";
  return false;
#endif
}

}  // namespace repq::mobileone
