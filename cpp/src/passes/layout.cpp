// Layout: every activation in the engine's channels-first form, (B, C, H, W) for rank 4
// and (B, C, 1, S) otherwise, with rows padded to 64 bytes; constants cast to storage.
#include <algorithm>

#include "aneforge/fp16.h"
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

// Constants as the program holds them: fp16 ones rounded (fp16 precision), large ones as fp16
// bits, rounded a chunk at a time so no float32 copy of the whole weight is made; integers and
// bools stored in range. None stays borrowed: the program outlives the graph's sources (a
// torch module its user goes on training).
void cast_constants(Program& p) {
  SimContext ctx{p.options.numerics};
  for (auto& v : p.values) {
    if (!v.data || v.data->packed) continue;  // packed weights dequantize to fp16 values
    DType dt = v.type.dtype;
    const ConstValues& src = v.data->values;
    bool round16 = dt == DType::fp16 && p.options.numerics.precision == Precision::fp16;
    if (src.is_half()) continue;  // fp16 bits already (a loaded program)
    if (!round16 && dt != DType::boolean && !is_integer(dt) && !src.is_borrowed()) continue;
    auto d = std::make_shared<ConstData>();
    if (round16 && static_cast<int64_t>(src.size()) >= kHalfConstMin) {
      std::vector<uint16_t> bits(src.size());
      std::vector<float> chunk;
      for (size_t at = 0; at < src.size(); at += 65536) {
        size_t n = std::min<size_t>(65536, src.size() - at);
        chunk.assign(src.data() + at, src.data() + at + n);
        ctx.store(chunk.data(), n, dt);
        floats_to_halves(chunk.data(), bits.data() + at, n);  // exact: the values are fp16 now
      }
      d->values = ConstValues::halves(std::move(bits));
    } else {
      std::vector<float> vals = src.to_vector();
      if (round16 || dt == DType::boolean || is_integer(dt)) ctx.store(vals.data(), vals.size(), dt);
      d->values = std::move(vals);
    }
    v.data = std::move(d);
  }
}

}  // namespace af
