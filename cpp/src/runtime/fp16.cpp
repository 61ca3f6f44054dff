#include "aneforge/fp16.h"

#include <cstring>

#include "aneforge/parallel.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#include <immintrin.h>
#define AF_X86 1
#endif

namespace af {

static inline uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
static inline float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t float_to_half(float f, Fp16Mode mode) {
  uint32_t x = bits_of(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  uint32_t h;
  if (ax >= 0x38800000u) {  // normal fp16 result
    uint32_t r = ax - (112u << 23);
    r += mode.round == RoundMode::nearest_even ? 0xfffu + ((r >> 13) & 1u) : 0x1000u;
    h = r >> 13;
  } else {  // subnormal or zero result
    uint32_t e = ax >> 23;
    uint32_t shift = 126u - e;  // value = m * 2^(e-150), unit 2^-24
    if (shift > 24) {
      h = 0;
    } else {
      uint32_t m = (ax & 0x7fffffu) | 0x800000u;
      uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
      h = m >> shift;
      bool up = rem > half || (rem == half && (mode.round == RoundMode::nearest_away || (h & 1u)));
      h += up;
    }
    if (mode.flush_subnormals && h < 0x400u) h = 0;
  }
  return static_cast<uint16_t>(sign | h);
}

float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1f) return float_of(sign | 0x7f800000u | (m << 13));
  if (e == 0) {
    if (m == 0) return float_of(sign);
    float v = static_cast<float>(m) * (1.0f / 16777216.0f);  // m * 2^-24
    return sign ? -v : v;
  }
  return float_of(sign | ((e + 112u) << 23) | (m << 13));
}

#ifdef AF_X86
__attribute__((target("avx,f16c"))) static void round_f16c(float* p, size_t n, bool ftz) {
  size_t i = 0;
  const __m128i expmask = _mm_set1_epi16(0x7c00), signmask = _mm_set1_epi16(static_cast<short>(0x8000));
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(p + i);
    __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (ftz) {
      __m128i denorm = _mm_cmpeq_epi16(_mm_and_si128(h, expmask), _mm_setzero_si128());
      h = _mm_blendv_epi8(h, _mm_and_si128(h, signmask), denorm);
    }
    _mm256_storeu_ps(p + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) p[i] = half_to_float(float_to_half(p[i], {RoundMode::nearest_even, ftz}));
}

__attribute__((target("avx,f16c"))) static void to_halves_f16c(const float* s, uint16_t* d,
                                                               size_t n, bool ftz) {
  size_t i = 0;
  const __m128i expmask = _mm_set1_epi16(0x7c00), signmask = _mm_set1_epi16(static_cast<short>(0x8000));
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (ftz) {
      __m128i denorm = _mm_cmpeq_epi16(_mm_and_si128(h, expmask), _mm_setzero_si128());
      h = _mm_blendv_epi8(h, _mm_and_si128(h, signmask), denorm);
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), h);
  }
  for (; i < n; ++i) d[i] = float_to_half(s[i], {RoundMode::nearest_even, ftz});
}

__attribute__((target("avx,f16c"))) static void to_floats_f16c(const uint16_t* s, float* d, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  for (; i < n; ++i) d[i] = half_to_float(s[i]);
}

// CPUID leaf 1: ECX bit 29 F16C, bit 28 AVX, bit 27 OSXSAVE; XCR0 must enable the YMM state.
// (Read directly: clang 14's __builtin_cpu_supports does not know "f16c".)
static bool has_f16c() {
  static const bool ok = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    if (!(c & (1u << 27)) || !(c & (1u << 28)) || !(c & (1u << 29))) return false;
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 6u) == 6u;
  }();
  return ok;
}
#endif

static void round_chunk(float* p, size_t n, Fp16Mode mode) {
#ifdef AF_X86
  if (mode.round == RoundMode::nearest_even && has_f16c()) return round_f16c(p, n, mode.flush_subnormals);
#endif
  for (size_t i = 0; i < n; ++i) p[i] = half_to_float(float_to_half(p[i], mode));
}

void round_to_fp16(float* data, size_t n, Fp16Mode mode) {
  parallel_for(n, 1 << 16, [&](size_t b, size_t e) { round_chunk(data + b, e - b, mode); });
}

void floats_to_halves(const float* src, uint16_t* dst, size_t n, Fp16Mode mode) {
#ifdef AF_X86
  if (mode.round == RoundMode::nearest_even && has_f16c())
    return parallel_for(n, 1 << 16, [&](size_t b, size_t e) {
      to_halves_f16c(src + b, dst + b, e - b, mode.flush_subnormals);
    });
#endif
  for (size_t i = 0; i < n; ++i) dst[i] = float_to_half(src[i], mode);
}

void halves_to_floats(const uint16_t* src, float* dst, size_t n) {
#ifdef AF_X86
  if (has_f16c())
    return parallel_for(n, 1 << 16, [&](size_t b, size_t e) { to_floats_f16c(src + b, dst + b, e - b); });
#endif
  for (size_t i = 0; i < n; ++i) dst[i] = half_to_float(src[i]);
}

}  // namespace af
