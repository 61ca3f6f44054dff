#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "aneforge/aneforge.h"

using namespace af;

static std::vector<float> randn(size_t n, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = half_to_float(float_to_half(d(g)));
  return v;
}

TEST(Sim, ConvMatchesDirectLoops) {
  const int64_t N = 2, C = 4, H = 7, W = 6, O = 6, K = 3, G = 2;
  auto xv = randn(N * C * H * W, 1), wv = randn(O * (C / G) * K * K, 2), bv = randn(O, 3);
  Tensor x = input({N, C, H, W});
  Tensor y = call1("conv", {x, constant(wv, {O, C / G, K, K}), constant(bv, {O})},
                   {{"stride", std::vector<int64_t>{2, 1}}, {"pad", int64_t{1}}, {"groups", G}});
  CompileOptions o;
  o.numerics.precision = Precision::fp32;
  auto out = run_sim(compile({y}, o), {{x.shape(), xv}})[0];
  const Shape& os = y.shape();
  int64_t Ho = os[2], Wo = os[3];
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oc = 0; oc < O; ++oc)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double acc = bv[oc];
          int64_t g = oc / (O / G);
          for (int64_t ci = 0; ci < C / G; ++ci)
            for (int64_t i = 0; i < K; ++i)
              for (int64_t j = 0; j < K; ++j) {
                int64_t ih = oh * 2 - 1 + i, iw = ow - 1 + j;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += double(xv[((n * C + g * (C / G) + ci) * H + ih) * W + iw]) *
                       wv[((oc * (C / G) + ci) * K + i) * K + j];
              }
          EXPECT_NEAR(out.data[((n * O + oc) * Ho + oh) * Wo + ow], acc, 1e-4);
        }
}

// Depthwise (one input channel per group, two outputs each), strided, dilated and padded:
// the kernel's row-at-a-time taps (and at stride 1 its padded-plane taps) against a
// per-pixel loop in the same tap order.
TEST(Sim, DepthwiseConvMatchesDirectLoops) {
  // (stride h, w, dilation h, w, pad top, bottom, left, right, width): the first has no 8
  // interior columns in a row; the others run the 8-column blocks at stride 1 and 2, with
  // border columns either side; the last three (stride 1) pad unevenly, dilate both axes and
  // have a plane narrower than the kernel's reach.
  const int64_t cfgs[][9] = {{2, 1, 1, 2, 2, 2, 2, 2, 11}, {1, 1, 1, 1, 1, 1, 1, 1, 30}, {1, 2, 1, 1, 1, 1, 1, 1, 41},
                             {1, 1, 2, 1, 0, 0, 0, 0, 25}, {1, 1, 1, 1, 0, 2, 2, 0, 13}, {1, 1, 2, 2, 2, 2, 2, 2, 7},
                             {1, 1, 1, 1, 2, 1, 0, 2, 2}};
  // inputs: normal; all -0.0 (each sum is 0 + (-0) + ... = +0, as from 0); non-finite weights
  // in two channels (0 * inf is NaN: padding taps must not be summed there)
  for (int mode : {0, 1, 2})
  for (const auto& c : cfgs) {
    const int64_t N = 1, C = 4, H = 9, W = c[8], O = 8, K = 3, sh = c[0], sw = c[1], dh = c[2], dw = c[3];
    const int64_t pt = c[4], pb = c[5], pl = c[6], pr = c[7];
    auto xv = randn(N * C * H * W, 4), wv = randn(O * K * K, 5);
    if (mode == 1) std::fill(xv.begin(), xv.end(), -0.0f);
    if (mode == 1) std::fill(wv.begin(), wv.end(), 1.0f);
    if (mode == 2) wv[0] = INFINITY, wv[5 * K * K + 8] = NAN, wv[7 * K * K + 4] = -INFINITY;
    Tensor x = input({N, C, H, W});
    Tensor y = call1("conv", {x, constant(wv, {O, 1, K, K})},
                     {{"stride", std::vector<int64_t>{sh, sw}}, {"dilation", std::vector<int64_t>{dh, dw}},
                      {"pad", std::vector<int64_t>{pt, pb, pl, pr}}, {"groups", C}});
    CompileOptions o;
    o.numerics.precision = Precision::fp32;
    auto out = run_sim(compile({y}, o), {{x.shape(), xv}})[0];
    const int64_t Ho = y.shape()[2], Wo = y.shape()[3];
    for (int64_t oc = 0; oc < O; ++oc)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          float acc = 0.0f;  // in-range taps in (i, j) order from 0
          for (int64_t i = 0; i < K; ++i)
            for (int64_t j = 0; j < K; ++j) {
              int64_t ih = oh * sh - pt + i * dh, iw = ow * sw - pl + j * dw;
              if (ih >= 0 && ih < H && iw >= 0 && iw < W) acc += xv[((oc / 2) * H + ih) * W + iw] * wv[(oc * K + i) * K + j];
            }
          float got = out.data[(oc * Ho + oh) * Wo + ow];
          if (std::isnan(acc) && std::isnan(got)) continue;  // a NaN's sign follows operand order
          ASSERT_EQ(std::memcmp(&got, &acc, 4), 0) << W << " mode " << mode << ": " << oc << " " << oh << " " << ow;
        }
  }
}

TEST(Sim, Fp16StorageRoundsEveryResult) {
  Tensor x = input({3});
  Tensor y = call1("mul", {x, scalar(1.0 / 3.0)});
  auto p16 = compile({y});
  auto r = run_sim(p16, {{{3}, {1.0f, 70000.0f, 1e-6f}}})[0].data;
  EXPECT_EQ(r[0], half_to_float(float_to_half(half_to_float(float_to_half(1.0f / 3.0f)))));
  EXPECT_TRUE(std::isinf(r[1]));  // the input itself overflows fp16 storage
  EXPECT_EQ(r[2], 0.0f);          // 1e-6 is subnormal in fp16: flushed
  CompileOptions o;
  o.numerics.precision = Precision::fp32;
  auto r32 = run_sim(compile({y}, o), {{{3}, {1.0f, 70000.0f, 1e-6f}}})[0].data;
  EXPECT_FLOAT_EQ(r32[1], 70000.0f / 3.0f);
}

TEST(Sim, ReductionsAccumulateInFp32) {
  // 4096 ones sum to 4096 exactly; an fp16 accumulator would stop at 2048.
  Tensor x = input({4096});
  auto r = run_sim(compile({call1("sum", {x})}), {{{4096}, std::vector<float>(4096, 1.0f)}})[0].data;
  EXPECT_EQ(r[0], 4096.0f);
  Tensor z = input({2, 3, 4});
  auto zv = randn(24, 5);
  auto m = run_sim(compile({call1("mean", {z}, {{"axis", std::vector<int64_t>{0, 2}}})}), {{{2, 3, 4}, zv}})[0].data;
  for (int c = 0; c < 3; ++c) {
    double s = 0;
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 4; ++b) s += zv[(a * 3 + c) * 4 + b];
    EXPECT_NEAR(m[c], s / 8, 2e-3);
  }
}

TEST(Sim, MatmulBroadcastAndPermute) {
  Tensor a = input({2, 3, 4}), b = input({4, 5});
  auto av = randn(24, 7), bv = randn(20, 8);
  Tensor y = call1("permute", {call1("matmul", {a, b})}, {{"dims", std::vector<int64_t>{2, 0, 1}}});
  CompileOptions o;
  o.numerics.precision = Precision::fp32;
  auto r = run_sim(compile({y}, o), {{a.shape(), av}, {b.shape(), bv}})[0].data;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 5; ++k) {
        double s = 0;
        for (int t = 0; t < 4; ++t) s += av[(i * 3 + j) * 4 + t] * bv[t * 5 + k];
        EXPECT_NEAR(r[(k * 2 + i) * 3 + j], s, 1e-5);
      }
}

TEST(Sim, MemoryPlanReusesBuffers) {
  Tensor x = input({1, 64});
  Tensor y = x;
  for (int i = 0; i < 10; ++i) y = call1("relu", {call1("add", {y, scalar(1.0)})});
  auto p = compile({y});
  EXPECT_LE(p->slot_elems.size(), 3u);
  auto r = run_sim(p, {{{1, 64}, std::vector<float>(64, -5.0f)}})[0].data;
  EXPECT_EQ(r[0], 9.0f);  // -5 -> 0 after one step, then +1 per step
}

TEST(Sim, CompileErrors) {
  EXPECT_THROW(compile({}), ValueError);
  Tensor a = input({2}, DType::fp16, "same"), b = input({2}, DType::fp16, "same");
  EXPECT_THROW(compile({call1("add", {a, b})}), ValueError);
}

TEST(Sim, Int8CompressionKeepsAccuracy) {
  auto wv = randn(32 * 64, 9), xv = randn(4 * 64, 10);
  Tensor x = input({4, 64});
  Tensor y = call1("linear", {x, constant(wv, {32, 64})});
  CompileOptions o;
  o.compress = "int8";
  auto p = compile({y}, o);
  EXPECT_LT(p->weight_bytes(), 32 * 64 * 2 * 6 / 10);
  auto r8 = run_sim(p, {{x.shape(), xv}})[0].data;
  auto r16 = run_sim(compile({y}), {{x.shape(), xv}})[0].data;
  double num = 0, den = 0;
  for (size_t i = 0; i < r8.size(); ++i) {
    num += (r8[i] - r16[i]) * (r8[i] - r16[i]);
    den += r16[i] * r16[i];
  }
  EXPECT_LT(std::sqrt(num / den), 0.02);
  EXPECT_GT(std::sqrt(num / den), 0.0);  // it did quantise
}

// A C++ user compresses without Python: sparse weights keep exact zeros out of storage and
// compute what the dense program computes; a hostile packed weight is refused by check().
TEST(Sim, SparseWeightsAreLosslessAndChecked) {
  std::vector<float> wv(32 * 64), xv(4 * 64);
  for (size_t i = 0; i < wv.size(); ++i) wv[i] = (i % 3 == 0) ? 0.0f : std::sin(0.37f * static_cast<float>(i));
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = std::cos(0.11f * static_cast<float>(i));
  Tensor x = input({4, 64});
  Tensor y = call1("linear", {x, constant(wv, {32, 64})});
  CompileOptions o;
  o.compress = "sparse";
  auto p = compile({y}, o);
  EXPECT_EQ(p->weight_bytes(), 32 * 64 / 8 + 2 * (32 * 64 - (32 * 64 + 2) / 3));
  EXPECT_EQ(run_sim(p, {{x.shape(), xv}})[0].data, run_sim(compile({y}), {{x.shape(), xv}})[0].data);

  PackedWeights pk;
  pk.format = "sparse";
  pk.shape = {4, 4};
  pk.mask = {0xFF, 0x01};  // 9 stored values
  pk.nz16.assign(8, 0);
  EXPECT_EQ(pk.check(), "stored value count");
  pk.nz16.assign(9, 0);
  EXPECT_EQ(pk.check(), "");
  pk.mask = {0xFF};
  EXPECT_EQ(pk.check(), "mask size");
  pk.shape = {3, 3};
  pk.mask = {0xFF, 0x03};  // a bit past the 9th element
  pk.nz16.assign(10, 0);
  EXPECT_EQ(pk.check(), "mask bits set past the last element");
}

// A held input (a KV cache from C++): the program reads the held value where it is, row
// writes change only their rows, and a run given a value replaces it.
TEST(Sim, HeldInputTakesRowWritesInPlace) {
  Tensor c = input({2, 4, 3});
  Tensor x = input({1, 3});
  CompileOptions o;
  o.numerics.precision = Precision::fp32;
  auto prog = compile({call1("mul", {c, x})}, o);
  auto exe = backend("sim").load(prog);
  exe->hold(0);
  std::vector<float> xv{1.0f, 2.0f, 3.0f}, out(24), held(24, 0.0f);
  const float* in[2] = {nullptr, xv.data()};
  float* outs[1] = {out.data()};
  auto check = [&] {
    exe->run(in, outs);
    for (int i = 0; i < 24; ++i) ASSERT_EQ(out[i], held[i] * xv[i % 3]) << i;
  };
  check();  // zeros at first
  std::vector<float> rows{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};  // (2, 2, 3): rows 1..2 of dim 1
  exe->write_rows(0, 1, 1, 2, rows.data());
  for (int a = 0; a < 2; ++a)
    for (int r = 0; r < 2; ++r)
      for (int k = 0; k < 3; ++k) held[(a * 4 + 1 + r) * 3 + k] = rows[(a * 2 + r) * 3 + k];
  check();
  std::vector<float> full(24, 0.5f);
  in[0] = full.data();
  held = full;
  check();  // a given value replaces the held one
  in[0] = nullptr;
  check();
  EXPECT_THROW(exe->write_rows(0, 1, 3, 2, rows.data()), ValueError);  // rows 3..4 of 4
  EXPECT_THROW(exe->write_rows(1, 0, 0, 1, xv.data()), ValueError);    // x is not held
  EXPECT_THROW(exe->write_rows(0, 3, 0, 1, rows.data()), ValueError);  // no dim 3
}

// Two programs reading one held input (a KV cache that prefill and decode both attend to):
// rows written through either are what both read; the buffer outlives its first owner.
TEST(Sim, ASharedInputIsOneBufferForBothPrograms) {
  Tensor c = input({2, 3});
  CompileOptions o;
  o.numerics.precision = Precision::fp32;
  auto doubled = backend("sim").load(compile({call1("mul", {c, scalar(2.0)})}, o));
  auto tripled = backend("sim").load(compile({call1("mul", {c, scalar(3.0)})}, o));
  tripled->share_input(0, *doubled, 0);  // held in `doubled` now too
  std::vector<float> out(6), held(6, 0.0f);
  const float* in[1] = {nullptr};
  float* outs[1] = {out.data()};
  auto check = [&](Executable& e, float k) {
    e.run(in, outs);
    for (int i = 0; i < 6; ++i) ASSERT_EQ(out[i], k * held[i]) << i;
  };
  std::vector<float> row{1, 2, 3};
  doubled->write_rows(0, 0, 1, 1, row.data());
  std::copy(row.begin(), row.end(), held.begin() + 3);
  check(*doubled, 2.0f);
  check(*tripled, 3.0f);
  tripled->write_rows(0, 0, 0, 1, row.data());
  std::copy(row.begin(), row.end(), held.begin());
  check(*doubled, 2.0f);
  doubled.reset();
  check(*tripled, 3.0f);
  auto other = backend("sim").load(compile({call1("mul", {input({3, 2}), scalar(1.0)})}, o));
  EXPECT_THROW(tripled->share_input(0, *other, 0), ValueError);  // another shape
  EXPECT_THROW(tripled->share_input(0, *tripled, 0), ValueError);
}

// A program given another program's packed weight for a layer (an LLM's decode program and
// its prefill program) holds that very weight, not a copy; a different weight of the same
// shape gets its own copy, so the giver's errors stay its own.
TEST(Sim, PackedWeightsGivenToAnotherProgramAreShared) {
  auto wv = randn(32 * 64, 21);
  auto graph = [&](const std::vector<float>& w, int64_t rows) {
    Tensor x = input({rows, 64});
    Tensor y = call1("linear", {x, constant(w, {32, 64})});
    y.node()->name = "fc";
    return y;
  };
  CompileOptions o;
  o.compress_layers = {{"fc", "int8"}};
  auto first = compile({graph(wv, 8)}, o);
  const auto& given = first->values[first->steps[0].in[1]].data->packed;
  ASSERT_TRUE(given);
  o.packed_layers = {{"fc", given}};
  auto second = compile({graph(wv, 1)}, o);
  EXPECT_EQ(second->values[second->steps[0].in[1]].data->packed.get(), given.get());
  auto other = randn(32 * 64, 22);
  auto third = compile({graph(other, 1)}, o);
  EXPECT_NE(third->values[third->steps[0].in[1]].data->packed.get(), given.get());
  EXPECT_NE(third->values[third->steps[0].in[1]].data->packed->rel_error, given->rel_error);
}

// Max and average pooling (a row of outputs at a time, tap by tap) against a loop over each
// output's window: the same values combined in the same order, so the same bits (NaN signs
// aside), with NaN, inf and -0 inputs, padding, ceil_mode and both divisors of avg_pool.
TEST(Sim, PoolingMatchesPerWindowLoops) {
  // (kernel h, w, stride h, w, pad h, w, ceil_mode)
  const int64_t cfgs[][7] = {{2, 2, 2, 2, 0, 0, 0}, {3, 3, 2, 2, 1, 1, 0}, {3, 3, 1, 1, 1, 1, 0}, {3, 2, 2, 1, 1, 0, 1},
                             {2, 5, 1, 3, 1, 2, 1}, {5, 5, 3, 3, 2, 2, 1}, {3, 3, 2, 2, 1, 1, 1}};
  const int64_t C = 3, H = 11, W = 13;
  auto xv = randn(C * H * W, 7);
  const float special[] = {NAN, INFINITY, -INFINITY, -0.0f, 0.0f, 65504.0f};
  for (size_t i = 0; i < 24; ++i) xv[(i * 53) % xv.size()] = special[i % 6];
  for (const auto& c : cfgs)
    for (const char* name : {"max_pool", "avg_pool"})
      for (bool include_pad : {true, false}) {
        const bool mx = std::string(name) == "max_pool";
        if (mx && !include_pad) continue;
        Tensor x = input({1, C, H, W});
        Attrs a{{"kernel_size", std::vector<int64_t>{c[0], c[1]}}, {"stride", std::vector<int64_t>{c[2], c[3]}},
                {"padding", std::vector<int64_t>{c[4], c[5]}}, {"ceil_mode", c[6] == 1}};
        if (!mx) a.set("count_include_pad", include_pad);
        Tensor y = call1(name, {x}, a);
        CompileOptions o;
        o.numerics.precision = Precision::fp32;
        auto out = run_sim(compile({y}, o), {{x.shape(), xv}})[0];
        const int64_t Ho = y.shape()[2], Wo = y.shape()[3];
        for (int64_t ch = 0; ch < C; ++ch)
          for (int64_t oh = 0; oh < Ho; ++oh)
            for (int64_t ow = 0; ow < Wo; ++ow) {
              const int64_t hs = oh * c[2] - c[4], ws = ow * c[3] - c[5];
              const int64_t he = std::min(hs + c[0], H + c[4]), we = std::min(ws + c[1], W + c[5]);
              float acc = mx ? -INFINITY : 0.0f;
              int64_t inside = 0;
              for (int64_t ih = std::max<int64_t>(hs, 0); ih < std::min(he, H); ++ih)
                for (int64_t iw = std::max<int64_t>(ws, 0); iw < std::min(we, W); ++iw, ++inside) {
                  float v = xv[(ch * H + ih) * W + iw];
                  acc = mx ? ((v > acc || v != v) ? v : acc) : acc + v;
                }
              if (!mx) acc /= static_cast<float>(include_pad ? (he - hs) * (we - ws) : inside);
              float got = out.data[(ch * Ho + oh) * Wo + ow];
              if (std::isnan(acc) && std::isnan(got)) continue;
              ASSERT_EQ(std::memcmp(&got, &acc, 4), 0)
                  << name << " cfg " << (&c - cfgs) << (include_pad ? "" : " exclude pad") << ": " << ch << " " << oh << " " << ow;
            }
      }
}
