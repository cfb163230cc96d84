// apply_gptq (gptq.h): the plan's supported layers get GPTQ-rounded int8 values (and, when
// asked, a bias corrected for the mean rounding error), group by group with that group's H.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#define EIGEN_DONT_PARALLELIZE
#include <Eigen/Core>

#include "repq/eval/metrics.h"
#include "repq/quant/gptq.h"

namespace repq::quant {

namespace {

using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// sum over the rows of e^T H e, e = w - q * s (rows x k), as one matrix product E H (Eigen,
// single-threaded: the same sizes give the same bits).
double weighted_error(const float* w, const int8_t* q, const float* s, int64_t rows, int64_t k,
                      const double* h) {
  RowMat e(rows, k);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < k; ++i)
      e(r, i) = static_cast<double>(w[r * k + i]) - static_cast<double>(q[r * k + i]) * s[r];
  const Eigen::Map<const RowMat> hm(h, k, k);
  const RowMat he = e * hm;
  return (e.array() * he.array()).sum();
}

int8_t rtn(float x, float s) { return static_cast<int8_t>(std::clamp(std::nearbyint(x / s), -127.0f, 127.0f)); }

}  // namespace

void apply_gptq(const Model& fused, QuantPlan& plan,
                const std::map<std::string, LayerHessian>& stats, const GptqOptions& o) {
  for (LayerQuant& l : plan.layers) {
    const auto it = stats.find(l.node);
    if (it == stats.end() || !gptq_unsupported_reason(fused, l).empty()) continue;
    const LayerHessian& st = it->second;
    const Tensor& wt = *fused.graph.initializer(l.weight);
    const int64_t out_ch = wt.dim(0), k = st.k, groups = st.groups;
    if (groups < 1 || out_ch % groups != 0 || out_ch * k != wt.numel() || st.count <= 0) continue;
    if (static_cast<int64_t>(l.scales.size()) != out_ch) continue;
    const int64_t rows_g = out_ch / groups;
    const float* w = wt.data<float>();
    std::vector<int8_t> qall(static_cast<size_t>(out_ch * k));
    std::vector<float> scales = l.scales;
    double err_rtn = 0, err_gptq = 0;
    int64_t fallbacks = 0;
    for (int64_t g = 0; g < groups; ++g) {
      const std::vector<double> h(st.h.begin() + g * k * k, st.h.begin() + (g + 1) * k * k);
      std::vector<float> wg(w + g * rows_g * k, w + (g + 1) * rows_g * k);
      std::vector<float> sg(scales.begin() + g * rows_g, scales.begin() + (g + 1) * rows_g);
      if (o.clip_search) sg = search_scales(wg, rows_g, k, h);
      std::vector<int8_t> q;
      std::vector<float> fed = wg;
      if (!gptq_rows(fed, rows_g, k, h, sg, o, q)) {
        ++fallbacks;
        q.resize(static_cast<size_t>(rows_g * k));
        for (int64_t r = 0; r < rows_g; ++r)
          for (int64_t i = 0; i < k; ++i) q[r * k + i] = rtn(wg[r * k + i], sg[r]);
      }
      std::vector<int8_t> qr(static_cast<size_t>(rows_g * k));
      for (int64_t r = 0; r < rows_g; ++r)
        for (int64_t i = 0; i < k; ++i) qr[r * k + i] = rtn(wg[r * k + i], l.scales[g * rows_g + r]);
      err_rtn += weighted_error(wg.data(), qr.data(), l.scales.data() + g * rows_g, rows_g, k, h.data());
      err_gptq += weighted_error(wg.data(), q.data(), sg.data(), rows_g, k, h.data());
      for (int64_t r = 0; r < rows_g; ++r) scales[g * rows_g + r] = sg[r];
      std::copy(q.begin(), q.begin() + rows_g * k, qall.begin() + g * rows_g * k);
    }
    l.scales = scales;
    // Bias correction: E[y_q - y] = (Wq - W) E[x] per output channel.
    const Tensor* b = l.bias.empty() ? nullptr : fused.graph.initializer(l.bias);
    if (o.bias_correction && b && b->dtype() == DType::kFloat32 && b->numel() == out_ch) {
      l.bias_values.assign(b->data<float>(), b->data<float>() + out_ch);
      for (int64_t oc = 0; oc < out_ch; ++oc) {
        const int64_t g = oc / rows_g;
        double d = 0;
        for (int64_t i = 0; i < k; ++i)
          d += (static_cast<double>(qall[oc * k + i]) * scales[oc] - w[oc * k + i]) *
               (st.sum_x[g * k + i] / static_cast<double>(st.count));
        l.bias_values[oc] = static_cast<float>(static_cast<double>(l.bias_values[oc]) - d);
      }
    }
    std::vector<float> dq(static_cast<size_t>(out_ch * k));
    for (int64_t i = 0; i < out_ch * k; ++i) dq[i] = static_cast<float>(qall[i]) * scales[i / k];
    l.weight_sqnr_db = sqnr_db(w, dq.data(), dq.size());
    l.qweight = std::move(qall);
    char buf[160];
    std::snprintf(buf, sizeof buf, "gptq: H-weighted output error %.3g of round to nearest's%s",
                  err_rtn > 0 ? err_gptq / err_rtn : 1.0, o.clip_search ? ", scales searched" : "");
    l.note = buf;
    if (fallbacks)
      l.note += "; " + std::to_string(fallbacks) + " of " + std::to_string(groups) +
                " groups rounded to nearest (no input data, or H not invertible)";
  }
}

}  // namespace repq::quant
