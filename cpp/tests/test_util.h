// Helpers shared by the C++ tests.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "aneforge/runtime.h"

// n normal values (mean 0, standard deviation `scale`) from a fixed seed.
inline std::vector<float> randn(size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(g) * scale;
  return v;
}

// Bit for bit, except that two NaNs match: which NaN operand an instruction passes on (its
// sign) follows the compiler's operand order, which can differ between a vector loop and its
// scalar tail, and blocks move where the tail falls (seen in the -O2 sanitizer build).
inline void expect_same_bits(const std::vector<af::HostTensor>& a, const std::vector<af::HostTensor>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].data.size(), b[i].data.size());
    size_t differ = 0, first = 0;
    for (size_t j = 0; j < a[i].data.size(); ++j) {
      float x = a[i].data[j], y = b[i].data[j];
      if (!(std::isnan(x) && std::isnan(y)) && std::memcmp(&x, &y, sizeof x) != 0 && differ++ == 0) first = j;
    }
    EXPECT_EQ(differ, 0u) << what << ": output " << i << ", first at " << first;
  }
}

