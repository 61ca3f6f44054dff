#include "runtime/blas.h"

#ifdef AF_BLAS_ACCELERATE
#include <Accelerate/Accelerate.h>  // ACCELERATE_NEW_LAPACK is defined by the build
#else
#include <cblas.h>
#endif

#include "aneforge/error.h"

#ifdef AF_BLAS_SCIPY
#define AF_CBLAS(f) scipy_cblas_##f
#define AF_SET_THREADS scipy_openblas_set_num_threads
#else
#define AF_CBLAS(f) cblas_##f
#endif

namespace af::blas {

void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
    throw UnsupportedError("sgemm: dimension exceeds 32-bit BLAS range");
  AF_CBLAS(sgemm)(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                  static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
                  static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

void set_threads(int n) {
#ifdef AF_SET_THREADS
  AF_SET_THREADS(n);
#else
  (void)n;
#endif
}

const char* name() {
#if defined(AF_BLAS_SCIPY)
  return "scipy-openblas32";
#elif defined(AF_BLAS_ACCELERATE)
  return "Accelerate";
#else
  return "system cblas";
#endif
}

}  // namespace af::blas
