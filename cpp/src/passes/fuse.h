#pragma once
#include "aneforge/program.h"

namespace af {
// conv/linear + relu -> one layer with a fused activation (attr "activation"). The engine
// rounds the conv result to fp16 before its activation and relu commutes with that
// rounding, so fusing does not change results.
void fuse_activations(Program& p);
// Drops steps whose results nothing uses and renumbers producers.
void remove_dead_steps(Program& p, const std::vector<bool>& dead);
}  // namespace af
