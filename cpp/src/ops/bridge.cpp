// Bridge ops: layers CoreML's MIL frontend never emits. Each has a shape rule and a
// lowering into native ops that the compiler substitutes inside the same program (never a
// graph cut); the simulator runs the lowered form, so its numerics are the engine's.
// Envelopes (sizes, ties, fp16 range) are in docs/bridges.md.
#include <algorithm>
#include <cmath>

#include "ops/lower_util.h"
#include "ops/register.h"

namespace af {

using namespace lw;

namespace {

OpDef bridge(const char* name, const char* cat, const char* doc, const char* lowered, std::vector<Param> params) {
  return bridge_def(name, cat, doc, lowered, std::move(params));
}

void check_index_range(InferContext& c, int64_t n, const char* what) {
  if (n > kExactIndex)
    c.fail(std::string(what) + " has " + std::to_string(n) + " elements; the lowering keeps indices exact in fp16 up to " +
           std::to_string(kExactIndex));
}

// ---- argmax / argmin -----------------------------------------------------------------

void infer_arg(InferContext& c) {
  const Shape& s = c.in(0).shape();
  c.expect_float(0);
  if (!c.attrs.has("dim")) {
    check_index_range(c, numel(s), "x");
    c.outputs = {{c.attrs.b("keepdims") ? Shape(s.size(), 1) : Shape{}, DType::int32}};
    return;
  }
  int r = std::max(1, static_cast<int>(s.size()));
  int axis = normalize_axis(c.attrs.i("dim"), r, c.op.name);
  check_index_range(c, s.empty() ? 1 : s[axis], "the reduced axis");
  Shape out = s;
  if (c.attrs.b("keepdims")) out[axis] = 1;
  else if (!out.empty()) out.erase(out.begin() + axis);
  c.attrs.set("dim", int64_t{axis});
  c.outputs = {{out, DType::int32}};
}

// Index of the first max (or min) along axis, from max, equal, where and min.
Tensor arg_extreme(const Tensor& x, int axis, bool is_max, bool keep) {
  int64_t n = x.shape()[axis];
  Tensor m = reduce(is_max ? "max" : "min", x, {axis}, true);
  Tensor hit = op("equal", {x, m});
  Tensor idx = where(hit, iota(n, x.rank(), axis, x.dtype()), scalar_like(static_cast<double>(n), x));
  return reduce("min", idx, {axis}, keep);
}

std::vector<Tensor> lower_arg(const std::vector<Tensor>& in, const Attrs& a, bool is_max) {
  Tensor x = in[0];
  bool keep = a.b("keepdims");
  if (!a.has("dim")) {
    Tensor flat = reshape(x, {numel(x.shape())});
    Tensor r = index_cast(arg_extreme(flat, 0, is_max, false));
    return {keep ? reshape(r, Shape(x.rank(), 1)) : r};
  }
  if (x.rank() == 0) x = reshape(x, {1});
  return {index_cast(arg_extreme(x, static_cast<int>(a.i("dim")), is_max, keep))};
}

// ---- sort (bitonic compare-exchange network of min/max/select) -------------------------

std::pair<Tensor, Tensor> bitonic_sort(const Tensor& rows, bool descending) {
  // rows: (R, n) -> values and fp-valued indices, both (R, n), sorted along the last axis.
  int64_t R = rows.shape()[0], n = rows.shape()[1], p = 1;
  while (p < n) p *= 2;
  DType dt = rows.dtype();
  Tensor v = rows;
  if (p > n) {  // pad with values that sort to the end
    double fill = descending ? -INFINITY : INFINITY;
    v = op("pad", {v}, {{"pad", std::vector<int64_t>{0, p - n}}, {"mode", std::string("constant")}, {"value", fill}});
  }
  Tensor idx = op("tile", {iota(p, 2, 1, dt)}, {{"dims", std::vector<int64_t>{R, 1}}});  // (R, p): 0..p-1
  for (int64_t k = 2; k <= p; k *= 2) {
    for (int64_t j = k / 2; j >= 1; j /= 2) {
      Shape view{R, p / (2 * j), 2, j};
      auto partner = [&](const Tensor& t) {  // element i XOR j: swap the halves of each 2j block
        Tensor t4 = reshape(t, view);
        return reshape(concat({narrow(t4, 2, 1, 1), narrow(t4, 2, 0, 1)}, 2), {R, p});
      };
      // Position i keeps the smaller of (self, partner) when (i & k == 0) == (i & j == 0).
      std::vector<float> want(static_cast<size_t>(p));
      for (int64_t i = 0; i < p; ++i) {
        bool asc = (i & k) == 0, lower = (i & j) == 0;
        want[i] = (asc == lower) != descending ? 1.0f : 0.0f;
      }
      Tensor want_small = constant(std::move(want), {1, p}, DType::boolean);
      Tensor bv = partner(v), bi = partner(idx);
      // Strict order on (value, index) so ties never duplicate an element; equal values keep
      // their index order in both directions (stable, as torch.sort(stable=True)).
      Tensor tie = descending ? op("greater", {idx, bi}) : op("less", {idx, bi});
      Tensor self_smaller = op("where", {op("equal", {v, bv}), tie, op("less", {v, bv})});
      Tensor take_self = op("equal", {self_smaller, want_small});
      v = where(take_self, v, bv);
      idx = where(take_self, idx, bi);
    }
  }
  if (p > n) {
    v = narrow(v, 1, 0, n);
    idx = narrow(idx, 1, 0, n);
  }
  return {v, idx};
}

void infer_sort(InferContext& c) {
  c.expect_float(0);
  const Shape& s = c.in(0).shape();
  if (s.empty()) c.fail("x must have rank >= 1");
  int axis = normalize_axis(c.attrs.i("dim", -1), static_cast<int>(s.size()), c.op.name);
  check_index_range(c, s[axis], "the sorted axis");
  c.attrs.set("dim", int64_t{axis});
  Shape out = s;
  if (c.op.name == "topk") {
    int64_t k = c.attrs.i("k");
    if (k < 1 || k > s[axis]) c.fail("k=" + std::to_string(k) + " must be in 1.." + std::to_string(s[axis]));
    out[axis] = k;
    c.attrs.set("largest", c.attrs.b("largest", true));
  } else {
    c.attrs.set("descending", c.attrs.b("descending"));
  }
  c.outputs = {{out, c.in(0).dtype()}, {out, DType::int32}};
}

std::vector<Tensor> lower_sort(const std::vector<Tensor>& in, const Attrs& a, bool topk) {
  const Tensor& x = in[0];
  int axis = static_cast<int>(a.i("dim"));
  bool desc = topk ? a.b("largest") : a.b("descending");
  std::vector<int64_t> perm;
  Shape moved;
  Tensor rows = rows_last(x, axis, perm, moved);
  auto [v, i] = bitonic_sort(rows, desc);
  int64_t m = topk ? a.i("k") : x.shape()[axis];
  if (topk) {
    v = narrow(v, 1, 0, m);
    i = narrow(i, 1, 0, m);
  }
  return {unrows(v, perm, moved, m), index_cast(unrows(i, perm, moved, m))};
}

// ---- sdpa ------------------------------------------------------------------------------

void infer_sdpa(InferContext& c) {
  const Shape &q = c.in(0).shape(), &k = c.in(1).shape(), &v = c.in(2).shape();
  c.expect_float(0);
  c.expect_same_dtype(0, 1);
  c.expect_same_dtype(0, 2);
  if (q.size() < 2 || k.size() != q.size() || v.size() != q.size())
    c.fail("q, k, v must share a rank >= 2, got q " + shape_str(q) + ", k " + shape_str(k) + ", v " + shape_str(v));
  if (q.back() != k.back()) c.fail("q " + shape_str(q) + " and k " + shape_str(k) + " differ in the embedding size");
  if (k[k.size() - 2] != v[v.size() - 2]) c.fail("k " + shape_str(k) + " and v " + shape_str(v) + " differ in length");
  Shape bq(q.begin(), q.end() - 2), bk(k.begin(), k.end() - 2), b1, b2;
  if (!broadcast_shapes(bq, bk, b1) || !broadcast_shapes(b1, Shape(v.begin(), v.end() - 2), b2))
    c.fail("batch dimensions of q " + shape_str(q) + ", k " + shape_str(k) + ", v " + shape_str(v) + " do not broadcast");
  int64_t L = q[q.size() - 2], S = k[k.size() - 2];
  bool has_mask = c.inputs.size() > 3;
  if (has_mask) {
    Shape ms, tmp;
    Shape scores = b2;
    scores.push_back(L);
    scores.push_back(S);
    if (!broadcast_shapes(c.in(3).shape(), scores, ms) || ms != scores)
      c.fail("attn_mask " + shape_str(c.in(3).shape()) + " does not broadcast to the scores " + shape_str(scores));
    if (c.in(3).dtype() != DType::boolean) c.expect_same_dtype(0, 3);
  }
  bool causal = c.attrs.b("is_causal");
  if (causal && has_mask) c.fail("give either attn_mask or is_causal=True, not both (as torch)");
  c.attrs.set("is_causal", causal);
  c.attrs.set("has_attn_mask", has_mask);
  c.attrs.set("scale", c.attrs.has("scale") ? c.attrs.f("scale") : 1.0 / std::sqrt(static_cast<double>(q.back())));
  Shape out = b2;
  out.push_back(L);
  out.push_back(v.back());
  c.outputs = {{out, c.in(0).dtype()}};
}

// Scores above this many fp16 bytes per query block are computed block by block (the
// engine tiles operands over 2 MiB through DRAM).
constexpr int64_t kSdpaTileBytes = 2 << 20;

std::vector<Tensor> lower_sdpa(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor &q = in[0], &k = in[1], &v = in[2];
  int r = q.rank();
  int64_t L = q.shape()[r - 2], S = k.shape()[r - 2];
  std::vector<int64_t> kt(r);
  for (int i = 0; i < r; ++i) kt[i] = i;
  std::swap(kt[r - 1], kt[r - 2]);
  Tensor kT = permute(k, kt);
  Tensor scale = scalar(a.f("scale"), q.dtype());
  int64_t batch = std::max<int64_t>(1, numel(q.shape()) / (L * q.shape()[r - 1]));
  int64_t block = L;
  while (block > 1 && batch * block * S * 2 > kSdpaTileBytes) block = (block + 1) / 2;
  Tensor mask;
  if (a.b("has_attn_mask")) mask = in[3];
  std::vector<Tensor> outs;
  for (int64_t b0 = 0; b0 < L; b0 += block) {
    int64_t nb = std::min(block, L - b0);
    Tensor qb = narrow(q, r - 2, b0, nb);
    Tensor s = mul(op("matmul", {qb, kT}), scale);
    int sr = s.rank();
    if (a.b("is_causal")) {  // keep key j <= query i (top-left aligned, as torch)
      std::vector<float> m(static_cast<size_t>(nb * S));
      for (int64_t i = 0; i < nb; ++i)
        for (int64_t j = 0; j < S; ++j) m[i * S + j] = j <= b0 + i ? 1.0f : 0.0f;
      s = where(constant(std::move(m), {nb, S}, DType::boolean), s, scalar(-65504.0, q.dtype()));
    } else if (mask.valid()) {
      Tensor mb = mask;
      if (mask.rank() >= 2 && mask.shape()[mask.rank() - 2] == L && nb != L) mb = narrow(mask, mask.rank() - 2, b0, nb);
      if (mask.dtype() == DType::boolean) s = where(mb, s, scalar(-65504.0, q.dtype()));
      else s = add(s, mb);
    }
    Tensor p = op("softmax", {s}, {{"axis", int64_t{sr - 1}}});
    outs.push_back(op("matmul", {p, v}));
  }
  return {concat(outs, r - 2)};
}

// ---- geometry bridges ------------------------------------------------------------------

void infer_cross(InferContext& c) {
  c.expect_float(0);
  c.expect_same_dtype(0, 1);
  Shape s;
  if (!broadcast_shapes(c.in(0).shape(), c.in(1).shape(), s)) c.fail("shapes of a and b do not broadcast");
  int axis = normalize_axis(c.attrs.i("dim", -1), static_cast<int>(s.size()), c.op.name);
  if (c.in(0).shape()[axis + c.in(0).rank() - s.size()] != 3 || c.in(1).shape()[axis + c.in(1).rank() - s.size()] != 3)
    c.fail("a " + shape_str(c.in(0).shape()) + " and b " + shape_str(c.in(1).shape()) + " need size 3 on dim " +
           std::to_string(axis));
  c.attrs.set("dim", int64_t{axis});
  c.outputs = {{s, c.in(0).dtype()}};
}

std::vector<Tensor> lower_cross(const std::vector<Tensor>& in, const Attrs& attrs) {
  Shape s;
  broadcast_shapes(in[0].shape(), in[1].shape(), s);
  int axis = static_cast<int>(attrs.i("dim"));
  auto comp = [&](const Tensor& t, int i) { return narrow(t, axis - static_cast<int>(s.size()) + t.rank(), i, 1); };
  const Tensor &a = in[0], &b = in[1];
  Tensor c0 = sub(mul(comp(a, 1), comp(b, 2)), mul(comp(a, 2), comp(b, 1)));
  Tensor c1 = sub(mul(comp(a, 2), comp(b, 0)), mul(comp(a, 0), comp(b, 2)));
  Tensor c2 = sub(mul(comp(a, 0), comp(b, 1)), mul(comp(a, 1), comp(b, 0)));
  return {concat({c0, c1, c2}, axis)};
}

void infer_correlation(InferContext& c) {
  c.expect_rank(0, 4, 4, "x");
  c.expect_float(0);
  c.expect_same_dtype(0, 1);
  if (c.in(0).shape() != c.in(1).shape())
    c.fail("x " + shape_str(c.in(0).shape()) + " and y " + shape_str(c.in(1).shape()) + " must have the same shape");
  const Shape& s = c.in(0).shape();
  int64_t D = c.attrs.i(c.op.name == "cost_volume" ? "max_disparity" : "max_displacement");
  if (c.op.name == "cost_volume") {
    if (D < 1 || D > s[3]) c.fail("max_disparity must be in 1.." + std::to_string(s[3]));
    c.outputs = {{{s[0], D, s[2], s[3]}, c.in(0).dtype()}};
  } else {
    if (D < 0 || D >= std::min(s[2], s[3])) c.fail("max_displacement must be in 0.." + std::to_string(std::min(s[2], s[3]) - 1));
    c.outputs = {{{s[0], (2 * D + 1) * (2 * D + 1), s[2], s[3]}, c.in(0).dtype()}};
  }
}

std::vector<Tensor> lower_correlation(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor &x = in[0], &y = in[1];
  int64_t D = a.i("max_displacement"), H = x.shape()[2], W = x.shape()[3];
  Tensor yp = op("pad", {y}, {{"pad", std::vector<int64_t>{D, D, D, D}}, {"mode", std::string("constant")}, {"value", 0.0}});
  std::vector<Tensor> planes;
  for (int64_t dy = -D; dy <= D; ++dy)
    for (int64_t dx = -D; dx <= D; ++dx) {
      Tensor win = narrow(narrow(yp, 2, D + dy, H), 3, D + dx, W);
      planes.push_back(reduce("mean", mul(x, win), {1}, true));
    }
  return {concat(planes, 1)};
}

std::vector<Tensor> lower_cost_volume(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor &l = in[0], &r = in[1];
  int64_t D = a.i("max_disparity"), W = l.shape()[3];
  Tensor rp = D > 1 ? op("pad", {r}, {{"pad", std::vector<int64_t>{D - 1, 0}}, {"mode", std::string("constant")}, {"value", 0.0}}) : r;
  std::vector<Tensor> planes;
  for (int64_t d = 0; d < D; ++d) planes.push_back(reduce("mean", mul(l, narrow(rp, 3, D - 1 - d, W)), {1}, true));
  return {concat(planes, 1)};
}

void infer_fps(InferContext& c) {
  c.expect_rank(0, 3, 3, "points");
  c.expect_float(0);
  const Shape& s = c.in(0).shape();
  int64_t k = c.attrs.i("k");
  check_index_range(c, s[1], "points");
  if (k < 1 || k > s[1]) c.fail("k=" + std::to_string(k) + " must be in 1.." + std::to_string(s[1]));
  c.outputs = {{{s[0], k}, DType::int32}};
}

std::vector<Tensor> lower_fps(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor& pts = in[0];  // (B, N, D)
  int64_t B = pts.shape()[0], N = pts.shape()[1], k = a.i("k");
  DType dt = pts.dtype();
  Tensor ids = iota(N, 2, 1, dt);                       // (1, N)
  Tensor sel = constant(std::vector<float>(static_cast<size_t>(B), 0.0f), {B, 1}, dt);  // start at point 0
  std::vector<Tensor> picked{sel};
  Tensor dist;
  for (int64_t j = 1; j < k; ++j) {
    Tensor onehot = cast(op("equal", {ids, sel}), dt);                 // (B, N)
    Tensor p = op("matmul", {reshape(onehot, {B, 1, N}), pts});        // (B, 1, D)
    Tensor diff = sub(pts, p);
    Tensor d = reduce("sum", mul(diff, diff), {2}, false);            // (B, N)
    dist = dist.valid() ? op("minimum", {dist, d}) : d;
    sel = arg_extreme(dist, 1, true, true);                            // (B, 1)
    picked.push_back(sel);
  }
  return {index_cast(concat(picked, 1))};
}

void infer_radius(InferContext& c) {
  c.expect_rank(0, 3, 3, "points");
  c.expect_rank(1, 3, 3, "queries");
  c.expect_float(0);
  c.expect_same_dtype(0, 1);
  const Shape &p = c.in(0).shape(), &q = c.in(1).shape();
  if (p[0] != q[0] || p[2] != q[2])
    c.fail("points " + shape_str(p) + " and queries " + shape_str(q) + " must share batch and dimension");
  check_index_range(c, p[1], "points");
  int64_t k = c.attrs.i("max_neighbors");
  if (k < 1 || k > p[1]) c.fail("max_neighbors must be in 1.." + std::to_string(p[1]));
  if (c.attrs.f("radius") <= 0) c.fail("radius must be > 0");
  c.outputs = {{{q[0], q[1], k}, DType::int32}};
}

std::vector<Tensor> lower_radius(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor &pts = in[0], &qs = in[1];
  int64_t B = pts.shape()[0], N = pts.shape()[1], M = qs.shape()[1], D = pts.shape()[2], k = a.i("max_neighbors");
  DType dt = pts.dtype();
  Tensor diff = sub(reshape(qs, {B, M, 1, D}), reshape(pts, {B, 1, N, D}));
  Tensor d2 = reduce("sum", mul(diff, diff), {3}, false);              // (B, M, N)
  double r2 = a.f("radius") * a.f("radius");
  Tensor inside = op("less_equal", {d2, scalar(r2, dt)});
  Tensor key = where(inside, iota(N, 3, 2, dt), scalar(static_cast<double>(N), dt));
  auto [v, i] = bitonic_sort(reshape(key, {B * M, N}), false);
  Tensor first = reshape(narrow(v, 1, 0, k), {B, M, k});
  Tensor found = op("less", {first, scalar(static_cast<double>(N), dt)});
  return {index_cast(where(found, first, scalar(-1.0, dt)))};
}

// ---- normalisation bridges -------------------------------------------------------------


std::vector<Tensor> lower_minmax(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor& x = in[0];
  std::vector<int64_t> axes;
  if (a.has("axis")) axes = a.ints("axis");
  else
    for (int i = 0; i < x.rank(); ++i) axes.push_back(i);
  Tensor lo = reduce("min", x, axes, true), hi = reduce("max", x, axes, true);
  Tensor range = add(sub(hi, lo), scalar(a.f("eps"), x.dtype()));
  return {div(sub(x, lo), range)};
}

std::vector<Tensor> lower_lrn(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor& x = in[0];
  int64_t size = a.i("size"), C = x.shape()[1];
  Tensor sq = mul(x, x);
  int64_t before = size / 2, after = (size - 1) / 2;
  std::vector<int64_t> pad(2 * x.rank(), 0);  // F.pad order: last axis first
  int ci = 2 * (x.rank() - 2);
  pad[ci] = before;
  pad[ci + 1] = after;
  Tensor sp = op("pad", {sq}, {{"pad", pad}, {"mode", std::string("constant")}, {"value", 0.0}});
  Tensor s = narrow(sp, 1, 0, C);
  for (int64_t o = 1; o < size; ++o) s = add(s, narrow(sp, 1, o, C));
  Tensor base = add(scalar(a.f("k"), x.dtype()), mul(s, scalar(a.f("alpha") / static_cast<double>(size), x.dtype())));
  return {div(x, op("pow", {base, scalar(a.f("beta"), x.dtype())}))};
}

// ---- layout bridges --------------------------------------------------------------------

void infer_space_channel(InferContext& c) {
  c.expect_rank(0, 4, 4, "x");
  const Shape& s = c.in(0).shape();
  int64_t bh = c.attrs.i("block_h"), bw = c.attrs.i("block_w");
  if (bh < 1 || bw < 1) c.fail("block_h and block_w must be >= 1");
  if (c.op.name == "space_to_channel") {
    if (s[2] % bh || s[3] % bw) c.fail("x " + shape_str(s) + " is not divisible into " + std::to_string(bh) + "x" + std::to_string(bw) + " blocks");
    c.outputs = {{{s[0], s[1] * bh * bw, s[2] / bh, s[3] / bw}, c.in(0).dtype()}};
  } else {
    if (s[1] % (bh * bw)) c.fail("channels of x " + shape_str(s) + " must be divisible by " + std::to_string(bh * bw));
    c.outputs = {{{s[0], s[1] / (bh * bw), s[2] * bh, s[3] * bw}, c.in(0).dtype()}};
  }
}

std::vector<Tensor> lower_space_to_channel(const std::vector<Tensor>& in, const Attrs& a) {
  const Shape& s = in[0].shape();
  int64_t bh = a.i("block_h"), bw = a.i("block_w");
  Tensor v = reshape(in[0], {s[0] * s[1], s[2] / bh, bh, s[3] / bw, bw});
  return {reshape(permute(v, {0, 2, 4, 1, 3}), {s[0], s[1] * bh * bw, s[2] / bh, s[3] / bw})};
}

std::vector<Tensor> lower_channel_to_space(const std::vector<Tensor>& in, const Attrs& a) {
  const Shape& s = in[0].shape();
  int64_t bh = a.i("block_h"), bw = a.i("block_w"), C = s[1] / (bh * bw);
  Tensor v = reshape(in[0], {s[0] * C, bh, bw, s[2], s[3]});
  return {reshape(permute(v, {0, 3, 1, 4, 2}), {s[0], C, s[2] * bh, s[3] * bw})};
}

void infer_space_batch(InferContext& c) {
  c.expect_rank(0, 4, 4, "x");
  const Shape& s = c.in(0).shape();
  auto blk = c.attrs.ints("block_shape");
  if (blk.size() == 1) blk.push_back(blk[0]);
  if (blk.size() != 2 || blk[0] < 1 || blk[1] < 1) c.fail("block_shape must be an int or a pair >= 1");
  auto p = c.attrs.has(c.op.name == "space_to_batch" ? "paddings" : "crops")
               ? c.attrs.ints(c.op.name == "space_to_batch" ? "paddings" : "crops")
               : std::vector<int64_t>{0, 0, 0, 0};
  if (p.size() != 4) c.fail("paddings/crops must be (top, bottom, left, right)");
  c.attrs.set("block_shape", blk);
  if (c.op.name == "space_to_batch") {
    int64_t H = s[2] + p[0] + p[1], W = s[3] + p[2] + p[3];
    if (H % blk[0] || W % blk[1]) c.fail("padded size " + std::to_string(H) + "x" + std::to_string(W) + " is not divisible by the block " + attr_str(blk));
    c.attrs.set("paddings", p);
    c.outputs = {{{s[0] * blk[0] * blk[1], s[1], H / blk[0], W / blk[1]}, c.in(0).dtype()}};
  } else {
    if (s[0] % (blk[0] * blk[1])) c.fail("batch of x " + shape_str(s) + " must be divisible by " + std::to_string(blk[0] * blk[1]));
    int64_t H = s[2] * blk[0] - p[0] - p[1], W = s[3] * blk[1] - p[2] - p[3];
    if (H < 1 || W < 1) c.fail("crops " + attr_str(p) + " remove the whole output");
    c.attrs.set("crops", p);
    c.outputs = {{{s[0] / (blk[0] * blk[1]), s[1], H, W}, c.in(0).dtype()}};
  }
}

std::vector<Tensor> lower_space_to_batch(const std::vector<Tensor>& in, const Attrs& a) {
  auto blk = a.ints("block_shape"), p = a.ints("paddings");
  Tensor x = in[0];
  if (p[0] || p[1] || p[2] || p[3])
    x = op("pad", {x}, {{"pad", std::vector<int64_t>{p[2], p[3], p[0], p[1]}}, {"mode", std::string("constant")}, {"value", 0.0}});
  const Shape s = x.shape();
  int64_t bh = blk[0], bw = blk[1], Hb = s[2] / bh, Wb = s[3] / bw;
  Tensor v = reshape(x, {s[0] * s[1], Hb, bh, Wb, bw});
  return {reshape(permute(v, {2, 4, 0, 1, 3}), {bh * bw * s[0], s[1], Hb, Wb})};
}

std::vector<Tensor> lower_batch_to_space(const std::vector<Tensor>& in, const Attrs& a) {
  auto blk = a.ints("block_shape"), cr = a.ints("crops");
  const Shape& s = in[0].shape();
  int64_t bh = blk[0], bw = blk[1], N = s[0] / (bh * bw);
  Tensor v = reshape(in[0], {bh, bw, N * s[1], s[2], s[3]});
  Tensor y = reshape(permute(v, {2, 3, 0, 4, 1}), {N, s[1], s[2] * bh, s[3] * bw});
  int64_t H = s[2] * bh, W = s[3] * bw;
  if (cr[0] || cr[1]) y = narrow(y, 2, cr[0], H - cr[0] - cr[1]);
  if (cr[2] || cr[3]) y = narrow(y, 3, cr[2], W - cr[2] - cr[3]);
  return {y};
}

// ---- views and runtime slicing ---------------------------------------------------------

void infer_input_view(InferContext& c) {
  auto shape = c.attrs.ints("shape");
  int64_t off = c.attrs.i("offset", 0), n = numel(c.in(0).shape());
  int64_t want = 1;
  for (auto d : shape) {
    if (d < 1) c.fail("shape " + attr_str(shape) + " has an empty dimension");
    want *= d;
  }
  if (off < 0 || off + want > n)
    c.fail("a view of " + std::to_string(want) + " elements at offset " + std::to_string(off) + " does not fit x " +
           shape_str(c.in(0).shape()) + " (" + std::to_string(n) + " elements)");
  c.attrs.set("offset", off);
  c.outputs = {{Shape(shape.begin(), shape.end()), c.in(0).dtype()}};
}

std::vector<Tensor> lower_input_view(const std::vector<Tensor>& in, const Attrs& a) {
  auto shape = a.ints("shape");
  Tensor flat = reshape(in[0], {numel(in[0].shape())});
  return {reshape(narrow(flat, 0, a.i("offset"), numel(Shape(shape.begin(), shape.end()))), Shape(shape.begin(), shape.end()))};
}

void infer_dynamic_slice(InferContext& c) {
  c.expect_float(0);
  const Shape& s = c.in(0).shape();
  if (s.empty()) c.fail("x must have rank >= 1");
  if (is_float(c.in(1).dtype()) || numel(c.in(1).shape()) != 1)
    c.fail("start must be one integer (an int32 tensor of one element), got " + std::string(dtype_name(c.in(1).dtype())) +
           " " + shape_str(c.in(1).shape()));
  int axis = normalize_axis(c.attrs.i("dim", 0), static_cast<int>(s.size()), c.op.name);
  int64_t len = c.attrs.i("length");
  check_index_range(c, s[axis], "the sliced axis");
  if (len < 1 || len > s[axis]) c.fail("length must be in 1.." + std::to_string(s[axis]));
  c.attrs.set("dim", int64_t{axis});
  Shape out = s;
  out[axis] = len;
  c.outputs = {{out, c.in(0).dtype()}};
}

std::vector<Tensor> lower_dynamic_slice(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor& x = in[0];
  int axis = static_cast<int>(a.i("dim"));
  int64_t n = x.shape()[axis], len = a.i("length");
  DType dt = x.dtype();
  // start is clamped to [0, n - length] (as XLA's dynamic_slice), then a one-hot selection
  // matrix picks the window with a matmul: exact, since each column holds one 1.
  Tensor start = op("clip", {cast(reshape(in[1], {1, 1}), dt)}, {{"min", 0.0}, {"max", static_cast<double>(n - len)}});
  Tensor want = add(start, iota(len, 2, 0, dt));                           // (len, 1)
  Tensor sel = cast(op("equal", {iota(n, 2, 1, dt), want}), dt);          // (len, n)
  std::vector<int64_t> perm;
  Shape moved;
  Tensor rows = rows_last(x, axis, perm, moved);                           // (R, n)
  Tensor picked = op("matmul", {rows, permute(sel, {1, 0})});              // (R, len)
  return {unrows(picked, perm, moved, len)};
}

void infer_dynamic_update_slice(InferContext& c) {
  c.expect_float(0);
  c.expect_same_dtype(0, 1);
  const Shape &s = c.in(0).shape(), &u = c.in(1).shape();
  if (s.empty()) c.fail("x must have rank >= 1");
  if (is_float(c.in(2).dtype()) || numel(c.in(2).shape()) != 1)
    c.fail("start must be one integer (an int32 tensor of one element), got " + std::string(dtype_name(c.in(2).dtype())) +
           " " + shape_str(c.in(2).shape()));
  int axis = normalize_axis(c.attrs.i("dim", 0), static_cast<int>(s.size()), c.op.name);
  Shape expect = s;
  if (u.size() == s.size()) expect[axis] = u[axis];
  if (u.size() != s.size() || u != expect || u[axis] < 1 || u[axis] > s[axis])
    c.fail("update " + shape_str(u) + " must match x " + shape_str(s) + " except along dim " + std::to_string(axis) +
           ", where it may hold 1.." + std::to_string(s[axis]));
  check_index_range(c, s[axis], "the updated axis");
  c.attrs.set("dim", int64_t{axis});
  c.outputs = {{s, c.in(0).dtype()}};
}

// x with the window [start, start + len) along dim replaced by update; start clamped to
// [0, n - len] as dynamic_slice clamps it. A one-hot placement matrix P (n, len) puts the
// update's rows in place with a matmul and a 0/1 mask keeps x elsewhere: exact, since each
// output element is one value plus zeros.
std::vector<Tensor> lower_dynamic_update_slice(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor &x = in[0], &update = in[1];
  int axis = static_cast<int>(a.i("dim"));
  const Shape& s = x.shape();
  int64_t n = s[axis], len = update.shape()[axis], before = 1, after = 1;
  for (int i = 0; i < axis; ++i) before *= s[i];
  for (int i = axis + 1; i < static_cast<int>(s.size()); ++i) after *= s[i];
  DType dt = x.dtype();
  Tensor start = op("clip", {cast(reshape(in[2], {1, 1}), dt)}, {{"min", 0.0}, {"max", static_cast<double>(n - len)}});
  Tensor rows = iota(n, 2, 0, dt);                                                   // (n, 1)
  Tensor place = cast(op("equal", {rows, add(start, iota(len, 2, 1, dt))}), dt);      // (n, len)
  Tensor placed = op("matmul", {place, reshape(update, {before, len, after})});       // (before, n, after)
  Tensor inside = mul(cast(op("greater_equal", {rows, start}), dt),
                      cast(op("less", {rows, add(start, scalar(static_cast<double>(len), dt))}), dt));  // (n, 1)
  Tensor kept = mul(reshape(x, {before, n, after}), sub(scalar(1.0, dt), inside));
  return {reshape(add(kept, placed), s)};
}

void infer_scaled(InferContext& c) {
  c.expect_float(0);
  c.expect_same_dtype(0, 1);
  Shape s;
  if (!broadcast_shapes(c.in(0).shape(), c.in(1).shape(), s)) c.fail("shapes of x and y do not broadcast");
  std::string m = c.attrs.s("op", "add");
  if (m != "add" && m != "sub" && m != "mul" && m != "maximum" && m != "minimum")
    c.fail("op must be add, sub, mul, maximum or minimum, got '" + m + "'");
  c.attrs.set("op", m);
  c.outputs = {{s, c.in(0).dtype()}};
}

std::vector<Tensor> lower_scaled(const std::vector<Tensor>& in, const Attrs& a) {
  DType dt = in[0].dtype();
  Tensor x = a.f("x_scale") == 1.0 ? in[0] : mul(in[0], scalar(a.f("x_scale"), dt));
  Tensor y = a.f("y_scale") == 1.0 ? in[1] : mul(in[1], scalar(a.f("y_scale"), dt));
  Tensor r = op(a.s("op"), {x, y});
  return {a.f("bias") == 0.0 ? r : add(r, scalar(a.f("bias"), dt))};
}

}  // namespace

void register_bridge_ops() {
  const auto T = ParamKind::tensor;
  for (bool mx : {true, false}) {
    OpDef d = bridge(mx ? "argmax" : "argmin", "ranking",
                     mx ? "Index of the first maximum along dim (None: flattened), int32 (torch.argmax)."
                        : "Index of the first minimum along dim (None: flattened), int32 (torch.argmin).",
                     "reduce_max/min, equal, select, reduce_min", {P("x", T), P("dim", ParamKind::any, "None"), P("keepdims", ParamKind::bool_, "False")});
    d.method = true;
    d.infer = infer_arg;
    d.lower = [mx](const std::vector<Tensor>& in, const Attrs& a) { return lower_arg(in, a, mx); };
    d.no_grad = true;  // an index
    register_op(std::move(d));
  }
  {
    OpDef d = bridge("sort", "ranking", "Sorted values and int32 indices along dim (torch.sort; ties keep index order).",
                     "bitonic network of select/less/equal", {P("x", T), P("dim", ParamKind::int_, "-1"), P("descending", ParamKind::bool_, "False")});
    d.num_outputs = 2;
    d.infer = infer_sort;
    d.lower = [](const std::vector<Tensor>& in, const Attrs& a) { return lower_sort(in, a, false); };
    register_op(std::move(d));
    OpDef t = bridge("topk", "ranking", "The k largest (or smallest) values and int32 indices along dim, sorted (torch.topk).",
                     "bitonic network, then slice", {P("x", T), P("k", ParamKind::int_), P("dim", ParamKind::int_, "-1"),
                                                     P("largest", ParamKind::bool_, "True")});
    t.num_outputs = 2;
    t.infer = infer_sort;
    t.lower = [](const std::vector<Tensor>& in, const Attrs& a) { return lower_sort(in, a, true); };
    register_op(std::move(t));
  }
  {
    OpDef d = bridge("sdpa", "attention",
                     "Scaled dot-product attention softmax(q k^T * scale + mask) v (torch scaled_dot_product_attention).",
                     "matmul, mul, select/add, softmax, matmul; query-tiled past 2 MiB of scores",
                     {P("q", T), P("k", T), P("v", T), P("attn_mask", ParamKind::opt_tensor, "None"),
                      P("is_causal", ParamKind::bool_, "False"), P("scale", ParamKind::any, "None")});
    d.infer = infer_sdpa;
    d.lower = lower_sdpa;
    d.aliases = {"scaled_dot_product_attention"};
    register_op(std::move(d));
  }
  {
    OpDef d = bridge("cross_product", "geometry", "Cross product of 3-vectors along dim (torch.linalg.cross).",
                     "slice, mul, sub, concat", {P("a", T), P("b", T), P("dim", ParamKind::int_, "-1")});
    d.infer = infer_cross;
    d.lower = lower_cross;
    register_op(std::move(d));
    OpDef c = bridge("cross_correlation", "geometry",
                     "FlowNet correlation: mean over channels of x * y shifted by every (dy, dx) in [-D, D]^2.",
                     "pad, slice, mul, reduce_mean, concat", {P("x", T), P("y", T), P("max_displacement", ParamKind::int_)});
    c.infer = infer_correlation;
    c.lower = lower_correlation;
    register_op(std::move(c));
    OpDef v = bridge("cost_volume", "geometry",
                     "Stereo cost volume: out[:, d] = mean over channels of left * right shifted right by d, d < max_disparity.",
                     "pad, slice, mul, reduce_mean, concat", {P("left", T), P("right", T), P("max_disparity", ParamKind::int_)});
    v.infer = infer_correlation;
    v.lower = lower_cost_volume;
    register_op(std::move(v));
    OpDef f = bridge("farthest_point_sampling", "geometry",
                     "Indices (B, k) of k points chosen greedily farthest from those already chosen, starting at point 0.",
                     "unrolled: one-hot matmul, sub, square-sum, minimum, argmax", {P("points", T), P("k", ParamKind::int_)});
    f.infer = infer_fps;
    f.lower = lower_fps;
    f.no_grad = true;  // indices
    register_op(std::move(f));
    OpDef r = bridge("radius_search", "geometry",
                     "For each query, the first max_neighbors point indices (in index order) within radius; -1 pads (ball query).",
                     "sub, square-sum, less_equal, select, bitonic sort", {P("points", T), P("queries", T), P("radius", ParamKind::float_),
                                                                         P("max_neighbors", ParamKind::int_)});
    r.infer = infer_radius;
    r.lower = lower_radius;
    r.no_grad = true;  // indices
    register_op(std::move(r));
  }
  {
    OpDef d = bridge("minmax_norm", "normalization", "(x - min) / (max - min + eps) over axis (None: all axes).",
                     "reduce_min, reduce_max, sub, real_div", {P("x", T), P("axis", ParamKind::axes, "None"), P("eps", ParamKind::float_, "0.0")});
    d.infer = [](InferContext& c) {
      c.expect_float(0);
      if (c.attrs.has("axis")) {
        std::vector<int64_t> axes;
        for (auto a : c.attrs.ints("axis")) axes.push_back(normalize_axis(a, c.in(0).rank(), c.op.name));
        c.attrs.set("axis", axes);
      }
      c.attrs.set("eps", c.attrs.f("eps", 0.0));
      c.outputs = {c.in(0).type()};
    };
    d.lower = lower_minmax;
    register_op(std::move(d));
    OpDef l = bridge("lrn", "normalization", "Local response norm across channels, the native LRN layer (same math as local_response_norm).",
                     "square, pad, slice/add window sum, pow, real_div",
                     {P("x", T), P("size", ParamKind::int_), P("alpha", ParamKind::float_, "0.0001"),
                      P("beta", ParamKind::float_, "0.75"), P("k", ParamKind::float_, "1.0")});
    l.infer = [](InferContext& c) {
      c.expect_float(0);
      c.expect_rank(0, 3, 5, "x");
      if (c.attrs.i("size") < 1) c.fail("size must be >= 1");
      for (auto [k, v] : {std::pair{"alpha", 1e-4}, std::pair{"beta", 0.75}, std::pair{"k", 1.0}}) c.attrs.set(k, c.attrs.f(k, v));
      c.outputs = {c.in(0).type()};
    };
    l.lower = lower_lrn;
    register_op(std::move(l));
  }
  {
    OpDef s2c = bridge("space_to_channel", "layout", "(N, C, H, W) -> (N, C*bh*bw, H/bh, W/bw), rectangular blocks, channel-major (CRD).",
                       "reshape, transpose, reshape", {P("x", T), P("block_h", ParamKind::int_), P("block_w", ParamKind::int_)});
    s2c.infer = infer_space_channel;
    s2c.lower = lower_space_to_channel;
    register_op(std::move(s2c));
    OpDef c2s = bridge("channel_to_space", "layout", "Inverse of space_to_channel.", "reshape, transpose, reshape",
                       {P("x", T), P("block_h", ParamKind::int_), P("block_w", ParamKind::int_)});
    c2s.infer = infer_space_channel;
    c2s.lower = lower_channel_to_space;
    register_op(std::move(c2s));
    OpDef s2b = bridge("space_to_batch", "layout", "Pad, then move block_shape spatial blocks into the batch (tf.space_to_batch_nd).",
                       "pad, reshape, transpose, reshape",
                       {P("x", T), P("block_shape", ParamKind::any), P("paddings", ParamKind::ints, "None")});
    s2b.infer = infer_space_batch;
    s2b.lower = lower_space_to_batch;
    register_op(std::move(s2b));
    OpDef b2s = bridge("batch_to_space", "layout", "Inverse of space_to_batch, then crop (tf.batch_to_space_nd).",
                       "reshape, transpose, reshape, slice", {P("x", T), P("block_shape", ParamKind::any), P("crops", ParamKind::ints, "None")});
    b2s.infer = infer_space_batch;
    b2s.lower = lower_batch_to_space;
    register_op(std::move(b2s));
    OpDef fl = bridge("flatten_channels", "layout",
                      "The bridge form of flatten: (N, C, H, W) -> (N, C*H*W, 1, 1), moving space into channels for a 1x1-conv head.",
                      "reshape", {P("x", T)});
    fl.infer = [](InferContext& c) {
      c.expect_rank(0, 2, 5, "x");
      const Shape& s = c.in(0).shape();
      c.outputs = {{{s[0], numel(s) / s[0], 1, 1}, c.in(0).dtype()}};
    };
    fl.lower = [](const std::vector<Tensor>& in, const Attrs&) {
      const Shape& s = in[0].shape();
      return std::vector<Tensor>{reshape(in[0], {s[0], numel(s) / s[0], 1, 1})};
    };
    register_op(std::move(fl));
  }
  {
    OpDef v = bridge("input_view", "layout", "A view of `shape` on x's flat data starting at element offset.",
                     "reshape, slice_by_size, reshape", {P("x", T), P("shape", ParamKind::ints), P("offset", ParamKind::int_, "0")});
    v.infer = infer_input_view;
    v.lower = lower_input_view;
    register_op(std::move(v));
    OpDef ds = bridge("dynamic_slice", "layout",
                      "x.narrow(dim, start, length) with start a runtime int32 tensor, clamped to [0, n - length].",
                      "clip, equal, one-hot matmul", {P("x", T), P("start", T), P("length", ParamKind::int_), P("dim", ParamKind::int_, "0")});
    ds.infer = infer_dynamic_slice;
    ds.lower = lower_dynamic_slice;
    register_op(std::move(ds));
    OpDef dus = bridge("dynamic_update_slice", "layout",
                       "x with x.narrow(dim, start, update.shape[dim]) replaced by update, start a runtime int32 tensor "
                       "clamped to [0, n - length] (a KV cache's write; jax.lax.dynamic_update_slice).",
                       "clip, equal, one-hot matmul, mul, add",
                       {P("x", T), P("update", T), P("start", T), P("dim", ParamKind::int_, "0")});
    dus.infer = infer_dynamic_update_slice;
    dus.lower = lower_dynamic_update_slice;
    register_op(std::move(dus));
    OpDef se = bridge("scaled_elementwise", "binary", "op(x * x_scale, y * y_scale) + bias, op in add/sub/mul/maximum/minimum.",
                      "mul, mul, op, add", {P("x", T), P("y", T), P("op", ParamKind::str, "'add'"), P("x_scale", ParamKind::float_, "1.0"),
                                            P("y_scale", ParamKind::float_, "1.0"), P("bias", ParamKind::float_, "0.0")});
    se.infer = infer_scaled;
    se.lower = lower_scaled;
    register_op(std::move(se));
  }
}

}  // namespace af
