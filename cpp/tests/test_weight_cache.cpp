// The sim's weight cache: a conv's fp16-stored weight widened once and kept by the loaded
// program, within a process-wide byte limit (1x1 kernels never); the same bits as widening it
// on every run.
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
