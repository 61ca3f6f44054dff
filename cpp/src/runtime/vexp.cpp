#include "runtime/vexp.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "runtime/simd.h"

namespace af {

namespace {

#if defined(AF_X86) && defined(__GLIBC__)
#define AF_VEXP 1

// glibc's __exp2f_data (e_exp2f_data.c): tab[i] = bits(2^(i/32)) - (i << 47), then the
// scaled constants its expf reads.
constexpr uint64_t kTab[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540};
constexpr double kInvLn2N = 0x1.71547652b82fep+5;  // 32 / ln 2
constexpr double kShift = 0x1.8p+52;               // rounds to an integer in the low bits
constexpr double kC0 = 0x1.c6af84b912394p-20, kC1 = 0x1.ebfce50fac4f3p-13, kC2 = 0x1.62e42ff0c52d6p-6;

// Four lanes of expf's main path, operation for operation as glibc's FMA build runs it:
// kd = fma(x, 32/ln2, shift); r = fma(32/ln2, x, -(kd - shift)); s = table[k % 32] + k << 47;
// y = fma(fma(r, C0, C1), r * r, fma(r, C2, 1)) * s, rounded to float.
__attribute__((target("avx2,fma"))) __m128 exp4(__m128 xf) {
  const __m256d xd = _mm256_cvtps_pd(xf), inv = _mm256_set1_pd(kInvLn2N), shift = _mm256_set1_pd(kShift);
  const __m256d kds = _mm256_fmadd_pd(inv, xd, shift);
  const __m256i ki = _mm256_castpd_si256(kds);
  const __m256d r = _mm256_fmsub_pd(inv, xd, _mm256_sub_pd(kds, shift));
  const __m256i idx = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
  const __m256i t = _mm256_add_epi64(_mm256_i64gather_epi64(reinterpret_cast<const long long*>(kTab), idx, 8),
                                     _mm256_slli_epi64(ki, 47));
  const __m256d z = _mm256_fmadd_pd(r, _mm256_set1_pd(kC0), _mm256_set1_pd(kC1));
  const __m256d r2 = _mm256_mul_pd(r, r);
  __m256d y = _mm256_fmadd_pd(r, _mm256_set1_pd(kC2), _mm256_set1_pd(1.0));
  y = _mm256_fmadd_pd(z, r2, y);
  return _mm256_cvtpd_ps(_mm256_mul_pd(y, _mm256_castsi256_pd(t)));
}

// Lanes whose |x| has its top 12 bits past 88's (0x42a): glibc's slow path (overflow,
// underflow, inf, NaN; and -104 < x <= -88, which it sends back to the main path).
__attribute__((target("avx2,fma"))) int special4(__m128 xf) {
  const __m128i top = _mm_and_si128(_mm_srli_epi32(_mm_castps_si128(xf), 20), _mm_set1_epi32(0x7ff));
  return _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpgt_epi32(top, _mm_set1_epi32(0x42a))));
}

__attribute__((target("avx2,fma"))) void exp_avx2(const float* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m128 xf = _mm_loadu_ps(x + i);
    if (special4(xf)) {
      for (size_t j = i; j < i + 4; ++j) y[j] = std::exp(x[j]);
      continue;
    }
    _mm_storeu_ps(y + i, exp4(xf));
  }
  for (; i < n; ++i) y[i] = std::exp(x[i]);
}

#endif

}  // namespace

bool exp_floats_vectorised() {
#if defined(AF_VEXP)
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
#else
  return false;
#endif
}

void exp_floats(const float* x, float* y, size_t n) {
#if defined(AF_VEXP)
  if (exp_floats_vectorised()) return exp_avx2(x, y, n);
#endif
  for (size_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

}  // namespace af
