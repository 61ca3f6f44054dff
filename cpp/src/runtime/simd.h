// The host's vector instruction set for the runtime's hand-written kernels: AF_X86 (x86-64;
// AVX and F16C paths chosen per function at run time) or AF_ARM64 (NEON, always present).
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#include <immintrin.h>
#define AF_X86 1
#elif defined(__aarch64__)
#include <arm_neon.h>
#define AF_ARM64 1
#endif
