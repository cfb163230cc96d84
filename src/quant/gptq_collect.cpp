// GPTQ input statistics (gptq.h): which layers GPTQ handles and, in one streamed pass of the
// executor over the calibration data, H = sum of x x^T over each layer's im2col patches.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "repq/common/progress.h"
#include "repq/error.h"
#include "repq/quant/gptq.h"
#include "repq/runtime/executor.h"

namespace repq::quant {

namespace {

const Node* node_named(const Graph& g, const std::string& name) {
  for (const Node& n : g.nodes)
    if (n.name == name) return &n;
  return nullptr;
}

// Conv geometry from the node and its weight [O, C/g, kh, kw].
struct ConvGeom {
  bool gemm = false;
  int64_t groups = 1, cin_g = 0, kh = 1, kw = 1;
  int64_t sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0, pb = 0, pr = 0;
  int64_t k() const { return cin_g * kh * kw; }
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
  return c;
}

// Adds one sample's patches of group g into h (k x k, upper triangle then mirrored by the
// caller) and sx. x: [C, H, W] of the sample. The per-sample sums are float over chunks of
// 256 patches, then double (fixed order).
void add_conv_sample(const ConvGeom& c, const float* x, int64_t H, int64_t W, int64_t g,
                     std::vector<float>& cols, double* h, double* sx) {
  const int64_t oh = (H + c.pt + c.pb - c.dh * (c.kh - 1) - 1) / c.sh + 1;
  const int64_t ow = (W + c.pl + c.pr - c.dw * (c.kw - 1) - 1) / c.sw + 1;
  if (oh <= 0 || ow <= 0) return;
  const int64_t P = oh * ow, K = c.k();
  cols.assign(static_cast<size_t>(K * P), 0.0f);
  for (int64_t ci = 0; ci < c.cin_g; ++ci) {
    const float* xc = x + (g * c.cin_g + ci) * H * W;
    for (int64_t ky = 0; ky < c.kh; ++ky)
      for (int64_t kx = 0; kx < c.kw; ++kx) {
        float* row = cols.data() + ((ci * c.kh + ky) * c.kw + kx) * P;
        for (int64_t y = 0; y < oh; ++y) {
          const int64_t iy = y * c.sh - c.pt + ky * c.dh;
          if (iy < 0 || iy >= H) continue;
          for (int64_t xo = 0; xo < ow; ++xo) {
            const int64_t ix = xo * c.sw - c.pl + kx * c.dw;
            if (ix >= 0 && ix < W) row[y * ow + xo] = xc[iy * W + ix];
          }
        }
      }
  }
  constexpr int64_t kChunk = 256;
  for (int64_t i = 0; i < K; ++i) {
    const float* a = cols.data() + i * P;
    for (int64_t p0 = 0; p0 < P; p0 += kChunk) {
      float s = 0;
      for (int64_t p = p0; p < std::min(P, p0 + kChunk); ++p) s += a[p];
      sx[i] += s;
    }
    for (int64_t j = i; j < K; ++j) {
      const float* b = cols.data() + j * P;
      double acc = 0;
      for (int64_t p0 = 0; p0 < P; p0 += kChunk) {
        float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        const int64_t end = std::min(P, p0 + kChunk);
        int64_t p = p0;
        for (; p + 8 <= end; p += 8)
          for (int t = 0; t < 8; ++t) part[t] += a[p + t] * b[p + t];
        for (; p < end; ++p) part[0] += a[p] * b[p];
        acc += static_cast<double>(((part[0] + part[1]) + (part[2] + part[3])) +
                                   ((part[4] + part[5]) + (part[6] + part[7])));
      }
      h[i * K + j] += acc;
    }
  }
}

struct Slot {
  std::string layer;
  ConvGeom geom;
  LayerHessian* st = nullptr;
};

}  // namespace

std::string gptq_unsupported_reason(const Model& fused, const LayerQuant& l) {
  const Node* n = node_named(fused.graph, l.node);
  if (!n) return "not a node of the model";
  const Tensor* w = fused.graph.initializer(l.weight);
  if (!w || w->dtype() != DType::kFloat32) return "weight is not a float32 initializer";
  if (l.scales.size() < 2 && w->rank() > 0 && w->dim(0) > 1) return "per-tensor scale";
  if (n->op_type == "Gemm") {
    if (n->attr_int("transB", 0) == 0 || n->attr_int("transA", 0) != 0 || w->rank() != 2)
      return "Gemm without transB = 1";
    if (w->dim(1) > kMaxGptqColumns) return "more than 2304 input columns";
    return "";
  }
  if (n->op_type != "Conv") return "op " + n->op_type;
  if (w->rank() != 4) return "not a 2-D convolution";
  const std::string pad = n->attr_string("auto_pad", "NOTSET");
  if (pad != "NOTSET" && pad != "VALID") return "auto_pad " + pad;
  if (n->attr_ints("strides", {1, 1}).size() != 2 || n->attr_ints("dilations", {1, 1}).size() != 2 ||
      n->attr_ints("pads", {0, 0, 0, 0}).size() != 4)
    return "unexpected conv attributes";
  const int64_t g = n->attr_int("group", 1);
  if (g < 1 || w->dim(0) % g != 0) return "bad group";
  if (w->dim(1) * w->dim(2) * w->dim(3) > kMaxGptqColumns) return "more than 2304 input columns";
  return "";
}

std::map<std::string, LayerHessian> collect_hessians(const Model& model, const Model& fused,
                                                     const data::Dataset& dataset,
                                                     const std::vector<LayerQuant>& layers,
                                                     const calib::CollectOptions& opts) {
  std::map<std::string, LayerHessian> out;
  std::map<std::string, std::vector<Slot>> by_input;  // value of `model` -> layers reading it
  for (const LayerQuant& l : layers) {
    if (!gptq_unsupported_reason(fused, l).empty()) continue;
    const Node* n = node_named(fused.graph, l.node);
    const Node* rn = node_named(model.graph, l.node);
    if (!rn || rn->inputs.empty()) continue;
    const ConvGeom geom = geometry(*n, *fused.graph.initializer(l.weight));
    LayerHessian& st = out[l.node];
    st.groups = geom.groups;
    st.k = geom.k();
    st.h.assign(static_cast<size_t>(st.groups * st.k * st.k), 0.0);
    st.sum_x.assign(static_cast<size_t>(st.groups * st.k), 0.0);
    by_input[rn->inputs[0]].push_back({l.node, geom, nullptr});
  }
  for (auto& [name, slots] : by_input)
    for (Slot& s : slots) s.st = &out.at(s.layer);
  if (out.empty()) return out;

  Executor ex(model, ExecutorOptions{opts.threads});
  if (ex.input_names().size() != 1)
    throw InputError("gptq: the model has " + std::to_string(ex.input_names().size()) +
                     " inputs; calibration feeds exactly one");
  const int64_t available = static_cast<int64_t>(dataset.size());
  const int64_t limit = opts.num_samples > 0 ? std::min(opts.num_samples, available) : available;
  ProgressBar bar("gptq statistics", limit, opts.progress);
  std::vector<float> cols;
  const Observer observer = [&](const std::string& name, const Tensor& v) {
    const auto it = by_input.find(name);
    if (it == by_input.end()) return;
    if (v.dtype() != DType::kFloat32)
      throw InputError("gptq: tensor '" + name + "' is " + dtype_name(v.dtype()));
    for (Slot& s : it->second) {
      LayerHessian& st = *s.st;
      const int64_t n = v.rank() > 0 ? v.dim(0) : 0;
      if (s.geom.gemm) {
        if (v.rank() != 2 || v.dim(1) != st.k)
          throw InputError("gptq: input '" + name + "' of Gemm '" + s.layer + "' is not [N, " +
                           std::to_string(st.k) + "]");
        for (int64_t b = 0; b < n; ++b)
          add_conv_sample(s.geom, v.data<float>() + b * st.k, 1, 1, 0, cols, st.h.data(),
                          st.sum_x.data());
        st.count += n;
        continue;
      }
      if (v.rank() != 4 || v.dim(1) != s.geom.groups * s.geom.cin_g)
        throw InputError("gptq: input '" + name + "' of Conv '" + s.layer + "' has an unexpected shape");
      const int64_t H = v.dim(2), W = v.dim(3);
      for (int64_t b = 0; b < n; ++b)
        for (int64_t g = 0; g < s.geom.groups; ++g)
          add_conv_sample(s.geom, v.data<float>() + b * v.dim(1) * H * W, H, W, g, cols,
                          st.h.data() + g * st.k * st.k, st.sum_x.data() + g * st.k);
      const int64_t oh = (H + s.geom.pt + s.geom.pb - s.geom.dh * (s.geom.kh - 1) - 1) / s.geom.sh + 1;
      const int64_t ow = (W + s.geom.pl + s.geom.pr - s.geom.dw * (s.geom.kw - 1) - 1) / s.geom.sw + 1;
      st.count += n * std::max<int64_t>(oh, 0) * std::max<int64_t>(ow, 0);
    }
  };
  data::BatchReader reader(dataset, opts.batch);
  int64_t done = 0;
  while (done < limit) {
    auto batch = reader.next();
    if (!batch) break;
    Tensor input = std::move(batch->input);
    if (done + input.dim(0) > limit) {  // the last batch, truncated
      const int64_t rows = limit - done;
      Shape sh = input.shape();
      const size_t row_bytes = input.nbytes() / static_cast<size_t>(sh.at(0));
      sh[0] = rows;
      input = Tensor::from_bytes(input.dtype(), sh,
                                 std::string_view(reinterpret_cast<const char*>(input.raw()),
                                                  row_bytes * static_cast<size_t>(rows)));
    }
    ex.run({{ex.input_names()[0], input}}, observer);
    done += input.dim(0);
    bar.update(done);
  }
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
