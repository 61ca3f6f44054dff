// How constants are held: borrowed from the caller while the graph is built, as fp16 bits in
// an fp16 program, and never kept alive by a compiled program through the graph.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "aneforge/aneforge.h"
#include "test_util.h"

using namespace af;

namespace {

// Weight-sized values: standard deviation 0.1.
std::vector<float> small_randn(size_t n, unsigned seed) { return randn(n, seed, 0.1f); }

// The value that holds the constant fed to the first layer of op `op` at input `i`.
const Value& weight_of(const Program& p, const std::string& op, size_t i) {
  for (const auto& s : p.steps)
    if (s.node->op->name == op) return p.values[s.in[i]];
  throw std::runtime_error("no " + op);
}

}  // namespace

TEST(ConstStorage, FormsReadTheSameValues) {
  auto owner = std::make_shared<std::vector<float>>(std::vector<float>{1.5f, -2.0f, 0.1f});
  ConstValues b = ConstValues::borrow(owner->data(), owner->size(), owner);
  EXPECT_TRUE(b.is_borrowed());
  EXPECT_EQ(b.data(), owner->data());  // read in place, not copied
  EXPECT_EQ(b.to_vector(), *owner);
  std::vector<uint16_t> bits;
  for (float x : *owner) bits.push_back(float_to_half(x));
  ConstValues h = ConstValues::halves(bits);
  EXPECT_TRUE(h.is_half());
  EXPECT_EQ(h.bytes(), 6);
  EXPECT_EQ(h[1], -2.0f);
  EXPECT_EQ(h[2], half_to_float(float_to_half(0.1f)));
  EXPECT_THROW(h.data(), Error);  // fp16 bits have no float32 pointer
  std::vector<float>& own = b.mutable_floats();  // a borrowed constant is copied before a write
  own[0] = 9.0f;
  EXPECT_FALSE(b.is_borrowed());
  EXPECT_EQ((*owner)[0], 1.5f);
}

TEST(ConstStorage, Fp16ProgramsHoldLargeWeightsAsFp16AndComputeTheSame) {
  const int64_t K = 96, N = 64, M = 3;  // 6144 weight elements: past kHalfConstMin
  auto wv = small_randn(static_cast<size_t>(N * K), 1), xv = small_randn(static_cast<size_t>(M * K), 2);
  Tensor x = input({M, K}), wi = input({N, K});
  auto held = compile({call1("linear", {x, constant(wv, {N, K})})});
  const Value& w = weight_of(*held, "linear", 1);
  ASSERT_TRUE(w.data->values.is_half());
  EXPECT_EQ(w.data->values.bytes(), N * K * 2);
  // Up to 4 rows, the weight is read row by row: within half an fp16 ulp of the exact
  // product of the fp16 operands (one rounding; fp32 partial sums are far finer).
  auto a = run_sim(held, {{x.shape(), xv}})[0].data;
  auto h = [](float v) { return half_to_float(float_to_half(v)); };
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double exact = 0;
      for (int64_t i = 0; i < K; ++i) exact += double(h(xv[m * K + i])) * h(wv[n * K + i]);
      float ulp = std::ldexp(1.0f, std::ilogb(std::max(std::fabs(static_cast<float>(exact)), 6.1e-5f)) - 10);
      EXPECT_LE(std::fabs(a[m * N + n] - exact), 0.5 * ulp + 1e-6 * std::fabs(exact)) << m << "," << n;
    }
  // More rows: a GEMM over the widened weight, the same as with the weight fed as an input
  // (float32 in the sim, rounded to fp16).
  Tensor x2 = input({40, K}), x2i = input({40, K});
  auto held2 = compile({call1("linear", {x2, constant(wv, {N, K})})});
  auto fed2 = compile({call1("linear", {x2i, wi})});
  auto x2v = small_randn(static_cast<size_t>(40 * K), 12);
  EXPECT_EQ(run_sim(held2, {{x2.shape(), x2v}})[0].data, run_sim(fed2, {{wi.shape(), wv}, {x2i.shape(), x2v}})[0].data);
  // Small constants stay float32; fp32 programs keep float32.
  auto small = compile({call1("linear", {x, constant(small_randn(16 * K, 3), {16, K})})});
  EXPECT_FALSE(weight_of(*small, "linear", 1).data->values.is_half());
  CompileOptions o;
  o.numerics.precision = Precision::fp32;
  EXPECT_FALSE(weight_of(*compile({call1("linear", {x, constant(wv, {N, K})})}, o), "linear", 1).data->values.is_half());
}

TEST(ConstStorage, EmbeddingAndMatmulReadFp16Tables) {
  const int64_t V = 128, D = 48, K = 48, N = 100;
  auto table = small_randn(static_cast<size_t>(V * D), 4), bv = small_randn(static_cast<size_t>(K * N), 5);
  Tensor ids = input({2, 5}, DType::int32), ti = input({V, D});
  std::vector<float> idv = {0, 3, 127, 64, 5, 9, 8, 7, 100, 1};
  auto held = compile({call1("embedding", {ids, constant(table, {V, D})})});
  ASSERT_TRUE(weight_of(*held, "embedding", 1).data->values.is_half());
  auto fed = compile({call1("embedding", {ids, ti})});
  EXPECT_EQ(run_sim(held, {{ids.shape(), idv}})[0].data, run_sim(fed, {{ids.shape(), idv}, {ti.shape(), table}})[0].data);
  // A batch of right operands (a 2-D one becomes a linear layer, tested above).
  const int64_t KN = K * N / 2;
  Tensor a = input({2, 3, K}), bi = input({2, K, N / 2});
  auto av = small_randn(static_cast<size_t>(6 * K), 6);
  auto mh = compile({call1("matmul", {a, constant(bv, {2, K, N / 2})})});
  ASSERT_EQ(static_cast<int64_t>(bv.size()), 2 * KN);
  ASSERT_TRUE(weight_of(*mh, "matmul", 1).data->values.is_half());
  auto mf = compile({call1("matmul", {a, bi})});
  EXPECT_EQ(run_sim(mh, {{a.shape(), av}})[0].data, run_sim(mf, {{a.shape(), av}, {bi.shape(), bv}})[0].data);
  // A vector times a constant matrix stays a matmul: B's columns widened a panel at a time.
  Tensor v = input({K}), b2 = input({K, N});
  auto vh = compile({call1("matmul", {v, constant(bv, {K, N})})});
  ASSERT_TRUE(weight_of(*vh, "matmul", 1).data->values.is_half());
  auto vf = compile({call1("matmul", {v, b2})});
  auto vv = small_randn(static_cast<size_t>(K), 11);
  EXPECT_EQ(run_sim(vh, {{v.shape(), vv}})[0].data, run_sim(vf, {{v.shape(), vv}, {b2.shape(), bv}})[0].data);
}

TEST(ConstStorage, ACompiledProgramDoesNotKeepTheGraphAlive) {
  std::weak_ptr<const ConstData> graph_weight;
  std::shared_ptr<Program> p;
  {
    Tensor x = input({2, 64});
    Tensor w = constant(small_randn(64 * 64, 7), {64, 64});
    graph_weight = w.node()->data;
    Tensor y = call1("relu", {call1("linear", {x, w})});
    p = compile({y});
  }
  EXPECT_TRUE(graph_weight.expired());  // the program holds its own fp16 copy only
  EXPECT_EQ(run_sim(p, {{{2, 64}, small_randn(128, 8)}})[0].data.size(), 128u);
}

TEST(ConstStorage, ProgramFilesKeepFp16Weights) {
  Tensor x = input({2, 80});
  auto p = compile({call1("linear", {x, constant(small_randn(80 * 80, 9), {80, 80})})});
  std::string path = ::testing::TempDir() + "/const_storage.afp";
  save_program(*p, path, true);
  auto back = load_program(path);
  EXPECT_TRUE(weight_of(*back, "linear", 1).data->values.is_half());
  auto xv = small_randn(160, 10);
  EXPECT_EQ(run_sim(back, {{x.shape(), xv}})[0].data, run_sim(p, {{x.shape(), xv}})[0].data);
  std::remove(path.c_str());
}

TEST(ConstStorage, ProgramsFromTheSameBorrowedWeightsShareTheirFp16Copy) {
  auto owner = std::make_shared<std::vector<float>>(small_randn(64 * 96, 13));
  auto graph = [&]() {
    Tensor x = input({2, 96});
    return call1("linear", {x, constant(ConstValues::borrow(owner->data(), owner->size(), owner), {64, 96})});
  };
  Tensor y1 = graph(), y2 = graph();  // both graphs alive: the memory stays borrowed
  auto p1 = compile({y1}), p2 = compile({y2});
  EXPECT_EQ(weight_of(*p1, "linear", 1).data, weight_of(*p2, "linear", 1).data);
  CompileOptions keep_subnormals;  // other numerics round differently: their own copy
  keep_subnormals.numerics.fp16.flush_subnormals = false;
  EXPECT_NE(weight_of(*compile({y1}, keep_subnormals), "linear", 1).data, weight_of(*p1, "linear", 1).data);
  // Owned (not borrowed) constants are never matched by address.
  Tensor x = input({2, 96});
  auto p3 = compile({call1("linear", {x, constant(*owner, {64, 96})})});
  EXPECT_NE(weight_of(*p3, "linear", 1).data, weight_of(*p1, "linear", 1).data);
}

// fp16 bits borrowed from their owner (a checkpoint read straight into fp16): programs read
// them where they are, and compute what the same weight rounded by the compiler computes.
TEST(ConstStorage, BorrowedFp16BitsAreReadInPlace) {
  auto wv = small_randn(64 * 96, 14);
  auto bits = std::make_shared<std::vector<uint16_t>>(wv.size());
  floats_to_halves(wv.data(), bits->data(), wv.size(), Fp16Mode{});
  ConstValues h = ConstValues::borrow_halves(bits->data(), bits->size(), bits);
  ASSERT_TRUE(h.is_half());
  EXPECT_EQ(h.size(), wv.size());
  EXPECT_EQ(h.half_data(), bits->data());
  Tensor x = input({2, 96}), x2 = input({2, 96});
  auto borrowed = compile({call1("linear", {x, constant(h, {64, 96})})});
  auto rounded = compile({call1("linear", {x2, constant(wv, {64, 96})})});
  EXPECT_EQ(weight_of(*borrowed, "linear", 1).data->values.half_data(), bits->data());
  auto xv = small_randn(2 * 96, 15);
  EXPECT_EQ(run_sim(borrowed, {{x.shape(), xv}})[0].data, run_sim(rounded, {{x2.shape(), xv}})[0].data);
}
