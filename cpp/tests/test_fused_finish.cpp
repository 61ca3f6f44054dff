// A conv rounds its output and runs its fused elementwise ops piece by piece, right after the
// GEMM (or the depthwise loops) that wrote each piece (KernelArgs::finish): the same bits as
// the sim's passes over the whole output, on every conv path, at any thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "aneforge/aneforge.h"
#include "aneforge/parallel.h"
#include "test_util.h"

using namespace af;

namespace {

struct ConvCase {
  const char* what;
  int64_t N, C, H, W, O, k, stride, groups;
};

std::vector<HostTensor> run_with(const std::shared_ptr<Program>& p, const std::vector<HostTensor>& in, bool fused) {
  set_sim_fused_finish(fused);
  auto out = run_sim(p, in);
  set_sim_fused_finish(true);
  return out;
}

}  // namespace

TEST(FusedFinish, ConvSameBitsAsPassesOverTheWholeOutput) {
  const ConvCase cases[] = {
      {"3x3, two small images side by side", 2, 16, 12, 12, 32, 3, 1, 1},
      {"3x3 over three GEMM blocks of rows", 1, 64, 40, 128, 8, 3, 1, 1},
      {"1x1", 1, 16, 56, 56, 96, 1, 1, 1},
      {"1x1 over 4 positions (fp16 rows)", 1, 64, 2, 2, 32, 1, 1, 1},
      {"grouped, strided", 2, 12, 20, 20, 12, 3, 2, 3},
      {"depthwise", 1, 32, 28, 28, 32, 3, 1, 32},
      {"depthwise, strided", 1, 32, 28, 28, 64, 3, 2, 32},
  };
  const float special[] = {std::numeric_limits<float>::quiet_NaN(), INFINITY, -INFINITY, -0.0f, 7e4f, 1e-6f};
  for (const auto& c : cases) {
    auto xv = randn(static_cast<size_t>(c.N * c.C * c.H * c.W), 1, 2.0f);
    for (size_t i = 0; i < 6; ++i) xv[i * 131 % xv.size()] = special[i];
    const int64_t Cg = c.C / c.groups;
    auto wv = randn(static_cast<size_t>(c.O * Cg * c.k * c.k), 2, 1.0f / std::sqrt(static_cast<float>(Cg * c.k * c.k)));
    Tensor x = input({c.N, c.C, c.H, c.W}, DType::fp16, "x");
    for (bool bias : {true, false}) {
      std::vector<Tensor> in{x, constant(wv, {c.O, Cg, c.k, c.k})};
      if (bias) in.push_back(constant(randn(static_cast<size_t>(c.O), 3), {c.O}));
      Tensor conv = call1("conv", in, {{"stride", c.stride}, {"pad", c.k / 2}, {"groups", c.groups}});
      Tensor tails = call1("sigmoid", {call1("clip", {call1("gelu", {conv})}, {{"min", -1.0}, {"max", 3.0}})});
      for (auto [y, fused] : {std::pair{conv, size_t{0}}, std::pair{tails, size_t{3}}})
      for (Precision prec : {Precision::fp16, Precision::fp32}) {
        CompileOptions o;
        o.numerics.precision = prec;
        auto p = compile({y}, o);
        ASSERT_EQ(p->steps.size(), 1u) << c.what;
        ASSERT_EQ(p->steps[0].epilogue.size(), fused) << c.what;  // gelu, clip, sigmoid fused into the conv
        std::vector<HostTensor> inputs{{x.shape(), xv}};
        set_num_threads(2);
        auto want = run_with(p, inputs, false);
        for (int threads : {1, 2, 3}) {
          set_num_threads(threads);
          expect_same_bits(want, run_with(p, inputs, true),
                           std::string(c.what) + (bias ? ", bias, " : ", ") + std::to_string(threads) + " threads");
        }
        set_num_threads(2);
      }
    }
  }
}
