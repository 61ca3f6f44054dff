// Helpers for MIL emitters, used beside each op family's definitions: every op's emitter
// lives in the same file as the op (attached by attach_<family>_mil()).
#pragma once
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
inline std::string I(Builder& b, int64_t v, const char* hint) { return b.int_scalar(v, hint); }
inline std::string Is(Builder& b, const std::vector<int64_t>& v, const char* hint) { return b.ints(v, hint); }
inline std::string S(Builder& b, const std::string& v, const char* hint) { return b.string_scalar(v, hint); }
inline std::string B(Builder& b, bool v, const char* hint) { return b.bool_scalar(v, hint); }
inline Type like(const Type& t, Shape s) { return Type{t.dtype, s, s.empty(), false}; }


// (x - mean) / sqrt(var + eps) * weight + bias from basic MIL ops, for normalisations whose
// parameters are runtime tensors (the MIL norm ops need constants). batch_norm uses the given
// statistics on axis 1; layer_norm computes them over the trailing axes.
inline void normalize_decomposed(Builder& b, const StepView& s, bool layer) {
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

inline Args optional_affine(const StepView& s, size_t first, const char* w, const char* bname) {
  Args a;
  size_t i = first;
  if (s.attrs().b("has_weight")) a.push_back({w, {s.in[i++]}});
  if (s.attrs().b("has_bias")) a.push_back({bname, {s.in[i++]}});
  return a;
}



}  // namespace af::milx
