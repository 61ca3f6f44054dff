// Helpers shared by the C++ tests.
#pragma once
#include <random>
#include <vector>

// n normal values (mean 0, standard deviation `scale`) from a fixed seed.
inline std::vector<float> randn(size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(g) * scale;
  return v;
}
