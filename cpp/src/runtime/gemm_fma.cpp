#include "runtime/gemm_fma.h"

#include <algorithm>
#include <atomic>

#include "aneforge/error.h"
#include "runtime/simd.h"

namespace af {

int64_t gemm_fma_block(int64_t left) {
  if (left >= 2 * kGemmFmaBlock) return kGemmFmaBlock;
  if (left > kGemmFmaBlock) return (left + 1) / 2;
  return left;
}

namespace {

#if defined(AF_X86)

using Tile = void (*)(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t k,
                      int n, bool add);

// Named accumulators (c<row><vector>), not arrays, so that GCC keeps all of them in
// registers (an array of 24 vectors is past its scalar-replacement limit and spills on every
// step). A row or vector past R or V is compiled out.
#define AF_FMA_ROW(r, FMA, BCAST)                                    \
  if constexpr (R > r) {                                             \
    const auto av = BCAST(a + r * lda + p);                          \
    c##r##0 = FMA(av, b0, c##r##0);                                  \
    if constexpr (V > 1) c##r##1 = FMA(av, b1, c##r##1);             \
    if constexpr (V > 2) c##r##2 = FMA(av, b2, c##r##2);             \
    if constexpr (V > 3) c##r##3 = FMA(av, b3, c##r##3);             \
  }
#define AF_FMA_STORE(r, STORE, L)                                    \
  if constexpr (R > r) {                                             \
    STORE(c + r * ldc, mask[0], c##r##0, add);                              \
    if constexpr (V > 1) STORE(c + r * ldc + L, mask[1], c##r##1, add);     \
    if constexpr (V > 2) STORE(c + r * ldc + 2 * L, mask[2], c##r##2, add); \
    if constexpr (V > 3) STORE(c + r * ldc + 3 * L, mask[3], c##r##3, add); \
  }

__attribute__((target("avx512f"))) inline __m512 bcast512(const float* x) { return _mm512_set1_ps(*x); }
// add: c + the chain (a later block of the reduction), else the chain
__attribute__((target("avx512f"))) inline void store512(float* d, __mmask16 m, __m512 v, bool add) {
  _mm512_mask_storeu_ps(d, m, add ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, d), v) : v);
}

// One R x (up to 16 V) tile in registers (AVX-512): for each p, V vectors of b's row p and,
// per row, a[r][p] broadcast into one fused multiply-add per vector. Columns past n are
// masked off in loads and stores.
template <int R, int V>
__attribute__((target("avx512f"))) void tile_avx512(const float* a, int64_t lda, const float* b, int64_t ldb,
                                                   float* c, int64_t ldc, int64_t k, int n, bool add) {
  __mmask16 mask[4];
  for (int v = 0; v < 4; ++v) {
    const int left = n - 16 * v;
    mask[v] = left >= 16 ? static_cast<__mmask16>(0xFFFF)
                         : static_cast<__mmask16>(left <= 0 ? 0u : (1u << left) - 1);
  }
  const __m512 z = _mm512_setzero_ps();
  __m512 c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z, c20 = z, c21 = z, c22 = z,
         c23 = z, c30 = z, c31 = z, c32 = z, c33 = z, c40 = z, c41 = z, c42 = z, c43 = z, c50 = z, c51 = z,
         c52 = z, c53 = z;
  for (int64_t p = 0; p < k; ++p) {
    const float* br = b + p * ldb;
    const __m512 b0 = _mm512_maskz_loadu_ps(mask[0], br);
    const __m512 b1 = V > 1 ? _mm512_maskz_loadu_ps(mask[1], br + 16) : z;
    const __m512 b2 = V > 2 ? _mm512_maskz_loadu_ps(mask[2], br + 32) : z;
    const __m512 b3 = V > 3 ? _mm512_maskz_loadu_ps(mask[3], br + 48) : z;
    AF_FMA_ROW(0, _mm512_fmadd_ps, bcast512)
    AF_FMA_ROW(1, _mm512_fmadd_ps, bcast512)
    AF_FMA_ROW(2, _mm512_fmadd_ps, bcast512)
    AF_FMA_ROW(3, _mm512_fmadd_ps, bcast512)
    AF_FMA_ROW(4, _mm512_fmadd_ps, bcast512)
    AF_FMA_ROW(5, _mm512_fmadd_ps, bcast512)
  }
  AF_FMA_STORE(0, store512, 16)
  AF_FMA_STORE(1, store512, 16)
  AF_FMA_STORE(2, store512, 16)
  AF_FMA_STORE(3, store512, 16)
  AF_FMA_STORE(4, store512, 16)
  AF_FMA_STORE(5, store512, 16)
}

__attribute__((target("avx2,fma"))) inline __m256 fmadd256(__m256 a, __m256 b, __m256 c) {
  return _mm256_fmadd_ps(a, b, c);
}
__attribute__((target("avx2,fma"))) inline void store256(float* d, __m256i m, __m256 v, bool add) {
  _mm256_maskstore_ps(d, m, add ? _mm256_add_ps(_mm256_maskload_ps(d, m), v) : v);
}

// The same with AVX2 and FMA: 8 lanes, 16 registers, so R x V at most 4 x 3.
template <int R, int V>
__attribute__((target("avx2,fma"))) void tile_avx2(const float* a, int64_t lda, const float* b, int64_t ldb,
                                                  float* c, int64_t ldc, int64_t k, int n, bool add) {
  __m256i mask[4];
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int v = 0; v < 4; ++v) mask[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8 * v), lane);
  const __m256 z = _mm256_setzero_ps();
  __m256 c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z, c20 = z, c21 = z, c22 = z,
         c23 = z, c30 = z, c31 = z, c32 = z, c33 = z;
  for (int64_t p = 0; p < k; ++p) {
    const float* br = b + p * ldb;
    const __m256 b0 = _mm256_maskload_ps(br, mask[0]);
    const __m256 b1 = V > 1 ? _mm256_maskload_ps(br + 8, mask[1]) : z;
    const __m256 b2 = V > 2 ? _mm256_maskload_ps(br + 16, mask[2]) : z;
    const __m256 b3 = z;
    AF_FMA_ROW(0, fmadd256, _mm256_broadcast_ss)
    AF_FMA_ROW(1, fmadd256, _mm256_broadcast_ss)
    AF_FMA_ROW(2, fmadd256, _mm256_broadcast_ss)
    AF_FMA_ROW(3, fmadd256, _mm256_broadcast_ss)
  }
  AF_FMA_STORE(0, store256, 8)
  AF_FMA_STORE(1, store256, 8)
  AF_FMA_STORE(2, store256, 8)
  AF_FMA_STORE(3, store256, 8)
  (void)c03, (void)c13, (void)c23, (void)c33;
}

#undef AF_FMA_ROW
#undef AF_FMA_STORE

// table[r - 1][v - 1] = tile<r, v>
template <template <int, int> class Make, int RMAX, int VMAX>
struct TileTable {
  Tile t[RMAX][VMAX];
  TileTable() { fill<1>(); }
  template <int R>
  void fill() {
    if constexpr (R <= RMAX) {
      fill_row<R, 1>();
      fill<R + 1>();
    }
  }
  template <int R, int V>
  void fill_row() {
    if constexpr (V <= VMAX) {
      t[R - 1][V - 1] = Make<R, V>::fn;
      fill_row<R, V + 1>();
    }
  }
};
template <int R, int V>
struct Avx512Tile {
  static constexpr Tile fn = tile_avx512<R, V>;
};
template <int R, int V>
struct Avx2Tile {
  static constexpr Tile fn = tile_avx2<R, V>;
};

// Column tiles outside, then blocks of the reduction, rows inside: b's panel of one column
// tile and block (up to 448 rows of lanes * VMAX floats) stays in cache while every row
// group reads it.
template <int RMAX, int VMAX>
void drive(const Tile (&t)[RMAX][VMAX], int lanes, const float* a, int64_t lda, const float* b, int64_t ldb,
           float* c, int64_t ldc, int64_t m, int64_t n, int64_t k) {
  const int64_t cols = static_cast<int64_t>(lanes) * VMAX;
  for (int64_t j0 = 0; j0 < n; j0 += cols) {
    const int nc = static_cast<int>(std::min(cols, n - j0));
    const int v = (nc + lanes - 1) / lanes;
    for (int64_t p0 = 0; p0 < k;) {
      const int64_t kb = gemm_fma_block(k - p0);
      for (int64_t i0 = 0; i0 < m; i0 += RMAX) {
        const int r = static_cast<int>(std::min<int64_t>(RMAX, m - i0));
        t[r - 1][v - 1](a + i0 * lda + p0, lda, b + p0 * ldb + j0, ldb, c + i0 * ldc + j0, ldc, kb, nc, p0 > 0);
      }
      p0 += kb;
    }
  }
}

std::atomic<bool> g_avx512_allowed{true};

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes && g_avx512_allowed.load(std::memory_order_relaxed);
}

#endif

}  // namespace

void set_gemm_fma_avx512(bool allowed) {
#if defined(AF_X86)
  g_avx512_allowed.store(allowed, std::memory_order_relaxed);
#else
  (void)allowed;
#endif
}

bool gemm_fma_supported() {
#if defined(AF_X86)
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
#else
  return false;
#endif
}

void gemm_fma(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m,
              int64_t n, int64_t k) {
#if defined(AF_X86)
  if (has_avx512()) {
    static const TileTable<Avx512Tile, 6, 4> table;
    drive<6, 4>(table.t, 16, a, lda, b, ldb, c, ldc, m, n, k);
    return;
  }
  if (gemm_fma_supported()) {
    static const TileTable<Avx2Tile, 4, 3> table;
    drive<4, 3>(table.t, 8, a, lda, b, ldb, c, ldc, m, n, k);
    return;
  }
#else
  (void)a, (void)lda, (void)b, (void)ldb, (void)c, (void)ldc, (void)m, (void)n, (void)k;
#endif
  throw Error(Status::internal, "gemm_fma: this CPU lacks FMA; the caller should use BLAS");
}

}  // namespace af
