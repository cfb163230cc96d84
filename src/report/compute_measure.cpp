// The data-driven report measures: one float pass and one QDQ pass per batch (cumulative
// errors, model summary; the QDQ model runs as float_sim_model() and is read through an
// observer, or with ReportOptions::exact on the exact integer kernels, handing out only the
// values the rows compare), one run of every row alone on its fake-quantized float input, all
// rows in one model (isolated errors and the input activation's fake-quant error, see
// compute_isolated.h), plus the histogram and dead channels of each row input.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <memory>
#include <set>

#include "repq/error.h"
#include "repq/eval/metrics.h"
#include "repq/report/compute.h"
#include "repq/runtime/executor.h"
#include "report/compute_isolated.h"

namespace repq::report {

namespace {

// The first n rows of a batch tensor.
Tensor first_rows(const Tensor& t, int64_t n) {
  if (t.rank() == 0 || t.dim(0) <= n) return t;
  Shape s = t.shape();
  s[0] = n;
  Tensor out(t.dtype(), s);
  std::copy_n(t.raw(), out.nbytes(), out.mutable_raw());
  return out;
}

// The input fake-quantized with the plan's parameters (x itself when it has none), written
// into `buf` when it has the right shape and is not shared (no new pages per batch).
Tensor fake_quant_tensor(const Tensor& x, const quant::ActivationQuant* a, Tensor& buf) {
  if (!a) return x;
  if (buf.shape() != x.shape() || buf.dtype() != DType::kFloat32) buf = Tensor(DType::kFloat32, x.shape());
  float* p = buf.mutable_data<float>();
  const float* xp = x.data<float>();
  const float s = a->scale, z = static_cast<float>(a->zero_point);
  const bool u8 = a->dtype == DType::kUInt8;
  const float lo = (u8 ? 0.0f : -128.0f) - z, hi = (u8 ? 255.0f : 127.0f) - z;
  // Round half to even by the 1.5 * 2^23 trick (exact for |v| < 2^22, which the clamp ensures;
  // the default rounding mode is to nearest even), so that the loop vectorizes.
  constexpr float kMagic = 12582912.0f;
  const auto n = static_cast<size_t>(x.numel());
  for (size_t i = 0; i < n; ++i) {
    float v = xp[i] / s;
    v = v < lo ? lo : (v > hi ? hi : v);
    v = (v + kMagic) - kMagic;
    p[i] = v * s;
  }
  return buf;
}

// |x| histogram over [0, amax] (values beyond in the last bin, NaN skipped) and the max |x|
// of every channel (axis 1).
void input_stats(const Tensor& x, double amax, std::vector<uint64_t>& hist, std::vector<double>& chmax) {
  const float* xp = x.data<float>();
  const int64_t n0 = x.rank() >= 1 ? x.dim(0) : 1;
  const int64_t c = x.rank() >= 2 ? x.dim(1) : 1;
  const int64_t inner = n0 * c > 0 ? x.numel() / (n0 * c) : 0;
  if (x.rank() >= 2) chmax.resize(static_cast<size_t>(c), 0.0);
  const float k = amax > 0 ? static_cast<float>(kFineBins / amax) : 0.0f;
  const float last = static_cast<float>(kFineBins - 1);
  // Bin indices first (a loop that vectorizes; NaN gets the extra bin kFineBins, dropped), then
  // the counts into four interleaved histograms: runs of one bin (the zeros after a Relu) would
  // otherwise wait on the previous increment of the same counter.
  constexpr int64_t kStep = 2048;
  constexpr size_t kBins = kFineBins + 1;
  std::vector<uint64_t> sub(4 * kBins, 0);
  std::vector<uint32_t> idx(static_cast<size_t>(kStep));
  uint32_t* ix = idx.data();
  uint64_t *h0 = sub.data(), *h1 = h0 + kBins, *h2 = h1 + kBins, *h3 = h2 + kBins;
  for (int64_t a = 0; a < n0; ++a)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* p = xp + (a * c + ch) * inner;
      // max |x| as the max of the bit patterns, which order non-negative floats as their
      // values do (an integer max vectorizes, a float one does not without fast-math); NaN
      // counts as 0.
      uint32_t mx_bits = 0;
      for (int64_t i0 = 0; i0 < inner; i0 += kStep) {
        const int64_t m = std::min(kStep, inner - i0);
        for (int64_t i = 0; i < m; ++i) {
          const float v = std::fabs(p[i0 + i]);
          const uint32_t ok = v >= 0.0f ? ~0u : 0u;  // not NaN (as a mask: GCC vectorizes it)
          const uint32_t vb = std::bit_cast<uint32_t>(v) & ok;
          mx_bits = vb > mx_bits ? vb : mx_bits;
          const float b = v * k;
          const float bc = b < last ? b : last;  // never NaN
          const auto bin = static_cast<uint32_t>(static_cast<int32_t>(bc));
          ix[i] = (bin & ok) | (static_cast<uint32_t>(kFineBins) & ~ok);
        }
        int64_t i = 0;
        for (; i + 4 <= m; i += 4) {
          ++h0[ix[i]];
          ++h1[ix[i + 1]];
          ++h2[ix[i + 2]];
          ++h3[ix[i + 3]];
        }
        for (; i < m; ++i) ++h0[ix[i]];
      }
      const auto mx = std::bit_cast<float>(mx_bits);
      if (x.rank() >= 2) chmax[static_cast<size_t>(ch)] = std::max(chmax[static_cast<size_t>(ch)], static_cast<double>(mx));
    }
  for (size_t b = 0; b < static_cast<size_t>(kFineBins); ++b) hist[b] += h0[b] + h1[b] + h2[b] + h3[b];
}

// How the cumulative measure reads a row output from the QDQ model. A value that a per-tensor
// DequantizeLinear makes from x_q is read as x_q and dequantized here (as the DequantizeLinear
// kernel does): asking for the float value would make the executor run the float steps of the
// exact DQ -> Conv -> Q group that consumes it, asking for x_q keeps every group exact and fast.
struct QdqRead {
  std::string fetch;  // value asked for
  bool dequant = false;
  float scale = 1.0f;
  int64_t zero_point = 0;
  std::vector<size_t> rows;
};

std::vector<QdqRead> qdq_reads(const Model& qdq, const std::map<std::string, std::vector<size_t>>& out_rows) {
  std::map<std::string, const Node*> producer;
  for (const Node& n : qdq.graph.nodes)
    for (const auto& o : n.outputs) producer[o] = &n;
  std::vector<QdqRead> reads;
  for (const auto& [name, rows] : out_rows) {
    const auto it = producer.find(name);
    if (it == producer.end()) continue;  // not a value of the QDQ model: not measured
    QdqRead r;
    r.fetch = name;
    r.rows = rows;
    const Node& n = *it->second;
    if (n.op_type == "DequantizeLinear" && n.inputs.size() >= 2 && !n.inputs[0].empty()) {
      const Tensor* s = qdq.graph.initializer(n.inputs[1]);
      const Tensor* z = n.inputs.size() >= 3 && !n.inputs[2].empty() ? qdq.graph.initializer(n.inputs[2]) : nullptr;
      const bool zp_ok = n.inputs.size() < 3 || n.inputs[2].empty() ||
                         (z && z->numel() == 1 && (z->dtype() == DType::kUInt8 || z->dtype() == DType::kInt8));
      if (s && s->numel() == 1 && s->dtype() == DType::kFloat32 && zp_ok) {
        r.fetch = n.inputs[0];
        r.dequant = true;
        r.scale = s->data<float>()[0];
        if (z) r.zero_point = z->dtype() == DType::kUInt8 ? z->data<uint8_t>()[0] : z->data<int8_t>()[0];
      }
    }
    reads.push_back(std::move(r));
  }
  return reads;
}

// x_q (uint8 / int8) to float into `buf`; false for any other type.
bool dequantize_into(const Tensor& xq, const QdqRead& r, Tensor& buf) {
  if (xq.dtype() != DType::kUInt8 && xq.dtype() != DType::kInt8) return false;
  if (buf.shape() != xq.shape() || buf.dtype() != DType::kFloat32) buf = Tensor(DType::kFloat32, xq.shape());
  float* y = buf.mutable_data<float>();
  const auto n = static_cast<size_t>(xq.numel());
  if (xq.dtype() == DType::kUInt8) {
    const uint8_t* x = xq.data<uint8_t>();
    for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<int64_t>(x[i]) - r.zero_point) * r.scale;
  } else {
    const int8_t* x = xq.data<int8_t>();
    for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<int64_t>(x[i]) - r.zero_point) * r.scale;
  }
  return true;
}

}  // namespace

MeasureResult measure(const quant::QuantizeResult& q, const std::vector<RowSpec>& rows,
                      const data::Dataset& data, const ReportOptions& ro) {
  const auto t0 = std::chrono::steady_clock::now();
  MeasureResult res;
  const size_t nr = rows.size();
  res.isolated.resize(nr);
  res.cumulative.resize(nr);
  res.activation.resize(nr);
  res.hist.assign(nr, std::vector<uint64_t>(kFineBins, 0));
  res.hist_amax.assign(nr, 0.0);
  res.in_channel_absmax.resize(nr);

  const ExecutorOptions eo{ro.threads};
  Executor fl(q.fused, eo);
  std::unique_ptr<Executor> qx;
  const Model sim = ro.cumulative && !ro.exact ? float_sim_model(q.qdq) : Model();
  const Model& qrun = ro.exact ? q.qdq : sim;
  if (ro.cumulative) qx = std::make_unique<Executor>(qrun, eo);

  std::set<std::string> keep;  // float values the measures need
  std::map<std::string, std::vector<size_t>> out_rows;  // row output -> rows
  std::vector<const quant::ActivationQuant*> acts(nr);
  for (size_t r = 0; r < nr; ++r) {
    keep.insert(rows[r].input);
    keep.insert(rows[r].output);
    out_rows[rows[r].output].push_back(r);
    acts[r] = q.plan.activation(rows[r].input);
    if (acts[r]) res.hist_amax[r] = std::max(std::fabs(acts[r]->min), std::fabs(acts[r]->max));
  }
  const std::vector<QdqRead> reads = qx ? qdq_reads(qrun, out_rows) : std::vector<QdqRead>{};
  std::vector<std::string> qdq_fetch;
  std::map<std::string, std::vector<const QdqRead*>> reads_by_fetch;
  for (const QdqRead& rd : reads) {
    if (std::find(qdq_fetch.begin(), qdq_fetch.end(), rd.fetch) == qdq_fetch.end()) qdq_fetch.push_back(rd.fetch);
    reads_by_fetch[rd.fetch].push_back(&rd);
  }
  // The float values the measures need are asked for as extra outputs (kept, no copy); the
  // QDQ and isolated models' values are measured where an observer sees them, so that their
  // buffers stay in the executors' caches (extra outputs leave them, and with several batches
  // would be allocated, zero-filled and page-faulted afresh every batch). The exact QDQ model
  // is the exception: an observer would make it run the float steps of its integer groups.
  const std::vector<std::string> keep_list(keep.begin(), keep.end());
  std::map<std::string, Tensor> fout;       // this batch's float outputs and kept values
  std::map<std::string, const Tensor*> fv;  // the kept float values of this batch
  Tensor dq_buf;
  auto add_cumulative = [&](const QdqRead& rd, const Tensor& v) {
    const Tensor* y = &v;
    if (rd.dequant) {
      if (!dequantize_into(v, rd, dq_buf)) return;
      y = &dq_buf;
    }
    const auto f = fv.find(rd.rows.empty() ? std::string() : rows[rd.rows[0]].output);
    if (f == fv.end() || y->dtype() != DType::kFloat32 || f->second->numel() != y->numel()) return;
    for (size_t r : rd.rows)
      res.cumulative[r].add(f->second->data<float>(), y->data<float>(), static_cast<size_t>(y->numel()));
  };
  const Observer cumulative_obs = [&](const std::string& name, const Tensor& v) {
    const auto it = reads_by_fetch.find(name);
    if (it != reads_by_fetch.end())
      for (const QdqRead* rd : it->second) add_cumulative(*rd, v);
  };
  IsolatedModel iso;
  std::unique_ptr<Executor> ix;
  if (ro.isolated) {
    iso = isolated_model(q.fused, rows, q.plan);
    try {
      if (!iso.out_row.empty()) ix = std::make_unique<Executor>(iso.model, eo);
    } catch (const std::exception& e) {
      spdlog::warn("report: isolated errors not measured: {}", e.what());
    }
  }
  // Seen while the isolated model runs: a fake-quantized row input (the activation error of
  // the rows reading it; `fq_seen` tells the statistics loop not to compute it again), and
  // row r's isolated output (against the float one).
  std::map<std::string, std::vector<size_t>> in_rows;
  for (size_t r = 0; r < nr; ++r) in_rows[rows[r].input].push_back(r);
  std::set<std::string> fq_seen;
  const Observer isolated_obs = [&](const std::string& name, const Tensor& y) {
    if (const auto fq = iso.fq_input.find(name); fq != iso.fq_input.end()) {
      const auto x = fv.find(fq->second);
      if (x == fv.end() || y.dtype() != DType::kFloat32 || y.numel() != x->second->numel()) return;
      for (size_t r : in_rows[fq->second])
        if (acts[r]) res.activation[r].add(x->second->data<float>(), y.data<float>(), static_cast<size_t>(y.numel()));
      fq_seen.insert(fq->second);
      return;
    }
    const auto it = iso.out_row.find(name);
    if (it == iso.out_row.end()) return;
    const auto ref = fv.find(rows[it->second].output);
    if (ref != fv.end() && y.dtype() == DType::kFloat32 && y.numel() == ref->second->numel())
      res.isolated[it->second].add(ref->second->data<float>(), y.data<float>(), static_cast<size_t>(y.numel()));
  };

  AgreementMeter agree;
  AccuracyMeter acc_f, acc_q;
  ErrorSums out_err;
  bool labelled = false;
  data::BatchReader reader(data, std::max<int64_t>(1, ro.batch));
  int64_t done = 0;
  using Clock = std::chrono::steady_clock;
  double t_float = 0, t_qdq = 0, t_iso = 0, t_stats = 0;
  auto lap = [](Clock::time_point& t) {
    const auto now = Clock::now();
    const double d = std::chrono::duration<double>(now - t).count();
    t = now;
    return d;
  };
  std::map<Shape, Tensor> fq_bufs;  // by shape: reused by the rows and across batches
  while (auto batch = reader.next()) {
    auto tl = Clock::now();
    int64_t n = batch->input.dim(0);
    if (ro.num_samples > 0) n = std::min(n, ro.num_samples - done);
    if (n <= 0) break;
    const Tensor x = first_rows(batch->input, n);
    std::vector<int64_t> labels(batch->labels.begin(), batch->labels.begin() + n);
    fv.clear();
    fout.clear();
    // extra_outputs, not an observer: the executor still fuses Conv -> Relu.
    fout = fl.run({{fl.input_names().at(0), x}}, nullptr, keep_list);
    for (const auto& name : keep_list)
      if (const auto it = fout.find(name); it != fout.end() && it->second.dtype() == DType::kFloat32)
        fv[name] = &it->second;
    const Tensor& flog = fout.at(fl.output_names().at(0));
    t_float += lap(tl);
    if (qx) {
      const bool observe = !ro.exact;
      const auto qout = qx->run({{qx->input_names().at(0), x}}, observe ? cumulative_obs : Observer(),
                                observe ? std::vector<std::string>{} : qdq_fetch);
      if (!observe)
        for (const QdqRead& rd : reads)
          if (const auto v = qout.find(rd.fetch); v != qout.end()) add_cumulative(rd, v->second);
      const Tensor& qlog = qout.at(qx->output_names().at(0));
      if (qlog.numel() == flog.numel()) {
        agree.add(flog, qlog);
        out_err.add(flog.data<float>(), qlog.data<float>(), static_cast<size_t>(flog.numel()));
      }
      if (std::any_of(labels.begin(), labels.end(), [](int64_t l) { return l >= 0; })) {
        labelled = true;
        acc_f.add(flog, labels);
        acc_q.add(qlog, labels);
      }
      t_qdq += lap(tl);
    }
    fq_seen.clear();
    if (ix) {
      std::map<std::string, Tensor> feed;
      for (const std::string& name : iso.inputs)
        if (const auto it = fv.find(name); it != fv.end()) feed[name] = *it->second;
      try {
        if (feed.size() != iso.inputs.size()) throw InputError("a layer input is not a float value");
        ix->run(feed, isolated_obs);
      } catch (const std::exception& e) {
        spdlog::warn("report: isolated errors not measured: {}", e.what());
        ix.reset();
        for (ErrorSums& e2 : res.isolated) e2 = ErrorSums();
      }
      t_iso += lap(tl);
    }
    std::string fq_of;  // the input `fq` holds fake-quantized (rows reading one input share it)
    Tensor fq;
    for (size_t r = 0; r < nr; ++r) {
      const auto in = fv.find(rows[r].input);
      if (in == fv.end()) continue;
      const Tensor& xi = *in->second;
      const float* xp = xi.data<float>();
      const auto count = static_cast<size_t>(xi.numel());
      if (acts[r] && !fq_seen.count(rows[r].input)) {
        if (fq.empty() || fq_of != rows[r].input) {
          fq = Tensor();  // let go of the buffer before it is written again
          fq = fake_quant_tensor(xi, acts[r], fq_bufs[xi.shape()]);
          fq_of = rows[r].input;
        }
        res.activation[r].add(xp, fq.data<float>(), count);
      }
      input_stats(xi, res.hist_amax[r], res.hist[r], res.in_channel_absmax[r]);
      t_stats += lap(tl);
    }
    fq = Tensor();
    done += n;
    if (ro.num_samples > 0 && done >= ro.num_samples) break;
  }
  if (done == 0) throw InputError(data.root() + ": no samples to measure on");
  spdlog::debug("report measures: float pass {:.2f} s, QDQ pass {:.2f} s, isolated {:.2f} s, statistics {:.2f} s",
                t_float, t_qdq, t_iso, t_stats);
  ModelSummary& s = res.summary;
  s.samples = done;
  s.output_sqnr = qx ? out_err.sqnr_db() : kNaN;
  s.output_cos = qx ? out_err.cosine() : kNaN;
  s.top1_agreement = qx ? agree.top1_agreement() : kNaN;
  s.has_labels = labelled && acc_f.count() > 0;
  s.top1_float = s.has_labels ? acc_f.top1() : kNaN;
  s.top1_quant = s.has_labels ? acc_q.top1() : kNaN;
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace repq::report
