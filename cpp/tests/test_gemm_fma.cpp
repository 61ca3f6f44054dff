// The sim's own GEMM for convs (runtime/gemm_fma.h): every output is a sum of fused
// multiply-add chains, one per block of the reduction (gemm_fma_block), each in order from
// +0, added in order; a conv that runs on it gives exactly those sums (plus its bias) on
// every path: pointwise, im2col with padding, stride and dilation, groups, a batch, fp16-held
// and float32 weights, channels split across threads, at 1-3 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "aneforge/aneforge.h"
#include "aneforge/parallel.h"
#include "runtime/gemm_fma.h"
#include "test_util.h"

using namespace af;

namespace {

const float kSpecial[] = {std::numeric_limits<float>::quiet_NaN(), INFINITY, -INFINITY, -0.0f, 0.0f, 1e-40f, 3e38f};

bool same_bits(float a, float b) { return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0; }

// sum over p < k of a(p) * b(p), as gemm_fma promises: blocked chains, added in order
template <class A, class B>
float blocked_chains(int64_t k, A a, B b) {
  float sum = 0.0f;
  for (int64_t p0 = 0; p0 < k;) {
    const int64_t kb = gemm_fma_block(k - p0);
    float acc = 0.0f;
    for (int64_t p = p0; p < p0 + kb; ++p) acc = std::fma(a(p), b(p), acc);
    sum = p0 == 0 ? acc : sum + acc;
    p0 += kb;
  }
  return sum;
}

// Random products with tails of every kind (rows past whole 6-row or 4-row tiles, columns
// past whole vectors), reductions of one to five blocks, special values; every output
// checked against host loops. Returns the outputs checked (stops at the first wrong one).
size_t check_random_products() {
  std::mt19937 rng(7);
  size_t checked = 0;
  for (int t = 0; t < 120; ++t) {
    const int64_t m = 1 + rng() % 20, n = 1 + rng() % 150, k = 1 + rng() % (t % 3 ? 448 : 2000);
    const int64_t lda = k + rng() % 3, ldb = n + rng() % 5, ldc = n + rng() % 4;
    auto a = randn(static_cast<size_t>(m * lda), 100 + t), b = randn(static_cast<size_t>(k * ldb), 200 + t);
    if (t % 4 == 0)
      for (size_t i = 0; i < 7; ++i) (i % 2 ? a : b)[(i * 977 + t) % (i % 2 ? a : b).size()] = kSpecial[i];
    std::vector<float> c(static_cast<size_t>(m * ldc), 12345.0f);
    gemm_fma(a.data(), lda, b.data(), ldb, c.data(), ldc, m, n, k);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        const float acc =
            blocked_chains(k, [&](int64_t p) { return a[i * lda + p]; }, [&](int64_t p) { return b[p * ldb + j]; });
        if (!same_bits(acc, c[i * ldc + j])) {
          ADD_FAILURE() << "m=" << m << " n=" << n << " k=" << k << " at (" << i << ", " << j << "): " << c[i * ldc + j]
                        << " vs " << acc;
          return checked;
        }
        ++checked;
      }
      for (int64_t j = n; j < ldc; ++j)
        if (c[i * ldc + j] != 12345.0f) {
          ADD_FAILURE() << "wrote past column n";
          return checked;
        }
    }
  }
  return checked;
}

// The AVX-512 tiles allowed or not for a scope; allowed again however the test ends.
struct Avx512Tiles {
  explicit Avx512Tiles(bool allowed) { set_gemm_fma_avx512(allowed); }
  ~Avx512Tiles() { set_gemm_fma_avx512(true); }
};

}  // namespace

TEST(GemmFma, BlocksOfTheReduction) {
  // 448 while at least 896 remain, then two halves, the first (left + 1) / 2
  EXPECT_EQ(gemm_fma_block(1), 1);
  EXPECT_EQ(gemm_fma_block(448), 448);
  EXPECT_EQ(gemm_fma_block(449), 225);
  EXPECT_EQ(gemm_fma_block(895), 448);
  EXPECT_EQ(gemm_fma_block(896), 448);
  EXPECT_EQ(gemm_fma_block(5000), 448);
}

TEST(GemmFma, EachOutputIsBlockedFusedMultiplyAddChainsFromZero) {
  if (!gemm_fma_supported()) {  // aarch64, or x86-64 without FMA: convs use BLAS instead
    float a = 1, b = 1, c = 0;
    EXPECT_THROW(gemm_fma(&a, 1, &b, 1, &c, 1, 1, 1, 1), Error);
    return;
  }
  for (bool avx512 : {true, false}) {  // the AVX2 tiles too, as on CPUs without AVX-512
    Avx512Tiles isa(avx512);
    EXPECT_GT(check_random_products(), 50000u) << (avx512 ? "AVX-512" : "AVX2") << " tiles";
  }
}

// Each conv output is the blocked chains over its patch in im2col order (channel, kernel
// row, kernel column), padding taps included as zeros, then + bias (then rounded to fp16,
// at fp16).
TEST(GemmFma, ConvOutputsAreBlockedFmaChainsOverTheirPatches) {
  if (!gemm_fma_supported()) GTEST_SKIP() << "no FMA on this CPU: convs run on BLAS";
  struct Case {
    const char* what;
    int64_t N, C, H, W, O, kh, kw, stride, pad, dil, groups;
  };
  // every product (channels x positions x reduction, per image and group) past
  // kGemmFmaMinProduct, so that the conv takes the sim's GEMM
  const Case cases[] = {
      {"1x1 over 3136 positions (13 column blocks)", 1, 32, 56, 56, 24, 1, 1, 1, 0, 1, 1},
      {"1x1 on a 7x7 plane (channels split across threads)", 1, 96, 7, 7, 240, 1, 1, 1, 0, 1, 1},
      {"3x3, padded, a batch of three", 3, 16, 20, 24, 24, 3, 3, 1, 1, 1, 1},
      {"3x3, stride 2, dilation 2", 2, 12, 40, 44, 24, 3, 3, 2, 2, 2, 1},
      {"5x3 grouped", 1, 36, 24, 24, 36, 5, 3, 1, 2, 1, 3},
      {"3x3, 56 channels on 48x48: k = 504 in two halves (patches past kPatchBlock)", 1, 56, 48, 48, 5, 3, 3, 1, 1,
       1, 1},
      {"1x1, 960 channels on 7x7: k = 960 in three blocks, channels split", 1, 960, 7, 7, 24, 1, 1, 1, 0, 1, 1},
      {"3x3, 48 channels on 12x12: blocks of 128 positions across rows, shared patches", 1, 48, 12, 12, 24, 3, 3, 1,
       1, 1, 1},
  };
  for (const auto& c : cases) {
    const int64_t Cg = c.C / c.groups, Og = c.O / c.groups;
    auto xv = randn(static_cast<size_t>(c.N * c.C * c.H * c.W), 11);
    auto wv = randn(static_cast<size_t>(c.O * Cg * c.kh * c.kw), 12, 0.3f);
    auto bv = randn(static_cast<size_t>(c.O), 13);
    for (size_t i = 0; i < 7; ++i) xv[(i * 7919) % xv.size()] = kSpecial[i];
    for (bool fp16_weight : {false, true}) {
      // At fp16 the program holds the weight as fp16 bits (widened by the conv) and rounds
      // its output: the values are fp16 values from the start, and the reference rounds too.
      auto as_fp16 = [](float v) { return half_to_float(float_to_half(v)); };
      if (fp16_weight)
        for (auto* v : {&xv, &wv, &bv})
          for (auto& e : *v) e = as_fp16(e);
      const DType dt = fp16_weight ? DType::fp16 : DType::fp32;
      Tensor x = input({c.N, c.C, c.H, c.W}, dt);
      Tensor y = call1("conv", {x, constant(wv, {c.O, Cg, c.kh, c.kw}, dt), constant(bv, {c.O}, dt)},
                       {{"stride", c.stride}, {"pad", c.pad}, {"dilation", c.dil}, {"groups", c.groups}});
      CompileOptions o;
      o.numerics.precision = fp16_weight ? Precision::fp16 : Precision::fp32;
      auto p = compile({y}, o);
      const int64_t Ho = y.shape()[2], Wo = y.shape()[3];
      ASSERT_GT(Og * Ho * Wo * Cg * c.kh * c.kw, kGemmFmaMinProduct) << c.what;
      std::vector<float> want;
      for (int64_t n = 0; n < c.N; ++n)
        for (int64_t oc = 0; oc < c.O; ++oc)
          for (int64_t oh = 0; oh < Ho; ++oh)
            for (int64_t ow = 0; ow < Wo; ++ow) {
              const int64_t gi = oc / Og, taps = c.kh * c.kw;
              auto patch = [&](int64_t p) {  // p = (ci * kh + i) * kw + j
                const int64_t ci = p / taps, i = p % taps / c.kw, j = p % c.kw;
                const int64_t ih = oh * c.stride - c.pad + i * c.dil, iw = ow * c.stride - c.pad + j * c.dil;
                const bool in = ih >= 0 && ih < c.H && iw >= 0 && iw < c.W;
                return in ? xv[static_cast<size_t>(((n * c.C + gi * Cg + ci) * c.H + ih) * c.W + iw)] : 0.0f;
              };
              float acc = blocked_chains(
                  Cg * taps, [&](int64_t p) { return wv[static_cast<size_t>(oc * Cg * taps + p)]; }, patch);
              acc += bv[static_cast<size_t>(oc)];
              want.push_back(fp16_weight ? as_fp16(acc) : acc);
            }
      for (int threads : {1, 2, 3}) {
        set_num_threads(threads);
        Avx512Tiles isa(threads != 3);  // 3 threads on the AVX2 tiles
        auto out = run_sim(p, {{x.shape(), xv}})[0].data;
        ASSERT_EQ(out.size(), want.size());
        size_t differ = 0;
        for (size_t i = 0; i < out.size(); ++i) differ += !same_bits(want[i], out[i]);
        EXPECT_EQ(differ, 0u) << c.what << (fp16_weight ? ", fp16 weight, " : ", fp32 weight, ") << threads
                              << " threads" << (threads == 3 ? " (AVX2 tiles)" : "");
      }
      set_num_threads(2);
    }
  }
}
