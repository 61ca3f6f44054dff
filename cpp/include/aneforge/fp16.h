// IEEE binary16 conversion as the engine stores activations and weights.
#pragma once
#include <cstddef>
#include <cstdint>

namespace af {

enum class RoundMode : uint8_t { nearest_even, nearest_away };

struct Fp16Mode {
  RoundMode round = RoundMode::nearest_even;
  bool flush_subnormals = true;  // results below 2^-14 in magnitude become signed zero
};

uint16_t float_to_half(float f, Fp16Mode mode = {});
float half_to_float(uint16_t h);
// Round each value to the nearest fp16 value (as float), in place. Vectorised (F16C) and
// split across threads for large buffers.
void round_to_fp16(float* data, size_t n, Fp16Mode mode = {});
void floats_to_halves(const float* src, uint16_t* dst, size_t n, Fp16Mode mode = {});
void halves_to_floats(const uint16_t* src, float* dst, size_t n);
// bfloat16 bits (float32's upper half) to fp16 bits, rounded as floats_to_halves rounds the
// widened floats. Returns whether every result is finite (no inf/NaN, none past 65504).
bool bf16_to_halves(const uint16_t* src, uint16_t* dst, size_t n, Fp16Mode mode = {});
// y[i] = table[h] with h the fp16 bits of x[i], for x holding fp16 values as floats (as the sim
// holds fp16 tensors). Stops at the first block of eight with a value that is not exactly an
// fp16 value, or is NaN, before writing it, and returns how many leading y it wrote (n when
// all): the caller computes the rest itself, even in place (y == x). Not threaded.
size_t lookup_halves(const float* x, float* y, size_t n, const float* table);
// y[m * ldy] = dot(x + m * ldx, w) over K for m < M (1..4), w as fp16 bits, widened exactly
// as it is read. The sum order is fixed on every machine: eight fp32 lanes (lane j takes
// k = j, j + 8, ... in order; each product rounded, then added), the tail k >= K - K % 8 into
// lanes 0.., then ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
void dot_halves(const float* x, int64_t ldx, int M, const uint16_t* w, int64_t K, float* y, int64_t ldy);
// dst (cols x rows) = src (rows x cols) transposed, for 16-bit values (fp16 or bf16 bits):
// 8 x 8 blocks in registers (SSE2, NEON), split across threads. Row c of dst starts at
// dst + c * ld_dst (ld_dst >= rows; 0 means rows), so a band of src's rows can land in a
// band of a wider dst's columns. src and dst must not overlap.
void transpose_u16(const uint16_t* src, uint16_t* dst, size_t rows, size_t cols, size_t ld_dst = 0);

}  // namespace af
