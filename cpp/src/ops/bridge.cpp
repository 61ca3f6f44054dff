// Bridge ops: layers CoreML's MIL frontend never emits, lowered by the compiler into
// native ops inside the same program (never a graph cut). Filled in below.
#include "ops/register.h"

namespace af {
void register_bridge_ops() {}
}  // namespace af
