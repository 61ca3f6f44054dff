// exp over a buffer of floats, several at a time, giving std::exp's bits where the C library
// is glibc (2.28 or later) on x86-64 with FMA: there expf runs ARM's optimized-routines
// algorithm (glibc's sysdeps/ieee754/flt-32/e_expf.c: a 32-entry table of 2^(i/32) and a
// cubic in double precision), compiled with fused multiply-adds, and so does this, four
// lanes at a time. Values past |x| >= 88 (overflow, underflow, inf, NaN) go to std::exp
// itself. Elsewhere every value goes to std::exp.
#pragma once
#include <cstddef>

namespace af {

// y[i] = exp(x[i]); y may be x.
void exp_floats(const float* x, float* y, size_t n);

// Whether exp_floats runs the vector path here (x86-64 with AVX2 and FMA on glibc).
bool exp_floats_vectorised();

}  // namespace af
