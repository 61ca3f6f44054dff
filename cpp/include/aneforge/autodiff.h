// Reverse-mode differentiation over the lazy graph: gradients are graphs of other ops
// (each op's OpDef::grad), compiled like any other graph.
#pragma once
#include <vector>

#include "aneforge/graph.h"

namespace af {

// d loss / d wrt[i], for a loss of one element. A wrt the loss does not depend on gets
// zeros; an op on the way without a gradient is a ValueError naming it.
std::vector<Tensor> grad(const Tensor& loss, const std::vector<Tensor>& wrt);

// Vector-Jacobian product: sum_i <cotangents[i], d outputs[i] / d wrt[k]> for each k. The walk
// stops at the wrt tensors, so it differentiates just the subgraph between them and the
// outputs (a bridge op's lowering, for one). Non-float wrt get no gradient (an invalid Tensor).
std::vector<Tensor> vjp(const std::vector<Tensor>& outputs, const std::vector<Tensor>& cotangents,
                        const std::vector<Tensor>& wrt);

}  // namespace af
