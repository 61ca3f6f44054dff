// matmul (PyTorch broadcasting semantics) and linear (x @ W^T + b), via BLAS.
#include <algorithm>

#include "aneforge/fp16.h"
#include "aneforge/parallel.h"
#include "ops/kernel_util.h"
#include "ops/mil_util.h"
#include "ops/register.h"
#include "runtime/blas.h"

namespace af {

namespace {

// The calling thread's panel buffer (at most about 4 MiB, kept: no page faults per call).
std::vector<float>& panel_buffer(int64_t elems) {
  static thread_local std::vector<float> buf;
  if (buf.size() < static_cast<size_t>(elems)) buf.resize(static_cast<size_t>(elems));
  return buf;
}

// Rows of an fp16-stored weight widened per GEMM call: about 4 MiB of float32 (a piece stays
// in cache between its widening and its use), a multiple of 64 rows.
int64_t panel_rows(int64_t row_elems) {
  return std::max<int64_t>(64, (int64_t{1} << 20) / std::max<int64_t>(1, row_elems) / 64 * 64);
}

// transpose_x / transpose_y (set by the fold_matmul_transposes pass, as MIL's matmul has
// them): the operand's last two axes are read swapped.
bool flag(const Attrs& a, const char* name) { return a.has(name) && a.b(name); }

void infer_matmul(InferContext& c) {
  const Shape &a = c.in(0).shape(), &b = c.in(1).shape();
  c.expect_float(0, "x");
  c.expect_same_dtype(0, 1);
  if (a.empty() || b.empty()) c.fail("both operands need rank >= 1, got " + shape_str(a) + " @ " + shape_str(b));
  const bool tx = flag(c.attrs, "transpose_x"), ty = flag(c.attrs, "transpose_y");
  if ((tx && a.size() < 2) || (ty && b.size() < 2)) c.fail("transpose_x / transpose_y need an operand of rank >= 2");
  Shape a2 = a.size() == 1 ? Shape{1, a[0]} : a, b2 = b.size() == 1 ? Shape{b[0], 1} : b;
  if (tx) std::swap(a2[a2.size() - 1], a2[a2.size() - 2]);
  if (ty) std::swap(b2[b2.size() - 1], b2[b2.size() - 2]);
  int64_t K = a2.back(), Kb = b2[b2.size() - 2];
  if (K != Kb)
    c.fail("x " + shape_str(a) + " @ y " + shape_str(b) + ": inner dimensions differ (" +
           std::to_string(K) + " vs " + std::to_string(Kb) + ")");
  Shape ba(a2.begin(), a2.end() - 2), bb(b2.begin(), b2.end() - 2), batch;
  if (!broadcast_shapes(ba, bb, batch))
    c.fail("batch dimensions " + shape_str(ba) + " and " + shape_str(bb) + " do not broadcast");
  Shape out = batch;
  if (a.size() > 1) out.push_back(a2[a2.size() - 2]);
  if (b.size() > 1) out.push_back(b2.back());
  c.outputs = {{out, c.in(0).dtype()}};
}

void matmul_kernel(const KernelArgs& k) {
  const Shape &a = k.in_type(0).shape, &b = k.in_type(1).shape;
  const bool tx = flag(k.node.attrs, "transpose_x"), ty = flag(k.node.attrs, "transpose_y");
  Shape a2 = a.size() == 1 ? Shape{1, a[0]} : a, b2 = b.size() == 1 ? Shape{b[0], 1} : b;
  if (tx) std::swap(a2[a2.size() - 1], a2[a2.size() - 2]);
  if (ty) std::swap(b2[b2.size() - 1], b2[b2.size() - 2]);
  int64_t M = a2[a2.size() - 2], K = a2.back(), N = b2.back();
  const int64_t lda = tx ? M : K, ldb = ty ? K : N;  // as stored: A (K, M) / B (N, K) when transposed
  Shape ba(a2.begin(), a2.end() - 2), bb(b2.begin(), b2.end() - 2), batch;
  broadcast_shapes(ba, bb, batch);
  int64_t nb = numel(batch);
  const float *A = k.in[0], *B = k.in[1];
  float* C = k.out[0];
  if (const uint16_t* bh = k.half(1)) {
    if (!tx && !ty && numel(bb) == 1 && numel(ba) == nb) {  // B (K, N) in fp16: a panel of its columns at a time
      int64_t step = std::min(N, panel_rows(K));
      std::vector<float>& panel = panel_buffer(K * step);
      for (int64_t n0 = 0; n0 < N; n0 += step) {
        int64_t w = std::min(step, N - n0);
        for (int64_t r = 0; r < K; ++r) halves_to_floats(bh + r * N + n0, panel.data() + r * w, static_cast<size_t>(w));
        blas::sgemm(false, false, nb * M, w, K, 1.0f, A, K, panel.data(), w, 0.0f, C + n0, N);
      }
      return;
    }
    static thread_local std::vector<float> whole;  // a broadcast batch of B: widened whole
    whole.resize(static_cast<size_t>(numel(k.in_type(1).shape)));
    halves_to_floats(bh, whole.data(), whole.size());
    B = whole.data();
  }
  if (numel(bb) == 1 && !tx) {  // shared right operand: one GEMM over all batch rows
    if (numel(ba) == nb) return blas::sgemm(false, ty, nb * M, N, K, 1.0f, A, K, B, ldb, 0.0f, C, N);
  }
  auto sa = broadcast_strides(ba, batch), sb = broadcast_strides(bb, batch);
  auto product = [&](int64_t i) {
    int64_t rem = i, oa = 0, ob = 0;
    for (int d = static_cast<int>(batch.size()) - 1; d >= 0; --d) {
      int64_t q = rem % batch[d];
      rem /= batch[d];
      oa += q * sa[d];
      ob += q * sb[d];
    }
    blas::sgemm(tx, ty, M, N, K, 1.0f, A + oa * M * K, lda, B + ob * K * N, ldb, 0.0f, C + i * M * N, N);
  };
  // products OpenBLAS runs on the calling thread: across the pool, each the same call
  if (M * N * K <= kBlasOneThread)
    parallel_for(nb, 2, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) product(static_cast<int64_t>(i));
    });
  else
    for (int64_t i = 0; i < nb; ++i) product(i);
}

void infer_linear(InferContext& c) {
  const Shape &x = c.in(0).shape(), &w = c.in(1).shape();
  c.expect_float(0, "x");
  c.expect_same_dtype(0, 1);
  if (x.empty()) c.fail("x must have rank >= 1, got x " + shape_str(x));
  if (w.size() != 2) c.fail("weight must be (out_features, in_features), got weight " + shape_str(w));
  if (w[1] != x.back())
    c.fail("weight " + shape_str(w) + " expects " + std::to_string(w[1]) +
           " input features, got x " + shape_str(x));
  bool has_bias = c.inputs.size() > 2;
  if (has_bias) {
    if (c.in(2).shape() != Shape{w[0]})
      c.fail("bias must have shape (" + std::to_string(w[0]) + ",) to match weight " + shape_str(w) +
             ", got bias " + shape_str(c.in(2).shape()));
    c.expect_same_dtype(0, 2);
  }
  c.attrs.set("has_bias", has_bias);
  Shape out = x;
  out.back() = w[0];
  c.outputs = {{out, c.in(0).dtype()}};
}

// y (M, N) = x (M, K) W^T for a few rows of x and W (N, K) as fp16 bits: each weight row is
// read once at 2 bytes per element, widened as it is read (dot_halves) and dotted with every
// row of x; 8 fp32 partial sums per dot product, added in a fixed order (products of fp16
// values are exact in fp32, so the sums are the only rounding).
void linear_fp16_rows(const float* x, const uint16_t* w, float* y, int64_t M, int64_t N, int64_t K) {
  parallel_for(static_cast<size_t>(N), 16, [&](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; ++n) dot_halves(x, K, static_cast<int>(M), w + n * K, K, y + n, N);
  });
}


}  // namespace

void linear_rows(const float* x, const float* w, const uint16_t* wh, float* y, int64_t M, int64_t N, int64_t K,
                 const float* kept) {
  if (wh && M <= kFp16RowsMax) {
    linear_fp16_rows(x, wh, y, M, N, K);
  } else if (wh) {  // W (N, K) in fp16: output columns a panel at a time
    // The same GEMM per panel whether the panel is widened here or read from the widened
    // copy the weight cache keeps: the same bits either way.
    int64_t step = panel_rows(K);
    std::vector<float>& panel = panel_buffer(kept ? 0 : std::min(step, N) * K);
    for (int64_t n0 = 0; n0 < N; n0 += step) {
      int64_t nb = std::min(step, N - n0);
      const float* wp = kept ? kept + n0 * K : panel.data();
      if (!kept) halves_to_floats(wh + n0 * K, panel.data(), static_cast<size_t>(nb * K));
      blas::sgemm(false, true, M, nb, K, 1.0f, x, K, wp, K, 0.0f, y + n0, N);
    }
  } else {
    blas::sgemm(false, true, M, N, K, 1.0f, x, K, w, K, 0.0f, y, N);
  }
}

namespace {

void linear_kernel(const KernelArgs& k) {
  const Shape &x = k.in_type(0).shape, &w = k.in_type(1).shape;
  int64_t K = x.back(), N = w[0], M = numel(x) / K;
  float* y = k.out[0];
  // past a few rows, an fp16 weight widened once and kept by the sim's weight cache (null
  // when the cache is full or off: widened a panel at a time on every run)
  const float* kept = k.half(1) && M > kFp16RowsMax ? k.widened_input(1) : nullptr;
  linear_rows(k.in[0], k.in[1], k.half(1), y, M, N, K, kept);
  const float* b = k.node.attrs.b("has_bias") ? k.in[2] : nullptr;
  if (b)
    parallel_for(M, 64, [&](size_t s, size_t e) {
      for (size_t m = s; m < e; ++m)
        for (int64_t n = 0; n < N; ++n) y[m * N + n] += b[n];
    });
}

}  // namespace

void register_conv_ops();
void register_einsum_op();

void register_linalg_ops() {
  register_conv_ops();
  register_einsum_op();
  OpDef m;
  m.name = "matmul";
  m.category = "linalg";
  m.doc = "Matrix product with batch broadcasting (torch.matmul semantics).";
  m.params = {P("x", ParamKind::tensor), P("y", ParamKind::tensor)};
  m.method = true;
  m.infer = infer_matmul;
  m.kernel = matmul_kernel;
  m.half_inputs = {1};
  m.mil_op = "matmul";
  register_op(std::move(m));

  OpDef l;
  l.name = "linear";
  l.category = "linalg";
  l.doc = "x @ weight.T + bias, weight (out_features, in_features) as torch.nn.functional.linear.";
  l.params = {P("x", ParamKind::tensor), P("weight", ParamKind::tensor),
              P("bias", ParamKind::opt_tensor, "None")};
  l.infer = infer_linear;
  l.kernel = linear_kernel;
  l.half_inputs = {1};
  l.mil_op = "linear";
  register_op(std::move(l));
}

// MIL emission of this family's ops (the rest use the default mil_op(x=..., y=...)).
void attach_linalg_mil() {
  using namespace milx;
  for (const char* n : {"conv", "dynamic_conv"}) {
    emit(n, [](Builder& b, const StepView& s) {
      Args a{{"x", {s.in[0]}}, {"weight", {s.in[1]}}, {"strides", {Is(b, s.attrs().ints("stride"), "strides")}},
             {"pad_type", {S(b, "custom", "pad_type")}}, {"pad", {Is(b, conv_pad(s), "pad")}},
             {"dilations", {Is(b, s.attrs().ints("dilation"), "dilations")}}, {"groups", {I(b, s.attrs().i("groups"), "groups")}}};
      if (s.attrs().b("has_bias")) a.push_back({"bias", {s.in[2]}});
      b.op("conv", a, s.out_types[0], s.out[0]);
    });
  }
  emit("conv_transpose", [](Builder& b, const StepView& s) {
    // As Apple's converter does: the full transposed convolution (pad 0, no output_shape,
    // whose interplay with pad the MIL docs leave open), then a crop of `pad` at the start and
    // the output size; output_padding past the crop's end is zeros (plus the bias).
    const Type& xt = s.in_types[0];
    const Shape& os = s.out_types[0].shape;
    auto p = s.attrs().ints("pad"), st = s.attrs().ints("stride"), dl = s.attrs().ints("dilation");
    const Shape& ws = s.in_types[1].shape;
    size_t n = p.size();
    Shape full = os;
    bool grow = false;
    for (size_t i = 0; i < n; ++i) {
      full[2 + i] = (xt.shape[2 + i] - 1) * st[i] + (ws[2 + i] - 1) * dl[i] + 1;
      grow |= p[i] + os[2 + i] > full[2 + i];
    }
    bool bias_inside = s.attrs().b("has_bias") && !grow;
    Args a{{"x", {s.in[0]}}, {"weight", {s.in[1]}}, {"strides", {Is(b, st, "strides")}}, {"pad_type", {S(b, "valid", "pad_type")}},
           {"dilations", {Is(b, dl, "dilations")}}, {"groups", {I(b, s.attrs().i("groups"), "groups")}}};
    if (bias_inside) a.push_back({"bias", {s.in[2]}});
    bool crop = full != os;
    bool bias_after = s.attrs().b("has_bias") && !bias_inside;
    std::string y = b.op("conv_transpose", a, like(s.out_types[0], full), crop || bias_after ? "" : s.out[0]);
    if (grow) {
      std::vector<int64_t> pads;
      Shape padded = full;
      for (size_t i = 0; i < n; ++i) {
        int64_t extra = std::max<int64_t>(p[i] + os[2 + i] - full[2 + i], 0);
        pads.insert(pads.end(), {0, extra});
        padded[2 + i] += extra;
      }
      y = b.op("pad", {{"x", {y}}, {"pad", {Is(b, pads, "pad")}}, {"mode", {S(b, "constant", "mode")}},
                       {"constant_val", {F(b, s, 0.0, "constant_val")}}}, like(s.out_types[0], padded));
    }
    if (crop) {
      std::vector<int64_t> begin(2 + n, 0), end(os.begin(), os.end());
      for (size_t i = 0; i < n; ++i) {
        begin[2 + i] = p[i];
        end[2 + i] = p[i] + os[2 + i];
      }
      y = b.op("slice_by_index", {{"x", {y}}, {"begin", {Is(b, begin, "begin")}}, {"end", {Is(b, end, "end")}}},
               s.out_types[0], bias_after ? "" : s.out[0]);
    }
    if (bias_after) {
      Shape bs(1 + n, 1);
      bs[0] = os[1];
      std::string bias = b.op("reshape", {{"x", {s.in[2]}}, {"shape", {Is(b, bs, "shape")}}}, like(xt, bs));
      b.op("add", {{"x", {y}}, {"y", {bias}}}, s.out_types[0], s.out[0]);
    }
  });
  emit("matmul", [](Builder& b, const StepView& s) {
    b.op("matmul", {{"x", {s.in[0]}}, {"y", {s.in[1]}}, {"transpose_x", {B(b, flag(s.attrs(), "transpose_x"), "transpose_x")}},
                    {"transpose_y", {B(b, flag(s.attrs(), "transpose_y"), "transpose_y")}}}, s.out_types[0], s.out[0]);
  });
  emit("linear", [](Builder& b, const StepView& s) {
    const Type& xt = s.in_types[0];
    int64_t K = xt.shape.back(), N = s.in_types[1].shape[0];
    bool has_bias = s.attrs().b("has_bias");
    if (s.attrs().b("as_conv1x1") && xt.shape.size() == 2) {
      // The engine's preferred form: (M, K) -> (1, K, 1, M) -> 1x1 conv -> (M, N).
      int64_t M = xt.shape[0];
      std::string t = b.op("transpose", {{"x", {s.in[0]}}, {"perm", {Is(b, {1, 0}, "perm")}}}, like(xt, {K, M}));
      std::string x4 = b.op("reshape", {{"x", {t}}, {"shape", {Is(b, {1, K, 1, M}, "shape")}}}, like(xt, {1, K, 1, M}));
      std::string w4 = b.op("reshape", {{"x", {s.in[1]}}, {"shape", {Is(b, {N, K, 1, 1}, "shape")}}}, like(xt, {N, K, 1, 1}));
      Args a{{"x", {x4}}, {"weight", {w4}}, {"strides", {Is(b, {1, 1}, "strides")}}, {"pad_type", {S(b, "valid", "pad_type")}},
             {"dilations", {Is(b, {1, 1}, "dilations")}}, {"groups", {I(b, 1, "groups")}}};
      if (has_bias) a.push_back({"bias", {s.in[2]}});
      std::string c = b.op("conv", a, like(xt, {1, N, 1, M}));
      std::string r = b.op("reshape", {{"x", {c}}, {"shape", {Is(b, {N, M}, "shape")}}}, like(xt, {N, M}));
      b.op("transpose", {{"x", {r}}, {"perm", {Is(b, {1, 0}, "perm")}}}, s.out_types[0], s.out[0]);
      return;
    }
    Args a{{"x", {s.in[0]}}, {"weight", {s.in[1]}}};
    if (has_bias) a.push_back({"bias", {s.in[2]}});
    b.op("linear", a, s.out_types[0], s.out[0]);
  });
}

}  // namespace af

// ---- gradients (in other ops) ----
#include "ops/grad_util.h"

namespace af {

namespace {
Tensor swap_last(const Tensor& t) {
  std::vector<int64_t> p(static_cast<size_t>(t.rank()));
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<int64_t>(i);
  std::swap(p[p.size() - 1], p[p.size() - 2]);
  return lw::permute(t, p);
}
}  // namespace

void attach_linalg_grad() {
  using namespace gr;
  mutable_op("matmul").grad = [](const Node& n, const std::vector<Tensor>& g) {
    const Tensor &x = n.inputs[0], &y = n.inputs[1];
    if (x.rank() < 2 || y.rank() < 2) throw ValueError("grad: matmul with a 1-D operand has no gradient yet");
    const bool tx = flag(n.attrs, "transpose_x"), ty = flag(n.attrs, "transpose_y");
    const Tensor xe = tx ? swap_last(x) : x, ye = ty ? swap_last(y) : y;  // the operands as multiplied
    Tensor gx = op("matmul", {g[0], swap_last(ye)}), gy = op("matmul", {swap_last(xe), g[0]});
    return std::vector<Tensor>{unbroadcast(tx ? swap_last(gx) : gx, x.shape()), unbroadcast(ty ? swap_last(gy) : gy, y.shape())};
  };
  mutable_op("linear").grad = [](const Node& n, const std::vector<Tensor>& g) {
    const Tensor &x = n.inputs[0], &w = n.inputs[1];
    int64_t out = w.shape()[0], in = w.shape()[1], rows = numel(x.shape()) / in;
    std::vector<Tensor> r{op("matmul", {g[0], w})};
    Tensor g2 = reshape(g[0], {rows, out}), x2 = reshape(x, {rows, in});
    r.push_back(op("matmul", {permute(g2, {1, 0}), x2}));
    if (n.attrs.b("has_bias")) r.push_back(reduce("sum", g2, {0}, false));
    return r;
  };
}

}  // namespace af
