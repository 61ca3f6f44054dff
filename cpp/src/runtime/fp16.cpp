#include "aneforge/fp16.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "aneforge/parallel.h"

#include "runtime/simd.h"

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
  // NaNs come out quiet (payload kept), as F16C's VCVTPH2PS and Arm's FCVT convert them.
  if (e == 0x1f) return float_of(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0u));
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

// bfloat16 to fp16 in registers: each bf16 is the upper half of its float32. Returns whether
// every result is finite.
__attribute__((target("avx,f16c"))) static bool bf16_to_halves_f16c(const uint16_t* s, uint16_t* d, size_t n,
                                                                   bool ftz) {
  size_t i = 0;
  const __m128i expmask = _mm_set1_epi16(0x7c00), signmask = _mm_set1_epi16(static_cast<short>(0x8000));
  __m128i nonfinite = _mm_setzero_si128();
  for (; i + 8 <= n; i += 8) {
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
    __m256i wide = _mm256_set_m128i(_mm_unpackhi_epi16(_mm_setzero_si128(), b), _mm_unpacklo_epi16(_mm_setzero_si128(), b));
    __m128i h = _mm256_cvtps_ph(_mm256_castsi256_ps(wide), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m128i exp = _mm_and_si128(h, expmask);
    if (ftz) h = _mm_blendv_epi8(h, _mm_and_si128(h, signmask), _mm_cmpeq_epi16(exp, _mm_setzero_si128()));
    nonfinite = _mm_or_si128(nonfinite, _mm_cmpeq_epi16(exp, expmask));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), h);
  }
  bool finite = _mm_movemask_epi8(nonfinite) == 0;
  for (; i < n; ++i) {
    d[i] = float_to_half(float_of(static_cast<uint32_t>(s[i]) << 16), {RoundMode::nearest_even, ftz});
    finite &= (d[i] & 0x7c00) != 0x7c00;
  }
  return finite;
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

#ifdef AF_ARM64
// FCVT rounds and flushes as FPCR says, and FPCR is per thread (a library may set flush to
// zero or default NaN). The hardware matches the portable code only in IEEE mode: round to
// nearest even (RMode 0), IEEE halves (AHP 0), NaN payloads kept (DN 0), fp16 subnormals kept
// (FZ16 0; we flush afterwards as asked). FZ (bit 24) only touches float subnormals, which
// are far below fp16's range either way. Read on the thread that converts.
static bool fpcr_converts_as_ieee() {
  uint64_t fpcr;
  __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
  constexpr uint64_t ahp = 1ull << 26, dn = 1ull << 25, rmode = 3ull << 22, fz16 = 1ull << 19;
  return (fpcr & (ahp | dn | rmode | fz16)) == 0;
}

// Eight floats to eight halves, rounded to nearest even; fp16 subnormals become signed zero
// when ftz (the same rule as float_to_half: decided on the rounded result).
static inline uint16x8_t halves_of8(const float* s, bool ftz) {
  float16x8_t h16 = vcombine_f16(vcvt_f16_f32(vld1q_f32(s)), vcvt_f16_f32(vld1q_f32(s + 4)));
  uint16x8_t h = vreinterpretq_u16_f16(h16);
  if (ftz) {
    uint16x8_t denorm = vceqq_u16(vandq_u16(h, vdupq_n_u16(0x7c00)), vdupq_n_u16(0));
    h = vbslq_u16(denorm, vandq_u16(h, vdupq_n_u16(0x8000)), h);
  }
  return h;
}

static inline void floats_of8(uint16x8_t h, float* d) {
  float16x8_t h16 = vreinterpretq_f16_u16(h);
  vst1q_f32(d, vcvt_f32_f16(vget_low_f16(h16)));
  vst1q_f32(d + 4, vcvt_high_f32_f16(h16));
}

static void round_neon(float* p, size_t n, bool ftz) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) floats_of8(halves_of8(p + i, ftz), p + i);
  for (; i < n; ++i) p[i] = half_to_float(float_to_half(p[i], {RoundMode::nearest_even, ftz}));
}

static void to_halves_neon(const float* s, uint16_t* d, size_t n, bool ftz) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) vst1q_u16(d + i, halves_of8(s + i, ftz));
  for (; i < n; ++i) d[i] = float_to_half(s[i], {RoundMode::nearest_even, ftz});
}

static bool bf16_to_halves_neon(const uint16_t* s, uint16_t* d, size_t n, bool ftz) {
  size_t i = 0;
  uint16x8_t nonfinite = vdupq_n_u16(0);
  for (; i + 8 <= n; i += 8) {
    uint16x8_t b = vld1q_u16(s + i);
    float wide[8];  // each bf16 shifted into a float32's upper half
    vst1q_u32(reinterpret_cast<uint32_t*>(wide), vshll_n_u16(vget_low_u16(b), 16));
    vst1q_u32(reinterpret_cast<uint32_t*>(wide + 4), vshll_high_n_u16(b, 16));
    uint16x8_t h = halves_of8(wide, ftz);
    nonfinite = vorrq_u16(nonfinite, vceqq_u16(vandq_u16(h, vdupq_n_u16(0x7c00)), vdupq_n_u16(0x7c00)));
    vst1q_u16(d + i, h);
  }
  bool finite = vmaxvq_u16(nonfinite) == 0;
  for (; i < n; ++i) {
    d[i] = float_to_half(float_of(static_cast<uint32_t>(s[i]) << 16), {RoundMode::nearest_even, ftz});
    finite &= (d[i] & 0x7c00) != 0x7c00;
  }
  return finite;
}

static void to_floats_neon(const uint16_t* s, float* d, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) floats_of8(vld1q_u16(s + i), d + i);
  for (; i < n; ++i) d[i] = half_to_float(s[i]);
}
#endif

// Each chunk picks the hardware path where it rounds as the portable code does.
static void round_chunk(float* p, size_t n, Fp16Mode mode) {
#if defined(AF_X86)
  if (mode.round == RoundMode::nearest_even && has_f16c()) return round_f16c(p, n, mode.flush_subnormals);
#elif defined(AF_ARM64)
  if (mode.round == RoundMode::nearest_even && fpcr_converts_as_ieee()) return round_neon(p, n, mode.flush_subnormals);
#endif
  for (size_t i = 0; i < n; ++i) p[i] = half_to_float(float_to_half(p[i], mode));
}

static void to_halves_chunk(const float* s, uint16_t* d, size_t n, Fp16Mode mode) {
#if defined(AF_X86)
  if (mode.round == RoundMode::nearest_even && has_f16c()) return to_halves_f16c(s, d, n, mode.flush_subnormals);
#elif defined(AF_ARM64)
  if (mode.round == RoundMode::nearest_even && fpcr_converts_as_ieee()) return to_halves_neon(s, d, n, mode.flush_subnormals);
#endif
  for (size_t i = 0; i < n; ++i) d[i] = float_to_half(s[i], mode);
}

static void to_floats_chunk(const uint16_t* s, float* d, size_t n) {
#if defined(AF_X86)
  if (has_f16c()) return to_floats_f16c(s, d, n);
#elif defined(AF_ARM64)
  if (fpcr_converts_as_ieee()) return to_floats_neon(s, d, n);
#endif
  for (size_t i = 0; i < n; ++i) d[i] = half_to_float(s[i]);
}

static bool bf16_to_halves_chunk(const uint16_t* s, uint16_t* d, size_t n, Fp16Mode mode) {
#if defined(AF_X86)
  if (mode.round == RoundMode::nearest_even && has_f16c()) return bf16_to_halves_f16c(s, d, n, mode.flush_subnormals);
#elif defined(AF_ARM64)
  if (mode.round == RoundMode::nearest_even && fpcr_converts_as_ieee())
    return bf16_to_halves_neon(s, d, n, mode.flush_subnormals);
#endif
  bool finite = true;
  for (size_t i = 0; i < n; ++i) {
    d[i] = float_to_half(float_of(static_cast<uint32_t>(s[i]) << 16), mode);
    finite &= (d[i] & 0x7c00) != 0x7c00;
  }
  return finite;
}

bool bf16_to_halves(const uint16_t* src, uint16_t* dst, size_t n, Fp16Mode mode) {
  std::atomic<bool> finite{true};
  parallel_for(n, 1 << 16, [&](size_t b, size_t e) {
    if (!bf16_to_halves_chunk(src + b, dst + b, e - b, mode)) finite.store(false, std::memory_order_relaxed);
  });
  return finite.load();
}

void round_to_fp16(float* data, size_t n, Fp16Mode mode) {
  parallel_for(n, 1 << 16, [&](size_t b, size_t e) { round_chunk(data + b, e - b, mode); });
}

void floats_to_halves(const float* src, uint16_t* dst, size_t n, Fp16Mode mode) {
  parallel_for(n, 1 << 16, [&](size_t b, size_t e) { to_halves_chunk(src + b, dst + b, e - b, mode); });
}

namespace {

// One value: whether it is exactly an fp16 value (not NaN), and its table entry.
inline bool lookup_one(float x, float& y, const float* table) {
  uint16_t h = float_to_half(x, {RoundMode::nearest_even, false});
  if (!(half_to_float(h) == x)) return false;  // also false for NaN
  y = table[h];
  return true;
}

size_t lookup_portable(const float* x, float* y, size_t n, const float* table, size_t i) {
  for (; i + 8 <= n; i += 8) {
    float v[8];
    bool ok = true;
    for (int j = 0; j < 8; ++j) ok &= lookup_one(x[i + j], v[j], table);
    if (!ok) return i;
    std::memcpy(y + i, v, sizeof v);
  }
  for (; i < n; ++i)
    if (!lookup_one(x[i], y[i], table)) return i;
  return n;
}

#if defined(AF_X86)
__attribute__((target("avx,f16c"))) size_t lookup_f16c(const float* x, float* y, size_t n, const float* table) {
  size_t i = 0;
  alignas(16) uint16_t h[8];
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    __m128i bits = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (_mm256_movemask_ps(_mm256_cmp_ps(_mm256_cvtph_ps(bits), v, _CMP_NEQ_UQ))) return i;  // NaN: unordered
    _mm_store_si128(reinterpret_cast<__m128i*>(h), bits);
    for (int j = 0; j < 8; ++j) y[i + j] = table[h[j]];
  }
  return lookup_portable(x, y, n, table, i);
}
#elif defined(AF_ARM64)
size_t lookup_neon(const float* x, float* y, size_t n, const float* table) {
  size_t i = 0;
  alignas(16) uint16_t h[8];
  for (; i + 8 <= n; i += 8) {
    float32x4_t a = vld1q_f32(x + i), b = vld1q_f32(x + i + 4);
    float16x8_t bits = vcombine_f16(vcvt_f16_f32(a), vcvt_f16_f32(b));
    uint32x4_t same = vandq_u32(vceqq_f32(vcvt_f32_f16(vget_low_f16(bits)), a), vceqq_f32(vcvt_high_f32_f16(bits), b));
    if (vminvq_u32(same) == 0) return i;  // NaN compares unequal
    vst1q_u16(h, vreinterpretq_u16_f16(bits));
    for (int j = 0; j < 8; ++j) y[i + j] = table[h[j]];
  }
  return lookup_portable(x, y, n, table, i);
}
#endif

}  // namespace

size_t lookup_halves(const float* x, float* y, size_t n, const float* table) {
#if defined(AF_X86)
  if (has_f16c()) return lookup_f16c(x, y, n, table);
#elif defined(AF_ARM64)
  if (fpcr_converts_as_ieee()) return lookup_neon(x, y, n, table);
#endif
  return lookup_portable(x, y, n, table, 0);
}

namespace {

float reduce_lanes(const float* a) { return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])); }

void dot_tail(const float* x, int64_t ldx, int M, const uint16_t* w, int64_t K, float (*acc)[8], float* y,
              int64_t ldy) {
  const int64_t body = K - K % 8;
  for (int m = 0; m < M; ++m) {
    for (int64_t i = body, j = 0; i < K; ++i, ++j)
      acc[m][j] += x[m * ldx + i] * half_to_float(w[i]);
    y[m * ldy] = reduce_lanes(acc[m]);
  }
}

// Portable: the row widened a block at a time, the lanes as plain loops (vectorised by the
// compiler; products are not fused into the adds: -ffp-contract=off, CMakeLists.txt).
void dot_halves_portable(const float* x, int64_t ldx, int M, const uint16_t* w, int64_t K, float* y, int64_t ldy) {
  float acc[4][8] = {};
  float row[512];
  const int64_t body = K - K % 8;
  for (int64_t b = 0; b < body; b += 512) {
    const int64_t n = std::min<int64_t>(512, body - b);
    to_floats_chunk(w + b, row, static_cast<size_t>(n));
    for (int m = 0; m < M; ++m) {
      const float* xm = x + m * ldx + b;
      for (int64_t i = 0; i < n; i += 8)
        for (int j = 0; j < 8; ++j) acc[m][j] += xm[i + j] * row[i + j];
    }
  }
  dot_tail(x, ldx, M, w, K, acc, y, ldy);
}

#ifdef AF_X86
// F16C widens eight halves in a register; separate mul and add, as the portable loop rounds.
__attribute__((target("avx,f16c"))) void dot_halves_f16c(const float* x, int64_t ldx, int M, const uint16_t* w,
                                                          int64_t K, float* y, int64_t ldy) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const int64_t body = K - K % 8;
  for (int64_t i = 0; i < body; i += 8) {
    __m256 wv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    for (int m = 0; m < M; ++m) acc[m] = _mm256_add_ps(acc[m], _mm256_mul_ps(_mm256_loadu_ps(x + m * ldx + i), wv));
  }
  float lanes[4][8];
  for (int m = 0; m < M; ++m) _mm256_storeu_ps(lanes[m], acc[m]);
  dot_tail(x, ldx, M, w, K, lanes, y, ldy);
}
#endif

}  // namespace

void dot_halves(const float* x, int64_t ldx, int M, const uint16_t* w, int64_t K, float* y, int64_t ldy) {
#ifdef AF_X86
  if (has_f16c()) return dot_halves_f16c(x, ldx, M, w, K, y, ldy);
#endif
  dot_halves_portable(x, ldx, M, w, K, y, ldy);
}

namespace {

// One 8 x 8 block: rows s, s + ls, ... to columns d, d + ld, ...
#if defined(AF_X86)
inline void transpose8x8(const uint16_t* s, size_t ls, uint16_t* d, size_t ld) {
  __m128i r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i * ls));
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm_unpacklo_epi16(r[i], r[i + 1]);  // (a_i0 a_j0 a_i1 a_j1 ...)
    t[i + 1] = _mm_unpackhi_epi16(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4)
    for (int k = 0; k < 2; ++k) {
      u[i + 2 * k] = _mm_unpacklo_epi32(t[i + k], t[i + k + 2]);
      u[i + 2 * k + 1] = _mm_unpackhi_epi32(t[i + k], t[i + k + 2]);
    }
  for (int c = 0; c < 4; ++c) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + (2 * c) * ld), _mm_unpacklo_epi64(u[c], u[c + 4]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + (2 * c + 1) * ld), _mm_unpackhi_epi64(u[c], u[c + 4]));
  }
}
#elif defined(AF_ARM64)
inline void transpose8x8(const uint16_t* s, size_t ls, uint16_t* d, size_t ld) {
  uint16x8_t r[8], t[8];
  uint32x4_t u[8];
  for (int i = 0; i < 8; ++i) r[i] = vld1q_u16(s + i * ls);
  for (int i = 0; i < 8; i += 2) {
    t[i] = vtrn1q_u16(r[i], r[i + 1]);  // even columns of rows i, i + 1
    t[i + 1] = vtrn2q_u16(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4)
    for (int k = 0; k < 2; ++k) {
      u[i + k] = vtrn1q_u32(vreinterpretq_u32_u16(t[i + k]), vreinterpretq_u32_u16(t[i + k + 2]));
      u[i + k + 2] = vtrn2q_u32(vreinterpretq_u32_u16(t[i + k]), vreinterpretq_u32_u16(t[i + k + 2]));
    }
  for (int c = 0; c < 4; ++c) {
    uint64x2_t lo = vreinterpretq_u64_u32(u[c]), hi = vreinterpretq_u64_u32(u[c + 4]);
    vst1q_u16(d + c * ld, vreinterpretq_u16_u64(vtrn1q_u64(lo, hi)));
    vst1q_u16(d + (c + 4) * ld, vreinterpretq_u16_u64(vtrn2q_u64(lo, hi)));
  }
}
#else
inline void transpose8x8(const uint16_t* s, size_t ls, uint16_t* d, size_t ld) {
  for (size_t c = 0; c < 8; ++c)
    for (size_t r = 0; r < 8; ++r) d[c * ld + r] = s[r * ls + c];
}
#endif

}  // namespace

void transpose_u16(const uint16_t* src, uint16_t* dst, size_t rows, size_t cols, size_t ld_dst) {
  const size_t ld = ld_dst ? ld_dst : rows;
  constexpr size_t T = 64;  // 64 x 64 tiles (8 KiB each way): bands of output rows per thread
  parallel_for((cols + T - 1) / T, 1, [&](size_t b, size_t e) {
    for (size_t c0 = b * T; c0 < std::min(cols, e * T); c0 += T) {
      const size_t c1 = std::min(cols, c0 + T);
      for (size_t r0 = 0; r0 < rows; r0 += T) {
        const size_t r1 = std::min(rows, r0 + T);
        size_t c = c0;
        for (; c + 8 <= c1; c += 8) {
          size_t r = r0;
          for (; r + 8 <= r1; r += 8) transpose8x8(src + r * cols + c, cols, dst + c * ld + r, ld);
          for (; r < r1; ++r)
            for (size_t k = c; k < c + 8; ++k) dst[k * ld + r] = src[r * cols + k];
        }
        for (; c < c1; ++c)
          for (size_t r = r0; r < r1; ++r) dst[c * ld + r] = src[r * cols + c];
      }
    }
  });
}

void halves_to_floats(const uint16_t* src, float* dst, size_t n) {
  parallel_for(n, 1 << 16, [&](size_t b, size_t e) { to_floats_chunk(src + b, dst + b, e - b); });
}

}  // namespace af
