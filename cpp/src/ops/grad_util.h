// Helpers for gradients (OpDef::grad), written in other ops.
#pragma once
#include <vector>

#include "aneforge/autodiff.h"
#include "ops/lower_util.h"

namespace af::gr {

using namespace lw;

// The gradient of a broadcast operand: summed over the axes it was broadcast along.
inline Tensor unbroadcast(const Tensor& g, const Shape& to) {
  const Shape& s = g.shape();
  if (s == to) return g;
  int lead = static_cast<int>(s.size()) - static_cast<int>(to.size());
  std::vector<int64_t> axes;
  for (int i = 0; i < static_cast<int>(s.size()); ++i)
    if (i < lead || (to[i - lead] == 1 && s[i] != 1)) axes.push_back(i);
  Tensor r = axes.empty() ? g : reduce("sum", g, axes, true);
  return reshape(r, to);
}

// g (shaped like a reduction's result) spread back over `shape`, the reduced axes restored.
inline Tensor spread(const Tensor& g, const Shape& shape, const std::vector<int64_t>& axes, bool keep) {
  Shape ks = shape;
  for (auto a : axes) ks[static_cast<size_t>(a)] = 1;
  Tensor k = keep ? g : reshape(g, ks);
  std::vector<float> ones(static_cast<size_t>(numel(shape)), 1.0f);
  return mul(k, constant(std::move(ones), shape, g.dtype()));
}

inline Tensor like(const Tensor& x, double v) { return scalar(v, x.dtype()); }

// The gradient through an equivalent graph of differentiable ops built on the node's inputs
// (a bridge's lowering, a fused op's definition): a vector-Jacobian product over that graph.
inline GradFn through(LowerFn equivalent) {
  return [equivalent](const Node& n, const std::vector<Tensor>& g) {
    return vjp(equivalent(n.inputs, n.attrs), g, n.inputs);
  };
}

// Zero padding of one axis (F.pad pairs run from the last axis backwards).
inline Tensor pad_axis(const Tensor& x, int axis, int64_t before, int64_t after) {
  if (before == 0 && after == 0) return x;
  std::vector<int64_t> p(2 * static_cast<size_t>(x.rank() - axis), 0);
  p[p.size() - 2] = before;
  p[p.size() - 1] = after;
  return op("pad", {x}, {{"pad", p}, {"mode", std::string("constant")}, {"value", 0.0}});
}

// The adjoint of taking every step-th entry from begin along axis: t placed back into a
// zero tensor of size `full` there (zeros interleaved between entries, then padded).
inline Tensor scatter_strided(const Tensor& t, int axis, int64_t begin, int64_t step, int64_t full) {
  int64_t n = t.shape()[axis];
  Tensor r = t;
  if (step > 1 && n > 1) {
    Shape s = t.shape(), wide = t.shape();
    s.insert(s.begin() + axis + 1, 1);
    wide[axis] = n * step;
    r = reshape(pad_axis(reshape(t, s), axis + 1, 0, step - 1), wide);
    r = narrow(r, axis, 0, (n - 1) * step + 1);
  }
  int64_t span = (n - 1) * step + 1;
  return pad_axis(r, axis, begin, full - begin - span);
}

// x[begin::step] along one axis, `count` entries.
inline Tensor take_strided(const Tensor& x, int axis, int64_t begin, int64_t step, int64_t count) {
  std::vector<int64_t> b(x.rank(), 0), e(x.shape().begin(), x.shape().end()), st(x.rank(), 1);
  b[axis] = begin;
  e[axis] = begin + (count - 1) * step + 1;
  st[axis] = step;
  return op("slice", {x}, {{"begin", b}, {"end", e}, {"step", st}});
}

}  // namespace af::gr
