// Float transposes for the sim's copy kernels.
#pragma once
#include <cstdint>

namespace af {

// dst[j * ld_dst + i] = src[i * ld_src + j] for i < rows, j < cols: 8 x 8 blocks in AVX
// registers on x86-64 (4 x 4 in NEON on arm64), the edges one value at a time. Not threaded.
void transpose_floats(const float* src, int64_t ld_src, float* dst, int64_t ld_dst, int64_t rows, int64_t cols);

}  // namespace af
