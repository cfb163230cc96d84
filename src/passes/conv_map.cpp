#include "repq/passes/conv_map.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "repq/error.h"

namespace repq::passes {

namespace {

std::string pair_str(int64_t a, int64_t b) { return std::to_string(a) + " vs " + std::to_string(b); }

// int64 arithmetic that remembers an overflow (the result is then 0 and `ok` false).
struct Checked {
  bool ok = true;
  int64_t mul(int64_t a, int64_t b) { return fix(__builtin_mul_overflow(a, b, &r_)); }
  int64_t add(int64_t a, int64_t b) { return fix(__builtin_add_overflow(a, b, &r_)); }
  int64_t sub(int64_t a, int64_t b) { return fix(__builtin_sub_overflow(a, b, &r_)); }

 private:
  int64_t fix(bool overflow) {
    if (overflow) ok = false;
    return overflow ? 0 : r_;
  }
  int64_t r_ = 0;
};

const char* kOverflow = "the folded kernel's geometry overflows int64 (absurd strides, dilations or pads)";

// Refuses (with `why`, *over_limit) a folded kernel of kh x kw taps and `cout` x `cpg` channels
// over the limits, before it is allocated. `what` names the kernel ("composed", "summed").
bool kernel_fits(const char* what, int64_t cout, int64_t cpg, int64_t kh, int64_t kw,
                 const MapLimits& lim, std::string& why, bool* over_limit, bool check_taps = true) {
  const auto refuse = [&](std::string w) {
    why = std::move(w);
    if (over_limit) *over_limit = true;
    return false;
  };
  const std::string k = std::to_string(kh) + "x" + std::to_string(kw);
  if (check_taps && (kh > lim.max_kernel_size || kw > lim.max_kernel_size))
    return refuse(std::string("the ") + what + " kernel would be " + k + ", over the limit of " +
                  std::to_string(lim.max_kernel_size) + " taps per axis (FuseOptions::max_kernel_size)");
  Checked c;
  const int64_t n = c.mul(c.mul(cout, cpg), c.mul(kh, kw));
  if (!c.ok || n > lim.max_kernel_elements)
    return refuse(std::string("the ") + what + " kernel " + std::to_string(cout) + "x" + std::to_string(cpg) +
                  "x" + k + " would hold " + (c.ok ? std::to_string(n) : "more than int64 can count") +
                  " weights, over the limit of " + std::to_string(lim.max_kernel_elements) +
                  " (FuseOptions::max_kernel_elements)");
  return true;
}

bool overflowed(std::string& why, bool* over_limit) {
  why = kOverflow;
  if (over_limit) *over_limit = true;
  return false;
}

// Kernel geometry of a sum or a composition along one spatial axis.
struct Axis {
  int64_t kernel = 1, stride = 1, dilation = 1, pad_begin = 0, pad_end = 0;
};

}  // namespace

bool ConvMap::zero_bias() const {
  return std::all_of(b.begin(), b.end(), [](double v) { return v == 0.0; });
}

bool ConvMap::is_diagonal() const {
  return groups == cin && cin == cout && kernel[0] == 1 && kernel[1] == 1 && strides[0] == 1 &&
         strides[1] == 1 && !has_padding();
}

ConvMap ConvMap::diagonal(const std::vector<double>& scale, const std::vector<double>& shift) {
  ConvMap m;
  m.cout = m.cin = m.groups = static_cast<int64_t>(scale.size());
  m.w = scale;
  m.b = shift;
  return m;
}

ConvMap ConvMap::identity(int64_t channels) {
  const auto n = static_cast<size_t>(channels);
  return diagonal(std::vector<double>(n, 1.0), std::vector<double>(n, 0.0));
}

ConvMap regroup(const ConvMap& m, int64_t groups) {
  if (groups == m.groups) return m;
  if (groups <= 0 || m.groups % groups != 0)
    throw InternalError("regroup: " + std::to_string(groups) + " does not divide " +
                        std::to_string(m.groups));
  ConvMap r = m;
  r.groups = groups;
  const int64_t taps = m.kernel[0] * m.kernel[1];
  const int64_t old_cpg = m.cin_per_group(), new_cpg = r.cin_per_group();
  const int64_t old_opg = m.cout / m.groups, new_opg = r.cout / groups;
  r.w.assign(static_cast<size_t>(r.cout * new_cpg * taps), 0.0);
  for (int64_t o = 0; o < m.cout; ++o) {
    const int64_t first_in = (o / old_opg) * old_cpg - (o / new_opg) * new_cpg;
    for (int64_t i = 0; i < old_cpg; ++i)
      std::copy_n(m.w.begin() + static_cast<ptrdiff_t>((o * old_cpg + i) * taps), taps,
                  r.w.begin() + static_cast<ptrdiff_t>((o * new_cpg + first_in + i) * taps));
  }
  return r;
}

bool sum_maps(const ConvMap& a, const ConvMap& b, ConvMap& out, std::string& why, const MapLimits& lim,
              bool* over_limit) {
  if (a.cin != b.cin || a.cout != b.cout) {
    why = "branches have different channels (" + std::to_string(a.cin) + "->" +
          std::to_string(a.cout) + " vs " + std::to_string(b.cin) + "->" + std::to_string(b.cout) + ")";
    return false;
  }
  std::array<Axis, 2> ax;
  std::array<std::array<int64_t, 2>, 2> first{};  // [branch][axis]: index of tap 0 in the sum
  for (int k = 0; k < 2; ++k) {
    if (a.strides[k] != b.strides[k]) {
      why = "mismatched stride (" + pair_str(a.strides[k], b.strides[k]) + ")";
      return false;
    }
    const int64_t da = a.kernel[k] > 1 ? a.dilations[k] : 0, db = b.kernel[k] > 1 ? b.dilations[k] : 0;
    if (da && db && da != db) {
      why = "mismatched dilation (" + pair_str(da, db) + ")";
      return false;
    }
    const int64_t d = std::max<int64_t>({da, db, 1});
    Checked c;
    const int64_t span_a = c.mul(a.dilations[k], a.kernel[k] - 1), span_b = c.mul(b.dilations[k], b.kernel[k] - 1);
    const int64_t tail_a = c.sub(c.add(a.pads[k], a.pads[k + 2]), span_a);
    const int64_t tail_b = c.sub(c.add(b.pads[k], b.pads[k + 2]), span_b);
    const int64_t end = std::max(c.add(-a.pads[k], span_a), c.add(-b.pads[k], span_b));
    const int64_t beg = std::min(-a.pads[k], -b.pads[k]);
    const int64_t width = c.sub(end, beg), pad_end = c.add(tail_a, end);
    if (!c.ok) return overflowed(why, over_limit);
    if (tail_a != tail_b) {
      why = "mismatched padding (pads " + std::to_string(a.pads[k]) + "," + std::to_string(a.pads[k + 2]) +
            " with kernel " + std::to_string(a.kernel[k]) + " vs pads " + std::to_string(b.pads[k]) +
            "," + std::to_string(b.pads[k + 2]) + " with kernel " + std::to_string(b.kernel[k]) +
            ": output sizes differ)";
      return false;
    }
    if ((a.pads[k] - b.pads[k]) % d != 0) {
      why = "mismatched padding (taps do not line up with dilation " + std::to_string(d) + ")";
      return false;
    }
    if (width / d == std::numeric_limits<int64_t>::max()) return overflowed(why, over_limit);
    ax[k].kernel = width / d + 1;
    ax[k].dilation = ax[k].kernel > 1 ? d : 1;
    ax[k].stride = a.strides[k];
    ax[k].pad_begin = -beg;
    ax[k].pad_end = pad_end;
    first[0][k] = (-a.pads[k] - beg) / d;
    first[1][k] = (-b.pads[k] - beg) / d;
  }
  const int64_t g = std::gcd(a.groups, b.groups);
  if (!kernel_fits("summed", a.cout, a.cin / g, ax[0].kernel, ax[1].kernel, lim, why, over_limit)) return false;
  ConvMap r;
  r.cout = a.cout;
  r.cin = a.cin;
  r.groups = g;
  for (int k = 0; k < 2; ++k) {
    r.kernel[k] = ax[k].kernel;
    r.strides[k] = ax[k].stride;
    r.dilations[k] = ax[k].dilation;
    r.pads[k] = ax[k].pad_begin;
    r.pads[k + 2] = ax[k].pad_end;
  }
  r.w.assign(static_cast<size_t>(r.cout * r.cin_per_group() * r.kernel[0] * r.kernel[1]), 0.0);
  r.b.assign(static_cast<size_t>(r.cout), 0.0);
  int branch = 0;
  for (const ConvMap* src : {&a, &b}) {
    const ConvMap m = regroup(*src, g);
    const int64_t step0 = m.kernel[0] > 1 ? m.dilations[0] / r.dilations[0] : 0;
    const int64_t step1 = m.kernel[1] > 1 ? m.dilations[1] / r.dilations[1] : 0;
    for (int64_t o = 0; o < m.cout; ++o) {
      r.b[static_cast<size_t>(o)] += m.b[static_cast<size_t>(o)];
      for (int64_t i = 0; i < m.cin_per_group(); ++i)
        for (int64_t u = 0; u < m.kernel[0]; ++u)
          for (int64_t v = 0; v < m.kernel[1]; ++v)
            r.w[r.index(o, i, first[branch][0] + u * step0, first[branch][1] + v * step1)] +=
                m.w[m.index(o, i, u, v)];
    }
    ++branch;
  }
  out = std::move(r);
  return true;
}

bool compose_maps(const ConvMap& first, const ConvMap& second, ConvMap& out, std::string& why,
                  const MapLimits& lim, bool* over_limit) {
  if (first.cout != second.cin) {
    why = "channel mismatch (" + std::to_string(first.cout) + " outputs feed " +
          std::to_string(second.cin) + " inputs)";
    return false;
  }
  if (second.is_diagonal()) {  // scale the output channels of `first`
    ConvMap r = first;
    const size_t per_out = r.w.size() / static_cast<size_t>(r.cout);
    for (size_t o = 0; o < static_cast<size_t>(r.cout); ++o) {
      for (size_t j = 0; j < per_out; ++j) r.w[o * per_out + j] *= second.w[o];
      r.b[o] = r.b[o] * second.w[o] + second.b[o];
    }
    out = std::move(r);
    return true;
  }
  const bool padded = second.has_padding();
  if (padded) {
    const bool pointwise = first.kernel == std::array<int64_t, 2>{1, 1} &&
                           first.strides == std::array<int64_t, 2>{1, 1} && !first.has_padding();
    if (!pointwise) {
      why = "the second conv pads with zeros where the first map's output is not zero (not exact)";
      return false;
    }
    if (!first.zero_bias()) {
      why = "the second conv's zero padding would replace the first map's bias at the border "
            "(not exact)";
      return false;
    }
  }
  if (first.is_diagonal()) {  // scale the input channels of `second`, shift through every tap
    ConvMap r = second;
    const int64_t cpg = r.cin_per_group(), taps = r.kernel[0] * r.kernel[1], opg = r.cout / r.groups;
    for (int64_t o = 0; o < r.cout; ++o)
      for (int64_t i = 0; i < cpg; ++i) {
        const auto c = static_cast<size_t>((o / opg) * cpg + i);
        for (int64_t t = 0; t < taps; ++t) {
          double& wv = r.w[static_cast<size_t>((o * cpg + i) * taps + t)];
          r.b[static_cast<size_t>(o)] += wv * first.b[c];
          wv *= first.w[c];
        }
      }
    out = std::move(r);
    return true;
  }
  ConvMap r;
  r.cout = second.cout;
  r.cin = first.cin;
  r.groups = std::gcd(first.groups, second.groups);
  std::array<int64_t, 2> step_first{}, step_second{};
  for (int k = 0; k < 2; ++k) {
    if (padded) {  // `first` is 1x1 stride 1: second's geometry
      r.kernel[k] = second.kernel[k];
      r.strides[k] = second.strides[k];
      r.dilations[k] = second.dilations[k];
      r.pads[k] = second.pads[k];
      r.pads[k + 2] = second.pads[k + 2];
      step_first[k] = 0;
      step_second[k] = 1;
      continue;
    }
    const int64_t ka = first.kernel[k], kb = second.kernel[k], sa = first.strides[k];
    const int64_t da = first.dilations[k], db = second.dilations[k];
    Checked c;
    r.strides[k] = c.mul(sa, second.strides[k]);
    r.pads[k] = first.pads[k];
    r.pads[k + 2] = first.pads[k + 2];
    const int64_t sadb = c.mul(sa, db);
    int64_t d = 1;
    if (ka == 1 && kb > 1) d = sadb;
    else if (kb == 1 && ka > 1) d = da;
    r.dilations[k] = d;
    r.kernel[k] = c.add(c.add(c.mul(sadb, kb - 1), c.mul(da, ka - 1)) / std::max<int64_t>(d, 1), 1);
    if (!c.ok || d < 1) return overflowed(why, over_limit);
    step_first[k] = ka > 1 ? da / d : 0;
    step_second[k] = kb > 1 ? sadb / d : 0;
  }
  const int64_t g = r.groups;
  if (!kernel_fits("composed", r.cout, r.cin / g, r.kernel[0], r.kernel[1], lim, why, over_limit) ||
      !kernel_fits("regrouped", first.cout, first.cin / g, first.kernel[0], first.kernel[1], lim, why, over_limit,
                   false) ||
      !kernel_fits("regrouped", second.cout, second.cin / g, second.kernel[0], second.kernel[1], lim, why,
                   over_limit, false))
    return false;
  const ConvMap a = regroup(first, g), bm = regroup(second, g);
  const int64_t mpg = bm.cin_per_group(), ipg = a.cin_per_group(), opg = bm.cout / g;
  r.w.assign(static_cast<size_t>(r.cout * ipg * r.kernel[0] * r.kernel[1]), 0.0);
  r.b = bm.b;
  for (int64_t o = 0; o < r.cout; ++o) {
    const int64_t group = o / opg;
    for (int64_t mi = 0; mi < mpg; ++mi) {
      const int64_t m = group * mpg + mi;
      for (int64_t ub = 0; ub < bm.kernel[0]; ++ub)
        for (int64_t vb = 0; vb < bm.kernel[1]; ++vb) {
          const double wb = bm.w[bm.index(o, mi, ub, vb)];
          if (wb == 0.0) continue;
          r.b[static_cast<size_t>(o)] += wb * a.b[static_cast<size_t>(m)];
          for (int64_t i = 0; i < ipg; ++i)
            for (int64_t ua = 0; ua < a.kernel[0]; ++ua)
              for (int64_t va = 0; va < a.kernel[1]; ++va)
                r.w[r.index(o, i, ub * step_second[0] + ua * step_first[0],
                            vb * step_second[1] + va * step_first[1])] += wb * a.w[a.index(m, i, ua, va)];
        }
    }
  }
  out = std::move(r);
  return true;
}

bool fold_check_size(const ConvMap& m, int64_t widest, const MapLimits& lim, std::array<int64_t, 2>& hw,
                     std::string& why) {
  Checked c;
  const int64_t span = std::max(c.mul(m.kernel[0] - 1, m.dilations[0]), c.mul(m.kernel[1] - 1, m.dilations[1]));
  hw[0] = c.add(c.add(c.mul(2, span), 11), m.strides[0]);
  hw[1] = c.add(hw[0], 3);
  std::array<int64_t, 2> padded{}, out{};
  for (int k = 0; k < 2; ++k) {
    padded[k] = c.add(hw[static_cast<size_t>(k)], c.add(m.pads[k], m.pads[k + 2]));
    out[k] = c.add(c.sub(padded[k], c.mul(m.kernel[k] - 1, m.dilations[k])) / std::max<int64_t>(m.strides[k], 1), 1);
  }
  const int64_t n_in = c.mul(m.cin, c.mul(hw[0], hw[1]));
  const int64_t n_out = c.mul(m.cout, c.mul(out[0], out[1]));
  const int64_t n_mid = c.mul(std::max({widest, m.cin, m.cout}), c.mul(padded[0], padded[1]));
  if (!c.ok) {
    why = std::string("its numerical check cannot be sized: ") + kOverflow;
    return false;
  }
  const int64_t most = std::max({n_in, n_out, n_mid});
  if (most > lim.max_check_elements) {
    why = "its numerical check needs a tensor of " + std::to_string(most) + " values (input [1," +
          std::to_string(m.cin) + "," + std::to_string(hw[0]) + "," + std::to_string(hw[1]) +
          "], kernel " + geometry_str(m) + "), over the limit of " + std::to_string(lim.max_check_elements) +
          " (FuseOptions::max_check_elements)";
    return false;
  }
  return true;
}

std::string geometry_str(const ConvMap& m) {
  std::string s = std::to_string(m.kernel[0]) + "x" + std::to_string(m.kernel[1]);
  if (m.strides[0] != 1 || m.strides[1] != 1)
    s += " s" + std::to_string(m.strides[0]) + (m.strides[0] == m.strides[1] ? "" : "," + std::to_string(m.strides[1]));
  if (m.dilations[0] != 1 || m.dilations[1] != 1)
    s += " d" + std::to_string(m.dilations[0]) + "," + std::to_string(m.dilations[1]);
  if (m.groups != 1) s += " g" + std::to_string(m.groups);
  return s;
}

}  // namespace repq::passes
