// Helpers shared by simulator kernels.
#pragma once
#include <array>
#include <cmath>
#include <vector>

#include "aneforge/op.h"
#include "aneforge/parallel.h"
#include "aneforge/runtime.h"

namespace af {

// OpenBLAS runs a GEMM of M * N * K at most this on its calling thread (its threading
// threshold, 4 * 65536: interface/gemm.c): batches of such products can go across the pool,
// each product the same call as alone.
constexpr int64_t kBlasOneThread = int64_t{1} << 18;

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

// An iteration space made as small as it can be: size-1 dims dropped and neighbours merged
// where every operand's strides continue across them (a (..., 14, 2) block read in order is
// one dim of 28), so index arithmetic runs over the fewest dims.
template <size_t N>
void collapse_dims(Shape& shp, std::array<std::vector<int64_t>, N>& st) {
  Shape s2;
  std::array<std::vector<int64_t>, N> st2;
  for (size_t d = 0; d < shp.size(); ++d) {
    if (shp[d] == 1) continue;
    bool merge = !s2.empty();
    for (size_t j = 0; j < N && merge; ++j) merge = st2[j].back() == shp[d] * st[j][d];
    if (merge) {
      s2.back() *= shp[d];
      for (size_t j = 0; j < N; ++j) st2[j].back() = st[j][d];
    } else {
      s2.push_back(shp[d]);
      for (size_t j = 0; j < N; ++j) st2[j].push_back(st[j][d]);
    }
  }
  if (s2.empty()) {
    s2.push_back(1);
    for (size_t j = 0; j < N; ++j) st2[j].push_back(0);
  }
  shp = std::move(s2);
  st = std::move(st2);
}

// Rows [b, e) of an iteration space (all dims but the last), in order: fn(row, offsets) with
// each operand's element offset, kept by an odometer instead of a division per dim per row.
template <size_t N, class F>
void for_rows(const Shape& shp, const std::array<std::vector<int64_t>, N>& st, size_t b, size_t e, F fn) {
  const int outer_dims = static_cast<int>(shp.size()) - 1;
  std::vector<int64_t> idx(static_cast<size_t>(std::max(outer_dims, 0)), 0);
  std::array<int64_t, N> off{};
  int64_t rem = static_cast<int64_t>(b);
  for (int d = outer_dims - 1; d >= 0; --d) {
    idx[d] = rem % shp[d];
    rem /= shp[d];
    for (size_t j = 0; j < N; ++j) off[j] += idx[d] * st[j][d];
  }
  for (size_t row = b; row < e; ++row) {
    fn(row, off);
    for (int d = outer_dims - 1; d >= 0; --d) {
      for (size_t j = 0; j < N; ++j) off[j] += st[j][d];
      if (++idx[d] < shp[d]) break;
      for (size_t j = 0; j < N; ++j) off[j] -= st[j][d] * shp[d];
      idx[d] = 0;
    }
  }
}

// A kernel's hook for each finished piece of its output (NoPost: none). The elementwise ops
// round a piece to its dtype while it is in cache (StoreChunk in elementwise.cpp).
struct NoPost {
  void operator()(float*, size_t) const {}
};

// out[i] = f(v) where v[j] is input j at the broadcast position of i.
template <size_t N, class F, class Post = NoPost>
void broadcast_nary(std::array<const float*, N> in, std::array<Shape, N> shapes, float* out, const Shape& so, F f,
                    Post post = {}) {
  Shape shp = so.empty() ? Shape{1} : so;
  std::array<std::vector<int64_t>, N> st;
  for (size_t j = 0; j < N; ++j) st[j] = broadcast_strides(shapes[j], shp);
  collapse_dims<N>(shp, st);
  const int r = static_cast<int>(shp.size());
  const int64_t inner = shp[r - 1], outer = numel(shp) / inner;
  std::array<int64_t, N> inner_st;
  for (size_t j = 0; j < N; ++j) inner_st[j] = st[j][r - 1];
  parallel_for(outer, std::max<int64_t>(1, (1 << 14) / inner), [&](size_t s, size_t e) {
    for_rows<N>(shp, st, s, e, [&](size_t row, const std::array<int64_t, N>& off) {
      float v[N];
      float* o = out + row * inner;
      for (int64_t i = 0; i < inner; ++i) {
        for (size_t j = 0; j < N; ++j) v[j] = in[j][off[j] + i * inner_st[j]];
        o[i] = f(v);
      }
    });
    post(out + s * inner, (e - s) * inner);
  });
}

// out[i] = f(a[ia], b[ib]) with NumPy broadcasting.
template <class F, class Post = NoPost>
void broadcast_binary(const float* a, const Shape& sa, const float* b, const Shape& sb, float* out,
                      const Shape& so, F f, Post post = {}) {
  int64_t n = numel(so);
  if (sa == so && sb == so) {
    parallel_for(n, 1 << 15, [&](size_t s, size_t e) {
      for (size_t i = s; i < e; ++i) out[i] = f(a[i], b[i]);
      post(out + s, e - s);
    });
    return;
  }
  if (numel(sb) == 1 && sa == so) {
    float bv = b[0];
    parallel_for(n, 1 << 15, [&](size_t s, size_t e) {
      for (size_t i = s; i < e; ++i) out[i] = f(a[i], bv);
      post(out + s, e - s);
    });
    return;
  }
  if (numel(sa) == 1 && sb == so) {
    float av = a[0];
    parallel_for(n, 1 << 15, [&](size_t s, size_t e) {
      for (size_t i = s; i < e; ++i) out[i] = f(av, b[i]);
      post(out + s, e - s);
    });
    return;
  }
  // Rows against one value per row (or the reverse), as a collapsed (rows, inner) space:
  // direct loops, no odometer (a max-pool gradient's (N*C*Ho*Wo, 4) windows against their max).
  Shape shp = so.empty() ? Shape{1} : so;
  std::array<std::vector<int64_t>, 2> st{broadcast_strides(sa, shp), broadcast_strides(sb, shp)};
  collapse_dims<2>(shp, st);
  if (shp.size() == 2 && ((st[0][1] == 1 && st[1][1] == 0) || (st[0][1] == 0 && st[1][1] == 1))) {
    const int64_t inner = shp[1], a_row = st[0][0], b_row = st[1][0];
    const bool a_scalar = st[0][1] == 0;
    parallel_for(shp[0], std::max<int64_t>(1, (1 << 14) / inner), [&](size_t s, size_t e) {
      for (size_t r = s; r < e; ++r) {
        const float *pa = a + r * a_row, *pb = b + r * b_row;
        float* o = out + r * inner;
        if (a_scalar) {
          const float av = *pa;
          for (int64_t i = 0; i < inner; ++i) o[i] = f(av, pb[i]);
        } else {
          const float bv = *pb;
          for (int64_t i = 0; i < inner; ++i) o[i] = f(pa[i], bv);
        }
      }
      post(out + s * inner, (e - s) * inner);
    });
    return;
  }
  broadcast_nary<2>({a, b}, {sa, sb}, out, so, [&f](const float* v) { return f(v[0], v[1]); }, post);
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

// Up to this many rows of x, a linear layer with an fp16-stored weight reads it row by row
// (decode steps, batch-1 inference); more rows amortize a widened panel over a GEMM.
constexpr int64_t kFp16RowsMax = 4;

// y (M, N) = x (M, K) W^T, W (N, K) given as float32 `w` or, when `wh` is set, as fp16 bits
// read in place (linear's kernel; also 1x1 convs). `kept`: wh widened whole (the sim's weight
// cache), read in place of widening a panel per GEMM.
void linear_rows(const float* x, const float* w, const uint16_t* wh, float* y, int64_t M, int64_t N, int64_t K,
                 const float* kept = nullptr);

template <class F, class Post = NoPost>
void map_unary(const float* x, float* y, int64_t n, F f, Post post = {}) {
  parallel_for(n, 1 << 15, [&](size_t s, size_t e) {
    const F local = f;  // no store through y can change its captures: the loop vectorises
    for (size_t i = s; i < e; ++i) y[i] = local(x[i]);
    post(y + s, e - s);
  });
}

}  // namespace af
