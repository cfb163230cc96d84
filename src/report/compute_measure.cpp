// The data-driven report measures: one float pass and one QDQ pass per batch (cumulative
// errors, model summary; the QDQ model runs as float_sim_model(), or with ReportOptions::exact
// on the exact integer kernels, handing out only the values the rows compare), and each row
// alone on its fake-quantized float input (isolated errors), plus the input activation's
// fake-quant error, histogram and dead channels.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <set>

#include "repq/error.h"
#include "repq/eval/metrics.h"
#include "repq/report/compute.h"
#include "repq/runtime/executor.h"

namespace repq::report {

namespace {

ValueInfo float_value(const std::string& name) {
  ValueInfo v;
  v.name = name;
  v.elem_type = DType::kFloat32;
  return v;
}

// The row alone: its nodes with int8-rounded weights and int32-rounded biases.
Model isolated_model(const Model& fused, const RowSpec& row, const quant::ActivationQuant* act) {
  Model m;
  m.ir_version = fused.ir_version;
  m.opsets = fused.opsets;
  m.graph.name = "isolated";
  m.graph.inputs = {float_value(row.input)};
  m.graph.outputs = {float_value(row.output)};
  std::set<std::string> produced{row.input};
  for (size_t i : row.nodes) {
    m.graph.nodes.push_back(fused.graph.nodes[i]);
    for (const auto& o : fused.graph.nodes[i].outputs) produced.insert(o);
  }
  for (const Node& n : m.graph.nodes)
    for (const std::string& in : n.inputs) {
      if (in.empty() || produced.count(in) || m.graph.has_initializer(in)) continue;
      const Tensor* t = fused.graph.initializer(in);
      if (!t) throw InputError("report: '" + in + "' of layer '" + row.name + "' is not a constant");
      m.graph.set_initializer(in, *t);
    }
  for (const quant::LayerQuant* l : row.parts) {
    const Tensor* w = fused.graph.initializer(l->weight);
    if (!w) continue;
    m.graph.set_initializer(l->weight, fake_quant_weight(*w, l->scales, l->weight_axis));
    const Tensor* b = l->bias.empty() ? nullptr : fused.graph.initializer(l->bias);
    if (!b || !act || l->scales.empty()) continue;
    Tensor q = b->cast(DType::kFloat32);
    float* p = q.mutable_data<float>();
    for (int64_t o = 0; o < q.numel(); ++o) {
      const float sw = l->scales.size() == 1 ? l->scales[0] : l->scales.at(static_cast<size_t>(o));
      const double s = static_cast<double>(act->scale) * sw;
      if (s > 0) p[o] = static_cast<float>(std::nearbyint(p[o] / s) * s);
    }
    m.graph.set_initializer(l->bias, q);
  }
  return m;
}

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
  uint64_t* h = hist.data();
  for (int64_t a = 0; a < n0; ++a)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* p = xp + (a * c + ch) * inner;
      float mx = 0.0f;
      for (int64_t i = 0; i < inner; ++i) {
        const float v = std::fabs(p[i]);
        if (!(v >= 0.0f)) continue;  // NaN
        mx = v > mx ? v : mx;
        const float b = v * k;
        ++h[static_cast<size_t>(b < last ? b : last)];
      }
      if (x.rank() >= 2) chmax[static_cast<size_t>(ch)] = std::max(chmax[static_cast<size_t>(ch)], static_cast<double>(mx));
    }
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

struct RowState {
  const quant::ActivationQuant* act = nullptr;
  std::unique_ptr<Executor> iso;
  bool iso_failed = false;
};

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
  std::vector<RowState> st(nr);
  for (size_t r = 0; r < nr; ++r) {
    keep.insert(rows[r].input);
    keep.insert(rows[r].output);
    out_rows[rows[r].output].push_back(r);
    st[r].act = q.plan.activation(rows[r].input);
    if (st[r].act) res.hist_amax[r] = std::max(std::fabs(st[r].act->min), std::fabs(st[r].act->max));
    if (!ro.isolated) continue;
    try {
      st[r].iso = std::make_unique<Executor>(isolated_model(q.fused, rows[r], st[r].act), eo);
    } catch (const std::exception& e) {
      spdlog::warn("report: isolated error of '{}' not measured: {}", rows[r].name, e.what());
      st[r].iso_failed = true;
    }
  }

  const std::vector<std::string> keep_list(keep.begin(), keep.end());
  const std::vector<QdqRead> reads = qx ? qdq_reads(qrun, out_rows) : std::vector<QdqRead>{};
  std::vector<std::string> qdq_fetch;
  for (const QdqRead& rd : reads)
    if (std::find(qdq_fetch.begin(), qdq_fetch.end(), rd.fetch) == qdq_fetch.end()) qdq_fetch.push_back(rd.fetch);
  Tensor dq_buf;
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
  std::map<std::string, Tensor> fq_bufs;  // reused across batches
  while (auto batch = reader.next()) {
    auto tl = Clock::now();
    int64_t n = batch->input.dim(0);
    if (ro.num_samples > 0) n = std::min(n, ro.num_samples - done);
    if (n <= 0) break;
    const Tensor x = first_rows(batch->input, n);
    std::vector<int64_t> labels(batch->labels.begin(), batch->labels.begin() + n);
    // extra_outputs, not an observer: the executor still fuses Conv -> Relu.
    std::map<std::string, Tensor> fv;
    const auto fout = fl.run({{fl.input_names().at(0), x}}, nullptr, keep_list);
    for (const auto& name : keep_list)
      if (const auto it = fout.find(name); it != fout.end() && it->second.dtype() == DType::kFloat32)
        fv[name] = it->second;
    const Tensor& flog = fout.at(fl.output_names().at(0));
    t_float += lap(tl);
    if (qx) {
      const auto qout = qx->run({{qx->input_names().at(0), x}}, nullptr, qdq_fetch);
      for (const QdqRead& rd : reads) {
        const auto v = qout.find(rd.fetch);
        if (v == qout.end()) continue;
        const Tensor* y = &v->second;
        if (rd.dequant) {
          if (!dequantize_into(v->second, rd, dq_buf)) continue;
          y = &dq_buf;
        }
        const auto f = fv.find(rd.rows.empty() ? std::string() : rows[rd.rows[0]].output);
        if (f == fv.end() || y->dtype() != DType::kFloat32 || f->second.numel() != y->numel()) continue;
        for (size_t r : rd.rows)
          res.cumulative[r].add(f->second.data<float>(), y->data<float>(), static_cast<size_t>(y->numel()));
      }
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
    std::map<std::string, Tensor> fq_inputs;
    for (size_t r = 0; r < nr; ++r) {
      const auto in = fv.find(rows[r].input);
      if (in == fv.end()) continue;
      const Tensor& xi = in->second;
      const float* xp = xi.data<float>();
      const auto count = static_cast<size_t>(xi.numel());
      auto fq = fq_inputs.find(rows[r].input);
      if (fq == fq_inputs.end())
        fq = fq_inputs.emplace(rows[r].input, fake_quant_tensor(xi, st[r].act, fq_bufs[rows[r].input])).first;
      if (st[r].act) res.activation[r].add(xp, fq->second.data<float>(), count);
      input_stats(xi, res.hist_amax[r], res.hist[r], res.in_channel_absmax[r]);
      t_stats += lap(tl);
      if (!st[r].iso) continue;
      const auto ref = fv.find(rows[r].output);
      if (ref == fv.end()) continue;
      try {
        const auto o = st[r].iso->run({{rows[r].input, fq->second}});
        const Tensor& y = o.at(rows[r].output);
        if (y.numel() == ref->second.numel())
          res.isolated[r].add(ref->second.data<float>(), y.data<float>(), static_cast<size_t>(y.numel()));
      } catch (const std::exception& e) {
        spdlog::warn("report: isolated error of '{}' not measured: {}", rows[r].name, e.what());
        st[r].iso.reset();
      }
      t_iso += lap(tl);
    }
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
