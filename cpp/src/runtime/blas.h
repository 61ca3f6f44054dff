// The BLAS the simulator uses for GEMM: Accelerate on Apple, OpenBLAS from the
// scipy-openblas32 wheel elsewhere, or a system CBLAS when built with CMake alone.
#pragma once
#include <cstdint>

namespace af::blas {

// Row-major C = alpha * op(A) @ op(B) + beta * C.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void set_threads(int n);
const char* name();

}  // namespace af::blas
