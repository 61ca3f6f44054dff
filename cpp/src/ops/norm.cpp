// Normalisation: batch_norm (inference), instance_norm, layer_norm, rms_norm, group_norm,
// channel_layer_norm, channel_rms_norm, l2_norm, local_response_norm. Statistics accumulate in fp32.
#include <algorithm>
#include <cmath>

#include "ops/kernel_util.h"
#include "ops/mil_util.h"
#include "ops/register.h"

namespace af {

namespace {

// Optional affine parameters (weight, bias) follow x in the inputs; has_weight/has_bias say
// which are present. Returns pointers (nullptr when absent).
std::pair<const float*, const float*> affine_params(const KernelArgs& k, size_t first) {
  const float *w = nullptr, *b = nullptr;
  size_t i = first;
  if (k.node.attrs.b("has_weight")) w = k.in[i++];
  if (k.node.attrs.b("has_bias")) b = k.in[i++];
  return {w, b};
}

void set_affine_flags(InferContext& c, size_t first, const Shape& want, const char* what) {
  // Python passes only the present tensors; has_* flags record which.
  bool hw = c.attrs.has("has_weight") ? c.attrs.b("has_weight") : false;
  bool hb = c.attrs.has("has_bias") ? c.attrs.b("has_bias") : false;
  size_t n = c.inputs.size() - first;
  if (!c.attrs.has("has_weight") && !c.attrs.has("has_bias")) {
    hw = n >= 1;
    hb = n >= 2;
  }
  if ((hw ? 1u : 0u) + (hb ? 1u : 0u) != n) c.fail("weight/bias inputs do not match has_weight/has_bias");
  for (size_t i = first; i < c.inputs.size(); ++i) {
    c.expect_same_dtype(0, i);
    if (numel(c.in(i).shape()) != numel(want))
      c.fail(std::string(i == first && hw ? "weight" : "bias") + " must have " + std::to_string(numel(want)) +
             " elements (" + what + " " + shape_str(want) + "), got " + shape_str(c.in(i).shape()));
  }
  c.attrs.set("has_weight", hw);
  c.attrs.set("has_bias", hb);
}

// Normalise groups of `len` consecutive values; `param_of(g, j)` gives the affine index.
template <class Idx>
void normalize_groups(const float* x, float* y, int64_t groups, int64_t len, float eps, bool rms,
                      const float* w, const float* b, Idx param_of) {
  parallel_for(groups, std::max<int64_t>(1, 4096 / std::max<int64_t>(len, 1)), [&](size_t gb, size_t ge) {
    for (size_t g = gb; g < ge; ++g) {
      const float* p = x + g * len;
      float* q = y + g * len;
      double mean = 0.0, var = 0.0;
      if (!rms) {
        float s = 0.0f;
        for (int64_t j = 0; j < len; ++j) s += p[j];
        mean = s / static_cast<double>(len);
      }
      float ss = 0.0f;
      for (int64_t j = 0; j < len; ++j) {
        float d = p[j] - static_cast<float>(mean);
        ss += d * d;
      }
      var = ss / static_cast<double>(len);
      float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
      for (int64_t j = 0; j < len; ++j) {
        float v = (p[j] - static_cast<float>(mean)) * inv;
        int64_t pi = param_of(static_cast<int64_t>(g), j);
        if (w) v *= w[pi];
        if (b) v += b[pi];
        q[j] = v;
      }
    }
  });
}

OpDef norm_op(const char* name, const char* mil, const char* doc, std::vector<Param> params) {
  OpDef d;
  d.name = name;
  d.category = "normalization";
  d.doc = doc;
  d.mil_op = mil;
  d.params = std::move(params);
  return d;
}

const Param kW = P("weight", ParamKind::opt_tensor, "None");
const Param kB = P("bias", ParamKind::opt_tensor, "None");

}  // namespace

void register_norm_ops() {
  // layer_norm / rms_norm over the trailing normalized_shape.
  for (bool rms : {false, true}) {
    OpDef d = norm_op(rms ? "rms_norm" : "layer_norm", rms ? "mul(x, rsqrt(reduce_mean(square)))" : "layer_norm",
                      rms ? "x / sqrt(mean(x^2) + eps) * weight over the trailing normalized_shape (torch rms_norm; "
                            "eps=None means float32 eps)."
                          : "(x - mean) / sqrt(var + eps) * weight + bias over the trailing normalized_shape.",
                      rms ? std::vector<Param>{P("x", ParamKind::tensor), P("normalized_shape", ParamKind::ints), kW,
                                               P("eps", ParamKind::any, "None")}
                          : std::vector<Param>{P("x", ParamKind::tensor), P("normalized_shape", ParamKind::ints), kW, kB,
                                               P("eps", ParamKind::float_, "1e-05")});
    d.infer = [rms](InferContext& c) {
      c.expect_float(0);
      const Shape& s = c.in(0).shape();
      auto ns = c.attrs.ints("normalized_shape");
      if (ns.empty() || ns.size() > s.size() || !std::equal(ns.begin(), ns.end(), s.end() - ns.size()))
        c.fail("normalized_shape " + attr_str(ns) + " must match the trailing axes of x " + shape_str(s));
      set_affine_flags(c, 1, ns, "normalized_shape");
      double eps = c.attrs.has("eps") ? c.attrs.f("eps") : (rms ? 1.1920928955078125e-07 : 1e-5);
      c.attrs.set("eps", eps);
      c.outputs = {c.in(0).type()};
    };
    d.kernel = [rms](const KernelArgs& k) {
      int64_t len = numel(Shape(k.node.attrs.ints("normalized_shape")));
      const auto wb = affine_params(k, 1);  // (not a structured binding: lambdas below capture it)
      const float *w = wb.first, *b = wb.second;
      int64_t n = numel(k.in_type(0).shape);
      normalize_groups(k.in[0], k.out[0], n / len, len, static_cast<float>(k.node.attrs.f("eps")), rms, w, b,
                       [](int64_t, int64_t j) { return j; });
    };
    register_op(std::move(d));
  }
  // group_norm and instance_norm: statistics per (n, group) over channels-in-group x spatial.
  for (bool inst : {false, true}) {
    OpDef d = norm_op(inst ? "instance_norm" : "group_norm", inst ? "instance_norm" : "group_norm (decomposed)",
                      inst ? "Normalise each (n, c) plane; optional per-channel weight/bias (torch instance_norm, no running stats)."
                           : "Normalise each group of channels; per-channel weight/bias (torch group_norm).",
                      inst ? std::vector<Param>{P("x", ParamKind::tensor), kW, kB, P("eps", ParamKind::float_, "1e-05")}
                           : std::vector<Param>{P("x", ParamKind::tensor), P("num_groups", ParamKind::int_), kW, kB,
                                                P("eps", ParamKind::float_, "1e-05")});
    d.infer = [inst](InferContext& c) {
      c.expect_float(0);
      c.expect_rank(0, 2, 5, "x");
      const Shape& s = c.in(0).shape();
      int64_t G = inst ? s[1] : c.attrs.i("num_groups");
      if (G < 1 || s[1] % G) c.fail("num_groups " + std::to_string(G) + " must divide the channels of x " + shape_str(s));
      c.attrs.set("num_groups", G);
      set_affine_flags(c, 1, {s[1]}, "channels");
      c.attrs.set("eps", c.attrs.f("eps", 1e-5));
      c.outputs = {c.in(0).type()};
    };
    d.kernel = [](const KernelArgs& k) {
      const Shape& s = k.in_type(0).shape;
      int64_t G = k.node.attrs.i("num_groups"), C = s[1], spatial = numel(s) / (s[0] * C);
      int64_t len = (C / G) * spatial;
      const auto wb = affine_params(k, 1);  // (not a structured binding: lambdas below capture it)
      const float *w = wb.first, *b = wb.second;
      normalize_groups(k.in[0], k.out[0], s[0] * G, len, static_cast<float>(k.node.attrs.f("eps")), false, w, b,
                       [=](int64_t g, int64_t j) { return (g % G) * (C / G) + j / spatial; });
    };
    register_op(std::move(d));
  }
  {
    OpDef d = norm_op("batch_norm", "batch_norm",
                      "(x - running_mean) / sqrt(running_var + eps) * weight + bias on axis 1 (inference; folded into a "
                      "preceding conv by the compiler).",
                      {P("x", ParamKind::tensor), P("running_mean", ParamKind::tensor), P("running_var", ParamKind::tensor),
                       kW, kB, P("eps", ParamKind::float_, "1e-05")});
    d.infer = [](InferContext& c) {
      c.expect_float(0);
      c.expect_rank(0, 2, 5, "x");
      int64_t C = c.in(0).shape()[1];
      for (size_t i : {1, 2}) {
        c.expect_same_dtype(0, i);
        if (c.in(i).shape() != Shape{C})
          c.fail(std::string(i == 1 ? "running_mean" : "running_var") + " must have shape (" + std::to_string(C) +
                 ",), got " + shape_str(c.in(i).shape()));
      }
      set_affine_flags(c, 3, {C}, "channels");
      c.attrs.set("eps", c.attrs.f("eps", 1e-5));
      c.outputs = {c.in(0).type()};
    };
    d.kernel = [](const KernelArgs& k) {
      const Shape& s = k.in_type(0).shape;
      int64_t C = s[1], inner = numel(s) / (s[0] * C);
      const auto wb = affine_params(k, 3);  // (not a structured binding: lambdas below capture it)
      const float *w = wb.first, *b = wb.second;
      float eps = static_cast<float>(k.node.attrs.f("eps"));
      parallel_for(s[0] * C, 1, [&](size_t pb, size_t pe) {
        for (size_t p = pb; p < pe; ++p) {
          int64_t c = static_cast<int64_t>(p) % C;
          float scale = 1.0f / std::sqrt(k.in[2][c] + eps) * (w ? w[c] : 1.0f);
          float shift = (b ? b[c] : 0.0f) - k.in[1][c] * scale;
          const float* x = k.in[0] + p * inner;
          float* y = k.out[0] + p * inner;
          for (int64_t j = 0; j < inner; ++j) y[j] = x[j] * scale + shift;
        }
      });
    };
    register_op(std::move(d));
  }
  {
    OpDef d = norm_op("channel_layer_norm", "layer_norm (axes=[1])",
                      "Layer norm over the channel axis 1 at each position: the (B, C, 1, S) transformer layout.",
                      {P("x", ParamKind::tensor), kW, kB, P("eps", ParamKind::float_, "1e-05")});
    d.infer = [](InferContext& c) {
      c.expect_float(0);
      c.expect_rank(0, 2, 5, "x");
      set_affine_flags(c, 1, {c.in(0).shape()[1]}, "channels");
      c.attrs.set("eps", c.attrs.f("eps", 1e-5));
      c.outputs = {c.in(0).type()};
    };
    d.kernel = [](const KernelArgs& k) {
      const auto wb = affine_params(k, 1);  // (not a structured binding: lambdas below capture it)
      const float *w = wb.first, *b = wb.second;
      float eps = static_cast<float>(k.node.attrs.f("eps"));
      for_lanes(k.in[0], k.out[0], k.in_type(0).shape, 1, [&](const float* x, float* y, int64_t n, int64_t st) {
        float s = 0.0f, ss = 0.0f;
        for (int64_t i = 0; i < n; ++i) s += x[i * st];
        float mean = s / static_cast<float>(n);
        for (int64_t i = 0; i < n; ++i) ss += (x[i * st] - mean) * (x[i * st] - mean);
        float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
        for (int64_t i = 0; i < n; ++i) {
          float v = (x[i * st] - mean) * inv;
          y[i * st] = (w ? v * w[i] : v) + (b ? b[i] : 0.0f);
        }
      });
    };
    register_op(std::move(d));
  }
  {
    OpDef d = norm_op("channel_rms_norm", "mul(x, rsqrt(reduce_mean(square, axes=[1])))",
                      "RMS norm over the channel axis 1 at each position (the (B, C, 1, S) transformer layout): "
                      "x / sqrt(mean(x^2) + eps) * weight; eps=None means float32 eps, as rms_norm.",
                      {P("x", ParamKind::tensor), kW, P("eps", ParamKind::any, "None")});
    d.infer = [](InferContext& c) {
      c.expect_float(0);
      c.expect_rank(0, 2, 5, "x");
      set_affine_flags(c, 1, {c.in(0).shape()[1]}, "channels");
      c.attrs.set("eps", c.attrs.has("eps") ? c.attrs.f("eps") : 1.1920928955078125e-07);
      c.outputs = {c.in(0).type()};
    };
    d.kernel = [](const KernelArgs& k) {  // rms_norm's arithmetic, along a strided lane
      const float* w = affine_params(k, 1).first;
      double eps = k.node.attrs.f("eps");
      for_lanes(k.in[0], k.out[0], k.in_type(0).shape, 1, [&](const float* x, float* y, int64_t n, int64_t st) {
        float ss = 0.0f;
        for (int64_t i = 0; i < n; ++i) ss += x[i * st] * x[i * st];
        float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
        for (int64_t i = 0; i < n; ++i) y[i * st] = w ? x[i * st] * inv * w[i] : x[i * st] * inv;
      });
    };
    register_op(std::move(d));
  }
  {
    OpDef d = norm_op("l2_norm", "l2_norm", "x / max(||x||_2, eps) along axis (torch F.normalize).",
                      {P("x", ParamKind::tensor), P("axis", ParamKind::int_, "-1"), P("eps", ParamKind::float_, "1e-12")});
    d.method = true;
    d.infer = [](InferContext& c) {
      c.expect_float(0);
      c.attrs.set("axis", int64_t{normalize_axis(c.attrs.i("axis", -1), std::max(1, c.in(0).rank()), c.op.name)});
      c.attrs.set("eps", c.attrs.f("eps", 1e-12));
      c.outputs = {c.in(0).type()};
    };
    d.kernel = [](const KernelArgs& k) {
      float eps = static_cast<float>(k.node.attrs.f("eps"));
      Shape s = k.in_type(0).shape.empty() ? Shape{1} : k.in_type(0).shape;
      for_lanes(k.in[0], k.out[0], s, static_cast<int>(k.node.attrs.i("axis")),
                [eps](const float* x, float* y, int64_t n, int64_t st) {
        float ss = 0.0f;
        for (int64_t i = 0; i < n; ++i) ss += x[i * st] * x[i * st];
        float inv = 1.0f / std::max(std::sqrt(ss), eps);
        for (int64_t i = 0; i < n; ++i) y[i * st] = x[i * st] * inv;
      });
    };
    register_op(std::move(d));
  }
  {
    OpDef d = norm_op("local_response_norm", "local_response_norm",
                      "x / (k + alpha/size * sum of x^2 over size neighbouring channels)^beta (torch local_response_norm).",
                      {P("x", ParamKind::tensor), P("size", ParamKind::int_), P("alpha", ParamKind::float_, "0.0001"),
                       P("beta", ParamKind::float_, "0.75"), P("k", ParamKind::float_, "1.0")});
    d.infer = [](InferContext& c) {
      c.expect_float(0);
      c.expect_rank(0, 3, 5, "x");
      if (c.attrs.i("size") < 1) c.fail("size must be >= 1");
      c.attrs.set("alpha", c.attrs.f("alpha", 1e-4));
      c.attrs.set("beta", c.attrs.f("beta", 0.75));
      c.attrs.set("k", c.attrs.f("k", 1.0));
      c.outputs = {c.in(0).type()};
    };
    d.kernel = [](const KernelArgs& kk) {
      int64_t size = kk.node.attrs.i("size");
      float alpha = static_cast<float>(kk.node.attrs.f("alpha")), beta = static_cast<float>(kk.node.attrs.f("beta")),
            kc = static_cast<float>(kk.node.attrs.f("k"));
      for_lanes(kk.in[0], kk.out[0], kk.in_type(0).shape, 1, [&](const float* x, float* y, int64_t n, int64_t st) {
        for (int64_t c = 0; c < n; ++c) {
          float s = 0.0f;
          for (int64_t j = c - size / 2; j <= c + (size - 1) / 2; ++j)
            if (j >= 0 && j < n) s += x[j * st] * x[j * st];
          y[c * st] = x[c * st] / std::pow(kc + alpha / static_cast<float>(size) * s, beta);
        }
      });
    };
    register_op(std::move(d));
  }
}

// MIL emission of this family's ops (the rest use the default mil_op(x=..., y=...)).
void attach_norm_mil() {
  using namespace milx;
  emit("batch_norm", [](Builder& b, const StepView& s) {
    bool consts = true;
    for (size_t i = 1; i < s.in.size(); ++i) consts &= b.is_const(s.in[i]);
    if (!consts) return void(normalize_decomposed(b, s, false));
    Args a{{"x", {s.in[0]}}, {"mean", {b.as_fp32(s.in[1])}}, {"variance", {b.as_fp32(s.in[2])}},
           {"epsilon", {P(b, s.attrs().f("eps"), "epsilon")}}};
    for (auto& p : optional_affine(b, s, 3, "gamma", "beta")) a.push_back(p);
    b.op("batch_norm", a, s.out_types[0], s.out[0]);
  });
  emit("instance_norm", [](Builder& b, const StepView& s) {
    Args a{{"x", {s.in[0]}}, {"epsilon", {P(b, s.attrs().f("eps"), "epsilon")}}};
    for (auto& p : optional_affine(b, s, 1, "gamma", "beta")) a.push_back(p);
    b.op("instance_norm", a, s.out_types[0], s.out[0]);
  });
  emit("layer_norm", [](Builder& b, const StepView& s) {
    for (size_t i = 1; i < s.in.size(); ++i)
      if (!b.is_const(s.in[i])) return void(normalize_decomposed(b, s, true));
    int r = static_cast<int>(s.in_types[0].shape.size()), k = static_cast<int>(s.attrs().ints("normalized_shape").size());
    std::vector<int64_t> axes;
    for (int i = r - k; i < r; ++i) axes.push_back(i);
    Args a{{"x", {s.in[0]}}, {"axes", {Is(b, axes, "axes")}}, {"epsilon", {P(b, s.attrs().f("eps"), "epsilon")}}};
    for (auto& p : optional_affine(b, s, 1, "gamma", "beta")) a.push_back(p);
    if (!s.attrs().b("has_weight") && s.attrs().b("has_bias")) {  // coremltools needs gamma when beta is given
      auto ns = s.attrs().ints("normalized_shape");
      Shape sh(ns.begin(), ns.end());
      a.push_back({"gamma", {b.tensor(std::vector<float>(static_cast<size_t>(numel(sh)), 1.0f), sh, DType::fp32, "gamma")}});
    }
    b.op("layer_norm", a, s.out_types[0], s.out[0]);
  });
  emit("channel_layer_norm", [](Builder& b, const StepView& s) {
    Args a{{"x", {s.in[0]}}, {"axes", {Is(b, {1}, "axes")}}, {"epsilon", {P(b, s.attrs().f("eps"), "epsilon")}}};
    for (auto& p : optional_affine(b, s, 1, "gamma", "beta")) a.push_back(p);
    b.op("layer_norm", a, s.out_types[0], s.out[0]);
  });
  emit("channel_rms_norm", [](Builder& b, const StepView& s) {
    const Type& xt = s.in_types[0];
    bool hw = s.attrs().b("has_weight");
    std::string y = scaled_rsqrt_norm(b, s.in[0], xt, {1}, s.attrs().f("eps"), false, hw ? "" : s.out[0]);
    if (!hw) return;
    Shape cs(xt.shape.size() - 1, 1);  // (C, 1, ...): the weight along the channels
    cs[0] = xt.shape[1];
    std::string w = b.op("reshape", {{"x", {s.in[1]}}, {"shape", {Is(b, cs, "shape")}}}, like(xt, cs));
    b.op("mul", {{"x", {y}}, {"y", {w}}}, s.out_types[0], s.out[0]);
  });
  emit("rms_norm", [](Builder& b, const StepView& s) {
    const Type& xt = s.in_types[0];
    int r = static_cast<int>(xt.shape.size()), k = static_cast<int>(s.attrs().ints("normalized_shape").size());
    std::vector<int64_t> axes;
    for (int i = r - k; i < r; ++i) axes.push_back(i);
    bool hw = s.attrs().b("has_weight");
    std::string y = scaled_rsqrt_norm(b, s.in[0], xt, axes, s.attrs().f("eps"), false, hw ? "" : s.out[0]);
    if (hw) b.op("mul", {{"x", {y}}, {"y", {s.in[1]}}}, s.out_types[0], s.out[0]);
  });
  emit("group_norm", [](Builder& b, const StepView& s) {
    const Type& xt = s.in_types[0];
    int64_t N = xt.shape[0], C = xt.shape[1], G = s.attrs().i("num_groups"), sp = 1;
    for (size_t i = 2; i < xt.shape.size(); ++i) sp *= xt.shape[i];
    Shape gs{N, G, (C / G) * sp};
    std::string g = b.op("reshape", {{"x", {s.in[0]}}, {"shape", {Is(b, gs, "shape")}}}, like(xt, gs));
    std::string n = b.op("layer_norm", {{"x", {g}}, {"axes", {Is(b, {2}, "axes")}}, {"epsilon", {P(b, s.attrs().f("eps"), "epsilon")}}},
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
    // x / max(||x||, eps) = (x/m) / max(||x/m||, eps/m) with m = max(max|x|, 2^-14): no square
    // overflows fp16, and ||x/m|| >= 1 unless x is 0 (then the floor keeps 0/0 away).
    const Type& xt = s.in_types[0];
    Shape ks = xt.shape;
    int64_t axis = s.attrs().i("axis");
    if (!ks.empty()) ks[axis] = 1;
    std::string ax = Is(b, {axis}, "axes"), keep = B(b, true, "keep_dims");
    std::string mx = b.op("reduce_max", {{"x", {b.op("abs", {{"x", {s.in[0]}}}, xt)}}, {"axes", {ax}}, {"keep_dims", {keep}}}, like(xt, ks));
    std::string m = b.op("maximum", {{"x", {mx}}, {"y", {F(b, s, 6.103515625e-05, "floor")}}}, like(xt, ks));
    m = b.op("minimum", {{"x", {m}}, {"y", {F(b, s, xt.dtype == DType::fp16 ? 65504.0 : 3.4028234663852886e38, "ceiling")}}}, like(xt, ks));
    std::string xs = b.op("real_div", {{"x", {s.in[0]}}, {"y", {m}}}, xt);
    std::string ss = b.op("reduce_sum", {{"x", {b.op("mul", {{"x", {xs}}, {"y", {xs}}}, xt)}}, {"axes", {ax}}, {"keep_dims", {keep}}},
                          like(xt, ks));
    std::string nrm = b.op("sqrt", {{"x", {ss}}}, like(xt, ks));
    double eps = s.attrs().f("eps");
    std::string e = b.op("real_div", {{"x", {F(b, s, xt.dtype == DType::fp16 && eps < 6.103515625e-05 ? 0.0 : eps, "eps")}}, {"y", {m}}},
                         like(xt, ks));
    e = b.op("maximum", {{"x", {e}}, {"y", {F(b, s, 6.103515625e-05, "floor")}}}, like(xt, ks));
    std::string d = b.op("maximum", {{"x", {nrm}}, {"y", {e}}}, like(xt, ks));
    b.op("real_div", {{"x", {xs}}, {"y", {d}}}, s.out_types[0], s.out[0]);
  });
  unary_params("local_response_norm", "local_response_norm", [](Builder& b, const StepView& s) {
    return Args{{"size", {I(b, s.attrs().i("size"), "size")}}, {"alpha", {P(b, s.attrs().f("alpha"), "alpha")}},
                {"beta", {P(b, s.attrs().f("beta"), "beta")}}, {"k", {P(b, s.attrs().f("k"), "k")}}};
  });
}

}  // namespace af

// ---- gradients (in other ops) ----
// Each norm is differentiated through its definition written in differentiable ops (mean,
// sub, mul, rsqrt, ...): a vector-Jacobian product over that small graph. The forward
// pass still runs the fused kernel; only the backward pass sees the decomposition.
#include "ops/grad_util.h"

namespace af {

namespace {

using namespace gr;

// (x - mean) / sqrt(var + eps) over axes (rms: x / sqrt(mean(x^2) + eps)).
Tensor standardize(const Tensor& x, const std::vector<int64_t>& axes, double eps, bool rms) {
  Tensor d = rms ? x : sub(x, reduce("mean", x, axes, true));
  Tensor var = reduce("mean", mul(d, d), axes, true);
  return mul(d, op("rsqrt", {op("add", {var, like(x, eps)})}));
}

// weight and bias (present per has_weight/has_bias, from input `first`) applied with shape `as`.
Tensor affine(Tensor y, const std::vector<Tensor>& in, size_t first, const Attrs& a, const Shape& as) {
  size_t i = first;
  if (a.b("has_weight")) y = mul(y, reshape(in[i++], as));
  if (a.b("has_bias")) y = op("add", {y, reshape(in[i++], as)});
  return y;
}

Shape channel_shape(const Tensor& x) {
  Shape s(static_cast<size_t>(x.rank()), 1);
  s[1] = x.shape()[1];
  return s;
}

using Definition = std::function<Tensor(const std::vector<Tensor>&, const Attrs&)>;

void by_decomposition(const char* name, Definition f) {
  mutable_op(name).grad = through([f](const std::vector<Tensor>& in, const Attrs& a) { return std::vector<Tensor>{f(in, a)}; });
}

}  // namespace

void attach_norm_grad() {
  for (const char* name : {"layer_norm", "rms_norm"}) {
    bool rms = std::string(name) == "rms_norm";
    by_decomposition(name, [rms](const std::vector<Tensor>& in, const Attrs& a) {
      auto ns = a.ints("normalized_shape");
      int r = in[0].rank();
      std::vector<int64_t> axes;
      for (int i = r - static_cast<int>(ns.size()); i < r; ++i) axes.push_back(i);
      return affine(standardize(in[0], axes, a.f("eps"), rms), in, 1, a, Shape(ns.begin(), ns.end()));
    });
  }
  for (const char* name : {"group_norm", "instance_norm"})
    by_decomposition(name, [](const std::vector<Tensor>& in, const Attrs& a) {
      const Tensor& x = in[0];
      int64_t G = a.i("num_groups");
      // (N, G, C/G, spatial...): no axis longer than x's own (the engine limits each axis)
      Shape view{x.shape()[0], G, x.shape()[1] / G};
      if (x.rank() <= 4) view.insert(view.end(), x.shape().begin() + 2, x.shape().end());
      else view.push_back(numel(x.shape()) / (x.shape()[0] * x.shape()[1]));
      std::vector<int64_t> axes;
      for (int i = 2; i < static_cast<int>(view.size()); ++i) axes.push_back(i);
      Tensor y = reshape(standardize(reshape(x, view), axes, a.f("eps"), false), x.shape());
      return affine(y, in, 1, a, channel_shape(x));
    });
  by_decomposition("channel_layer_norm", [](const std::vector<Tensor>& in, const Attrs& a) {
    return affine(standardize(in[0], {1}, a.f("eps"), false), in, 1, a, channel_shape(in[0]));
  });
  by_decomposition("channel_rms_norm", [](const std::vector<Tensor>& in, const Attrs& a) {
    return affine(standardize(in[0], {1}, a.f("eps"), true), in, 1, a, channel_shape(in[0]));
  });
  by_decomposition("batch_norm", [](const std::vector<Tensor>& in, const Attrs& a) {
    Shape cs = channel_shape(in[0]);
    Tensor inv = op("rsqrt", {op("add", {reshape(in[2], cs), like(in[0], a.f("eps"))})});
    return affine(mul(sub(in[0], reshape(in[1], cs)), inv), in, 3, a, cs);
  });
  by_decomposition("l2_norm", [](const std::vector<Tensor>& in, const Attrs& a) {
    const Tensor& x = in[0];
    Tensor norm = op("sqrt", {reduce("sum", mul(x, x), {a.i("axis")}, true)});
    return div(x, op("maximum", {norm, like(x, a.f("eps"))}));
  });
  by_decomposition("local_response_norm", [](const std::vector<Tensor>& in, const Attrs& a) {
    return op_def("lrn").lower(in, a)[0];
  });
}

}  // namespace af
