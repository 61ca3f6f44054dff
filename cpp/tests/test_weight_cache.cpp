// The sim's weight cache: a conv's or linear layer's fp16-stored weight widened once and kept
// by the loaded program, within a process-wide byte limit (1x1 conv kernels never; linear
// layers past 4 rows of input); the same bits as widening it on every run.
#include <gtest/gtest.h>

#include "aneforge/aneforge.h"
#include "test_util.h"

using namespace af;

namespace {

std::vector<float> run_once(Executable& exe, const std::vector<float>& x, size_t out_elems) {
  std::vector<float> y(out_elems);
  const float* in[] = {x.data()};
  float* out[] = {y.data()};
  exe.run(in, out);
  return y;
}

}  // namespace

TEST(WeightCache, KeepsWeightsWithinTheLimitWithTheSameBits) {
  const int64_t small = 32 * 16 * 9, large = 64 * 32 * 9;  // both held as fp16 bits (>= 4096 elements)
  Tensor x = input({1, 16, 20, 20}, DType::fp16, "x");
  Tensor h = call1("relu", {call1("conv", {x, constant(randn(small, 1, 0.1f), {32, 16, 3, 3})}, {{"pad", int64_t{1}}})});
  Tensor y = call1("conv", {h, constant(randn(large, 2, 0.1f), {64, 32, 3, 3})}, {{"pad", int64_t{1}}});
  y = call1("conv", {y, constant(randn(128 * 64, 4, 0.1f), {128, 64, 1, 1})});  // 1x1: never kept (an LM's projection)
  auto p = compile({y});
  const size_t out_elems = static_cast<size_t>(numel(y.shape()));
  const auto xv = randn(16 * 20 * 20, 3);
  const int64_t limit_before = sim_weight_cache(), held_before = sim_weight_cache_bytes();

  set_sim_weight_cache(0);  // widened on every run
  auto none = backend("sim").load(p);
  const auto want = run_once(*none, xv, out_elems);
  EXPECT_EQ(sim_weight_cache_bytes(), held_before);

  set_sim_weight_cache(held_before + small * 4 + 100);  // room for the first weight only
  {
    auto exe = backend("sim").load(p);
    EXPECT_EQ(run_once(*exe, xv, out_elems), want);
    EXPECT_EQ(sim_weight_cache_bytes(), held_before + small * 4);
    EXPECT_EQ(run_once(*exe, xv, out_elems), want);  // read from the kept copy
    EXPECT_EQ(sim_weight_cache_bytes(), held_before + small * 4);
  }
  EXPECT_EQ(sim_weight_cache_bytes(), held_before);  // released with the program

  set_sim_weight_cache(int64_t{1} << 30);
  {
    auto exe = backend("sim").load(p);
    EXPECT_EQ(run_once(*exe, xv, out_elems), want);
    EXPECT_EQ(sim_weight_cache_bytes(), held_before + (small + large) * 4);
  }
  EXPECT_EQ(sim_weight_cache_bytes(), held_before);
  EXPECT_THROW(set_sim_weight_cache(-1), ValueError);
  set_sim_weight_cache(limit_before);
}

TEST(WeightCache, KeepsALinearWeightPastFourRowsWithTheSameBits) {
  // 1400 x 800 weights: panels of 1280 rows (about 4 MiB), the second partial
  const int64_t N = 1400, K = 800, M = 5;
  Tensor x = input({M, K}, DType::fp16, "x");
  Tensor y = call1("linear", {x, constant(randn(N * K, 5, 0.05f), {N, K}), constant(randn(N, 6), {N})});
  auto p = compile({y});
  Tensor x4 = input({4, K}, DType::fp16, "x");  // 4 rows read the fp16 rows in place: nothing kept
  auto p4 = compile({call1("linear", {x4, constant(randn(N * K, 5, 0.05f), {N, K})})});
  const auto xv = randn(static_cast<size_t>(M * K), 7);
  const int64_t limit_before = sim_weight_cache(), held_before = sim_weight_cache_bytes();
  set_sim_weight_cache(0);
  const auto want = run_once(*backend("sim").load(p), xv, static_cast<size_t>(M * N));
  set_sim_weight_cache(int64_t{1} << 30);
  {
    auto exe = backend("sim").load(p);
    EXPECT_EQ(run_once(*exe, xv, static_cast<size_t>(M * N)), want);
    EXPECT_EQ(sim_weight_cache_bytes(), held_before + N * K * 4);
    EXPECT_EQ(run_once(*exe, xv, static_cast<size_t>(M * N)), want);  // from the kept copy
    auto exe4 = backend("sim").load(p4);
    run_once(*exe4, std::vector<float>(xv.begin(), xv.begin() + 4 * K), static_cast<size_t>(4 * N));
    EXPECT_EQ(sim_weight_cache_bytes(), held_before + N * K * 4);
  }
  EXPECT_EQ(sim_weight_cache_bytes(), held_before);
  set_sim_weight_cache(limit_before);
}
