#include "runtime/transpose.h"

#include "runtime/simd.h"

namespace af {

namespace {

void transpose_scalar(const float* s, int64_t ls, float* d, int64_t ld, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t j = j0; j < j1; ++j) d[j * ld + i] = s[i * ls + j];
}

// The block edges: full blocks cover [0, rb) x [0, cb).
void transpose_edges(const float* s, int64_t ls, float* d, int64_t ld, int64_t rows, int64_t cols, int64_t rb, int64_t cb) {
  transpose_scalar(s, ls, d, ld, 0, rb, cb, cols);
  transpose_scalar(s, ls, d, ld, rb, rows, 0, cols);
}

#if defined(AF_X86)
__attribute__((target("avx"))) void transpose_avx(const float* s, int64_t ls, float* d, int64_t ld, int64_t rows,
                                                  int64_t cols) {
  const int64_t rb = rows / 8 * 8, cb = cols / 8 * 8;
  for (int64_t i = 0; i < rb; i += 8)
    for (int64_t j = 0; j < cb; j += 8) {
      __m256 r[8], t[8], u[8];
      for (int k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(s + (i + k) * ls + j);
      for (int k = 0; k < 8; k += 2) {
        t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
      }
      for (int k = 0; k < 8; k += 4) {
        u[k] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
      }
      for (int k = 0; k < 4; ++k) {
        _mm256_storeu_ps(d + (j + k) * ld + i, _mm256_permute2f128_ps(u[k], u[k + 4], 0x20));
        _mm256_storeu_ps(d + (j + k + 4) * ld + i, _mm256_permute2f128_ps(u[k], u[k + 4], 0x31));
      }
    }
  transpose_edges(s, ls, d, ld, rows, cols, rb, cb);
}

bool has_avx() {
  static const bool ok = __builtin_cpu_supports("avx");
  return ok;
}
#elif defined(AF_ARM64)
void transpose_neon(const float* s, int64_t ls, float* d, int64_t ld, int64_t rows, int64_t cols) {
  const int64_t rb = rows / 4 * 4, cb = cols / 4 * 4;
  for (int64_t i = 0; i < rb; i += 4)
    for (int64_t j = 0; j < cb; j += 4) {
      float32x4x2_t p01 = vtrnq_f32(vld1q_f32(s + i * ls + j), vld1q_f32(s + (i + 1) * ls + j));
      float32x4x2_t p23 = vtrnq_f32(vld1q_f32(s + (i + 2) * ls + j), vld1q_f32(s + (i + 3) * ls + j));
      vst1q_f32(d + j * ld + i, vcombine_f32(vget_low_f32(p01.val[0]), vget_low_f32(p23.val[0])));
      vst1q_f32(d + (j + 1) * ld + i, vcombine_f32(vget_low_f32(p01.val[1]), vget_low_f32(p23.val[1])));
      vst1q_f32(d + (j + 2) * ld + i, vcombine_f32(vget_high_f32(p01.val[0]), vget_high_f32(p23.val[0])));
      vst1q_f32(d + (j + 3) * ld + i, vcombine_f32(vget_high_f32(p01.val[1]), vget_high_f32(p23.val[1])));
    }
  transpose_edges(s, ls, d, ld, rows, cols, rb, cb);
}
#endif

}  // namespace

void transpose_floats(const float* src, int64_t ld_src, float* dst, int64_t ld_dst, int64_t rows, int64_t cols) {
#if defined(AF_X86)
  if (has_avx()) return transpose_avx(src, ld_src, dst, ld_dst, rows, cols);
#elif defined(AF_ARM64)
  return transpose_neon(src, ld_src, dst, ld_dst, rows, cols);
#endif
  transpose_scalar(src, ld_src, dst, ld_dst, 0, rows, 0, cols);
}

}  // namespace af
