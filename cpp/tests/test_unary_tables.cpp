// Costly unary functions on fp16 data look their results up in a table of all 65,536 fp16
// inputs (elementwise.cpp, map_costly). The table must give the bits the direct computation
// gives, for every input, attribute value and rounding mode.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "aneforge/aneforge.h"

using namespace af;

namespace {

// Every fp16 bit pattern, as the float the sim holds for it.
std::vector<float> every_half() {
  std::vector<float> v(65536);
  for (uint32_t h = 0; h < 65536; ++h) v[h] = half_to_float(static_cast<uint16_t>(h));
  return v;
}

// The op on every pattern, `chunk` elements per run: 65,536 takes the table, 1,024 (below
// the table's 32,768-element threshold) the direct loop.
std::vector<float> run_chunks(const std::string& op, const Attrs& attrs, Fp16Mode mode, int64_t chunk) {
  Tensor x = input({chunk});
  CompileOptions o;
  o.numerics.fp16 = mode;
  auto prog = compile({call1(op, {x}, attrs)}, o);
  auto all = every_half();
  std::vector<float> out;
  for (int64_t s = 0; s < 65536; s += chunk) {
    std::vector<float> piece(all.begin() + s, all.begin() + s + chunk);
    auto y = run_sim(prog, {{x.shape(), piece}})[0];
    out.insert(out.end(), y.data.begin(), y.data.end());
  }
  return out;
}

struct Case {
  std::string op;
  Attrs attrs;
};

}  // namespace

TEST(UnaryTables, EveryInputGivesTheDirectBits) {
  // Two values of each attribute in one process: a table kept under the wrong key would
  // answer for the other.
  const std::vector<Case> cases = {
      {"gelu", {{"approximate", std::string("none")}}}, {"gelu", {{"approximate", std::string("tanh")}}},
      {"silu", {}}, {"sigmoid", {}}, {"tanh", {}},
      {"elu", {{"alpha", 0.7}}}, {"elu", {{"alpha", 1.3}}},
      {"scaled_tanh", {{"alpha", 1.5}, {"beta", 0.3}}}, {"scaled_tanh", {{"alpha", 1.5}, {"beta", 2.0}}},
      {"softplus", {{"beta", 2.0}, {"threshold", 10.0}}}, {"softplus", {{"beta", 0.5}, {"threshold", 10.0}}},
      {"exp", {}}, {"exp2", {}}, {"log", {}}, {"sin", {}}, {"cos", {}}, {"atan", {}}, {"erf", {}}};
  const Fp16Mode modes[] = {{RoundMode::nearest_even, true}, {RoundMode::nearest_away, false}};
  for (const Fp16Mode& mode : modes) {
    for (const Case& c : cases) {
      auto table = run_chunks(c.op, c.attrs, mode, 65536), direct = run_chunks(c.op, c.attrs, mode, 1024);
      ASSERT_EQ(table.size(), direct.size());
      size_t differ = 0, first = 0;
      for (size_t i = 0; i < table.size(); ++i) {
        uint32_t a, b;
        std::memcpy(&a, &table[i], 4);
        std::memcpy(&b, &direct[i], 4);
        if (a != b && !differ++) first = i;
      }
      EXPECT_EQ(differ, 0u) << c.op << " (ties " << (mode.round == RoundMode::nearest_even ? "even" : "away")
                            << "): first at fp16 0x" << std::hex << first;
    }
  }
}

TEST(UnaryTables, LookupStopsBeforeAValueThatIsNotFp16) {
  std::vector<float> table(65536);
  for (size_t h = 0; h < table.size(); ++h) table[h] = static_cast<float>(h);
  for (size_t bad_at : {0, 5, 8, 13, 20}) {
    for (float bad : {1.0f + std::ldexp(1.0f, -12), std::numeric_limits<float>::quiet_NaN(), 1e-30f}) {
      std::vector<float> x(21, 1.0f), y(21, -1.0f);
      x[bad_at] = bad;
      size_t done = lookup_halves(x.data(), y.data(), x.size(), table.data());
      EXPECT_EQ(done, bad_at / 8 * 8 + (bad_at >= 16 ? bad_at % 8 : 0)) << bad << " at " << bad_at;
      for (size_t i = 0; i < done; ++i) EXPECT_EQ(y[i], float(0x3c00)) << i;  // the table entry of 1.0
      for (size_t i = done; i < y.size(); ++i) EXPECT_EQ(y[i], -1.0f) << i;  // untouched from there
    }
  }
  std::vector<float> x = every_half(), y(65536);
  x.erase(x.begin() + 0x7c01, x.begin() + 0x8000);  // NaNs (0x7c01-0x7fff, 0xfc01-0xffff) aside
  x.erase(x.begin() + (0xfc01 - (0x8000 - 0x7c01)), x.end());
  y.resize(x.size());
  ASSERT_EQ(lookup_halves(x.data(), y.data(), x.size(), table.data()), x.size());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], float(float_to_half(x[i], {RoundMode::nearest_even, false})));
}
