// Helpers for MIL emitters, used beside each op family's definitions: every op's emitter
// lives in the same file as the op (attached by attach_<family>_mil()).
#pragma once
#include <algorithm>
#include <cmath>
#include <functional>

#include "aneforge/mil.h"
#include "ops/register.h"

namespace af::milx {

using mil::Builder;
using mil::StepView;
using mil::Type;
using Args = std::vector<std::pair<std::string, std::vector<std::string>>>;


inline DType dt(const StepView& s) { return s.in_types[0].dtype; }
inline std::string F(Builder& b, const StepView& s, double v, const char* hint) { return b.float_scalar(v, dt(s), hint); }
// A scalar parameter (alpha, beta, epsilon) of the iOS17 ops that type it apart from x
// ("U": fp16 or fp32): fp32 carries the exact value the simulator uses.
inline std::string P(Builder& b, double v, const char* hint) { return b.float_scalar(v, DType::fp32, hint); }
inline std::string I(Builder& b, int64_t v, const char* hint) { return b.int_scalar(v, hint); }
inline std::string Is(Builder& b, const std::vector<int64_t>& v, const char* hint) { return b.ints(v, hint); }
inline std::string S(Builder& b, const std::string& v, const char* hint) { return b.string_scalar(v, hint); }
inline std::string B(Builder& b, bool v, const char* hint) { return b.bool_scalar(v, hint); }
inline Type like(const Type& t, Shape s) { return Type{t.dtype, s, s.empty(), false}; }


// x / sqrt(mean(x^2 over axes) + eps), without squaring in fp16: x^2 overflows fp16 from
// |x| = 256. x is first scaled by s = max(max|x|, c), c = max(sqrt(eps), 2^-14) (an fp16
// normal; at most the largest finite value), so |x/s| <= 1; then x/s / sqrt(mean((x/s)^2) + (c/s)^2). The eps term (c/s)^2
// equals eps/s^2 when sqrt(eps) is an fp16 normal; a smaller eps acts as 2^-28 (docs/mil.md).
// Returns the normalised tensor's var name. `sum` uses the sum instead of the mean.
inline std::string scaled_rsqrt_norm(Builder& b, const std::string& x, const Type& xt, const std::vector<int64_t>& axes,
                                     double eps, bool sum, const std::string& out = "") {
  Shape ks = xt.shape;
  for (auto a : axes) ks[static_cast<size_t>(a)] = 1;
  std::string ax = b.ints(axes, "axes"), keep = b.bool_scalar(true, "keep_dims");
  double c = std::max(std::sqrt(eps), 6.103515625e-05);
  std::string m = b.op("reduce_max", {{"x", {b.op("abs", {{"x", {x}}}, xt)}}, {"axes", {ax}}, {"keep_dims", {keep}}}, like(xt, ks));
  std::string sc = b.op("maximum", {{"x", {m}}, {"y", {b.float_scalar(c, xt.dtype, "floor")}}}, like(xt, ks));
  // a row holding +-inf: finite scale, so finite entries become 0 and infinities NaN (as torch)
  sc = b.op("minimum", {{"x", {sc}}, {"y", {b.float_scalar(xt.dtype == DType::fp16 ? 65504.0 : 3.4028234663852886e38, xt.dtype, "ceiling")}}},
            like(xt, ks));
  std::string xs = b.op("real_div", {{"x", {x}}, {"y", {sc}}}, xt);
  std::string sq = b.op("mul", {{"x", {xs}}, {"y", {xs}}}, xt);
  std::string ms = b.op(sum ? "reduce_sum" : "reduce_mean", {{"x", {sq}}, {"axes", {ax}}, {"keep_dims", {keep}}}, like(xt, ks));
  std::string r = b.op("real_div", {{"x", {b.float_scalar(c, xt.dtype, "sqrt_eps")}}, {"y", {sc}}}, like(xt, ks));
  std::string e2 = b.op("mul", {{"x", {r}}, {"y", {r}}}, like(xt, ks));
  std::string inv = b.op("rsqrt", {{"x", {b.op("add", {{"x", {ms}}, {"y", {e2}}}, like(xt, ks))}}, {"epsilon", {P(b, 0.0, "epsilon")}}},
                         like(xt, ks));
  return b.op("mul", {{"x", {xs}}, {"y", {inv}}}, xt, out);
}

// (x - mean) / sqrt(var + eps) * weight + bias from basic MIL ops, for normalisations whose
// parameters are runtime tensors (the MIL norm ops need constants). batch_norm uses the given
// statistics on axis 1; layer_norm computes them over the trailing axes (variance via
// scaled_rsqrt_norm, so that no square overflows fp16).
inline void normalize_decomposed(Builder& b, const StepView& s, bool layer) {
  const Type& xt = s.in_types[0];
  int r = static_cast<int>(xt.shape.size());
  size_t next = 1;
  Shape ps(r, 1);  // parameter broadcast shape
  bool hw = s.attrs().b("has_weight"), hb = s.attrs().b("has_bias");
  std::string y;
  std::string final_name = hw || hb ? "" : s.out[0];
  if (layer) {
    auto ns = s.attrs().ints("normalized_shape");
    std::vector<int64_t> axes;
    Shape ks = xt.shape;
    for (int i = r - static_cast<int>(ns.size()); i < r; ++i) {
      axes.push_back(i);
      ks[i] = 1;
    }
    ps = Shape(ns.begin(), ns.end());
    std::string mean = b.op("reduce_mean", {{"x", {s.in[0]}}, {"axes", {b.ints(axes, "axes")}}, {"keep_dims", {b.bool_scalar(true, "keep_dims")}}},
                            like(xt, ks));
    std::string d = b.op("sub", {{"x", {s.in[0]}}, {"y", {mean}}}, xt);
    y = scaled_rsqrt_norm(b, d, xt, axes, s.attrs().f("eps"), false, final_name);
  } else {
    ps[1] = xt.shape[1];
    ps.erase(ps.begin());
    std::string shp = b.ints(ps, "shape");
    std::string mean = b.op("reshape", {{"x", {s.in[1]}}, {"shape", {shp}}}, like(xt, ps));
    std::string var = b.op("reshape", {{"x", {s.in[2]}}, {"shape", {shp}}}, like(xt, ps));
    std::string inv = b.op("rsqrt", {{"x", {var}}, {"epsilon", {P(b, s.attrs().f("eps"), "epsilon")}}}, b.type_of(var));
    std::string d = b.op("sub", {{"x", {s.in[0]}}, {"y", {mean}}}, xt);
    y = b.op("mul", {{"x", {d}}, {"y", {inv}}}, xt, final_name);
    next = 3;
  }
  auto param = [&](size_t i) {
    return layer ? s.in[i] : b.op("reshape", {{"x", {s.in[i]}}, {"shape", {b.ints(ps, "shape")}}}, like(xt, ps));
  };
  if (hw) y = b.op("mul", {{"x", {y}}, {"y", {param(next++)}}}, xt, hb ? "" : s.out[0]);
  if (hb) b.op("add", {{"x", {y}}, {"y", {param(next)}}}, s.out_types[0], s.out[0]);
}

inline void emit(const char* name, std::function<void(Builder&, const StepView&)> fn) { mutable_op(name).emit_mil = std::move(fn); }

// op(x, <params>) with x the first input and params computed from the attributes.
inline void unary_params(const char* name, const char* mil,
                  std::function<Args(Builder&, const StepView&)> params) {
  std::string m = mil;
  emit(name, [m, params](Builder& b, const StepView& s) {
    Args a = params(b, s);
    a.push_back({"x", {s.in[0]}});
    b.op(m, a, s.out_types[0], s.out[0]);
  });
}

inline std::vector<int64_t> conv_pad(const StepView& s) { return s.attrs().ints("pad"); }

// The optional gamma/beta of the MIL norm ops, as fp32 constants (their dtype must match the
// fp32 epsilon).
inline Args optional_affine(Builder& b, const StepView& s, size_t first, const char* w, const char* bname) {
  Args a;
  size_t i = first;
  if (s.attrs().b("has_weight")) a.push_back({w, {b.as_fp32(s.in[i++])}});
  if (s.attrs().b("has_bias")) a.push_back({bname, {b.as_fp32(s.in[i++])}});
  return a;
}



}  // namespace af::milx
