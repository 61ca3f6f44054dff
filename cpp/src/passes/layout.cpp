// Layout: every activation in the engine's channels-first form, (B, C, H, W) for rank 4
// and (B, C, 1, S) otherwise, with rows padded to 64 bytes; constants cast to storage.
#include "aneforge/runtime.h"
#include "passes/passes.h"

namespace af {

// The engine's 4-D view of a shape: rank 4 is (B, C, H, W); lower ranks put the last axis
// on S = W and the one before on C; rank 5 folds its first two axes into B.
Shape engine_shape(const Shape& s) {
  switch (s.size()) {
    case 0: return {1, 1, 1, 1};
    case 1: return {1, 1, 1, s[0]};
    case 2: return {1, s[0], 1, s[1]};
    case 3: return {s[0], s[1], 1, s[2]};
    case 4: return s;
    default: return {s[0] * s[1], s[2], s[3], s[4]};
  }
}

int64_t engine_bytes(const Shape& s) {
  Shape e = engine_shape(s);
  int64_t row = (e[3] * 2 + 63) / 64 * 64;  // fp16 rows padded to 64 bytes
  return e[0] * e[1] * e[2] * row;
}

void assign_layout(Program& p) {
  for (auto& v : p.values) {
    if (v.data) continue;
    v.layout = v.type.shape.size() == 4 || v.type.shape.size() == 5 ? "BCHW" : "BC1S";
    v.engine_bytes = engine_bytes(v.type.shape);
  }
}

void cast_constants(Program& p) {
  SimContext ctx{p.options.numerics};
  for (auto& v : p.values) {
    if (!v.data || v.data->packed) continue;  // packed weights dequantize to fp16 values
    DType dt = v.type.dtype;
    bool round16 = dt == DType::fp16 && p.options.numerics.precision == Precision::fp16;
    if (!round16 && dt != DType::boolean && !is_integer(dt)) continue;
    auto d = std::make_shared<ConstData>(*v.data);
    ctx.store(d->values.data(), d->values.size(), dt);
    v.data = std::move(d);
  }
}

}  // namespace af
