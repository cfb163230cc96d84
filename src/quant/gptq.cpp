// GPTQ core (gptq.h): Cholesky of H^-1 with error feedback, the H-weighted scale search, and
// the base64 coding of the plan's int8 values. Everything in double, in a fixed order (Eigen's
// LLT single-threaded: the same sizes give the same bits).
#include "repq/quant/gptq.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#define EIGEN_DONT_PARALLELIZE
#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "repq/error.h"

namespace repq::quant {

namespace {

using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// U upper with H^-1 = U^T U (GPTQ's torch.linalg.cholesky(H^-1, upper=True)), from H already
// damped, without forming H^-1: with J the reversal permutation, J H J = R R^T (Eigen's
// blocked LLT, R lower), so H = V V^T with V = J R J upper, H^-1 = V^-T V^-1 and
// U = V^-1 = J R^-1 J. False when the factorization meets a pivot that is not positive, or a
// value is not finite.
bool inverse_upper_factor(const std::vector<double>& h, int64_t k, std::vector<double>& u) {
  const Eigen::Map<const RowMat> hm(h.data(), k, k);
  if (!hm.allFinite()) return false;
  const RowMat hr = hm.reverse();
  const Eigen::LLT<RowMat> llt(hr);
  if (llt.info() != Eigen::Success) return false;
  RowMat rinv = RowMat::Identity(k, k);
  llt.matrixL().solveInPlace(rinv);
  u.resize(static_cast<size_t>(k * k));
  Eigen::Map<RowMat> um(u.data(), k, k);
  um = rinv.reverse();
  return um.allFinite() && (um.diagonal().array() > 0).all();
}

// QuantizeLinear's rounding of x / s (float division, half to even), clamped to [-127, 127].
float round_q(float x, float s) { return std::clamp(std::nearbyint(x / s), -127.0f, 127.0f); }

}  // namespace

bool gptq_factor(const std::vector<double>& h, int64_t k, const GptqOptions& o, GptqFactor& f) {
  f.k = k;
  f.perm.clear();
  f.u.clear();
  if (k <= 0) return true;
  // Column order.
  std::vector<int64_t>& perm = f.perm;
  perm.resize(static_cast<size_t>(k));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  if (o.act_order)
    std::stable_sort(perm.begin(), perm.end(),
                     [&](int64_t a, int64_t b) { return h[a * k + a] > h[b * k + b]; });
  // Permuted H; dead inputs (zero diagonal) get 1 so that H stays invertible (their weights
  // see no data: their rounding error costs nothing and moves nothing).
  std::vector<double> hp(static_cast<size_t>(k * k));
  double mean_diag = 0;
  for (int64_t i = 0; i < k; ++i) mean_diag += h[i * k + i];
  mean_diag /= static_cast<double>(k);
  if (!(mean_diag > 0) || !std::isfinite(mean_diag)) return false;
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) hp[i * k + j] = h[perm[i] * k + perm[j]];
  for (int64_t i = 0; i < k; ++i)
    if (hp[i * k + i] == 0) hp[i * k + i] = 1;
  bool ok = false;
  for (double damp = std::max(o.damp, 0.0); damp <= 10.0 && !ok;
       damp = damp > 0 ? damp * 10 : 1e-6) {
    std::vector<double> hd = hp;
    for (int64_t i = 0; i < k; ++i) hd[i * k + i] += damp * mean_diag;
    ok = inverse_upper_factor(hd, k, f.u);
  }
  return ok;
}

void gptq_round_rows(const GptqFactor& f, float* w, int64_t rows, const float* scales, int8_t* q) {
  const int64_t k = f.k;
  const std::vector<int64_t>& perm = f.perm;
  const std::vector<double>& u = f.u;
  // Column by column, each row's error fed forward: row_j -= e U_ij for j > i (one fused
  // multiply-add per entry). Rows go in tiles so that U is read once per tile, not per row; each
  // row sees exactly the operations it would see alone (any split of the rows gives the same).
  constexpr int64_t kTile = 16;
  std::vector<double> tile(static_cast<size_t>(kTile * k));
  for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
    const int64_t nr = std::min(kTile, rows - r0);
    for (int64_t t = 0; t < nr; ++t)
      for (int64_t i = 0; i < k; ++i) tile[t * k + i] = w[(r0 + t) * k + perm[i]];
    for (int64_t i = 0; i < k; ++i) {
      const double* ui = u.data() + i * k;
      for (int64_t t = 0; t < nr; ++t) {
        double* row = tile.data() + t * k;
        const float s = scales[r0 + t];
        const float qi = round_q(static_cast<float>(row[i]), s);
        q[(r0 + t) * k + perm[i]] = static_cast<int8_t>(qi);
        const double err = (row[i] - static_cast<double>(qi) * s) / ui[i];
        for (int64_t j = i + 1; j < k; ++j) row[j] = std::fma(-err, ui[j], row[j]);
      }
    }
    for (int64_t t = 0; t < nr; ++t)
      for (int64_t i = 0; i < k; ++i) w[(r0 + t) * k + perm[i]] = static_cast<float>(tile[t * k + i]);
  }
}

bool gptq_rows(std::vector<float>& w, int64_t rows, int64_t k, const std::vector<double>& h,
               const std::vector<float>& scales, const GptqOptions& o, std::vector<int8_t>& q) {
  q.clear();
  if (k <= 0 || rows <= 0) return true;
  GptqFactor f;
  if (!gptq_factor(h, k, o, f)) return false;
  q.assign(static_cast<size_t>(rows * k), 0);
  gptq_round_rows(f, w.data(), rows, scales.data(), q.data());
  return true;
}

std::vector<float> search_scales(const std::vector<float>& w, int64_t rows, int64_t k,
                                 const std::vector<double>& h) {
  std::vector<float> out(static_cast<size_t>(rows));
  std::vector<double> e(static_cast<size_t>(k)), he(static_cast<size_t>(k));
  for (int64_t r = 0; r < rows; ++r) {
    const float* wr = w.data() + r * k;
    float m = 0;
    for (int64_t i = 0; i < k; ++i) m = std::max(m, std::fabs(wr[i]));
    out[static_cast<size_t>(r)] = weight_scale(m);
    if (m == 0) continue;
    double best = -1;
    for (int step = 0; step <= 20; ++step) {
      const float s = weight_scale(m * static_cast<float>(1.0 - 0.02 * step));
      for (int64_t i = 0; i < k; ++i) e[i] = wr[i] - static_cast<double>(round_q(wr[i], s)) * s;
      double err = 0;
      for (int64_t i = 0; i < k; ++i) {
        double t = 0;
        for (int64_t j = 0; j < k; ++j) t += h[i * k + j] * e[j];
        err += e[i] * t;
      }
      if (best < 0 || err < best) {
        best = err;
        out[static_cast<size_t>(r)] = s;
      }
    }
  }
  return out;
}

namespace {
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64_encode(const std::vector<int8_t>& v) {
  std::string out;
  out.reserve((v.size() + 2) / 3 * 4);
  for (size_t i = 0; i < v.size(); i += 3) {
    uint32_t n = static_cast<uint32_t>(static_cast<uint8_t>(v[i])) << 16;
    if (i + 1 < v.size()) n |= static_cast<uint32_t>(static_cast<uint8_t>(v[i + 1])) << 8;
    if (i + 2 < v.size()) n |= static_cast<uint32_t>(static_cast<uint8_t>(v[i + 2]));
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
    out += i + 1 < v.size() ? kB64[(n >> 6) & 63] : '=';
    out += i + 2 < v.size() ? kB64[n & 63] : '=';
  }
  return out;
}

std::vector<int8_t> base64_decode(const std::string& s, const std::string& what) {
  if (s.size() % 4 != 0) throw InputError(what + ": base64 length is not a multiple of 4");
  const auto value = [&](char c, size_t pos) -> uint32_t {
    const char* p = c ? std::char_traits<char>::find(kB64, 64, c) : nullptr;
    if (!p) throw InputError(what + ": bad base64 character at offset " + std::to_string(pos));
    return static_cast<uint32_t>(p - kB64);
  };
  std::vector<int8_t> out;
  out.reserve(s.size() / 4 * 3);
  for (size_t i = 0; i < s.size(); i += 4) {
    const bool last = i + 4 == s.size();
    const int pad = last ? (s[i + 3] == '=') + (s[i + 2] == '=') : 0;
    if (pad == 1 && s[i + 2] == '=') throw InputError(what + ": bad base64 padding");
    uint32_t n = value(s[i], i) << 18 | value(s[i + 1], i + 1) << 12;
    if (pad < 2) n |= value(s[i + 2], i + 2) << 6;
    if (pad < 1) n |= value(s[i + 3], i + 3);
    // Canonical form only: the bits beyond the last byte must be zero.
    if ((pad == 2 && (n & 0xFFFF)) || (pad == 1 && (n & 0xFF)))
      throw InputError(what + ": non-canonical base64 padding bits");
    out.push_back(static_cast<int8_t>(static_cast<uint8_t>(n >> 16)));
    if (pad < 2) out.push_back(static_cast<int8_t>(static_cast<uint8_t>(n >> 8)));
    if (pad < 1) out.push_back(static_cast<int8_t>(static_cast<uint8_t>(n)));
  }
  return out;
}

}  // namespace repq::quant
