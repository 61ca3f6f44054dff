// Compressed weights: int8 with fp16 scales per output row or per block of inputs.
#include <algorithm>
#include <cmath>

#include "aneforge/fp16.h"
#include "aneforge/graph.h"

namespace af {

int64_t PackedWeights::cols() const {
  int64_t n = numel(shape);
  return rows() > 0 ? n / rows() : 0;
}

void PackedWeights::dequantize(float* out) const {
  if (format == "int4") {
    const int64_t C = cols(), per_group = (group_rows > 0 ? group_rows : rows()) * C, n = numel(shape);
    float table[16];
    for (int64_t i = 0; i < n; ++i) {
      if (i % per_group == 0)
        for (int k = 0; k < 16; ++k) table[k] = half_to_float(lut[static_cast<size_t>((i / per_group) * 16 + k)]);
      uint8_t byte = q4[static_cast<size_t>(i / 2)];
      out[i] = table[i % 2 ? byte >> 4 : byte & 0xF];
    }
    return;
  }
  const int64_t R = rows(), C = cols(), B = blocks(), per = block > 0 ? block : C;
  for (int64_t r = 0; r < R; ++r)
    for (int64_t b = 0; b < B; ++b) {
      float s = half_to_float(scales[static_cast<size_t>(r * B + b)]);
      const int8_t* q = q8.data() + r * C + b * per;
      float* o = out + r * C + b * per;
      for (int64_t c = 0; c < per; ++c) o[c] = static_cast<float>(q[c]) * s;
    }
}

int64_t PackedWeights::stored_bytes() const {
  return static_cast<int64_t>(q8.size() + 2 * scales.size() + q4.size() + 2 * lut.size());
}

std::string PackedWeights::check() const {
  if (format != "int8" && format != "int4") return "unknown format '" + format + "'";
  if (shape.empty() || checked_numel(shape) < 0) return "bad shape";
  if (format == "int4") {
    if (group_rows < 0 || (group_rows > 0 && rows() % group_rows)) return "group rows do not divide the rows";
    if (static_cast<int64_t>(q4.size()) != (numel(shape) + 1) / 2) return "index data size";
    if (static_cast<int64_t>(lut.size()) != groups() * 16) return "LUT size";
    if (!q8.empty() || !scales.empty()) return "int8 data in an int4 weight";
    for (uint16_t v : lut)
      if (!std::isfinite(half_to_float(v))) return "a LUT entry is not finite";
    return "";
  }
  if (!q4.empty() || !lut.empty()) return "int4 data in an int8 weight";
  if (block < 0 || (block > 0 && cols() % block)) return "block " + std::to_string(block) + " does not divide the rows";
  if (static_cast<int64_t>(q8.size()) != numel(shape)) return "quantized data size";
  if (static_cast<int64_t>(scales.size()) != rows() * blocks()) return "scale count";
  for (uint16_t s : scales)
    if (!std::isfinite(half_to_float(s))) return "a scale is not finite";
  for (int8_t q : q8)
    if (q == -128) return "a quantized value is -128 (symmetric int8 uses -127..127)";
  return "";
}

}  // namespace af
