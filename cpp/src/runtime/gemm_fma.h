// A small row-major GEMM for the sim's convs, in which every output is a sum of fused
// multiply-add chains: the reduction is cut into blocks (gemm_fma_block), each block is one
// chain from +0, c[i][j] = fma(a[i][p1-1], b[p1-1][j], ... fma(a[i][p0], b[p0][j], +0)), and
// the blocks' chains are added in order: ((chain0 + chain1) + chain2) ... That is the order
// in which OpenBLAS's threaded driver and SkylakeX kernel sum a product of more than a
// million multiply-adds (GEMM_Q = 448; measured bit for bit, docs/numerics.md), so a conv
// gives the bits it gave on BLAS, now at any thread count.
// The caller keeps the output tile in cache and finishes it there instead of passing over
// the whole output after one large GEMM.
#pragma once
#include <cstdint>

namespace af {

constexpr int64_t kGemmFmaBlock = 448;
// OpenBLAS sums products of at most this many multiply-adds (m * n * k) in its small-matrix
// kernel, in another order; a caller that wants its bits leaves those to it.
constexpr int64_t kGemmFmaMinProduct = int64_t{1} << 20;

// The length of the next block of the reduction when `left` remain: 448 while at least 896
// remain, then two halves (the first (left + 1) / 2), or all that is left.
int64_t gemm_fma_block(int64_t left);

// True where the CPU has the instructions (x86-64 with AVX2 and FMA); elsewhere the caller
// uses BLAS.
bool gemm_fma_supported();

// Whether the AVX-512 tiles may run where the CPU has them (default true); false runs the
// AVX2 tiles, the path of CPUs without AVX-512, so that tests reach it on any x86-64 machine.
void set_gemm_fma_avx512(bool allowed);

// c (m x n, row stride ldc) = a (m x k, lda) @ b (k x n, ldb), on the calling thread.
void gemm_fma(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m,
              int64_t n, int64_t k);

}  // namespace af
