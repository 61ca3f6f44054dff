#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "aneforge/fp16.h"

using namespace af;

static float h2f(uint16_t h) { return half_to_float(h); }
static uint16_t f2h(float f, bool away = false, bool ftz = true) {
  return float_to_half(f, {away ? RoundMode::nearest_away : RoundMode::nearest_even, ftz});
}

TEST(Fp16, ExactValuesRoundTrip) {
  for (float v : {0.0f, 1.0f, -2.5f, 65504.0f, 0.099975586f, 6.1035156e-05f /* 2^-14 */})
    EXPECT_EQ(h2f(f2h(v)), v) << v;
}

TEST(Fp16, KnownEncodings) {
  EXPECT_EQ(f2h(1.0f), 0x3c00);
  EXPECT_EQ(f2h(-2.0f), 0xc000);
  EXPECT_EQ(f2h(65504.0f), 0x7bff);
  EXPECT_EQ(f2h(std::ldexp(1.0f, -14)), 0x0400);
  EXPECT_EQ(f2h(-0.0f), 0x8000);
}

TEST(Fp16, TiesRoundToEven) {
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: even mantissa (1) wins.
  EXPECT_EQ(f2h(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  // 1 + 3*2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9 (even): rounds up.
  EXPECT_EQ(f2h(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  // Just above the tie rounds up.
  EXPECT_EQ(f2h(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)), 0x3c01);
}

TEST(Fp16, TiesAwayMode) {
  EXPECT_EQ(f2h(1.0f + std::ldexp(1.0f, -11), true), 0x3c01);
  EXPECT_EQ(f2h(-(1.0f + std::ldexp(1.0f, -11)), true), 0xbc01);
  EXPECT_EQ(f2h(1.0f + 3 * std::ldexp(1.0f, -11), true), 0x3c02);
}

TEST(Fp16, OverflowBecomesInfinity) {
  EXPECT_EQ(f2h(65519.0f), 0x7bff);  // below the midpoint to 2^16: stays at max
  EXPECT_EQ(f2h(65520.0f), 0x7c00);  // the midpoint rounds to even = inf
  EXPECT_EQ(f2h(1e6f), 0x7c00);
  EXPECT_EQ(f2h(-1e6f), 0xfc00);
  EXPECT_EQ(f2h(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_TRUE(std::isinf(h2f(f2h(70000.0f))));
}

TEST(Fp16, NaNStaysNaN) {
  uint16_t h = f2h(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(h & 0x7c00, 0x7c00);
  EXPECT_NE(h & 0x03ff, 0);
  EXPECT_TRUE(std::isnan(h2f(h)));
  float v[9];
  for (float& x : v) x = std::numeric_limits<float>::quiet_NaN();
  round_to_fp16(v, 9);
  for (float x : v) EXPECT_TRUE(std::isnan(x));
}

TEST(Fp16, SubnormalsFlushedOrKept) {
  float tiny = std::ldexp(1.0f, -20);  // a subnormal in fp16
  EXPECT_EQ(f2h(tiny, false, true), 0x0000);
  EXPECT_EQ(f2h(-tiny, false, true), 0x8000);
  EXPECT_EQ(f2h(tiny, false, false), 0x0010);  // 2^-20 = 16 * 2^-24
  EXPECT_EQ(f2h(std::ldexp(1.0f, -24), false, false), 0x0001);
  EXPECT_EQ(f2h(std::ldexp(1.0f, -25), false, false), 0x0000);  // tie to even zero
  EXPECT_EQ(f2h(std::ldexp(1.0f, -25), true, false), 0x0001);   // tie away
  EXPECT_EQ(h2f(0x0001), std::ldexp(1.0f, -24));
  // The largest subnormal rounds up to the smallest normal, which is kept.
  EXPECT_EQ(f2h(std::ldexp(1.0f, -14) - std::ldexp(1.0f, -26), false, true), 0x0400);
}

TEST(Fp16, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = h2f(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(f2h(f, false, false), h) << std::hex << h;
  }
}

TEST(Fp16, VectorPathMatchesScalar) {
  std::mt19937 rng(7);
  std::vector<float> v(100003);
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t bits = rng();
    std::memcpy(&v[i], &bits, 4);  // every float pattern, incl. NaN, inf, subnormal
    if (i % 3 == 0) v[i] = std::ldexp(static_cast<float>(rng() % 4096), static_cast<int>(rng() % 40) - 30);
  }
  for (bool ftz : {true, false}) {
    std::vector<float> a = v;
    round_to_fp16(a.data(), a.size(), {RoundMode::nearest_even, ftz});
    std::vector<uint16_t> h(v.size());
    floats_to_halves(v.data(), h.data(), v.size(), {RoundMode::nearest_even, ftz});
    for (size_t i = 0; i < v.size(); ++i) {
      float s = h2f(f2h(v[i], false, ftz));
      if (std::isnan(s)) {
        EXPECT_TRUE(std::isnan(a[i]));
        continue;
      }
      ASSERT_EQ(std::memcmp(&a[i], &s, 4), 0) << "i=" << i << " v=" << v[i];
      ASSERT_EQ(h[i], f2h(v[i], false, ftz)) << i;
    }
  }
}

// Conversions recorded on x86-64 (F16C and the portable code agree there), so a build for
// another CPU (arm64 with NEON, run under qemu in the test command) must reproduce them bit
// for bit. tests/test_numerics.py checks the same digests against NumPy's conversions.
namespace {

// Sum of w[i] * P^(i+1) mod 2^64 with P odd: any single changed word changes the digest.
uint64_t digest(const uint32_t* w, size_t n) {
  constexpr uint64_t P = 0x9e3779b97f4a7c15ull;
  uint64_t power = 1, sum = 0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<uint64_t>(w[i]) * (power *= P);
  return sum;
}

// Every float whose top 19 bits vary and whose low 13 bits sit on or beside fp16's rounding
// boundaries (exact, just above, just below and on the tie): 3,145,728 floats.
std::vector<float> boundary_sweep() {
  std::vector<float> v;
  v.reserve(3145728);
  for (uint32_t top = 0; top < (1u << 19); ++top)
    for (uint32_t low : {0x0u, 0x1u, 0xfffu, 0x1000u, 0x1001u, 0x1fffu}) {
      uint32_t bits = (top << 13) | low;
      float f;
      std::memcpy(&f, &bits, 4);
      v.push_back(f);
    }
  return v;
}

constexpr uint64_t kEveryHalfAsFloat = 0xc3b5056353800000ull;
constexpr uint64_t kSweepToHalf = 0x8b950e7437a2000ull;
constexpr uint64_t kSweepToHalfFlushed = 0x7ceaf1bf4a143c00ull;

}  // namespace

TEST(Fp16, EveryHalfDecodesAsOnX86) {
  std::vector<uint16_t> h(65536);
  for (uint32_t i = 0; i < 65536; ++i) h[i] = static_cast<uint16_t>(i);
  std::vector<float> f(65536);
  halves_to_floats(h.data(), f.data(), f.size());  // the CPU's vector path
  std::vector<uint32_t> bits(65536);
  std::memcpy(bits.data(), f.data(), 4 * 65536);
  for (uint32_t i = 0; i < 65536; ++i) {
    float s = h2f(static_cast<uint16_t>(i));
    ASSERT_EQ(std::memcmp(&s, &f[i], 4), 0) << std::hex << i;
  }
  EXPECT_EQ(digest(bits.data(), bits.size()), kEveryHalfAsFloat);
}

TEST(Fp16, BoundarySweepEncodesAsOnX86) {
  std::vector<float> v = boundary_sweep();
  for (bool ftz : {false, true}) {
    Fp16Mode mode{RoundMode::nearest_even, ftz};
    std::vector<uint16_t> h(v.size());
    floats_to_halves(v.data(), h.data(), v.size(), mode);
    std::vector<float> r = v;
    round_to_fp16(r.data(), r.size(), mode);
    std::vector<uint32_t> words(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      ASSERT_EQ(h[i], float_to_half(v[i], mode)) << i;
      float back = half_to_float(h[i]);
      ASSERT_EQ(std::memcmp(&back, &r[i], 4), 0) << i;
      words[i] = h[i];
    }
    EXPECT_EQ(digest(words.data(), words.size()), ftz ? kSweepToHalfFlushed : kSweepToHalf) << "ftz=" << ftz;
  }
}

#if defined(__aarch64__)
// With FPCR set to flush fp16 subnormals and to default NaNs (as a host library may leave
// it), the hardware would convert differently; the portable code must take over.
TEST(Fp16, NonIeeeFpcrFallsBackToPortableCode) {
  uint64_t saved;
  __asm__ volatile("mrs %0, fpcr" : "=r"(saved));
  const uint64_t fz16_dn = (1ull << 19) | (1ull << 25);
  __asm__ volatile("msr fpcr, %0" : : "r"(saved | fz16_dn));
  std::vector<uint16_t> h(65536);
  for (uint32_t i = 0; i < 65536; ++i) h[i] = static_cast<uint16_t>(i);
  std::vector<float> f(65536);
  halves_to_floats(h.data(), f.data(), f.size());  // one chunk: runs on this thread
  std::vector<float> sweep = {std::ldexp(1.0f, -20), -std::ldexp(1.0f, -24), std::nanf("0x1234")};
  sweep.resize(64, 1.5f);
  std::vector<uint16_t> enc(sweep.size());
  floats_to_halves(sweep.data(), enc.data(), sweep.size(), {RoundMode::nearest_even, false});
  __asm__ volatile("msr fpcr, %0" : : "r"(saved));
  for (uint32_t i = 0; i < 65536; ++i) {
    float s = h2f(static_cast<uint16_t>(i));
    ASSERT_EQ(std::memcmp(&s, &f[i], 4), 0) << std::hex << i;
  }
  for (size_t i = 0; i < sweep.size(); ++i) EXPECT_EQ(enc[i], f2h(sweep[i], false, false)) << i;
}
#endif

// Shapes on and off the 8 x 8 blocks and 64 x 64 tiles, against the plain index formula.
TEST(Fp16, TransposeU16MatchesTheIndexFormula) {
  std::mt19937 rng(7);
  for (auto [rows, cols] : std::vector<std::pair<size_t, size_t>>{
           {1, 1}, {8, 8}, {3, 17}, {64, 64}, {65, 130}, {768, 200}, {203, 9}, {16, 1000}}) {
    std::vector<uint16_t> src(rows * cols), dst(rows * cols, 0xffff);
    for (auto& v : src) v = static_cast<uint16_t>(rng());
    transpose_u16(src.data(), dst.data(), rows, cols);
    size_t wrong = 0;
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < cols; ++c) wrong += dst[c * rows + r] != src[r * cols + c];
    EXPECT_EQ(wrong, 0u) << rows << " x " << cols;
  }
  // A band of 21 rows into columns 9..29 of a (cols x 40) dst: the columns around stay as they were.
  const size_t rows = 21, cols = 19, ld = 40, at = 9;
  std::vector<uint16_t> src(rows * cols), dst(cols * ld, 0xffff);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint16_t>(i);
  transpose_u16(src.data(), dst.data() + at, rows, cols, ld);
  for (size_t c = 0; c < cols; ++c)
    for (size_t j = 0; j < ld; ++j)
      EXPECT_EQ(dst[c * ld + j], j >= at && j < at + rows ? src[(j - at) * cols + c] : 0xffff) << c << ", " << j;
}

// Every bfloat16 bit pattern, in registers and in the scalar tail, against the portable
// rounding of the float32 it is the upper half of; the flag says whether any result is inf/NaN.
TEST(Fp16, Bf16ToHalvesRoundsEveryPatternAsTheWidenedFloat) {
  for (bool ftz : {true, false}) {
    const Fp16Mode mode{RoundMode::nearest_even, ftz};
    std::vector<uint16_t> src(65536 + 5), dst(src.size());
    for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint16_t>(i);
    EXPECT_FALSE(bf16_to_halves(src.data(), dst.data(), src.size(), mode));
    size_t wrong = 0;
    for (size_t i = 0; i < src.size(); ++i) {
      uint32_t bits = static_cast<uint32_t>(src[i]) << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      wrong += dst[i] != float_to_half(f, mode);
    }
    EXPECT_EQ(wrong, 0u) << "ftz " << ftz;
  }
  // finite: 1.0 and -2.0 (0x3f80, 0xc000); 0x4780 (65536) rounds past 65504 to inf.
  std::vector<uint16_t> ok(37, 0x3f80), out(37);
  ok[36] = 0xc000;
  EXPECT_TRUE(bf16_to_halves(ok.data(), out.data(), ok.size()));
  EXPECT_EQ(out[0], 0x3c00);
  EXPECT_EQ(out[36], 0xc000);
  for (size_t at : {size_t{3}, size_t{36}}) {  // in a block of eight, then in the tail
    auto big = ok;
    big[at] = 0x4780;
    EXPECT_FALSE(bf16_to_halves(big.data(), out.data(), big.size())) << at;
    EXPECT_EQ(out[at], 0x7c00);
  }
}

#include "runtime/transpose.h"

TEST(Transpose, FloatsOnAndOffTheBlockEdges) {
  for (int64_t rows : {1, 3, 4, 8, 9, 17, 33})
    for (int64_t cols : {1, 5, 8, 12, 16, 23}) {
      const int64_t ls = cols + 3, ld = rows + 5;  // strides wider than the block
      std::vector<float> src(static_cast<size_t>(rows * ls)), dst(static_cast<size_t>(cols * ld), -1.0f);
      for (size_t k = 0; k < src.size(); ++k) src[k] = static_cast<float>(k);
      transpose_floats(src.data(), ls, dst.data(), ld, rows, cols);
      for (int64_t j = 0; j < cols; ++j)
        for (int64_t i = 0; i < ld; ++i)
          ASSERT_EQ(dst[j * ld + i], i < rows ? src[i * ls + j] : -1.0f) << rows << "x" << cols << " at " << i << "," << j;
    }
}
