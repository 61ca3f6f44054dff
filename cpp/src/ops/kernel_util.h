// Helpers shared by simulator kernels.
#pragma once
#include <array>
#include <cmath>
#include <vector>

#include "aneforge/op.h"
#include "aneforge/parallel.h"
#include "aneforge/runtime.h"

namespace af {

// Per-thread scratch that grows and is reused across calls.
inline float* scratch(size_t n, int which = 0) {
  thread_local std::vector<float> bufs[4];
  auto& b = bufs[which];
  if (b.size() < n) b.resize(n);
  return b.data();
}

// Strides of `s` broadcast to `out` (rank-aligned from the right; 0 where broadcast).
inline std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  auto own = strides_of(s);
  size_t off = out.size() - s.size();
  for (size_t i = 0; i < s.size(); ++i) st[off + i] = s[i] == 1 ? 0 : own[i];
  return st;
}

// out[i] = f(v) where v[j] is input j at the broadcast position of i.
template <size_t N, class F>
void broadcast_nary(std::array<const float*, N> in, std::array<Shape, N> shapes, float* out, const Shape& so, F f) {
  Shape shp = so.empty() ? Shape{1} : so;
  int r = static_cast<int>(shp.size());
  std::array<std::vector<int64_t>, N> st;
  for (size_t j = 0; j < N; ++j) st[j] = broadcast_strides(shapes[j], shp);
  int64_t inner = shp[r - 1], outer = numel(shp) / inner;
  parallel_for(outer, std::max<int64_t>(1, (1 << 14) / inner), [&](size_t s, size_t e) {
    for (size_t row = s; row < e; ++row) {
      int64_t rem = static_cast<int64_t>(row);
      std::array<int64_t, N> off{};
      for (int d = r - 2; d >= 0; --d) {
        int64_t q = rem % shp[d];
        rem /= shp[d];
        for (size_t j = 0; j < N; ++j) off[j] += q * st[j][d];
      }
      float v[N];
      for (int64_t i = 0; i < inner; ++i) {
        for (size_t j = 0; j < N; ++j) v[j] = in[j][off[j] + i * st[j][r - 1]];
        out[row * inner + i] = f(v);
      }
    }
  });
}

// out[i] = f(a[ia], b[ib]) with NumPy broadcasting.
template <class F>
void broadcast_binary(const float* a, const Shape& sa, const float* b, const Shape& sb, float* out,
                      const Shape& so, F f) {
  int64_t n = numel(so);
  if (sa == so && sb == so) {
    parallel_for(n, 1 << 15, [&](size_t s, size_t e) {
      for (size_t i = s; i < e; ++i) out[i] = f(a[i], b[i]);
    });
    return;
  }
  if (numel(sb) == 1 && sa == so) {
    float bv = b[0];
    parallel_for(n, 1 << 15, [&](size_t s, size_t e) {
      for (size_t i = s; i < e; ++i) out[i] = f(a[i], bv);
    });
    return;
  }
  if (numel(sa) == 1 && sb == so) {
    float av = a[0];
    parallel_for(n, 1 << 15, [&](size_t s, size_t e) {
      for (size_t i = s; i < e; ++i) out[i] = f(av, b[i]);
    });
    return;
  }
  broadcast_nary<2>({a, b}, {sa, sb}, out, so, [&f](const float* v) { return f(v[0], v[1]); });
}


// Lanes along `axis`: (outer, n, inner) view; fn(x_lane, y_lane, n, stride) per lane.
template <class F>
void for_lanes(const float* x, float* y, const Shape& s, int axis, F fn) {
  int64_t outer = 1, n = s.empty() ? 1 : s[axis], inner = 1;
  for (int i = 0; i < axis; ++i) outer *= s[i];
  for (size_t i = axis + 1; i < s.size(); ++i) inner *= s[i];
  parallel_for(outer * inner, std::max<int64_t>(1, 8192 / std::max<int64_t>(n, 1)), [&](size_t b, size_t e) {
    for (size_t l = b; l < e; ++l) {
      int64_t o = static_cast<int64_t>(l) / inner, i = static_cast<int64_t>(l) % inner;
      int64_t off = o * n * inner + i;
      fn(x + off, y + off, n, inner);
    }
  });
}

// Copies x permuted by dims into y (any rank; used inside kernels).
void permute_copy(const float* x, const Shape& s, const std::vector<int64_t>& dims, float* y);

template <class F>
void map_unary(const float* x, float* y, int64_t n, F f) {
  parallel_for(n, 1 << 15, [&](size_t s, size_t e) {
    for (size_t i = s; i < e; ++i) y[i] = f(x[i]);
  });
}

}  // namespace af
