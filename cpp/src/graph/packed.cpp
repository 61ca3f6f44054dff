// Compressed weights: int8 with fp16 scales, int4 LUTs, and sparse (a bitmask with the
// non-zeros in fp16, int8 or int4).
#include <algorithm>
#include <bit>
#include <cmath>

#include "aneforge/fp16.h"
#include "aneforge/graph.h"

namespace af {

int64_t PackedWeights::cols() const {
  int64_t n = numel(shape);
  return rows() > 0 ? n / rows() : 0;
}

std::string PackedWeights::value_format() const {
  if (format == "int8" || format == "sparse+int8") return "int8";
  if (format == "int4" || format == "sparse+int4") return "int4";
  return "fp16";
}

int64_t PackedWeights::stored_count() const {
  if (!sparse()) return numel(shape);
  int64_t n = 0;
  for (uint8_t b : mask) n += std::popcount(b);
  return n;
}

void PackedWeights::dequantize(float* out) const {
  if (format == "int8") {  // the dense formats row by row
    const int64_t R = rows(), C = cols(), B = blocks(), per = block > 0 ? block : C;
    for (int64_t r = 0; r < R; ++r)
      for (int64_t b = 0; b < B; ++b) {
        const float s = half_to_float(scales[static_cast<size_t>(r * B + b)]);
        const int8_t* q = q8.data() + r * C + b * per;
        float* o = out + r * C + b * per;
        for (int64_t c = 0; c < per; ++c) o[c] = static_cast<float>(q[c]) * s;
      }
    return;
  }
  const int64_t n = numel(shape), C = cols(), per_block = block > 0 ? block : C;
  const int64_t per_group = (group_rows > 0 ? group_rows : rows()) * C;
  const std::string vf = value_format();
  float table[16] = {0};
  int64_t k = 0;  // index of the next stored value
  for (int64_t i = 0; i < n; ++i) {
    if (vf == "int4" && i % per_group == 0)
      for (int e = 0; e < 16; ++e) table[e] = half_to_float(lut[static_cast<size_t>((i / per_group) * 16 + e)]);
    if (!stored_at(i)) {
      out[i] = 0.0f;
      continue;
    }
    if (vf == "int4") {
      uint8_t byte = q4[static_cast<size_t>(k / 2)];
      out[i] = table[k % 2 ? byte >> 4 : byte & 0xF];
    } else if (vf == "int8") {
      const int64_t r = i / C, b = (i % C) / per_block;
      out[i] = static_cast<float>(q8[static_cast<size_t>(k)]) * half_to_float(scales[static_cast<size_t>(r * blocks() + b)]);
    } else {
      out[i] = half_to_float(nz16[static_cast<size_t>(k)]);
    }
    ++k;
  }
}

int64_t PackedWeights::stored_bytes() const {
  return static_cast<int64_t>(q8.size() + 2 * scales.size() + q4.size() + 2 * lut.size() + mask.size() + 2 * nz16.size());
}

std::string PackedWeights::check() const {
  if (format != "int8" && format != "int4" && format != "sparse" && format != "sparse+int8" && format != "sparse+int4")
    return "unknown format '" + format + "'";
  if (shape.empty() || checked_numel(shape) < 0) return "bad shape";
  const int64_t n = numel(shape);
  if (sparse()) {
    if (static_cast<int64_t>(mask.size()) != (n + 7) / 8) return "mask size";
    if (n % 8 && (mask.back() >> (n % 8))) return "mask bits set past the last element";
  } else if (!mask.empty()) {
    return "a mask in a dense weight";
  }
  const int64_t count = stored_count();
  const std::string vf = value_format();
  if (vf != "fp16" && !nz16.empty()) return "fp16 values in a quantized weight";
  if (vf != "int4" && (!q4.empty() || !lut.empty())) return "int4 data in a weight of format " + format;
  if (vf != "int8" && (!q8.empty() || !scales.empty())) return "int8 data in a weight of format " + format;
  if (vf == "fp16") {
    if (static_cast<int64_t>(nz16.size()) != count) return "stored value count";
    for (uint16_t v : nz16)
      if (!std::isfinite(half_to_float(v))) return "a stored value is not finite";
    return "";
  }
  if (vf == "int4") {
    if (group_rows < 0 || (group_rows > 0 && rows() % group_rows)) return "group rows do not divide the rows";
    if (static_cast<int64_t>(q4.size()) != (count + 1) / 2) return "index data size";
    if (static_cast<int64_t>(lut.size()) != groups() * 16) return "LUT size";
    for (uint16_t v : lut)
      if (!std::isfinite(half_to_float(v))) return "a LUT entry is not finite";
    return "";
  }
  if (block < 0 || (block > 0 && cols() % block)) return "block " + std::to_string(block) + " does not divide the rows";
  if (static_cast<int64_t>(q8.size()) != count) return "quantized data size";
  if (static_cast<int64_t>(scales.size()) != rows() * blocks()) return "scale count";
  for (uint16_t s : scales)
    if (!std::isfinite(half_to_float(s))) return "a scale is not finite";
  for (int8_t q : q8)
    if (q == -128) return "a quantized value is -128 (symmetric int8 uses -127..127)";
  return "";
}

}  // namespace af
