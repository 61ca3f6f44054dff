#pragma once
#include "aneforge/program.h"

namespace af {
// Assigns buffer slots to values by liveness so that dead buffers are reused.
void plan_memory(Program& p);
}  // namespace af
