// HessianAccumulator (gptq.h): H = sum of x x^T and sum x over each layer's im2col patches,
// fed with the tensors of forward passes (an executor observer).
//
// The arithmetic of one H entry is fixed, whatever the threads, the batch size or the CPU
// path (AVX2 + FMA, or the portable scalar code, which give the same bits): per sample, for
// the pair of patch rows (a, b), over chunks of 256 patches in order:
//   eight float lanes l_t, l_t = fma(a[p], b[p], l_t) for p = chunk start + 8 m + t over the
//   chunk's whole groups of eight; the chunk's last (length % 8) products go into l_0, the
//   first four of them (when there are four or more) as rounded products added in order, the
//   rest fused (fma); the chunk's sum is ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7));
//   the chunk sums are added in order into a double starting at 0, which is added to H.
// sum x: the same with b = 1 (eight lanes of adds, the tail added into l_0 in order). (H's order
// is the one the earlier compiled loop happened to use, so H did not change; sum x changed in
// its last bits, the models written with --method gptq did not: S0 and the bundled ones.)
// Work is split over a thread pool (each entry has one owner, which adds the samples in
// order): by blocks of H rows, one job per sample (its patch matrix stays in cache), or for
// depthwise convs (groups >= 2 x threads, k <= 32) by group over the whole batch, with the
// chunk-outer small-k kernel and, for stride 1, the patch rows taken as slices of kw shifted
// copies of the plane instead of a k-row im2col. The im2col copy is skipped for 1x1 convs with
// stride 1 and no padding, and for Gemm. auto_pad SAME_UPPER / SAME_LOWER pads are computed
// from each input's size. Kernels: gptq_hessian_kernels.cpp.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "repq/error.h"
#include "repq/quant/gptq.h"
#include "gptq_hessian_kernels.h"
#include "runtime/thread_pool.h"


namespace repq::quant {

namespace {

// Conv geometry from the node and its weight [O, C/g, kh, kw] (Gemm: [O, K], one patch per row).
struct ConvGeom {
  bool gemm = false;
  int same = 0;  // auto_pad SAME_UPPER (1) / SAME_LOWER (2): pads follow the input size

  int64_t groups = 1, cin_g = 0, kh = 1, kw = 1;
  int64_t sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0, pb = 0, pr = 0;
  int64_t k() const { return cin_g * kh * kw; }
  // 1x1, stride 1, no padding: the patch rows are the input channels themselves.
  bool direct() const {
    return gemm || (kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && pb == 0 && pr == 0);
  }
  int64_t out_h(int64_t H) const { return (H + pt + pb - dh * (kh - 1) - 1) / sh + 1; }
  int64_t out_w(int64_t W) const { return (W + pl + pr - dw * (kw - 1) - 1) / sw + 1; }
};

ConvGeom geometry(const Node& n, const Tensor& w) {
  ConvGeom c;
  if (n.op_type == "Gemm") {
    c.gemm = true;
    c.cin_g = w.dim(1);
    return c;
  }
  c.groups = n.attr_int("group", 1);
  c.cin_g = w.dim(1);
  c.kh = w.dim(2);
  c.kw = w.dim(3);
  const auto s = n.attr_ints("strides", {1, 1}), d = n.attr_ints("dilations", {1, 1});
  const auto p = n.attr_ints("pads", {0, 0, 0, 0});
  c.sh = s[0], c.sw = s[1], c.dh = d[0], c.dw = d[1];
  c.pt = p[0], c.pl = p[1], c.pb = p[2], c.pr = p[3];
  const std::string pad = n.attr_string("auto_pad", "NOTSET");
  c.same = pad == "SAME_UPPER" ? 1 : pad == "SAME_LOWER" ? 2 : 0;
  return c;
}

// The geometry for one input size: auto_pad SAME_* pads as ONNX defines them (output
// ceil(in / stride), the odd pad at the end for SAME_UPPER, at the start for SAME_LOWER).
ConvGeom for_input(ConvGeom c, int64_t H, int64_t W) {
  if (!c.same) return c;
  const auto pads = [&](int64_t in, int64_t k, int64_t s, int64_t d, int64_t& begin, int64_t& end) {
    const int64_t out = (in + s - 1) / s;
    const int64_t total = std::max<int64_t>(0, (out - 1) * s + (k - 1) * d + 1 - in);
    begin = c.same == 1 ? total / 2 : total - total / 2;
    end = total - begin;
  };
  pads(H, c.kh, c.sh, c.dh, c.pt, c.pb);
  pads(W, c.kw, c.sw, c.dw, c.pl, c.pr);
  return c;
}

// The patch rows of group g (K x P, zero padding) of one sample x: [C, H, W].
void im2col(const ConvGeom& c, const float* x, int64_t H, int64_t W, int64_t g, float* cols) {
  const int64_t oh = c.out_h(H), ow = c.out_w(W), P = oh * ow;
  for (int64_t ci = 0; ci < c.cin_g; ++ci) {
    const float* xc = x + (g * c.cin_g + ci) * H * W;
    for (int64_t ky = 0; ky < c.kh; ++ky)
      for (int64_t kx = 0; kx < c.kw; ++kx) {
        float* row = cols + ((ci * c.kh + ky) * c.kw + kx) * P;
        // Output columns whose input column ix = xo * sw - pl + kx * dw is inside [0, W).
        const int64_t off = kx * c.dw - c.pl;
        int64_t lo = off >= 0 ? 0 : (-off + c.sw - 1) / c.sw;
        int64_t hi = W - off <= 0 ? 0 : (W - off + c.sw - 1) / c.sw;
        lo = std::min(lo, ow);
        hi = std::clamp(hi, lo, ow);
        // Plain loops, not std::copy / std::fill: the rows are short (7 to 112 values) and a
        // library call per row segment cost more than the copy.
        for (int64_t y = 0; y < oh; ++y) {
          float* out = row + y * ow;
          const int64_t iy = y * c.sh - c.pt + ky * c.dh;
          if (iy < 0 || iy >= H) {
            for (int64_t xo = 0; xo < ow; ++xo) out[xo] = 0.0f;
            continue;
          }
          for (int64_t xo = 0; xo < lo; ++xo) out[xo] = 0.0f;
          const float* in = xc + iy * W + off;
          if (c.sw == 1)
            for (int64_t xo = lo; xo < hi; ++xo) out[xo] = in[xo];
          else if (c.sw == 2)
            for (int64_t xo = lo; xo < hi; ++xo) out[xo] = in[2 * xo];
          else
            for (int64_t xo = lo; xo < hi; ++xo) out[xo] = in[xo * c.sw];
          for (int64_t xo = hi; xo < ow; ++xo) out[xo] = 0.0f;
        }
      }
  }
}

// The K patch rows of group g of one sample, for small K: rows[i] points at row i (P values).
// Stride 1: row (ky, kx) is a contiguous slice of one of kw horizontally shifted copies of the
// plane (with zero rows and columns for the padding), so only kw planes are copied instead of
// K. Other strides: im2col.
void patch_rows(const ConvGeom& c, const float* x, int64_t H, int64_t W, int64_t g,
                std::vector<float>& buf, const float** rows) {
  const int64_t oh = c.out_h(H), ow = c.out_w(W), P = oh * ow;
  if (c.sh != 1 || c.sw != 1 || c.cin_g != 1) {
    buf.resize(static_cast<size_t>(c.k() * P));
    im2col(c, x, H, W, g, buf.data());
    for (int64_t i = 0; i < c.k(); ++i) rows[i] = buf.data() + i * P;
    return;
  }
  // Plane kx: rows r = 0 .. H + pt + pb - 1 (input row r - pt, zero outside), ow columns
  // (input column xo + kx * dw - pl, zero outside). Row (ky, kx) of the patch matrix starts at
  // plane row ky * dh: output row y reads input row y + ky * dh - pt.
  const int64_t R = H + c.pt + c.pb, plane = R * ow;
  buf.resize(static_cast<size_t>(c.kw * plane));
  const float* xc = x + g * H * W;
  for (int64_t kx = 0; kx < c.kw; ++kx) {
    float* out = buf.data() + kx * plane;
    const int64_t off = kx * c.dw - c.pl;
    const int64_t lo = std::clamp<int64_t>(-off, 0, ow), hi = std::clamp<int64_t>(W - off, lo, ow);
    for (int64_t r = 0; r < R; ++r, out += ow) {
      const int64_t iy = r - c.pt;
      if (iy < 0 || iy >= H) {
        for (int64_t xo = 0; xo < ow; ++xo) out[xo] = 0.0f;
        continue;
      }
      const float* in = xc + iy * W + off;
      for (int64_t xo = 0; xo < lo; ++xo) out[xo] = 0.0f;
      for (int64_t xo = lo; xo < hi; ++xo) out[xo] = in[xo];
      for (int64_t xo = hi; xo < ow; ++xo) out[xo] = 0.0f;
    }
  }
  for (int64_t ky = 0; ky < c.kh; ++ky)
    for (int64_t kx = 0; kx < c.kw; ++kx) rows[ky * c.kw + kx] = buf.data() + kx * plane + ky * c.dh * ow;
}

const Node* node_named(const Graph& g, const std::string& name) {
  for (const Node& n : g.nodes)
    if (n.name == name) return &n;
  return nullptr;
}

struct Slot {
  std::string layer;
  ConvGeom geom;
  LayerHessian* st = nullptr;
};

using hessian::kRows;

}  // namespace

struct HessianAccumulator::Impl {
  std::map<std::string, LayerHessian> out;
  std::map<std::string, std::vector<Slot>> by_input;  // value of `model` -> layers reading it
  runtime::ThreadPool pool;
  std::vector<float> cols;
  double seconds = 0;

  explicit Impl(int threads) : pool(threads) {}

  // n samples (x: [n, C, H, W]) -> H and sum x. Every task owns some H entries and adds the
  // samples to them in order.
  void add_samples(const ConvGeom& c, LayerHessian& st, const float* x, int64_t n, int64_t H, int64_t W) {
    const int64_t K = c.k(), G = c.groups, C = G * c.cin_g;
    const int64_t P = c.out_h(H) * c.out_w(W);
    if (P <= 0 || n <= 0) return;
    const int64_t blocks = (K + kRows - 1) / kRows;
    // H rows [i0, i0 + kRows) and their sums x of group g, patch rows at `rows`.
    const auto block = [&](const float* rows, int64_t g, int64_t i0) {
      hessian::row_sums(rows, P, P, i0, std::min(K, i0 + kRows), st.sum_x.data() + g * K);
      hessian::upper_rows(rows, P, K, P, i0, st.h.data() + g * K * K);
    };
    if (c.direct()) {  // the input channels are the patch rows; a job per sample (its matrix
                       // stays in cache while every row block reads it)
      for (int64_t b = 0; b < n; ++b) {
        const float* xb = x + b * C * H * W;
        pool.run(G * blocks, [&](int64_t t) { block(xb + (t / blocks) * K * P, t / blocks, (t % blocks) * kRows); });
      }
    } else if (G >= 2 * pool.threads() && K <= hessian::kSmallK) {  // depthwise: a task per group
      pool.run(G, [&](int64_t g) {
        thread_local std::vector<float> buf;
        const float* rows[hessian::kSmallK];
        for (int64_t b = 0; b < n; ++b) {
          patch_rows(c, x + b * C * H * W, H, W, g, buf, rows);
          hessian::small_upper(rows, K, P, st.h.data() + g * K * K, st.sum_x.data() + g * K);
        }
      });
    } else {
      cols.resize(static_cast<size_t>(G * K * P));
      for (int64_t b = 0; b < n; ++b) {
        const float* xb = x + b * C * H * W;
        pool.run(G, [&](int64_t g) { im2col(c, xb, H, W, g, cols.data() + g * K * P); });
        pool.run(G * blocks, [&](int64_t t) {
          block(cols.data() + (t / blocks) * K * P, t / blocks, (t % blocks) * kRows);
        });
      }
    }
  }

  // n samples of one patch each (Gemm rows, or 1x1 maps): h_ij += a_i * a_j rounded to
  // float (the definition above with P = 1), samples in order; tasks over row blocks.
  void add_single_patches(LayerHessian& st, const float* x, int64_t n) {
    const int64_t K = st.k, rows_per_task = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(K, 1));
    const int64_t tasks = (K + rows_per_task - 1) / rows_per_task;
    pool.run(tasks, [&](int64_t t) {
      const int64_t i_end = std::min(K, (t + 1) * rows_per_task);
      for (int64_t b = 0; b < n; ++b) {
        const float* a = x + b * K;
        for (int64_t i = t * rows_per_task; i < i_end; ++i) {
          st.sum_x[i] += static_cast<double>(0.0f + a[i]);
          double* hi = st.h.data() + i * K;
          const float ai = a[i];
          for (int64_t j = i; j < K; ++j) hi[j] += static_cast<double>(hessian::rounded_product(ai, a[j]));
        }
      }
    });
  }
};

HessianAccumulator::HessianAccumulator(const Model& model, const Model& fused,
                                       const std::vector<LayerQuant>& layers, int threads) {
  if (threads <= 0) {
    const unsigned hc = std::thread::hardware_concurrency();
    threads = hc == 0 ? 1 : static_cast<int>(hc);
  }
  impl_ = std::make_unique<Impl>(threads);
  for (const LayerQuant& l : layers) {
    if (!gptq_geometry_unsupported_reason(fused, l).empty() || impl_->out.count(l.node)) continue;
    const Node* n = node_named(fused.graph, l.node);
    const Node* rn = node_named(model.graph, l.node);
    if (!rn || rn->inputs.empty()) continue;
    const ConvGeom geom = geometry(*n, *fused.graph.initializer(l.weight));
    LayerHessian& st = impl_->out[l.node];
    st.groups = geom.groups;
    st.k = geom.k();
    st.h.assign(static_cast<size_t>(st.groups * st.k * st.k), 0.0);
    st.sum_x.assign(static_cast<size_t>(st.groups * st.k), 0.0);
    impl_->by_input[rn->inputs[0]].push_back({l.node, geom, nullptr});
  }
  for (auto& [name, slots] : impl_->by_input)
    for (Slot& s : slots) s.st = &impl_->out.at(s.layer);
}

HessianAccumulator::~HessianAccumulator() = default;

bool HessianAccumulator::empty() const { return impl_->out.empty(); }

double HessianAccumulator::seconds() const { return impl_->seconds; }

void HessianAccumulator::observe(const std::string& name, const Tensor& v) {
  const auto it = impl_->by_input.find(name);
  if (it == impl_->by_input.end()) return;
  const auto t0 = std::chrono::steady_clock::now();
  if (v.dtype() != DType::kFloat32)
    throw InputError("gptq: tensor '" + name + "' is " + dtype_name(v.dtype()));
  for (Slot& s : it->second) {
    LayerHessian& st = *s.st;
    const int64_t n = v.rank() > 0 ? v.dim(0) : 0;
    if (s.geom.gemm) {
      if (v.rank() != 2 || v.dim(1) != st.k)
        throw InputError("gptq: input '" + name + "' of Gemm '" + s.layer + "' is not [N, " +
                         std::to_string(st.k) + "]");
      impl_->add_single_patches(st, v.data<float>(), n);
      st.count += n;
      continue;
    }
    if (v.rank() != 4 || v.dim(1) != s.geom.groups * s.geom.cin_g)
      throw InputError("gptq: input '" + name + "' of Conv '" + s.layer + "' has an unexpected shape");
    const int64_t H = v.dim(2), W = v.dim(3);
    const ConvGeom c = for_input(s.geom, H, W);
    impl_->add_samples(c, st, v.data<float>(), n, H, W);
    st.count += n * std::max<int64_t>(c.out_h(H), 0) * std::max<int64_t>(c.out_w(W), 0);
  }
  impl_->seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::map<std::string, LayerHessian> HessianAccumulator::finish() {
  std::map<std::string, LayerHessian> out = std::move(impl_->out);
  impl_->out.clear();
  impl_->by_input.clear();
  // Mirror the upper triangles.
  for (auto& [name, st] : out)
    for (int64_t g = 0; g < st.groups; ++g) {
      double* h = st.h.data() + g * st.k * st.k;
      for (int64_t i = 0; i < st.k; ++i)
        for (int64_t j = 0; j < i; ++j) h[i * st.k + j] = h[j * st.k + i];
    }
  return out;
}

}  // namespace repq::quant
