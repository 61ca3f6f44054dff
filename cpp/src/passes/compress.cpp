#include "passes/passes.h"

#include <cmath>

#include "aneforge/error.h"
#include "aneforge/op.h"

namespace af {

std::vector<float> int8_roundtrip(const std::vector<float>& w, int64_t rows) {
  std::vector<float> out(w.size());
  int64_t cols = rows ? static_cast<int64_t>(w.size()) / rows : 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = w.data() + r * cols;
    float amax = 0.0f;
    for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(src[c]));
    float scale = amax > 0.0f ? amax / 127.0f : 1.0f;
    for (int64_t c = 0; c < cols; ++c) {
      float q = std::nearbyint(src[c] / scale);
      q = std::min(127.0f, std::max(-127.0f, q));
      out[r * cols + c] = q * scale;
    }
  }
  return out;
}

void compress_weights(Program& p, const std::string& mode) {
  if (mode.empty()) return;
  if (mode != "int8") throw ValueError("compile: compress must be None or 'int8', got '" + mode + "'");
  for (const auto& s : p.steps) {
    const std::string& op = s.node->op->name;
    if ((op != "conv" && op != "linear") || s.in.size() < 2) continue;
    Value& w = p.values[s.in[1]];
    if (!w.data || !w.encoding.empty() || numel(w.type.shape) < 16) continue;
    auto d = std::make_shared<ConstData>();
    d->values = int8_roundtrip(w.data->values, w.type.shape[0]);
    w.data = std::move(d);
    w.encoding = "int8";
  }
}

}  // namespace af
