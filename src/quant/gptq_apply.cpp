// apply_gptq (gptq.h): the plan's supported layers get GPTQ-rounded int8 values (and, when
// asked, a bias corrected for the mean rounding error), group by group with that group's H.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <thread>
#include <string>
#include <vector>

#define EIGEN_DONT_PARALLELIZE
#include <Eigen/Core>

#include "repq/eval/metrics.h"
#include "repq/quant/gptq.h"
#include "runtime/thread_pool.h"

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

namespace {

// One group of one layer: its inputs and what the parallel phases compute for it.
struct GroupJob {
  LayerQuant* layer = nullptr;
  const LayerHessian* st = nullptr;
  int64_t g = 0, rows = 0, k = 0;
  const float* w = nullptr;        // the group's float rows
  std::vector<double> h;           // the group's H
  std::vector<float> sg;           // scales (searched or the plan's)
  GptqFactor factor;
  bool ok = false;                 // factor found
  std::vector<float> fed;          // error-fed weights
  std::vector<int8_t> q;
  double err_rtn = 0, err_gptq = 0;
  double cost() const { return static_cast<double>(k) * k * (static_cast<double>(rows) + k); }
};

}  // namespace

void apply_gptq(const Model& fused, QuantPlan& plan,
                const std::map<std::string, LayerHessian>& stats, const GptqOptions& o) {
  // Every supported layer's groups become jobs; four phases spread them over a thread pool
  // (scales and factor per group, rounding per tile of rows, the two H-weighted errors per
  // group), then each layer is assembled in group order as before. Every value is computed by
  // one task exactly as in a serial run, so the thread count changes no bit.
  std::vector<LayerQuant*> layers;
  std::vector<GroupJob> jobs;
  for (LayerQuant& l : plan.layers) {
    const auto it = stats.find(l.node);
    if (it == stats.end() || !gptq_unsupported_reason(fused, l).empty()) continue;
    const LayerHessian& st = it->second;
    const Tensor& wt = *fused.graph.initializer(l.weight);
    const int64_t out_ch = wt.dim(0), k = st.k, groups = st.groups;
    if (groups < 1 || out_ch % groups != 0 || out_ch * k != wt.numel() || st.count <= 0) continue;
    if (static_cast<int64_t>(l.scales.size()) != out_ch) continue;
    layers.push_back(&l);
    const int64_t rows_g = out_ch / groups;
    for (int64_t g = 0; g < groups; ++g) {
      GroupJob j;
      j.layer = &l;
      j.st = &st;
      j.g = g;
      j.rows = rows_g;
      j.k = k;
      j.w = wt.data<float>() + g * rows_g * k;
      jobs.push_back(std::move(j));
    }
  }
  if (jobs.empty()) return;
  int threads = o.threads;
  if (threads <= 0) threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  runtime::ThreadPool pool(threads);
  // Costliest first (tasks are handed out in index order).
  std::vector<size_t> order(jobs.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return jobs[a].cost() > jobs[b].cost(); });

  pool.run(static_cast<int64_t>(jobs.size()), [&](int64_t t) {
    GroupJob& j = jobs[order[static_cast<size_t>(t)]];
    const int64_t k = j.k;
    j.h.assign(j.st->h.begin() + j.g * k * k, j.st->h.begin() + (j.g + 1) * k * k);
    const std::vector<float> wg(j.w, j.w + j.rows * k);
    j.sg.assign(j.layer->scales.begin() + j.g * j.rows, j.layer->scales.begin() + (j.g + 1) * j.rows);
    if (o.clip_search) j.sg = search_scales(wg, j.rows, k, j.h);
    j.ok = gptq_factor(j.h, k, o, j.factor);
    j.fed = wg;
    j.q.assign(static_cast<size_t>(j.rows * k), 0);
  });
  // Rounding: tiles of 64 rows of the groups whose factor was found.
  constexpr int64_t kRowsPerTask = 64;
  std::vector<std::pair<size_t, int64_t>> tiles;  // (job, first row)
  for (size_t t : order)
    if (jobs[t].ok)
      for (int64_t r = 0; r < jobs[t].rows; r += kRowsPerTask) tiles.emplace_back(t, r);
  pool.run(static_cast<int64_t>(tiles.size()), [&](int64_t t) {
    GroupJob& j = jobs[tiles[static_cast<size_t>(t)].first];
    const int64_t r0 = tiles[static_cast<size_t>(t)].second, nr = std::min(kRowsPerTask, j.rows - r0);
    gptq_round_rows(j.factor, j.fed.data() + r0 * j.k, nr, j.sg.data() + r0, j.q.data() + r0 * j.k);
  });
  // Round to nearest where the factor failed, and the two errors of every group.
  pool.run(static_cast<int64_t>(2 * jobs.size()), [&](int64_t t) {
    GroupJob& j = jobs[order[static_cast<size_t>(t / 2)]];
    const int64_t k = j.k;
    const float* plan_scales = j.layer->scales.data() + j.g * j.rows;
    if (t % 2 == 0) {
      std::vector<int8_t> qr(static_cast<size_t>(j.rows * k));
      for (int64_t r = 0; r < j.rows; ++r)
        for (int64_t i = 0; i < k; ++i) qr[r * k + i] = rtn(j.w[r * k + i], plan_scales[r]);
      j.err_rtn = weighted_error(j.w, qr.data(), plan_scales, j.rows, k, j.h.data());
    } else {
      if (!j.ok)
        for (int64_t r = 0; r < j.rows; ++r)
          for (int64_t i = 0; i < k; ++i) j.q[r * k + i] = rtn(j.w[r * k + i], j.sg[r]);
      j.err_gptq = weighted_error(j.w, j.q.data(), j.sg.data(), j.rows, k, j.h.data());
    }
  });

  size_t next = 0;
  for (LayerQuant* lp : layers) {
    LayerQuant& l = *lp;
    const LayerHessian& st = *jobs[next].st;
    const Tensor& wt = *fused.graph.initializer(l.weight);
    const int64_t out_ch = wt.dim(0), k = st.k, groups = st.groups;
    const int64_t rows_g = out_ch / groups;
    const float* w = wt.data<float>();
    std::vector<int8_t> qall(static_cast<size_t>(out_ch * k));
    std::vector<float> scales = l.scales;
    double err_rtn = 0, err_gptq = 0;
    int64_t fallbacks = 0;
    for (int64_t g = 0; g < groups; ++g) {
      const GroupJob& j = jobs[next++];
      fallbacks += j.ok ? 0 : 1;
      err_rtn += j.err_rtn;
      err_gptq += j.err_gptq;
      for (int64_t r = 0; r < rows_g; ++r) scales[g * rows_g + r] = j.sg[r];
      std::copy(j.q.begin(), j.q.begin() + rows_g * k, qall.begin() + g * rows_g * k);
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
