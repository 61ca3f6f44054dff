// Indexing ops: embedding, index_select, gather, cumsum, one_hot. Gather is not an engine op,
// so each runs inside the one program as a one-hot selection (an fp16 equal of the ids
// against a range, fp16 being how the engine holds integers) and a matmul or a masked sum;
// each product has a single non-zero term, so the result is the stored value exactly.
// Ranges over 2048 are split into 2048-row chunks first (passes/index_ranges.cpp), each
// seeing its ids offset by its first row, so every compare is of integers fp16 holds exactly.
// index_select, gather, cumsum (a matmul with a triangular matrix of ones) and one_hot are
// bridges lowered so; embedding is one layer whose MIL is that one-hot matmul and whose
// simulator kernel copies the rows directly (the same values, without the vocabulary-wide
// matmul on the CPU; the mil backend runs the MIL form against it).
#include <string>
#include <vector>

#include <cmath>
#include <cstring>
#include <limits>

#include "aneforge/fp16.h"
#include "ops/lower_util.h"
#include "ops/mil_util.h"
#include "ops/register.h"

namespace af {
namespace {

using namespace lw;
constexpr auto T = ParamKind::tensor;

OpDef indexing_op(const char* name, const char* doc, const char* lowered, std::vector<Param> params) {
  return bridge_def(name, "indexing", doc, lowered, std::move(params));
}

// The canonical (non-negative) dim, stored back in the attributes.
int norm_dim(InferContext& c, int64_t dim, int rank) {
  int d = normalize_axis(dim, rank, c.op.name);
  c.attrs.set("dim", int64_t{d});
  return d;
}

void expect_index(InferContext& c, size_t i, const char* what) {
  if (c.in(i).dtype() != DType::int32)
    c.fail(std::string(what) + " must be int32 indices, got " + std::string(dtype_name(c.in(i).dtype())));
}

// A constant int32 range [first, first + n) on the last axis of a rank-`rank` tensor.
Tensor range_i32(int64_t first, int64_t n, int rank) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(first + i);
  Shape s(rank, 1);
  s[rank - 1] = n;
  return constant(std::move(v), s, DType::int32);
}

// (m, n) one-hot rows of `idx` (m, 1) int32 against columns first .. first+n-1, in `dt`.
Tensor one_hot_rows(const Tensor& idx, int64_t first, int64_t n, DType dt) {
  return cast(op("equal", {idx, range_i32(first, n, 2)}), dt);
}

void infer_embedding(InferContext& c) {
  expect_index(c, 0, "x");
  c.expect_float(1, "weight");
  if (c.in(1).rank() != 2) c.fail("weight must be (num_embeddings, embedding_dim), got " + shape_str(c.in(1).shape()));
  if (c.in(0).rank() > 4) c.fail("x must have rank <= 4 (the result adds one axis), got " + shape_str(c.in(0).shape()));
  if (c.in(1).shape()[0] > (int64_t(1) << 24)) c.fail("more than 2^24 embeddings");
  // After split_index_ranges: the ids offset for each further 2048-row chunk of the table.
  const int64_t chunks = (c.in(1).shape()[0] + kIndexChunk - 1) / kIndexChunk;
  if (c.inputs.size() > 2 && static_cast<int64_t>(c.inputs.size()) != chunks + 1)
    c.fail("takes the ids offset for each of its " + std::to_string(chunks - 1) + " further 2048-row chunks, got " +
           std::to_string(c.inputs.size() - 2));
  for (size_t i = 2; i < c.inputs.size(); ++i)
    if (c.in(i).dtype() != DType::int32 || c.in(i).shape() != c.in(0).shape()) c.fail("offset ids must be int32 shaped like x");
  Shape s = c.in(0).shape();
  s.push_back(c.in(1).shape()[1]);
  c.outputs = {{s, c.in(1).dtype()}};
}

// The one-hot matmul's result, without the matmul: row x of weight, except that a non-finite
// weight in a row not selected still reaches the sum as 0 * inf = NaN (as on the engine).
void embedding_kernel(const KernelArgs& k) {
  const Shape& ws = k.in_type(1).shape;
  const int64_t V = ws[0], D = ws[1], n = numel(k.in_type(0).shape);
  const float* w = k.in[1];
  const uint16_t* wh = k.half(1);  // or the table as fp16 bits: only the rows asked for are widened
  std::vector<int32_t> bad(static_cast<size_t>(D), 0);  // non-finite weights per column
  bool any_bad = false;
  for (int64_t r = 0; r < V && !k.known_finite(1); ++r)
    for (int64_t d = 0; d < D; ++d)
      if (wh ? (wh[r * D + d] & 0x7c00) == 0x7c00 : !std::isfinite(w[r * D + d])) ++bad[d], any_bad = true;
  for (int64_t t = 0; t < n; ++t) {
    float fi = k.in[0][t];
    bool in_range = fi >= 0 && fi < static_cast<float>(V);
    int64_t at = in_range ? static_cast<int64_t>(fi) * D : -1;
    float* dst = k.out[0] + t * D;
    if (at >= 0 && wh) halves_to_floats(wh + at, dst, static_cast<size_t>(D));
    else if (at >= 0) std::memcpy(dst, w + at, D * sizeof(float));
    else std::memset(dst, 0, D * sizeof(float));  // no column of the one-hot matches
    const float* row = at >= 0 ? dst : nullptr;  // the row's values, as widened
    if (any_bad)
      for (int64_t d = 0; d < D; ++d)
        if (bad[d] - (row && !std::isfinite(row[d]) ? 1 : 0) > 0) dst[d] = std::numeric_limits<float>::quiet_NaN();
  }
}

// MIL: per 2048-row chunk of the table, equal(its ids, 0..len-1) as an fp16 one-hot, matmul
// with its rows; the chunks summed. Chunk k compares the ids offset by 2048 k (its own input,
// from split_index_ranges), so every id compared is exact in fp16.
void emit_embedding(mil::Builder& b, const mil::StepView& s) {
  using milx::like;
  const mil::Type &it = s.in_types[0], &wt = s.in_types[1];
  const int64_t n = std::max<int64_t>(1, numel(it.shape)), V = wt.shape[0], D = wt.shape[1];
  const int64_t chunks = (V + kIndexChunk - 1) / kIndexChunk;
  if (chunks > 1 && static_cast<int64_t>(s.in.size()) != chunks + 1)
    throw Error(Status::internal, "MIL: an embedding of more than 2048 rows reached emission without offset ids");
  std::string acc;
  for (int64_t k = 0; k < chunks; ++k) {
    const int64_t first = k * kIndexChunk, len = std::min(kIndexChunk, V - first);
    std::string ids = k == 0 ? s.in[0] : s.in[1 + k];
    std::string flat = b.op("reshape", {{"x", {ids}}, {"shape", {b.ints({n, 1}, "shape")}}}, like(it, {n, 1}));
    std::vector<float> cols(static_cast<size_t>(len));
    for (int64_t i = 0; i < len; ++i) cols[i] = static_cast<float>(i);
    std::string oh = b.compare("equal", flat, b.tensor(cols, {1, len}, it.dtype, "rows"), like(wt, {n, len}));
    std::string rows = len == V ? s.in[1]
                                : b.op("slice_by_size", {{"x", {s.in[1]}}, {"begin", {b.ints({first, 0}, "begin")}},
                                                         {"size", {b.ints({len, D}, "size")}}}, like(wt, {len, D}));
    std::string part = b.op("matmul", {{"x", {oh}}, {"y", {rows}}, {"transpose_x", {b.bool_scalar(false, "transpose_x")}},
                                       {"transpose_y", {b.bool_scalar(false, "transpose_y")}}}, like(wt, {n, D}));
    acc = acc.empty() ? part : b.op("add", {{"x", {acc}}, {"y", {part}}}, like(wt, {n, D}));
  }
  b.op("reshape", {{"x", {acc}}, {"shape", {b.ints(std::vector<int64_t>(s.out_types[0].shape.begin(), s.out_types[0].shape.end()), "shape")}}},
       s.out_types[0], s.out[0]);
}

void infer_index_select(InferContext& c) {
  expect_index(c, 1, "index");
  if (c.in(1).rank() > 1) c.fail("index must be 1-D, got " + shape_str(c.in(1).shape()));
  int d = norm_dim(c, c.attrs.i("dim"), c.in(0).rank());
  if (!is_float(c.in(0).dtype())) c.fail("x must be fp16 or fp32");
  Shape s = c.in(0).shape();
  s[d] = std::max<int64_t>(1, numel(c.in(1).shape()));
  c.outputs = {{s, c.in(0).dtype()}};
}

std::vector<Tensor> lower_index_select(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor& x = in[0];
  int d = static_cast<int>(a.i("dim"));
  int64_t n = x.shape()[d], m = std::max<int64_t>(1, numel(in[1].shape()));
  std::vector<int64_t> perm;
  Shape moved;
  Tensor rows = rows_last(x, d, perm, moved);  // (R, n)
  Tensor sel = one_hot_rows(reshape(in[1], {m, 1}), 0, n, x.dtype());  // (m, n)
  return {unrows(op("matmul", {rows, permute(sel, {1, 0})}), perm, moved, m)};
}

void infer_gather(InferContext& c) {
  expect_index(c, 1, "index");
  int r = c.in(0).rank();
  if (c.in(1).rank() != r) c.fail("index must have the rank of x (" + std::to_string(r) + "), got " + shape_str(c.in(1).shape()));
  int d = norm_dim(c, c.attrs.i("dim"), r);
  if (!is_float(c.in(0).dtype())) c.fail("x must be fp16 or fp32");
  if (r > 4) c.fail("x must have rank <= 4");
  for (int i = 0; i < r; ++i)
    if (i != d && c.in(1).shape()[i] > c.in(0).shape()[i])
      c.fail("index " + shape_str(c.in(1).shape()) + " is larger than x " + shape_str(c.in(0).shape()) + " on dim " +
             std::to_string(i));
  c.outputs = {{c.in(1).shape(), c.in(0).dtype()}};
}

std::vector<Tensor> lower_gather(const std::vector<Tensor>& in, const Attrs& a) {
  Tensor x = in[0];
  const Tensor& idx = in[1];
  int d = static_cast<int>(a.i("dim")), r = x.rank();
  // x cut to the index's size on the other dims, then dim moved last for both.
  std::vector<int64_t> begin(r, 0), size(idx.shape().begin(), idx.shape().end());
  size[d] = x.shape()[d];
  if (Shape(size.begin(), size.end()) != x.shape()) x = op("slice_by_size", {x}, {{"begin", begin}, {"size", size}});
  std::vector<int64_t> perm;
  for (int i = 0; i < r; ++i)
    if (i != d) perm.push_back(i);
  perm.push_back(d);
  std::vector<int64_t> ident(r);
  for (int i = 0; i < r; ++i) ident[i] = i;
  auto last = [&](const Tensor& t) { return perm == ident ? t : permute(t, perm); };
  Tensor xl = last(x), il = last(idx);                              // (..., n), (..., m)
  int64_t n = x.shape()[d];
  Shape is = il.shape(), xs = xl.shape();
  Shape i5 = is, x5 = xs;
  i5.push_back(1);                                                 // (..., m, 1)
  x5.insert(x5.end() - 1, 1);                                      // (..., 1, n)
  Tensor sel = cast(op("equal", {reshape(il, i5), range_i32(0, n, r + 1)}), x.dtype());  // (..., m, n)
  Tensor picked = reduce("sum", mul(sel, reshape(xl, x5)), {r}, false);                // (..., m)
  std::vector<int64_t> inv(r);
  for (int i = 0; i < r; ++i) inv[perm[i]] = i;
  return {perm == ident ? picked : permute(picked, inv)};
}

void infer_cumsum(InferContext& c) {
  if (!is_float(c.in(0).dtype())) c.fail("x must be fp16 or fp32, got " + std::string(dtype_name(c.in(0).dtype())));
  int d = norm_dim(c, c.attrs.i("dim"), c.in(0).rank());
  if (c.in(0).shape()[d] > 16384) c.fail("dim has " + std::to_string(c.in(0).shape()[d]) + " elements; at most 16384");
  c.outputs = {c.in(0).type()};
}

std::vector<Tensor> lower_cumsum(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor& x = in[0];
  int d = static_cast<int>(a.i("dim"));
  int64_t n = x.shape()[d];
  std::vector<float> tri(static_cast<size_t>(n * n), 0.0f);  // tri[k][j] = 1 for k <= j
  for (int64_t k = 0; k < n; ++k)
    for (int64_t j = k; j < n; ++j) tri[k * n + j] = 1.0f;
  std::vector<int64_t> perm;
  Shape moved;
  Tensor rows = rows_last(x, d, perm, moved);
  return {unrows(op("matmul", {rows, constant(std::move(tri), {n, n}, x.dtype())}), perm, moved, n)};
}

void infer_one_hot(InferContext& c) {
  expect_index(c, 0, "x");
  int64_t k = c.attrs.i("num_classes", -1);
  if (k < 1)
    c.fail("num_classes must be given (>= 1): the result's shape cannot depend on the values (static shapes)");
  if (c.in(0).rank() > 4) c.fail("x must have rank <= 4");
  Shape s = c.in(0).shape();
  s.push_back(k);
  c.outputs = {{s, DType::int32}};
}

std::vector<Tensor> lower_one_hot(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor& x = in[0];
  int64_t k = a.i("num_classes");
  Shape s = x.shape();
  s.push_back(1);
  return {cast(op("equal", {reshape(x, s), range_i32(0, k, static_cast<int>(s.size()))}), DType::int32)};
}

// index_offset: int32 ids minus a chunk's first row (split_index_ranges). On a program
// input the host computes it exactly (a port row per chunk); elsewhere it is a subtraction.
void infer_index_offset(InferContext& c) {
  expect_index(c, 0, "x");
  if (c.attrs.i("offset") <= 0 || c.attrs.i("offset") % kIndexChunk != 0)
    c.fail("offset must be a positive multiple of " + std::to_string(kIndexChunk));
  c.outputs = {c.in(0).type()};
}

void emit_index_offset(mil::Builder& b, const mil::StepView& s) {
  int64_t off = s.attrs().i("offset");
  std::string row = b.port_row(s.in[0], off / kIndexChunk, s.out[0]);
  if (row.empty())
    b.op("sub", {{"x", {s.in[0]}}, {"y", {b.float_scalar(static_cast<double>(off), DType::fp16, "offset")}}}, s.out_types[0], s.out[0]);
}

}  // namespace

void register_indexing_ops() {
  OpDef io;
  io.name = "index_offset";
  io.category = "indexing";
  io.doc = "int32 ids minus offset, a multiple of 2048: the ids one 2048-row chunk of a table sees (internal; "
           "computed on the host for a program input).";
  io.params = {P("x", T), P("offset", ParamKind::int_)};
  io.mil_op = "a row of the input's port (host-computed), else sub";
  io.infer = infer_index_offset;
  io.kernel = [](const KernelArgs& k) {
    float off = static_cast<float>(k.node.attrs.i("offset"));
    for (int64_t i = 0, n = numel(k.in_type(0).shape); i < n; ++i) k.out[0][i] = k.in[0][i] - off;
  };
  io.emit_mil = emit_index_offset;
  io.no_grad = true;
  register_op(std::move(io));

  OpDef e;
  e.name = "embedding";
  e.category = "indexing";
  e.doc = "Rows of weight at the int32 indices x (torch F.embedding); out-of-range indices give zeros.";
  e.params = {P("x", T), P("weight", T)};
  e.mil_op = "equal, select, matmul per 2048-row chunk of weight, summed (a one-hot matmul)";
  e.infer = infer_embedding;
  e.kernel = embedding_kernel;
  e.half_inputs = {1};
  e.finite_checked_inputs = {1};
  e.emit_mil = emit_embedding;
  register_op(std::move(e));
  OpDef s = indexing_op("index_select", "Entries of x at the int32 indices along dim (torch.index_select).",
                        "one-hot (equal), matmul", {P("x", T), P("dim", ParamKind::int_), P("index", T)});
  s.infer = infer_index_select;
  s.lower = lower_index_select;
  s.method = true;
  register_op(std::move(s));
  OpDef g = indexing_op("gather", "x at index along dim, elementwise (torch.gather); index has x's rank.",
                        "one-hot (equal), mul, reduce_sum", {P("x", T), P("dim", ParamKind::int_), P("index", T)});
  g.infer = infer_gather;
  g.lower = lower_gather;
  g.method = true;
  register_op(std::move(g));
  OpDef cs = indexing_op("cumsum", "Running sum along dim (torch.cumsum), accumulated in fp32.",
                         "matmul with a triangular matrix of ones", {P("x", T), P("dim", ParamKind::int_)});
  cs.infer = infer_cumsum;
  cs.lower = lower_cumsum;
  cs.method = true;
  register_op(std::move(cs));
  OpDef oh = indexing_op("one_hot", "int32 one-hot of int32 x over num_classes (torch F.one_hot; num_classes required).",
                         "equal, cast", {P("x", T), P("num_classes", ParamKind::int_, "-1")});
  oh.infer = infer_one_hot;
  oh.lower = lower_one_hot;
  oh.no_grad = true;  // integer output
  register_op(std::move(oh));
}

}  // namespace af

// ---- gradients (in other ops) ----
#include "ops/grad_util.h"

namespace af {

void attach_indexing_grad() {
  using namespace gr;
  // embedding: the rows read get g added back: one_hot(x)^T @ g (no gradient into the indices).
  mutable_op("embedding").grad = [](const Node& n, const std::vector<Tensor>& g) {
    const Tensor &x = n.inputs[0], &w = n.inputs[1];
    int64_t V = w.shape()[0], D = w.shape()[1], M = numel(x.shape());
    // one_hot (split into exact 2048-class chunks past 2048 by split_index_ranges)
    Tensor hot = cast(op("one_hot", {reshape(x, {M})}, {{"num_classes", V}}), g[0].dtype());  // (M, V)
    return std::vector<Tensor>{Tensor(), op("matmul", {permute(hot, {1, 0}), reshape(g[0], {M, D})})};
  };
}

}  // namespace af
