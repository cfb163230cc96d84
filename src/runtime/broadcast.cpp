#include "runtime/broadcast.h"

#include "repq/error.h"

namespace repq::runtime {

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      throw InputError("shapes " + shape_str(a) + " and " + shape_str(b) + " cannot be broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

// Strides of `s` (right-aligned to rank r) as seen from an output of shape `out`: 0 where
// the operand is broadcast.
std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out) {
  const size_t r = out.size();
  if (s.size() > r)
    throw InputError("shape " + shape_str(s) + " cannot be broadcast to " + shape_str(out));
  std::vector<int64_t> st(r, 0);
  int64_t acc = 1;
  for (size_t k = 0; k < s.size(); ++k) {
    const size_t i = s.size() - 1 - k;  // operand axis
    const size_t o = r - 1 - k;         // output axis
    if (s[i] != out[o] && s[i] != 1)
      throw InputError("shape " + shape_str(s) + " cannot be broadcast to " + shape_str(out));
    st[o] = s[i] == 1 ? 0 : acc;
    acc *= s[i];
  }
  return st;
}

}  // namespace

BroadcastPlan plan_broadcast(const Shape& a, const Shape& b, const Shape& out) {
  std::vector<int64_t> sa = broadcast_strides(a, out), sb = broadcast_strides(b, out);
  // Drop size-1 output dims, then merge neighbours that are contiguous for both operands.
  std::vector<int64_t> dims, da, db;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 1) continue;
    if (!dims.empty() && da.back() == sa[i] * out[i] && db.back() == sb[i] * out[i]) {
      dims.back() *= out[i];
      da.back() = sa[i];
      db.back() = sb[i];
      continue;
    }
    dims.push_back(out[i]);
    da.push_back(sa[i]);
    db.push_back(sb[i]);
  }
  BroadcastPlan p;
  if (!dims.empty()) {
    p.inner = dims.back();
    p.inner_stride_a = da.back();
    p.inner_stride_b = db.back();
    dims.pop_back();
    da.pop_back();
    db.pop_back();
  }
  for (int64_t d : dims) p.outer *= d;
  p.dims = std::move(dims);
  p.stride_a = std::move(da);
  p.stride_b = std::move(db);
  for (int64_t d : out)
    if (d == 0) p.outer = 0;
  return p;
}

BroadcastCursor::BroadcastCursor(const BroadcastPlan& plan, int64_t row)
    : plan_(plan), index_(plan.dims.size(), 0) {
  for (size_t k = plan.dims.size(); k-- > 0;) {
    index_[k] = row % plan.dims[k];
    row /= plan.dims[k];
    offset_a += index_[k] * plan.stride_a[k];
    offset_b += index_[k] * plan.stride_b[k];
  }
}

void BroadcastCursor::next() {
  for (size_t k = plan_.dims.size(); k-- > 0;) {
    offset_a += plan_.stride_a[k];
    offset_b += plan_.stride_b[k];
    if (++index_[k] < plan_.dims[k]) return;
    offset_a -= plan_.stride_a[k] * plan_.dims[k];
    offset_b -= plan_.stride_b[k] * plan_.dims[k];
    index_[k] = 0;
  }
}

}  // namespace repq::runtime
