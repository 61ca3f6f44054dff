// MIL emission of the ops whose MIL form needs parameters or a short sequence. Ops not
// listed use the default: `mil_op(x=..., y=...)`. Parameter names and types follow the
// coremltools op definitions (iOS17 revisions); tests/test_mil.py loads every op's
// .mlpackage with coremltools to check them.
#include <cmath>

#include "aneforge/mil.h"
#include "ops/register.h"

namespace af {

using mil::Builder;
using mil::StepView;
using mil::Type;
using Args = std::vector<std::pair<std::string, std::vector<std::string>>>;

namespace {

DType dt(const StepView& s) { return s.in_types[0].dtype; }
std::string F(Builder& b, const StepView& s, double v, const char* hint) { return b.float_scalar(v, dt(s), hint); }
std::string I(Builder& b, int64_t v, const char* hint) { return b.int_scalar(v, hint); }
std::string Is(Builder& b, const std::vector<int64_t>& v, const char* hint) { return b.ints(v, hint); }
std::string S(Builder& b, const std::string& v, const char* hint) { return b.string_scalar(v, hint); }
std::string B(Builder& b, bool v, const char* hint) { return b.bool_scalar(v, hint); }
Type like(const Type& t, Shape s) { return Type{t.dtype, s, s.empty(), false}; }

Type like(const Type& t, Shape s);

// (x - mean) / sqrt(var + eps) * weight + bias from basic MIL ops, for normalisations whose
// parameters are runtime tensors (the MIL norm ops need constants). batch_norm uses the given
// statistics on axis 1; layer_norm computes them over the trailing axes.
void normalize_decomposed(Builder& b, const StepView& s, bool layer) {
  const Type& xt = s.in_types[0];
  int r = static_cast<int>(xt.shape.size());
  std::string mean, var;
  size_t next = 1;
  Shape ps(r, 1);  // parameter broadcast shape
  if (layer) {
    auto ns = s.attrs().ints("normalized_shape");
    std::vector<int64_t> axes;
    Shape ks = xt.shape;
    for (int i = r - static_cast<int>(ns.size()); i < r; ++i) {
      axes.push_back(i);
      ks[i] = 1;
    }
    ps = Shape(ns.begin(), ns.end());
    std::string ax = b.ints(axes, "axes"), keep = b.bool_scalar(true, "keep_dims");
    mean = b.op("reduce_mean", {{"x", {s.in[0]}}, {"axes", {ax}}, {"keep_dims", {keep}}}, like(xt, ks));
    std::string d = b.op("sub", {{"x", {s.in[0]}}, {"y", {mean}}}, xt);
    std::string d2 = b.op("mul", {{"x", {d}}, {"y", {d}}}, xt);
    var = b.op("reduce_mean", {{"x", {d2}}, {"axes", {ax}}, {"keep_dims", {keep}}}, like(xt, ks));
  } else {
    ps[1] = xt.shape[1];
    ps.erase(ps.begin());
    std::string shp = b.ints(ps, "shape");
    mean = b.op("reshape", {{"x", {s.in[1]}}, {"shape", {shp}}}, like(xt, ps));
    var = b.op("reshape", {{"x", {s.in[2]}}, {"shape", {shp}}}, like(xt, ps));
    next = 3;
  }
  std::string inv = b.op("rsqrt", {{"x", {var}}, {"epsilon", {b.float_scalar(s.attrs().f("eps"), xt.dtype, "epsilon")}}},
                         b.type_of(var));
  bool hw = s.attrs().b("has_weight"), hb = s.attrs().b("has_bias");
  std::string d = b.op("sub", {{"x", {s.in[0]}}, {"y", {mean}}}, xt);
  std::string y = b.op("mul", {{"x", {d}}, {"y", {inv}}}, xt, hw || hb ? "" : s.out[0]);
  auto param = [&](size_t i) {
    return layer ? s.in[i] : b.op("reshape", {{"x", {s.in[i]}}, {"shape", {b.ints(ps, "shape")}}}, like(xt, ps));
  };
  if (hw) y = b.op("mul", {{"x", {y}}, {"y", {param(next++)}}}, xt, hb ? "" : s.out[0]);
  if (hb) b.op("add", {{"x", {y}}, {"y", {param(next)}}}, s.out_types[0], s.out[0]);
}

void emit(const char* name, std::function<void(Builder&, const StepView&)> fn) { mutable_op(name).emit_mil = std::move(fn); }

// op(x, <params>) with x the first input and params computed from the attributes.
void unary_params(const char* name, const char* mil,
                  std::function<Args(Builder&, const StepView&)> params) {
  std::string m = mil;
  emit(name, [m, params](Builder& b, const StepView& s) {
    Args a = params(b, s);
    a.push_back({"x", {s.in[0]}});
    b.op(m, a, s.out_types[0], s.out[0]);
  });
}

std::vector<int64_t> conv_pad(const StepView& s) { return s.attrs().ints("pad"); }

Args optional_affine(const StepView& s, size_t first, const char* w, const char* bname) {
  Args a;
  size_t i = first;
  if (s.attrs().b("has_weight")) a.push_back({w, {s.in[i++]}});
  if (s.attrs().b("has_bias")) a.push_back({bname, {s.in[i++]}});
  return a;
}

}  // namespace

void attach_mil_emitters() {
  // ---- activations and math ----
  unary_params("leaky_relu", "leaky_relu", [](Builder& b, const StepView& s) {
    return Args{{"alpha", {F(b, s, s.attrs().f("negative_slope"), "alpha")}}};
  });
  unary_params("elu", "elu", [](Builder& b, const StepView& s) { return Args{{"alpha", {F(b, s, s.attrs().f("alpha"), "alpha")}}}; });
  unary_params("gelu", "gelu", [](Builder& b, const StepView& s) {
    return Args{{"mode", {S(b, s.attrs().s("approximate") == "tanh" ? "TANH_APPROXIMATION" : "EXACT", "mode")}}};
  });
  unary_params("hard_sigmoid", "sigmoid_hard", [](Builder& b, const StepView& s) {
    return Args{{"alpha", {F(b, s, 1.0 / 6, "alpha")}}, {"beta", {F(b, s, 0.5, "beta")}}};
  });
  emit("hard_swish", [](Builder& b, const StepView& s) {
    std::string h = b.op("sigmoid_hard", {{"x", {s.in[0]}}, {"alpha", {F(b, s, 1.0 / 6, "alpha")}}, {"beta", {F(b, s, 0.5, "beta")}}},
                         s.out_types[0]);
    b.op("mul", {{"x", {s.in[0]}}, {"y", {h}}}, s.out_types[0], s.out[0]);
  });
  unary_params("scaled_tanh", "scaled_tanh", [](Builder& b, const StepView& s) {
    return Args{{"alpha", {F(b, s, s.attrs().f("alpha"), "alpha")}}, {"beta", {F(b, s, s.attrs().f("beta"), "beta")}}};
  });
  emit("softplus", [](Builder& b, const StepView& s) {
    double beta = s.attrs().f("beta");  // MIL softplus has no threshold: above it log1p(exp(t)) == t in fp16
    if (beta == 1.0) return void(b.op("softplus", {{"x", {s.in[0]}}}, s.out_types[0], s.out[0]));
    std::string t = b.op("mul", {{"x", {s.in[0]}}, {"y", {F(b, s, beta, "beta")}}}, s.out_types[0]);
    std::string sp = b.op("softplus", {{"x", {t}}}, s.out_types[0]);
    b.op("real_div", {{"x", {sp}}, {"y", {F(b, s, beta, "beta")}}}, s.out_types[0], s.out[0]);
  });
  unary_params("clamped_relu", "clamped_relu", [](Builder& b, const StepView& s) {
    return Args{{"alpha", {F(b, s, s.attrs().f("alpha"), "alpha")}}, {"beta", {F(b, s, s.attrs().f("beta"), "beta")}}};
  });
  emit("threshold", [](Builder& b, const StepView& s) {
    Type bt = like(s.out_types[0], s.out_types[0].shape);
    bt.dtype = DType::boolean;
    std::string c = b.op("greater", {{"x", {s.in[0]}}, {"y", {F(b, s, s.attrs().f("threshold"), "threshold")}}}, bt);
    b.op("select", {{"cond", {c}}, {"a", {s.in[0]}}, {"b", {F(b, s, s.attrs().f("value"), "value")}}}, s.out_types[0], s.out[0]);
  });
  unary_params("thresholded_relu", "thresholded_relu", [](Builder& b, const StepView& s) {
    return Args{{"alpha", {F(b, s, s.attrs().f("alpha"), "alpha")}}};
  });
  unary_params("linear_activation", "linear_activation", [](Builder& b, const StepView& s) {
    return Args{{"alpha", {F(b, s, s.attrs().f("alpha"), "alpha")}}, {"beta", {F(b, s, s.attrs().f("beta"), "beta")}}};
  });
  unary_params("clip", "clip", [](Builder& b, const StepView& s) {
    double lim = dt(s) == DType::fp16 ? 65504.0 : 3.4e38;
    double lo = std::max(-lim, s.attrs().f("min")), hi = std::min(lim, s.attrs().f("max"));
    return Args{{"alpha", {F(b, s, lo, "alpha")}}, {"beta", {F(b, s, hi, "beta")}}};
  });
  emit("neg", [](Builder& b, const StepView& s) {
    std::string m1 = dt(s) == DType::int32 ? I(b, -1, "minus_one") : F(b, s, -1.0, "minus_one");
    b.op("mul", {{"x", {s.in[0]}}, {"y", {m1}}}, s.out_types[0], s.out[0]);
  });
  for (const char* n : {"rsqrt", "reciprocal"}) {
    std::string mil = n == std::string("rsqrt") ? "rsqrt" : "inverse";
    unary_params(n, mil.c_str(), [](Builder& b, const StepView& s) { return Args{{"epsilon", {F(b, s, 0.0, "epsilon")}}}; });
  }
  unary_params("cast", "cast", [](Builder& b, const StepView& s) {
    return Args{{"dtype", {S(b, mil::type_name(s.out_types[0].dtype), "dtype")}}};
  });
  emit("prelu", [](Builder& b, const StepView& s) {
    const Type& xt = s.in_types[0];
    Shape ws(xt.shape.size() >= 2 ? xt.shape.size() - 1 : 1, 1);
    if (xt.shape.size() >= 2) ws[0] = s.in_types[1].shape.empty() ? 1 : s.in_types[1].shape[0];
    std::string w = b.op("reshape", {{"x", {s.in[1]}}, {"shape", {Is(b, ws, "shape")}}}, like(xt, ws));
    std::string neg = b.op("mul", {{"x", {s.in[0]}}, {"y", {w}}}, xt);
    Type bt = xt;
    bt.dtype = DType::boolean;
    std::string c = b.op("greater_equal", {{"x", {s.in[0]}}, {"y", {F(b, s, 0.0, "zero")}}}, bt);
    b.op("select", {{"cond", {c}}, {"a", {s.in[0]}}, {"b", {neg}}}, s.out_types[0], s.out[0]);
  });
  emit("where", [](Builder& b, const StepView& s) {
    // coremltools infers select's shape from a and b only: broadcast a to the full shape
    // when the condition alone carries the larger shape.
    const Shape& out = s.out_types[0].shape;
    Shape ab;
    broadcast_shapes(s.in_types[1].shape, s.in_types[2].shape, ab);
    std::string a = s.in[1];
    if (ab != out) {
      Shape as = s.in_types[1].shape;
      while (as.size() < out.size()) as.insert(as.begin(), 1);
      std::vector<int64_t> reps(out.size());
      for (size_t i = 0; i < out.size(); ++i) reps[i] = out[i] / as[i];
      if (as != s.in_types[1].shape) a = b.op("reshape", {{"x", {a}}, {"shape", {Is(b, as, "shape")}}}, like(s.in_types[1], as));
      a = b.op("tile", {{"x", {a}}, {"reps", {Is(b, reps, "reps")}}}, like(s.in_types[1], out));
    }
    b.op("select", {{"cond", {s.in[0]}}, {"a", {a}}, {"b", {s.in[2]}}}, s.out_types[0], s.out[0]);
  });

  for (const char* n : {"equal", "not_equal"}) {
    bool eq = n == std::string("equal");
    emit(n, [eq](Builder& b, const StepView& s) {
      if (s.in_types[0].dtype != DType::boolean)
        return void(b.op(eq ? "equal" : "not_equal", {{"x", {s.in[0]}}, {"y", {s.in[1]}}}, s.out_types[0], s.out[0]));
      // MIL compares numbers only: on bools, equal is not(xor).
      if (!eq) return void(b.op("logical_xor", {{"x", {s.in[0]}}, {"y", {s.in[1]}}}, s.out_types[0], s.out[0]));
      std::string x = b.op("logical_xor", {{"x", {s.in[0]}}, {"y", {s.in[1]}}}, s.out_types[0]);
      b.op("logical_not", {{"x", {x}}}, s.out_types[0], s.out[0]);
    });
  }

  // ---- linear algebra ----
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
    auto p = s.attrs().ints("pad");
    std::vector<int64_t> pad;
    for (auto v : p) pad.insert(pad.end(), {v, v});
    Args a{{"x", {s.in[0]}}, {"weight", {s.in[1]}}, {"strides", {Is(b, s.attrs().ints("stride"), "strides")}},
           {"pad_type", {S(b, "custom", "pad_type")}}, {"pad", {Is(b, pad, "pad")}},
           {"dilations", {Is(b, s.attrs().ints("dilation"), "dilations")}}, {"groups", {I(b, s.attrs().i("groups"), "groups")}},
           {"output_shape", {Is(b, s.out_types[0].shape, "output_shape")}}};
    if (s.attrs().b("has_bias")) a.push_back({"bias", {s.in[2]}});
    b.op("conv_transpose", a, s.out_types[0], s.out[0]);
  });
  emit("matmul", [](Builder& b, const StepView& s) {
    b.op("matmul", {{"x", {s.in[0]}}, {"y", {s.in[1]}}, {"transpose_x", {B(b, false, "transpose_x")}},
                    {"transpose_y", {B(b, false, "transpose_y")}}}, s.out_types[0], s.out[0]);
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

  // ---- reductions ----
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
    std::string p = b.op("softmax", {{"x", {s.in[0]}}, {"axis", {I(b, s.attrs().i("axis"), "axis")}}}, s.out_types[0]);
    b.op("log", {{"x", {p}}}, s.out_types[0], s.out[0]);
  });

  // ---- normalisation ----
  emit("batch_norm", [](Builder& b, const StepView& s) {
    bool consts = true;
    for (size_t i = 1; i < s.in.size(); ++i) consts &= b.is_const(s.in[i]);
    if (!consts) return void(normalize_decomposed(b, s, false));
    Args a{{"x", {s.in[0]}}, {"mean", {s.in[1]}}, {"variance", {s.in[2]}}, {"epsilon", {F(b, s, s.attrs().f("eps"), "epsilon")}}};
    for (auto& p : optional_affine(s, 3, "gamma", "beta")) a.push_back(p);
    b.op("batch_norm", a, s.out_types[0], s.out[0]);
  });
  emit("instance_norm", [](Builder& b, const StepView& s) {
    Args a{{"x", {s.in[0]}}, {"epsilon", {F(b, s, s.attrs().f("eps"), "epsilon")}}};
    for (auto& p : optional_affine(s, 1, "gamma", "beta")) a.push_back(p);
    b.op("instance_norm", a, s.out_types[0], s.out[0]);
  });
  emit("layer_norm", [](Builder& b, const StepView& s) {
    for (size_t i = 1; i < s.in.size(); ++i)
      if (!b.is_const(s.in[i])) return void(normalize_decomposed(b, s, true));
    int r = static_cast<int>(s.in_types[0].shape.size()), k = static_cast<int>(s.attrs().ints("normalized_shape").size());
    std::vector<int64_t> axes;
    for (int i = r - k; i < r; ++i) axes.push_back(i);
    Args a{{"x", {s.in[0]}}, {"axes", {Is(b, axes, "axes")}}, {"epsilon", {F(b, s, s.attrs().f("eps"), "epsilon")}}};
    for (auto& p : optional_affine(s, 1, "gamma", "beta")) a.push_back(p);
    if (!s.attrs().b("has_weight") && s.attrs().b("has_bias")) {  // coremltools needs gamma when beta is given
      auto ns = s.attrs().ints("normalized_shape");
      Shape sh(ns.begin(), ns.end());
      a.push_back({"gamma", {b.tensor(std::vector<float>(static_cast<size_t>(numel(sh)), 1.0f), sh, dt(s), "gamma")}});
    }
    b.op("layer_norm", a, s.out_types[0], s.out[0]);
  });
  emit("channel_layer_norm", [](Builder& b, const StepView& s) {
    Args a{{"x", {s.in[0]}}, {"axes", {Is(b, {1}, "axes")}}, {"epsilon", {F(b, s, s.attrs().f("eps"), "epsilon")}}};
    for (auto& p : optional_affine(s, 1, "gamma", "beta")) a.push_back(p);
    b.op("layer_norm", a, s.out_types[0], s.out[0]);
  });
  emit("rms_norm", [](Builder& b, const StepView& s) {
    const Type& xt = s.in_types[0];
    int r = static_cast<int>(xt.shape.size()), k = static_cast<int>(s.attrs().ints("normalized_shape").size());
    std::vector<int64_t> axes;
    Shape ks = xt.shape;
    for (int i = r - k; i < r; ++i) {
      axes.push_back(i);
      ks[i] = 1;
    }
    std::string sq = b.op("mul", {{"x", {s.in[0]}}, {"y", {s.in[0]}}}, xt);
    std::string ms = b.op("reduce_mean", {{"x", {sq}}, {"axes", {Is(b, axes, "axes")}}, {"keep_dims", {B(b, true, "keep_dims")}}}, like(xt, ks));
    std::string inv = b.op("rsqrt", {{"x", {ms}}, {"epsilon", {F(b, s, s.attrs().f("eps"), "epsilon")}}}, like(xt, ks));
    std::string out = s.attrs().b("has_weight") ? "" : s.out[0];
    std::string y = b.op("mul", {{"x", {s.in[0]}}, {"y", {inv}}}, xt, out);
    if (s.attrs().b("has_weight")) b.op("mul", {{"x", {y}}, {"y", {s.in[1]}}}, s.out_types[0], s.out[0]);
  });
  emit("group_norm", [](Builder& b, const StepView& s) {
    const Type& xt = s.in_types[0];
    int64_t N = xt.shape[0], C = xt.shape[1], G = s.attrs().i("num_groups"), sp = 1;
    for (size_t i = 2; i < xt.shape.size(); ++i) sp *= xt.shape[i];
    Shape gs{N, G, (C / G) * sp};
    std::string g = b.op("reshape", {{"x", {s.in[0]}}, {"shape", {Is(b, gs, "shape")}}}, like(xt, gs));
    std::string n = b.op("layer_norm", {{"x", {g}}, {"axes", {Is(b, {2}, "axes")}}, {"epsilon", {F(b, s, s.attrs().f("eps"), "epsilon")}}},
                         like(xt, gs));
    bool hw = s.attrs().b("has_weight"), hb = s.attrs().b("has_bias");
    std::string y = b.op("reshape", {{"x", {n}}, {"shape", {Is(b, xt.shape, "shape")}}}, xt, hw || hb ? "" : s.out[0]);
    Shape cs(xt.shape.size() - 1, 1);
    cs[0] = C;
    size_t i = 1;
    if (hw) {
      std::string w = b.op("reshape", {{"x", {s.in[i++]}}, {"shape", {Is(b, cs, "shape")}}}, like(xt, cs));
      y = b.op("mul", {{"x", {y}}, {"y", {w}}}, xt, hb ? "" : s.out[0]);
    }
    if (hb) {
      std::string bb = b.op("reshape", {{"x", {s.in[i]}}, {"shape", {Is(b, cs, "shape")}}}, like(xt, cs));
      b.op("add", {{"x", {y}}, {"y", {bb}}}, s.out_types[0], s.out[0]);
    }
  });
  emit("l2_norm", [](Builder& b, const StepView& s) {
    const Type& xt = s.in_types[0];
    Shape ks = xt.shape;
    int64_t axis = s.attrs().i("axis");
    if (!ks.empty()) ks[axis] = 1;
    std::string sq = b.op("mul", {{"x", {s.in[0]}}, {"y", {s.in[0]}}}, xt);
    std::string ss = b.op("reduce_sum", {{"x", {sq}}, {"axes", {Is(b, {axis}, "axes")}}, {"keep_dims", {B(b, true, "keep_dims")}}}, like(xt, ks));
    std::string nrm = b.op("sqrt", {{"x", {ss}}}, like(xt, ks));
    double eps = std::max(s.attrs().f("eps"), xt.dtype == DType::fp16 ? 6.103515625e-05 : 1e-12);
    std::string d = b.op("maximum", {{"x", {nrm}}, {"y", {F(b, s, eps, "eps")}}}, like(xt, ks));
    b.op("real_div", {{"x", {s.in[0]}}, {"y", {d}}}, s.out_types[0], s.out[0]);
  });
  unary_params("local_response_norm", "local_response_norm", [](Builder& b, const StepView& s) {
    return Args{{"size", {I(b, s.attrs().i("size"), "size")}}, {"alpha", {F(b, s, s.attrs().f("alpha"), "alpha")}},
                {"beta", {F(b, s, s.attrs().f("beta"), "beta")}}, {"k", {F(b, s, s.attrs().f("k"), "k")}}};
  });

  // ---- shape ----
  unary_params("reshape", "reshape", [](Builder& b, const StepView& s) { return Args{{"shape", {Is(b, s.out_types[0].shape, "shape")}}}; });
  unary_params("permute", "transpose", [](Builder& b, const StepView& s) { return Args{{"perm", {Is(b, s.attrs().ints("dims"), "perm")}}}; });
  emit("squeeze", [](Builder& b, const StepView& s) {
    b.op("reshape", {{"x", {s.in[0]}}, {"shape", {Is(b, s.out_types[0].shape, "shape")}}}, s.out_types[0], s.out[0]);
  });
  unary_params("expand_dims", "expand_dims", [](Builder& b, const StepView& s) { return Args{{"axes", {Is(b, {s.attrs().i("axis")}, "axes")}}}; });
  unary_params("slice", "slice_by_index", [](Builder& b, const StepView& s) {
    return Args{{"begin", {Is(b, s.attrs().ints("begin"), "begin")}}, {"end", {Is(b, s.attrs().ints("end"), "end")}},
                {"stride", {Is(b, s.attrs().ints("step"), "stride")}}};
  });
  unary_params("slice_by_size", "slice_by_size", [](Builder& b, const StepView& s) {
    return Args{{"begin", {Is(b, s.attrs().ints("begin"), "begin")}}, {"size", {Is(b, s.attrs().ints("size"), "size")}}};
  });
  unary_params("crop", "crop", [](Builder& b, const StepView& s) {
    const Shape& xs = s.in_types[0].shape;
    int64_t H = xs[xs.size() - 2], W = xs.back(), t = s.attrs().i("top"), l = s.attrs().i("left");
    return Args{{"crop_height", {Is(b, {t, H - t - s.attrs().i("height")}, "crop_height")}},
                {"crop_width", {Is(b, {l, W - l - s.attrs().i("width")}, "crop_width")}}};
  });
  emit("concat", [](Builder& b, const StepView& s) {
    b.op("concat", {{"values", s.in}, {"axis", {I(b, s.attrs().i("axis"), "axis")}}, {"interleave", {B(b, false, "interleave")}}},
         s.out_types[0], s.out[0]);
  });
  emit("split", [](Builder& b, const StepView& s) {
    b.op_multi("split", {{"x", {s.in[0]}}, {"split_sizes", {Is(b, s.attrs().ints("split_size_or_sections"), "split_sizes")}},
                         {"axis", {I(b, s.attrs().i("dim"), "axis")}}}, s.out_types, s.out);
  });
  emit("tile", [](Builder& b, const StepView& s) {
    auto reps = s.attrs().ints("dims");
    std::string x = s.in[0];
    if (s.in_types[0].shape.size() < reps.size()) {
      Shape xs = s.in_types[0].shape;
      while (xs.size() < reps.size()) xs.insert(xs.begin(), 1);
      x = b.op("reshape", {{"x", {x}}, {"shape", {Is(b, xs, "shape")}}}, like(s.in_types[0], xs));
    }
    b.op("tile", {{"x", {x}}, {"reps", {Is(b, reps, "reps")}}}, s.out_types[0], s.out[0]);
  });
  unary_params("pad", "pad", [](Builder& b, const StepView& s) {
    auto p = s.attrs().ints("pad");  // F.pad order: last axis first
    size_t r = s.in_types[0].shape.size();
    std::vector<int64_t> mil(2 * r);
    for (size_t i = 0; i < r; ++i) {
      mil[2 * (r - 1 - i)] = p[2 * i];
      mil[2 * (r - 1 - i) + 1] = p[2 * i + 1];
    }
    return Args{{"pad", {Is(b, mil, "pad")}}, {"mode", {S(b, s.attrs().s("mode"), "mode")}},
                {"constant_val", {F(b, s, s.attrs().f("value"), "constant_val")}}};
  });
  unary_params("pixel_shuffle", "pixel_shuffle", [](Builder& b, const StepView& s) {
    return Args{{"upscale_factor", {I(b, s.attrs().i("upscale_factor"), "upscale_factor")}}};
  });
  unary_params("pixel_unshuffle", "pixel_unshuffle", [](Builder& b, const StepView& s) {
    return Args{{"downscale_factor", {b.uint_scalar(static_cast<uint32_t>(s.attrs().i("downscale_factor")), "downscale_factor")}}};
  });
  for (const char* n : {"space_to_depth", "depth_to_space"})
    unary_params(n, n, [](Builder& b, const StepView& s) { return Args{{"block_size", {I(b, s.attrs().i("block_size"), "block_size")}}}; });

  // ---- pooling and geometry ----
  for (const char* n : {"max_pool", "avg_pool"}) {
    bool avg = n == std::string("avg_pool");
    emit(n, [avg](Builder& b, const StepView& s) {
      auto p = s.attrs().ints("padding");
      Args a{{"x", {s.in[0]}}, {"kernel_sizes", {Is(b, s.attrs().ints("kernel_size"), "kernel_sizes")}},
             {"strides", {Is(b, s.attrs().ints("stride"), "strides")}}, {"pad_type", {S(b, "custom", "pad_type")}},
             {"pad", {Is(b, {p[0], p[0], p[1], p[1]}, "pad")}}, {"ceil_mode", {B(b, s.attrs().b("ceil_mode"), "ceil_mode")}}};
      if (avg) a.push_back({"exclude_padding_from_average", {B(b, !s.attrs().b("count_include_pad"), "exclude_padding")}});
      b.op(avg ? "avg_pool" : "max_pool", a, s.out_types[0], s.out[0]);
    });
  }
  auto scale = [](const StepView& s, int i) {
    const Shape &in = s.in_types[0].shape, &out = s.out_types[0].shape;
    return static_cast<double>(out[2 + i]) / static_cast<double>(in[2 + i]);
  };
  unary_params("upsample_nearest", "upsample_nearest_neighbor", [scale](Builder& b, const StepView& s) {
    return Args{{"scale_factor_height", {b.float_scalar(scale(s, 0), DType::fp32, "scale_h")}},
                {"scale_factor_width", {b.float_scalar(scale(s, 1), DType::fp32, "scale_w")}}};
  });
  unary_params("upsample_bilinear", "upsample_bilinear", [scale](Builder& b, const StepView& s) {
    bool align = s.attrs().b("align_corners");
    return Args{{"scale_factor_height", {b.float_scalar(scale(s, 0), DType::fp32, "scale_h")}},
                {"scale_factor_width", {b.float_scalar(scale(s, 1), DType::fp32, "scale_w")}},
                {"align_corners", {B(b, align, "align_corners")}}, {"half_pixel_centers", {B(b, !align, "half_pixel_centers")}}};
  });
  unary_params("resize_bilinear", "resize_bilinear", [](Builder& b, const StepView& s) {
    return Args{{"target_size_height", {I(b, s.out_types[0].shape[2], "height")}},
                {"target_size_width", {I(b, s.out_types[0].shape[3], "width")}},
                {"sampling_mode", {S(b, s.attrs().b("align_corners") ? "STRICT_ALIGN_CORNERS" : "UNALIGN_CORNERS", "sampling_mode")}}};
  });
  unary_params("resize_nearest", "resize_nearest_neighbor", [](Builder& b, const StepView& s) {
    return Args{{"target_size_height", {I(b, s.out_types[0].shape[2], "height")}},
                {"target_size_width", {I(b, s.out_types[0].shape[3], "width")}}};
  });
  emit("affine", [](Builder& b, const StepView& s) {
    int64_t N = s.in_types[1].shape[0];
    std::string m = b.op("reshape", {{"x", {s.in[1]}}, {"shape", {Is(b, {N, 6}, "shape")}}}, like(s.in_types[1], {N, 6}));
    b.op("affine", {{"x", {s.in[0]}}, {"transform_matrix", {m}}, {"output_height", {I(b, s.out_types[0].shape[2], "height")}},
                    {"output_width", {I(b, s.out_types[0].shape[3], "width")}}, {"sampling_mode", {S(b, "bilinear", "sampling_mode")}},
                    {"padding_mode", {S(b, "constant", "padding_mode")}}, {"padding_value", {F(b, s, 0.0, "padding_value")}},
                    {"coordinates_mode", {S(b, "normalized_minus_one_to_one", "coordinates_mode")}},
                    {"align_corners", {B(b, s.attrs().b("align_corners"), "align_corners")}}},
         s.out_types[0], s.out[0]);
  });
}

}  // namespace af
