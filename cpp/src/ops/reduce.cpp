// Reductions over an axis or a tuple of axes (keepdims), accumulated in fp32; softmax.
#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/kernel_util.h"
#include "ops/mil_util.h"
#include "ops/register.h"
#include "runtime/vexp.h"

namespace af {

namespace {

void infer_reduce(InferContext& c) {
  const Shape& s = c.in(0).shape();
  int r = static_cast<int>(s.size());
  std::vector<int64_t> axes;
  if (!c.attrs.has("axis")) {
    for (int i = 0; i < r; ++i) axes.push_back(i);
  } else {
    for (auto a : c.attrs.ints("axis")) axes.push_back(normalize_axis(a, r, c.op.name));
  }
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end())
    c.fail("axis " + attr_str(c.attrs.get("axis")) + " repeats an axis");
  bool keep = c.attrs.b("keepdims");
  Shape out;
  for (int i = 0; i < r; ++i) {
    bool red = std::binary_search(axes.begin(), axes.end(), i);
    if (!red) out.push_back(s[i]);
    else if (keep) out.push_back(1);
  }
  c.attrs.set("axis", axes);
  c.attrs.set("keepdims", keep);
  c.outputs = {{out, c.in(0).dtype()}};
}

// Calls row(p, R) for each output element, where p points at the R reduced values
// (contiguous; the input is permuted into a scratch buffer when the axes are not last).
template <class Row>
void reduce_rows(const KernelArgs& k, Row row) {
  const Shape& s = k.in_type(0).shape;
  auto axes = k.node.attrs.ints("axis");
  int r = static_cast<int>(s.size());
  int64_t R = 1;
  for (auto a : axes) R *= s[a];
  int64_t outer = numel(s) / std::max<int64_t>(R, 1);
  bool last = true;
  for (size_t i = 0; i < axes.size(); ++i) last &= axes[i] == r - static_cast<int64_t>(axes.size()) + static_cast<int64_t>(i);
  const float* x = k.in[0];
  if (!last) {
    std::vector<int64_t> dims;
    for (int i = 0; i < r; ++i)
      if (!std::binary_search(axes.begin(), axes.end(), i)) dims.push_back(i);
    for (auto a : axes) dims.push_back(a);
    float* buf = scratch(static_cast<size_t>(numel(s)), 1);
    permute_copy(x, s, dims, buf);
    x = buf;
  }
  float* y = k.out[0];
  parallel_for(outer, std::max<int64_t>(1, 4096 / std::max<int64_t>(R, 1)), [&](size_t b, size_t e) {
    for (size_t o = b; o < e; ++o) y[o] = row(x + o * R, R);
  });
}

// fp32 sum with 8 partial accumulators (vectorisable, less error than one running sum).
template <class F>
float sum_map(const float* p, int64_t R, F f) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= R; j += 8)
    for (int t = 0; t < 8; ++t) acc[t] += f(p[j + t]);
  float tot = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; j < R; ++j) tot += f(p[j]);
  return tot;
}

// sum_map(lane, R, f) then post(total) for every output, where the reduced axes lead: x is
// (R, C) and output c sums column c. The column is read row by row (no transposed copy),
// each lane's partial sums in sum_map's order, so the results are the same bits.
template <class F, class Post>
void sum_columns(const float* x, int64_t R, int64_t C, float* y, F f, Post post) {
  constexpr int64_t B = 64;  // columns per task: 8 partial sums of each in 2 KiB
  parallel_for((C + B - 1) / B, std::max<int64_t>(1, 4096 / std::max<int64_t>(R * B, 1)), [&](size_t b, size_t e) {
    for (int64_t c0 = static_cast<int64_t>(b) * B; c0 < std::min<int64_t>(C, static_cast<int64_t>(e) * B); c0 += B) {
      const int64_t n = std::min(B, C - c0), body = R - R % 8;
      float acc[8][B] = {};
      for (int64_t j = 0; j < body; j += 8)
        for (int t = 0; t < 8; ++t) {
          const float* row = x + (j + t) * C + c0;
          for (int64_t c = 0; c < n; ++c) acc[t][c] += f(row[c]);
        }
      for (int64_t c = 0; c < n; ++c) {
        float tot = ((acc[0][c] + acc[1][c]) + (acc[2][c] + acc[3][c])) + ((acc[4][c] + acc[5][c]) + (acc[6][c] + acc[7][c]));
        for (int64_t j = body; j < R; ++j) tot += f(x[j * C + c0 + c]);
        y[c0 + c] = post(tot, R);
      }
    }
  });
}

// x as (A, C, L), sums over A and L for each c (a conv's bias gradient or batch-norm
// statistics: axes (0, 2, 3)), with L a multiple of 8: element j = a * L + l of c's row goes
// to lane j % 8 = l % 8 in sum_map's order, so the results are the bits of summing the
// permuted copy that reduce_rows would make, without making it.
template <class F, class Post>
void sum_segments(const float* x, int64_t A, int64_t C, int64_t L, float* y, F f, Post post) {
  parallel_for(C, std::max<int64_t>(1, 4096 / std::max<int64_t>(A * L, 1)), [&](size_t b, size_t e) {
    for (size_t c = b; c < e; ++c) {
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t a = 0; a < A; ++a) {
        const float* seg = x + (a * C + static_cast<int64_t>(c)) * L;
        for (int64_t l = 0; l < L; l += 8)
          for (int t = 0; t < 8; ++t) acc[t] += f(seg[l + t]);
      }
      y[c] = post(((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])), A * L);
    }
  });
}

// A sum-like reduction: down columns when the reduced axes lead and others remain (a bias
// gradient's sum over rows); over leading and trailing axes around kept ones (sum_segments);
// else along contiguous rows (reduce_rows).
template <class F, class Post>
void reduce_sums(const KernelArgs& k, F f, Post post) {
  const Shape& s = k.in_type(0).shape;
  auto axes = k.node.attrs.ints("axis");
  const int64_t r = static_cast<int64_t>(s.size());
  bool leading = !axes.empty() && axes.size() < s.size();
  for (size_t i = 0; i < axes.size() && leading; ++i) leading = axes[i] == static_cast<int64_t>(i);
  if (leading) {
    int64_t R = 1;
    for (auto a : axes) R *= s[a];
    return sum_columns(k.in[0], R, numel(s) / std::max<int64_t>(R, 1), k.out[0], f, post);
  }
  // axes = [0, lead) and [trail, r), with kept axes [lead, trail) between them
  int64_t lead = 0;
  while (lead < static_cast<int64_t>(axes.size()) && axes[lead] == lead) ++lead;
  const int64_t trail = r - (static_cast<int64_t>(axes.size()) - lead);
  bool around = lead > 0 && trail < r && trail > lead;
  for (size_t i = static_cast<size_t>(lead); i < axes.size() && around; ++i)
    around = axes[i] == trail + static_cast<int64_t>(i) - lead;
  if (around) {
    int64_t A = 1, C = 1, L = 1;
    for (int64_t d = 0; d < r; ++d) (d < lead ? A : d < trail ? C : L) *= s[d];
    if (L % 8 == 0) return sum_segments(k.in[0], A, C, L, k.out[0], f, post);
  }
  reduce_rows(k, [&](const float* p, int64_t R) { return post(sum_map(p, R, f), R); });
}

float max_of(const float* p, int64_t R) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < R; ++j) {
    if (p[j] != p[j]) return p[j];
    m = std::max(m, p[j]);
  }
  return m;
}

float min_of(const float* p, int64_t R) {
  float m = std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < R; ++j) {
    if (p[j] != p[j]) return p[j];
    m = std::min(m, p[j]);
  }
  return m;
}

float logsumexp_of(const float* p, int64_t R) {
  float m = max_of(p, R);
  if (!std::isfinite(m)) return m;  // NaN, or all -inf, or any +inf
  return m + std::log(sum_map(p, R, [m](float v) { return std::exp(v - m); }));
}

OpDef reduction(const char* name, const char* mil, const char* doc, SimKernel kernel) {
  OpDef d;
  d.name = name;
  d.category = "reduction";
  d.doc = doc;
  d.params = {P("x", ParamKind::tensor), P("axis", ParamKind::axes, "None"), P("keepdims", ParamKind::bool_, "False")};
  d.method = true;
  d.infer = infer_reduce;
  d.kernel = std::move(kernel);
  d.mil_op = mil;
  return d;
}

void infer_softmax(InferContext& c) {
  c.expect_float(0);
  int r = std::max(1, c.in(0).rank());
  c.attrs.set("axis", int64_t{normalize_axis(c.attrs.i("axis", -1), r, c.op.name)});
  c.outputs = {c.in(0).type()};
}

template <bool Log>
void softmax_kernel(const KernelArgs& k) {
  int axis = static_cast<int>(k.node.attrs.i("axis"));
  Shape s = k.in_type(0).shape.empty() ? Shape{1} : k.in_type(0).shape;
  for_lanes(k.in[0], k.out[0], s, axis, [](const float* x, float* y, int64_t n, int64_t st) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i * st]);
    float sum = 0.0f;
    if (Log) {
      for (int64_t i = 0; i < n; ++i) sum += std::exp(x[i * st] - m);
      float ls = std::log(sum);
      for (int64_t i = 0; i < n; ++i) y[i * st] = x[i * st] - m - ls;
    } else if (st == 1) {  // each exp once, kept in y, then scaled: exp_floats gives std::exp's bits
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] - m;
      exp_floats(y, y, static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) sum += y[i];  // in order, as before
    } else {
      for (int64_t i = 0; i < n; ++i) {
        float e = std::exp(x[i * st] - m);
        y[i * st] = e;
        sum += e;
      }
    }
    if (!Log) {
      float inv = 1.0f / sum;
      for (int64_t i = 0; i < n; ++i) y[i * st] *= inv;
    }
  });
}

}  // namespace

void register_reduction_ops() {
  const auto same = [](float v) { return v; };
  const auto total = [](float t, int64_t) { return t; };
  register_op(reduction("sum", "reduce_sum", "Sum over axis (int, tuple, or None for all).", [=](const KernelArgs& k) {
    reduce_sums(k, same, total);
  }));
  register_op(reduction("mean", "reduce_mean", "Mean over axis (int, tuple, or None for all).", [=](const KernelArgs& k) {
    reduce_sums(k, same, [](float t, int64_t R) { return t / static_cast<float>(R); });
  }));
  register_op(exact(aliased(reduction("max", "reduce_max", "Maximum over axis (values only, torch.amax).", [](const KernelArgs& k) {
    reduce_rows(k, max_of);
  }), {"amax"})));
  register_op(exact(aliased(reduction("min", "reduce_min", "Minimum over axis (values only, torch.amin).", [](const KernelArgs& k) {
    reduce_rows(k, min_of);
  }), {"amin"})));
  register_op(reduction("l1_norm", "reduce_l1_norm", "Sum of |x| over axis.", [=](const KernelArgs& k) {
    reduce_sums(k, [](float v) { return std::fabs(v); }, total);
  }));
  register_op(reduction("log_sum", "reduce_log_sum", "log(sum(x)) over axis.", [](const KernelArgs& k) {
    reduce_rows(k, [](const float* p, int64_t R) { return std::log(sum_map(p, R, [](float v) { return v; })); });
  }));
  register_op(reduction("sum_square", "reduce_sum_square", "Sum of x^2 over axis.", [=](const KernelArgs& k) {
    reduce_sums(k, [](float v) { return v * v; }, total);
  }));
  register_op(reduction("logsumexp", "reduce_log_sum_exp", "log(sum(exp(x))) over axis, max-shifted.",
                        [](const KernelArgs& k) { reduce_rows(k, logsumexp_of); }));
  for (bool lg : {false, true}) {
    OpDef d;
    d.name = lg ? "log_softmax" : "softmax";
    d.category = "reduction";
    d.doc = lg ? "log(softmax(x)) along axis." : "exp(x) / sum(exp(x)) along axis (max-shifted).";
    d.params = {P("x", ParamKind::tensor), P("axis", ParamKind::int_, "-1")};
    d.method = true;
    d.infer = infer_softmax;
    d.kernel = lg ? SimKernel(softmax_kernel<true>) : SimKernel(softmax_kernel<false>);
    d.mil_op = lg ? "reduce_max/sub/exp/reduce_sum/log" : "softmax";
    register_op(std::move(d));
  }
}

// MIL emission of this family's ops (the rest use the default mil_op(x=..., y=...)).
void attach_reduction_mil() {
  using namespace milx;
  const std::pair<const char*, const char*> reductions[] = {
      {"sum", "reduce_sum"}, {"mean", "reduce_mean"}, {"max", "reduce_max"}, {"min", "reduce_min"},
      {"l1_norm", "reduce_l1_norm"}, {"log_sum", "reduce_log_sum"}, {"sum_square", "reduce_sum_square"},
      {"logsumexp", "reduce_log_sum_exp"}};
  for (auto [name, mil] : reductions)
    unary_params(name, mil, [](Builder& b, const StepView& s) {
      return Args{{"axes", {Is(b, s.attrs().ints("axis"), "axes")}}, {"keep_dims", {B(b, s.attrs().b("keepdims"), "keep_dims")}}};
    });
  unary_params("softmax", "softmax", [](Builder& b, const StepView& s) { return Args{{"axis", {I(b, s.attrs().i("axis"), "axis")}}}; });
  emit("log_softmax", [](Builder& b, const StepView& s) {
    // (x - max) - log(sum(exp(x - max))): log(softmax) would give -inf where softmax underflows.
    const Type& t = s.out_types[0];
    Shape ks = t.shape;
    int64_t axis = s.attrs().i("axis");
    ks[static_cast<size_t>(axis)] = 1;
    std::string ax = Is(b, {axis}, "axes"), keep = B(b, true, "keep_dims");
    std::string m = b.op("reduce_max", {{"x", {s.in[0]}}, {"axes", {ax}}, {"keep_dims", {keep}}}, like(t, ks));
    std::string d = b.op("sub", {{"x", {s.in[0]}}, {"y", {m}}}, t);
    std::string se = b.op("reduce_sum", {{"x", {b.op("exp", {{"x", {d}}}, t)}}, {"axes", {ax}}, {"keep_dims", {keep}}}, like(t, ks));
    std::string l = b.op("log", {{"x", {se}}, {"epsilon", {P(b, 0.0, "epsilon")}}}, like(t, ks));
    b.op("sub", {{"x", {d}}, {"y", {l}}}, t, s.out[0]);
  });
}

}  // namespace af

// ---- gradients (in other ops) ----
#include <functional>

#include "ops/grad_util.h"

namespace af {

void attach_reduction_grad() {
  using namespace gr;
  for (const char* name : {"sum", "mean"}) {
    bool mean = std::string(name) == "mean";
    mutable_op(name).grad = [mean](const Node& n, const std::vector<Tensor>& g) {
      const Shape& s = n.inputs[0].shape();
      auto axes = n.attrs.ints("axis");
      Tensor r = spread(g[0], s, axes, n.attrs.b("keepdims"));
      if (mean) {
        int64_t count = 1;
        for (auto a : axes) count *= s[static_cast<size_t>(a)];
        r = mul(r, like(r, 1.0 / static_cast<double>(count)));
      }
      return std::vector<Tensor>{r};
    };
  }
  // Reductions whose gradient is g (spread back over the reduced axes) times d(x, result).
  auto red = [](const char* name, std::function<Tensor(const Tensor&, const Tensor&, const std::vector<int64_t>&)> d) {
    mutable_op(name).grad = [d](const Node& n, const std::vector<Tensor>& g) {
      const Tensor& x = n.inputs[0];
      auto axes = n.attrs.ints("axis");
      Tensor y = reduce(n.op->name.c_str(), x, axes, true);
      Tensor gs = spread(g[0], x.shape(), axes, n.attrs.b("keepdims"));
      return std::vector<Tensor>{mul(gs, d(x, y, axes))};
    };
  };
  for (const char* m : {"max", "min"})  // shared evenly between tied extremes, as torch amax/amin
    red(m, [](const Tensor& x, const Tensor& y, const std::vector<int64_t>& axes) {
      Tensor hit = cast(op("equal", {x, y}), x.dtype());
      return div(hit, reduce("sum", hit, axes, true));
    });
  red("l1_norm", [](const Tensor& x, const Tensor&, const std::vector<int64_t>&) { return op("sign", {x}); });
  red("sum_square", [](const Tensor& x, const Tensor&, const std::vector<int64_t>&) { return mul(x, like(x, 2.0)); });
  red("log_sum", [](const Tensor& x, const Tensor&, const std::vector<int64_t>& axes) {
    return op("reciprocal", {reduce("sum", x, axes, true)});
  });
  red("logsumexp", [](const Tensor& x, const Tensor& y, const std::vector<int64_t>&) { return op("exp", {sub(x, y)}); });
  mutable_op("softmax").grad = [](const Node& n, const std::vector<Tensor>& g) {
    int64_t axis = n.attrs.i("axis");
    Tensor y = op("softmax", {n.inputs[0]}, {{"axis", axis}});
    Tensor dot = reduce("sum", mul(g[0], y), {axis}, true);
    return std::vector<Tensor>{mul(y, sub(g[0], dot))};
  };
  mutable_op("log_softmax").grad = [](const Node& n, const std::vector<Tensor>& g) {
    int64_t axis = n.attrs.i("axis");
    Tensor p = op("softmax", {n.inputs[0]}, {{"axis", axis}});
    return std::vector<Tensor>{sub(g[0], mul(p, reduce("sum", g[0], {axis}, true)))};
  };
}

}  // namespace af
