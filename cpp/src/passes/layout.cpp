// Layout: every activation in the engine's channels-first form, (B, C, H, W) for rank 4
// and (B, C, 1, S) otherwise, with rows padded to 64 bytes; constants cast to storage.
#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>

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
namespace {

// Programs compiled from the same borrowed weights (a language model's prefill and decode
// programs) share their fp16 copies: an entry is used while the memory it was made from is
// still borrowed (its owner alive, so the values there are the same) and the copy is alive.
struct HalfKey {
  const float* data;
  size_t n;
  int round, ftz;
  bool operator<(const HalfKey& o) const {
    return std::tie(data, n, round, ftz) < std::tie(o.data, o.n, o.round, o.ftz);
  }
};
struct HalfEntry {
  std::weak_ptr<const void> owner;
  std::weak_ptr<const ConstData> halves;
};
std::mutex half_mu;
std::map<HalfKey, HalfEntry> half_cache;

std::shared_ptr<const ConstData> shared_halves(const HalfKey& key) {
  std::lock_guard<std::mutex> lock(half_mu);
  for (auto it = half_cache.begin(); it != half_cache.end();)  // drop what is gone
    it = it->second.owner.expired() || it->second.halves.expired() ? half_cache.erase(it) : std::next(it);
  auto it = half_cache.find(key);  // alive: the memory at that address is still the same borrowed array
  return it == half_cache.end() ? nullptr : it->second.halves.lock();
}

}  // namespace

void cast_constants(Program& p) {
  SimContext ctx{p.options.numerics};
  for (auto& v : p.values) {
    if (!v.data || v.data->packed) continue;  // packed weights dequantize to fp16 values
    DType dt = v.type.dtype;
    const ConstValues& src = v.data->values;
    bool round16 = dt == DType::fp16 && p.options.numerics.precision == Precision::fp16;
    if (src.is_half()) continue;  // fp16 bits already (a loaded program)
    if (!round16 && dt != DType::boolean && !is_integer(dt) && !src.is_borrowed()) continue;
    HalfKey key{src.is_borrowed() ? src.data() : nullptr, src.size(), static_cast<int>(p.options.numerics.fp16.round),
                p.options.numerics.fp16.flush_subnormals ? 1 : 0};
    if (round16 && key.data && static_cast<int64_t>(src.size()) >= kHalfConstMin) {
      if (auto shared = shared_halves(key)) {
        v.data = std::move(shared);
        continue;
      }
    }
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
      if (key.data) {
        std::lock_guard<std::mutex> lock(half_mu);
        half_cache[key] = HalfEntry{src.owner(), d};
      }
    } else {
      std::vector<float> vals = src.to_vector();
      if (round16 || dt == DType::boolean || is_integer(dt)) ctx.store(vals.data(), vals.size(), dt);
      d->values = std::move(vals);
    }
    v.data = std::move(d);
  }
}

}  // namespace af
