#pragma once
#include "aneforge/graph.h"

namespace af {
// Replaces every bridge node by its native lowering (OpDef::lower), rebuilding the nodes
// downstream of it. Returns the outputs of the rewritten graph; inputs are unchanged.
std::vector<Tensor> lower_bridges(const std::vector<Tensor>& outputs);
}  // namespace af
