// exp_floats (runtime/vexp.h): std::exp's bits for every float it is given. Here on a sweep of
// every 997th bit pattern (4.3 million floats: both signs, subnormals, inf and NaN), 200,000
// consecutive floats at each edge of glibc's main path, every 509th float in (-1, -0]
// (softmax's usual range), and through every offset of the four-lane loop, in place. (All
// 2^32 floats were compared when it was written: no difference.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "runtime/vexp.h"

using namespace af;

namespace {

size_t mismatches(const std::vector<float>& x) {
  std::vector<float> y(x.size());
  exp_floats(x.data(), y.data(), x.size());
  size_t bad = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = std::exp(x[i]);
    bad += std::memcmp(&want, &y[i], sizeof want) != 0;
  }
  return bad;
}

std::vector<float> bit_patterns(uint64_t first, uint64_t last, uint64_t step) {
  std::vector<float> v;
  for (uint64_t u = first; u <= last; u += step) {
    const uint32_t b = static_cast<uint32_t>(u);
    float f;
    std::memcpy(&f, &b, sizeof f);
    v.push_back(f);
  }
  return v;
}

}  // namespace

TEST(ExpFloats, GivesStdExpBitsOnASweepOfEveryFloat) {
  EXPECT_EQ(mismatches(bit_patterns(0, 0xffffffffu, 997)), 0u);
  // the edges: overflow past 88.72, the main path's lower end at -88 (glibc sends -104 < x
  // <= -88 back to it), underflow at -103.97, and everything between -1 and 0
  for (float lo : {88.0f, -88.0f, -103.0f}) {
    std::vector<float> v;
    for (float f = lo; v.size() < 200000; f = std::nextafter(f, 2 * lo)) v.push_back(f);
    EXPECT_EQ(mismatches(v), 0u) << "from " << lo;
  }
  uint32_t minus_one;
  const float m1 = -1.0f;
  std::memcpy(&minus_one, &m1, sizeof m1);
  EXPECT_EQ(mismatches(bit_patterns(0x80000000u, minus_one, 509)), 0u);  // (-1, -0]
  // the only two floats whose exp changes if r = 32/ln2 * x - k is computed without a fused
  // multiply-add (found over all 2^32; the other steps' fusion changes none)
  EXPECT_EQ(mismatches({0x1.04845ep+5f, -0x1.f8cbb2p+5f, 1.0f, 2.0f}), 0u);  // four: one vector
}

TEST(ExpFloats, AnyLengthAnyOffsetInPlace) {
  std::vector<float> x;
  for (int i = 0; i < 37; ++i) x.push_back(-0.37f * static_cast<float>(i) + (i % 5 == 0 ? NAN : 0.0f));
  x[9] = -INFINITY;
  x[10] = 100.0f;
  for (size_t off = 0; off < 5; ++off)
    for (size_t n = 0; n + off <= x.size(); ++n) {
      std::vector<float> y(x.begin() + static_cast<long>(off), x.begin() + static_cast<long>(off + n));
      exp_floats(y.data(), y.data(), y.size());  // in place
      for (size_t i = 0; i < n; ++i) {
        const float want = std::exp(x[off + i]);
        ASSERT_EQ(std::memcmp(&want, &y[i], sizeof want), 0) << "offset " << off << ", length " << n << ", at " << i;
      }
    }
}
