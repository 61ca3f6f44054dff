// Helpers for gradients (OpDef::grad), written in other ops.
#pragma once
#include <vector>

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

}  // namespace af::gr
