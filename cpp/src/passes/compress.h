#pragma once
#include "aneforge/program.h"

namespace af {
// Weight-only compression of constant conv/linear weights. int8: symmetric per output
// channel (scale = absmax / 127), dequantised to fp16 as the engine's
// constexpr_affine_dequantize does. Always accepted (as in the reference).
void compress_weights(Program& p, const std::string& mode);
// Symmetric per-row int8 round trip of a (rows, cols) matrix; returns dequantised values.
std::vector<float> int8_roundtrip(const std::vector<float>& w, int64_t rows);
}  // namespace af
