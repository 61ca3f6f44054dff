// The threading contract (docs/reliability.md): parallel regions from several threads,
// set_num_threads while regions run, one executable called from 8 threads, compiling from
// several threads. Run under ThreadSanitizer by scripts/sanitize.sh.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <numeric>
#include <thread>

#include "aneforge/aneforge.h"
#include "aneforge/parallel.h"

using namespace af;

TEST(Threads, ParallelForFromManyThreadsWhileResizing) {
  std::atomic<bool> stop{false};
  std::thread resizer([&] {
    for (int i = 0; !stop.load(); ++i) set_num_threads(1 + i % 3);
  });
  std::vector<std::thread> users;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t)
    users.emplace_back([&, t] {
      for (int rep = 0; rep < 50; ++rep) {
        std::vector<int> v(10000, 0);
        parallel_for(v.size(), 64, [&](size_t b, size_t e) {
          for (size_t i = b; i < e; ++i) v[i] += t + 1;
        });
        if (std::accumulate(v.begin(), v.end(), 0L) != 10000L * (t + 1)) ++bad;
      }
    });
  for (auto& u : users) u.join();
  stop = true;
  resizer.join();
  set_num_threads(2);
  EXPECT_EQ(bad.load(), 0);
}

static std::shared_ptr<Program> small_net(unsigned seed) {
  std::vector<float> w(8 * 3 * 3 * 3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>((i * 7 + seed) % 11) / 11.0f - 0.5f;
  Tensor x = input({1, 3, 16, 16}, DType::fp16, "x");
  Tensor y = call1("relu", {call1("conv", {x, constant(w, {8, 3, 3, 3})}, {{"pad", int64_t{1}}})}, {});
  return compile({y});
}

TEST(Threads, OneExecutableFromEightThreadsGivesSerialResults) {
  auto exe = backend("sim").load(small_net(1));
  std::vector<float> in(3 * 16 * 16);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i % 13) / 13.0f;
  std::vector<float> serial(8 * 16 * 16);
  const float* ip = in.data();
  float* op = serial.data();
  exe->run(&ip, &op);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&] {
      std::vector<float> out(serial.size());
      const float* i2 = in.data();
      float* o2 = out.data();
      for (int rep = 0; rep < 10; ++rep) {
        exe->run(&i2, &o2);
        if (out != serial) ++mismatches;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// Two programs sharing a held input (a KV cache) run and write rows from two threads: they
// take one lock, so each run sees a whole write (every entry of the buffer one value). With
// a lock per program, TSan (scripts/sanitize.sh runs these tests) reports the data race on
// the shared buffer: checked by removing the shared lock.
TEST(Threads, ProgramsSharingAnInputNeverOverlap) {
  Tensor c = input({64, 256});
  CompileOptions o;
  o.numerics.precision = Precision::fp32;
  auto writer = backend("sim").load(compile({call1("mul", {c, scalar(1.0)})}, o));
  auto reader = backend("sim").load(compile({call1("mul", {c, scalar(2.0)})}, o));
  reader->share_input(0, *writer, 0);
  std::atomic<int> torn{0};
  std::thread w([&] {
    std::vector<float> rows(64 * 256);
    for (int rep = 1; rep <= 200; ++rep) {
      std::fill(rows.begin(), rows.end(), static_cast<float>(rep));
      writer->write_rows(0, 0, 0, 64, rows.data());
    }
  });
  std::thread r([&] {
    std::vector<float> out(64 * 256);
    const float* in[1] = {nullptr};
    float* outs[1] = {out.data()};
    for (int rep = 0; rep < 200; ++rep) {
      reader->run(in, outs);
      if (std::any_of(out.begin(), out.end(), [&](float v) { return v != out[0]; })) ++torn;
    }
  });
  w.join();
  r.join();
  EXPECT_EQ(torn.load(), 0);
}

TEST(Threads, CompilingFromSeveralThreads) {
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int rep = 0; rep < 5; ++rep)
        if (small_net(static_cast<unsigned>(t))->steps.size() >= 1) ++ok;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 20);
}

// Small products of a batched matmul run across the pool (matmul.cpp): each must equal the
// same product computed alone, at any thread count.
TEST(Threads, BatchedMatmulEqualsEachProductAlone) {
  const int64_t B = 12, M = 40, K = 30, N = 50;  // M * N * K below OpenBLAS's threading threshold
  std::vector<float> a(static_cast<size_t>(B * M * K)), b(static_cast<size_t>(B * K * N));
  for (size_t i = 0; i < a.size(); ++i) a[i] = half_to_float(float_to_half(std::sin(0.37f * static_cast<float>(i))));
  for (size_t i = 0; i < b.size(); ++i) b[i] = half_to_float(float_to_half(std::cos(0.11f * static_cast<float>(i))));
  auto matmul_of = [](int64_t batch, int64_t m, int64_t k, int64_t n) {
    Tensor x = input({batch, m, k}, DType::fp16, "a"), y = input({batch, k, n}, DType::fp16, "b");
    CompileOptions o;
    o.numerics.precision = Precision::fp32;  // the GEMM's own sums, unrounded
    return compile({call1("matmul", {x, y})}, o);
  };
  auto alone = matmul_of(1, M, K, N);
  std::vector<float> expected;
  for (int64_t i = 0; i < B; ++i) {
    std::vector<float> ai(a.begin() + i * M * K, a.begin() + (i + 1) * M * K), bi(b.begin() + i * K * N, b.begin() + (i + 1) * K * N);
    auto y = run_sim(alone, {{{1, M, K}, ai}, {{1, K, N}, bi}})[0].data;
    expected.insert(expected.end(), y.begin(), y.end());
  }
  auto batched = matmul_of(B, M, K, N);
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    auto got = run_sim(batched, {{{B, M, K}, a}, {{B, K, N}, b}})[0].data;
    ASSERT_EQ(got.size(), expected.size());
    EXPECT_EQ(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)), 0) << threads << " threads";
  }
  set_num_threads(2);
}

// Each image of a batched conv must equal that image convolved alone, at any thread count:
// small per-image GEMMs run their images across the pool; large images run one GEMM per
// block of output rows (conv.cpp), the same blocks whatever the batch.
void expect_conv_images_as_alone(int64_t N, int64_t C, int64_t H, int64_t O) {
  const int64_t W = H;
  std::vector<float> x(static_cast<size_t>(N * C * H * W)), w(static_cast<size_t>(O * C * 9)), b(static_cast<size_t>(O));
  for (size_t i = 0; i < x.size(); ++i) x[i] = half_to_float(float_to_half(std::sin(0.13f * static_cast<float>(i))));
  for (size_t i = 0; i < w.size(); ++i) w[i] = half_to_float(float_to_half(std::cos(0.7f * static_cast<float>(i))));
  for (size_t i = 0; i < b.size(); ++i) b[i] = 0.25f * static_cast<float>(i) - 1.0f;
  auto conv_of = [&](int64_t batch) {
    Tensor xi = input({batch, C, H, W}, DType::fp16, "x");
    CompileOptions o;
    o.numerics.precision = Precision::fp32;
    return compile({call1("conv", {xi, constant(w, {O, C, 3, 3}), constant(b, {O})}, {{"pad", int64_t{1}}})}, o);
  };
  auto alone = conv_of(1);
  std::vector<float> expected;
  for (int64_t n = 0; n < N; ++n) {
    std::vector<float> xn(x.begin() + n * C * H * W, x.begin() + (n + 1) * C * H * W);
    auto y = run_sim(alone, {{{1, C, H, W}, xn}})[0].data;
    expected.insert(expected.end(), y.begin(), y.end());
  }
  auto batched = conv_of(N);
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    auto got = run_sim(batched, {{{N, C, H, W}, x}})[0].data;
    ASSERT_EQ(got.size(), expected.size());
    EXPECT_EQ(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)), 0) << threads << " threads";
  }
  set_num_threads(2);
}

TEST(Threads, BatchedSmallConvEqualsEachImageAlone) {
  expect_conv_images_as_alone(10, 1, 28, 16);  // 16 x 784 x 9 per image: one OpenBLAS thread
}

TEST(Threads, BatchedLargeConvEqualsEachImageAlone) {
  expect_conv_images_as_alone(3, 32, 72, 24);  // 288 x 72 patches a row: two blocks of rows per image
}
