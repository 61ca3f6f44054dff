// Small builders for bridge lowerings: native ops from inside C++.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "aneforge/op.h"

namespace af::lw {

inline Tensor op(const std::string& name, const std::vector<Tensor>& in, const Attrs& a = {}) { return call1(name, in, a); }
inline Tensor add(const Tensor& a, const Tensor& b) { return op("add", {a, b}); }
inline Tensor sub(const Tensor& a, const Tensor& b) { return op("sub", {a, b}); }
inline Tensor mul(const Tensor& a, const Tensor& b) { return op("mul", {a, b}); }
inline Tensor div(const Tensor& a, const Tensor& b) { return op("div", {a, b}); }
inline Tensor where(const Tensor& c, const Tensor& a, const Tensor& b) { return op("where", {c, a, b}); }
inline Tensor cast(const Tensor& a, DType t) { return op("cast", {a}, {{"dtype", std::string(dtype_name(t))}}); }
// Indices computed in fp16 (exact integers) as int32: nothing to round, so the MIL is an
// identity (the engine holds int32 in fp16 anyway).
inline Tensor index_cast(const Tensor& a) { return op("cast", {a}, {{"dtype", std::string("int32")}, {"exact_integers", true}}); }
inline Tensor scalar_like(double v, const Tensor& like) { return scalar(v, like.dtype()); }
inline Tensor reshape(const Tensor& a, const Shape& s) {
  if (a.shape() == s) return a;
  return op("reshape", {a}, {{"shape", std::vector<int64_t>(s.begin(), s.end())}});
}
inline Tensor permute(const Tensor& a, std::vector<int64_t> dims) { return op("permute", {a}, {{"dims", dims}}); }
inline Tensor reduce(const char* name, const Tensor& a, std::vector<int64_t> axes, bool keep) {
  return op(name, {a}, {{"axis", axes}, {"keepdims", keep}});
}
inline Tensor concat(const std::vector<Tensor>& ts, int64_t axis) {
  if (ts.size() == 1) return ts[0];
  return op("concat", ts, {{"axis", axis}});
}
// x[..., b:b+n, ...] along axis.
inline Tensor narrow(const Tensor& a, int axis, int64_t b, int64_t n) {
  std::vector<int64_t> begin(a.rank(), 0), size(a.shape().begin(), a.shape().end());
  begin[axis] = b;
  size[axis] = n;
  if (b == 0 && n == a.shape()[axis]) return a;
  return op("slice_by_size", {a}, {{"begin", begin}, {"size", size}});
}
// Constant 0..n-1 placed on `axis` of a rank-`rank` tensor (size 1 elsewhere).
inline Tensor iota(int64_t n, int rank, int axis, DType t = DType::fp16) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(i);
  Shape s(rank, 1);
  s[axis] = n;
  return constant(std::move(v), s, t);
}
// Move `axis` to the end and flatten the rest: (rows, n). Returns the permutation used.
inline Tensor rows_last(const Tensor& x, int axis, std::vector<int64_t>& perm, Shape& moved) {
  int r = x.rank();
  perm.clear();
  for (int i = 0; i < r; ++i)
    if (i != axis) perm.push_back(i);
  perm.push_back(axis);
  Tensor t = axis == r - 1 ? x : permute(x, perm);
  moved = t.shape();
  int64_t n = x.shape()[axis];
  return reshape(t, {numel(x.shape()) / n, n});
}
// Inverse of rows_last for a result whose last axis has size m.
inline Tensor unrows(const Tensor& t, const std::vector<int64_t>& perm, Shape moved, int64_t m) {
  moved.back() = m;
  Tensor u = reshape(t, moved);
  int r = static_cast<int>(perm.size());
  bool identity = true;
  for (int i = 0; i < r; ++i) identity &= perm[i] == i;
  if (identity) return u;
  std::vector<int64_t> inv(r);
  for (int i = 0; i < r; ++i) inv[perm[i]] = i;
  return permute(u, inv);
}

// Largest index the lowered index arithmetic keeps exact in fp16.
inline constexpr int64_t kExactIndex = 2048;

}  // namespace af::lw
