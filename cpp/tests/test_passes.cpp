// Each compiler pass on its own: build a Program, run the pass, check the program and
// that results did not change (on the simulator).
#include <gtest/gtest.h>

#include <map>

#include <cmath>
#include <random>

#include "aneforge/aneforge.h"
#include "passes/passes.h"
#include "test_util.h"

using namespace af;

namespace {

int count_op(const Program& p, const std::string& op) {
  int n = 0;
  for (const auto& s : p.steps) n += s.node->op->name == op;
  return n;
}

CompileOptions fp32() {
  CompileOptions o;
  o.numerics.precision = Precision::fp32;
  return o;
}

float max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace

TEST(Passes, ConstantFoldingRunsConstOnlyLayersAtCompileTime) {
  Tensor x = input({4}, DType::fp16, "x");
  Tensor c = call1("mul", {constant({1, 2, 3, 4}, {4}), scalar(2.0)});
  Tensor y = call1("add", {x, call1("relu", {call1("sub", {c, scalar(3.0)})})});
  auto p = compile({y});
  EXPECT_EQ(p->steps.size(), 1u);  // only the add that reads x is left
  auto r = run_sim(p, {{{4}, {0, 0, 0, 0}}})[0].data;
  EXPECT_EQ(r, (std::vector<float>{0, 1, 3, 5}));
}

TEST(Passes, CommonSubexpressionsAreComputedOnce) {
  Tensor x = input({8}, DType::fp16, "x");
  Tensor a = call1("sigmoid", {call1("mul", {x, scalar(3.0)})});
  Tensor b = call1("sigmoid", {call1("mul", {x, scalar(3.0)})});
  auto p = compile({call1("add", {a, b})});
  EXPECT_EQ(count_op(*p, "sigmoid"), 1);
  EXPECT_EQ(count_op(*p, "mul"), 1);
}

TEST(Passes, DeadCodeIsRemoved) {
  Tensor x = input({8}, DType::fp16, "x");
  call1("exp", {x});  // built, never used: not reachable, not compiled
  Tensor y = call1("relu", {x});
  std::vector<Tensor> outs{y};
  auto p = compile(outs);
  EXPECT_EQ(p->steps.size(), 1u);
  // A multi-output op whose second output is unused keeps running (one layer).
  auto parts = call("split", {input({6}, DType::fp16, "z")}, {{"split_size_or_sections", int64_t{3}}});
  auto q = compile({parts[0]});
  EXPECT_EQ(q->steps.size(), 1u);
}

TEST(Passes, BatchNormFoldsIntoConv) {
  auto wv = randn(4 * 3 * 9, 1), xv = randn(2 * 3 * 25, 2);
  std::vector<float> mean{0.1f, -0.2f, 0.3f, 0.0f}, var{1.5f, 0.5f, 2.0f, 1.0f}, g{1.0f, 2.0f, -1.0f, 0.5f},
      b{0.0f, 0.1f, 0.2f, -0.3f};
  Tensor x = input({2, 3, 5, 5}, DType::fp16, "x");
  Tensor c = call1("conv", {x, constant(wv, {4, 3, 3, 3})}, {{"pad", int64_t{1}}});
  Tensor y = call1("batch_norm", {c, constant(mean, {4}), constant(var, {4}), constant(g, {4}), constant(b, {4})},
                   {{"has_weight", true}, {"has_bias", true}});
  auto folded = compile({y}, fp32());
  EXPECT_EQ(count_op(*folded, "batch_norm"), 0);
  // Reference: the two ops run separately (a graph whose BN input is an output stops folding).
  auto unfolded = compile({y, c}, fp32());
  EXPECT_EQ(count_op(*unfolded, "batch_norm"), 1);
  auto r1 = run_sim(folded, {{x.shape(), xv}})[0].data;
  auto r2 = run_sim(unfolded, {{x.shape(), xv}})[0].data;
  EXPECT_LT(max_diff(r1, r2), 1e-4f);
}

TEST(Passes, ConstantChannelAddBecomesBias) {
  auto wv = randn(5 * 2 * 1, 3), xv = randn(1 * 2 * 4 * 3, 4), bv = randn(5, 5);
  Tensor x = input({1, 2, 4, 3}, DType::fp16, "x");
  Tensor c = call1("conv", {x, constant(wv, {5, 2, 1, 1})});
  Tensor y = call1("add", {c, constant(bv, {5, 1, 1})});
  auto p = compile({y}, fp32());
  EXPECT_EQ(count_op(*p, "add"), 0);
  EXPECT_TRUE(p->steps[0].node->attrs.b("has_bias"));
  // An add along the wrong axis (W) must not fuse.
  Tensor z = call1("add", {c, constant({1, 2, 3}, {3})});
  EXPECT_EQ(count_op(*compile({z}, fp32()), "add"), 1);
  auto r = run_sim(p, {{x.shape(), xv}})[0].data;
  for (int o = 0; o < 5; ++o)
    for (int i = 0; i < 12; ++i) {
      float want = bv[o] + wv[o * 2] * xv[i] + wv[o * 2 + 1] * xv[12 + i];
      EXPECT_NEAR(r[o * 12 + i], want, 1e-5);
    }
}

TEST(Passes, MatmulWithConstantWeightBecomesLinearWithBias) {
  auto wv = randn(6 * 4, 11), bv = randn(4, 12), xv = randn(3 * 6, 13);
  Tensor x = input({3, 6}, DType::fp16, "x");
  Tensor y = call1("relu", {call1("add", {call1("matmul", {x, constant(wv, {6, 4})}), constant(bv, {4})})});
  auto p = compile({y}, fp32());
  ASSERT_EQ(p->steps.size(), 1u);
  EXPECT_EQ(p->steps[0].node->op->name, "linear");
  EXPECT_TRUE(p->steps[0].node->attrs.b("has_bias"));
  auto r = run_sim(p, {{{3, 6}, xv}})[0].data;
  for (int m = 0; m < 3; ++m)
    for (int n = 0; n < 4; ++n) {
      double acc = bv[n];
      for (int k = 0; k < 6; ++k) acc += double(xv[m * 6 + k]) * wv[k * 4 + n];
      EXPECT_NEAR(r[m * 4 + n], std::max(acc, 0.0), 1e-4);
    }
}

// matmul of a last-two-axes permute reads the operand transposed (transpose_x / _y); the
// permute goes unless something else reads it. Small-integer inputs: every product and sum is
// exact, so the results must equal the host's bit for bit.
TEST(Passes, MatmulReadsATransposedOperandInPlaceOfItsPermute) {
  const int64_t B = 2, H = 3, M = 5, K = 7, N = 4;
  auto ints = [](size_t n, unsigned seed) {
    std::mt19937 g(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = static_cast<float>(static_cast<int>(g() % 7) - 3);
    return v;
  };
  const std::vector<int64_t> swap{0, 1, 3, 2};
  Tensor a = input({B, H, K, M}, DType::fp16, "a"), c = input({1, H, N, K}, DType::fp16, "c");
  Tensor e = input({B, H, K, N}, DType::fp16, "e");
  Tensor at = call1("permute", {a}, {{"dims", swap}}), ct = call1("permute", {c}, {{"dims", swap}});
  Tensor y = call1("matmul", {at, ct});  // (B, H, M, N): both read transposed, c broadcast over B
  Tensor z = call1("matmul", {at, e});   // (B, H, M, N): x read transposed
  Tensor kept = call1("add", {at, scalar(1.0)});  // at is read elsewhere too: its permute stays
  auto p = compile({y, z, kept}, fp32());
  int flags = 0;
  for (const auto& s : p->steps)
    if (s.node->op->name == "matmul")
      for (const char* f : {"transpose_x", "transpose_y"}) flags += s.node->attrs.has(f) && s.node->attrs.b(f);
  EXPECT_EQ(flags, 3);
  EXPECT_EQ(count_op(*p, "permute"), 1);  // at's, for the add; ct's is gone
  auto av = ints(B * H * K * M, 1), cv = ints(H * N * K, 2), ev = ints(B * H * K * N, 3);
  auto out = run_sim(p, {{a.shape(), av}, {c.shape(), cv}, {e.shape(), ev}});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          float want_y = 0, want_z = 0;
          for (int64_t k = 0; k < K; ++k) {
            const float ak = av[((b * H + h) * K + k) * M + m];
            want_y += ak * cv[(h * N + n) * K + k];
            want_z += ak * ev[((b * H + h) * K + k) * N + n];
          }
          const size_t at_out = static_cast<size_t>(((b * H + h) * M + m) * N + n);
          ASSERT_EQ(out[0].data[at_out], want_y) << b << h << m << n;
          ASSERT_EQ(out[1].data[at_out], want_z) << b << h << m << n;
        }
}

TEST(Passes, ElementwiseTailsFuseIntoOneLayer) {
  Tensor x = input({3, 8}, DType::fp16, "x");
  Tensor y = call1("tanh", {call1("relu", {call1("linear", {x, constant(randn(16, 6), {2, 8})})})});
  auto p = compile({y});
  ASSERT_EQ(p->steps.size(), 1u);
  ASSERT_EQ(p->steps[0].epilogue.size(), 2u);
  EXPECT_EQ(p->values[p->outputs[0]].name, y.name());
  EXPECT_TRUE(p->steps[0].node->attrs.b("as_conv1x1"));  // linear_as_conv marked it
  // Same results as the unfused program (a tail that is also an output is not fused).
  Tensor h = call1("relu", {call1("linear", {x, constant(randn(16, 6), {2, 8})})});
  auto q = compile({call1("tanh", {h}), h});
  EXPECT_EQ(q->steps.size(), 2u);
  auto xv = randn(24, 7);
  auto a = run_sim(q, {{{3, 8}, xv}});
  std::vector<float> want(a[1].data.size());
  for (size_t i = 0; i < want.size(); ++i) want[i] = half_to_float(float_to_half(std::tanh(a[1].data[i])));
  EXPECT_EQ(a[0].data, want);
}

TEST(Passes, LayoutAndMemoryPlan) {
  Tensor x = input({1, 16, 7, 7}, DType::fp16, "x");
  Tensor y = x;
  for (int i = 0; i < 6; ++i) y = call1("sigmoid", {call1("mul", {y, scalar(0.5)})});
  auto p = compile({y});
  const Value& in = p->values[p->inputs[0]];
  EXPECT_EQ(in.layout, "BCHW");
  EXPECT_EQ(in.engine_bytes, 1 * 16 * 7 * 64);  // 7 fp16 = 14 bytes per row, padded to 64
  EXPECT_LE(p->slot_elems.size(), 3u);
  EXPECT_EQ(p->peak_activation_bytes(), static_cast<int64_t>(p->slot_elems.size()) * 16 * 7 * 64);
  Tensor s = input({2, 10}, DType::fp16, "s");
  auto q = compile({call1("relu", {s})});
  EXPECT_EQ(q->values[q->inputs[0]].layout, "BC1S");
}

TEST(Passes, DumpShowsEveryPass) {
  Tensor x = input({2}, DType::fp16, "x");
  CompileOptions o;
  o.dump_passes = true;
  auto p = compile({call1("relu", {x})}, o);
  for (const char* pass : {"== graph ==", "== lower_bridges ==", "== fold_constants ==", "== fuse_activations ==",
                           "== plan_memory =="})
    EXPECT_NE(p->pass_log.find(pass), std::string::npos) << pass;
}

// split_index_ranges: a 3000-row table is read in two 2048-row chunks, the second through
// ids offset by 2048 on the host (one port row each); the rules give the host its checks.
TEST(Passes, IndexRangesPastTheFp16LimitAreSplitIntoExactChunks) {
  const int64_t V = 3000, D = 4;
  std::vector<float> table(V * D);
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<float>(i % 1000) / 8.0f;  // exact in fp16
  Tensor ids = input({4}, DType::int32, "ids");
  auto p = compile({call1("embedding", {ids, constant(table, {V, D})})});
  int offsets = 0;
  for (const auto& s : p->steps) offsets += s.node->op->name == "index_offset";
  EXPECT_EQ(offsets, 1);
  EXPECT_EQ(index_port_rows(*p, 0), 2);
  auto rules = int_input_rules(*p);
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0].index_limit, V);
  EXPECT_FALSE(rules[0].plain_use);
  std::vector<float> feed = {0, 2047, 2048, 2999};
  auto out = run_sim(p, {HostTensor{{4}, feed}});
  for (int t = 0; t < 4; ++t)
    for (int d = 0; d < D; ++d) EXPECT_EQ(out[0].data[t * D + d], table[static_cast<int64_t>(feed[t]) * D + d]) << t;
  std::vector<float> rows(8);
  encode_index_rows(feed.data(), 4, 2, rows.data());
  EXPECT_EQ(rows, (std::vector<float>{0, 2047, 2048, 2999, -2048, -1, 0, 951}));
  const float bad[] = {0, 3000, 1, 2};
  const float* in[] = {bad};
  EXPECT_THROW(check_int_inputs(*p, in), IndexError);
  // An id also used as a number must be exact in fp16; a small table needs no offsets.
  Tensor pos = input({2}, DType::int32, "pos");
  auto q = compile({call1("embedding", {pos, constant(std::vector<float>(16, 1.0f), {4, 4})}), call1("add", {pos, scalar(1.0, DType::int32)})});
  EXPECT_EQ(index_port_rows(*q, 0), 1);
  EXPECT_TRUE(int_input_rules(*q)[0].plain_use);
  EXPECT_EQ(int_input_rules(*q)[0].index_limit, 4);
}

// A reshape of a computed value lives in its input's buffer and runs nothing; the buffer
// stays taken while either value is read, so values made in between never overwrite it.
TEST(Passes, AReshapeSharesItsInputsBufferUntilBothAreDead) {
  Tensor x = input({4, 6}, DType::fp16, "x");
  Tensor a = call1("mul", {x, scalar(2.0)});
  Tensor b = call1("reshape", {a}, {{"shape", std::vector<int64_t>{6, 4}}});  // a's last direct use
  Tensor e = call1("add", {x, scalar(1.0)});                                  // new values after it
  Tensor f = call1("mul", {e, e});
  Tensor g = call1("reshape", {f}, {{"shape", std::vector<int64_t>{6, 4}}});
  auto p = compile({call1("sub", {b, g})});
  int views = 0;
  for (const auto& st : p->steps)
    if (st.node->op->name == "reshape") {
      EXPECT_EQ(p->values[st.out[0]].slot, p->values[st.in[0]].slot);
      ++views;
    }
  EXPECT_EQ(views, 2);
  std::vector<float> xv(24);
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = static_cast<float>(i) * 0.25f;
  auto r = run_sim(p, {{{4, 6}, xv}})[0];
  EXPECT_EQ(r.shape, (Shape{6, 4}));
  for (size_t i = 0; i < xv.size(); ++i) {
    float e1 = half_to_float(float_to_half(xv[i] + 1.0f));
    EXPECT_EQ(r.data[i], half_to_float(float_to_half(2.0f * xv[i] - half_to_float(float_to_half(e1 * e1))))) << i;
  }
}

// A cast that changes no value (bool -> fp16, fp16 -> fp32) is its input's buffer too; one
// that rounds (fp32 -> fp16) computes.
TEST(Passes, ACastThatChangesNoValueSharesItsInputsBuffer) {
  Tensor x = input({8}, DType::fp32, "x");
  Tensor hit = call1("cast", {call1("greater", {x, scalar(0.5, DType::fp32)})}, {{"dtype", std::string("fp16")}});
  Tensor r = call1("cast", {call1("mul", {x, scalar(3.0, DType::fp32)})}, {{"dtype", std::string("fp16")}});
  Tensor wide = call1("cast", {call1("add", {r, hit})}, {{"dtype", std::string("fp32")}});
  auto p = compile({wide});
  std::map<std::string, int> shared, computed;
  for (const auto& st : p->steps)
    if (st.node->op->name == "cast") {
      std::string from(dtype_name(p->values[st.in[0]].type.dtype));
      (p->values[st.out[0]].slot == p->values[st.in[0]].slot ? shared : computed)[from]++;
    }
  EXPECT_EQ(shared, (std::map<std::string, int>{{"bool", 1}, {"fp16", 1}}));
  EXPECT_EQ(computed, (std::map<std::string, int>{{"fp32", 1}}));
  std::vector<float> xv = {0.1f, 0.7f, -2.0f, 1.0f / 3.0f, 0.5f, 0.50001f, 100.0f, 0.0f};
  auto out = run_sim(p, {{{8}, xv}})[0].data;
  for (size_t i = 0; i < xv.size(); ++i) {
    float r16 = half_to_float(float_to_half(xv[i] * 3.0f));
    EXPECT_EQ(out[i], half_to_float(float_to_half(r16 + (xv[i] > 0.5f ? 1.0f : 0.0f)))) << i;
  }
}

// A concat that joins whole blocks has its inputs computed where it would copy them (one at
// offset 0, the next after it, a view's source too) and runs nothing; inputs read elsewhere,
// program inputs and concats over a leading dim > 1 copy as before. Results equal the
// arithmetic on the host, and a saved program keeps its offsets (format 5).
TEST(Passes, AConcatsInputsAreComputedInItsOutput) {
  const int64_t n = 4 * 100;
  Tensor x = input({1, 4, 100}, DType::fp32, "x");
  Tensor a = call1("mul", {x, scalar(2.0, DType::fp32)});                                      // in place at 0
  Tensor b = call1("reshape", {call1("add", {x, scalar(1.0, DType::fp32)})}, {{"shape", std::vector<int64_t>{1, 4, 100}}});
  Tensor used_twice = call1("mul", {x, x});                                                    // also read below: copied
  Tensor c = call1("concat", {a, b, used_twice}, {{"axis", int64_t{1}}});
  Tensor t = call1("mul", {x, scalar(3.0, DType::fp32)});
  Tensor d = call1("concat", {x, t}, {{"axis", int64_t{1}}});  // x, a program input, copied; t in place
  Tensor x2 = input({2, 4, 100}, DType::fp32, "x2");
  Tensor e = call1("concat", {call1("exp", {x2}), call1("neg", {x2})}, {{"axis", int64_t{1}}});  // leading dim 2: copied
  auto p = compile({call1("add", {c, call1("concat", {used_twice, used_twice, used_twice}, {{"axis", int64_t{1}}})}), d, e},
                   fp32());
  int placed = 0, in_place_concats = 0;
  for (const auto& st : p->steps) {
    if (st.node->op->name != "concat") continue;
    const Value& out = p->values[st.out[0]];
    bool all = true;
    int64_t at = 0;
    for (int v : st.in) {
      const Value& in = p->values[v];
      bool here = in.slot == out.slot && in.offset == out.offset + at;
      placed += here;
      all = all && here;
      at += numel(in.type.shape);
    }
    in_place_concats += all;
  }
  EXPECT_EQ(placed, 3);  // a and b (through its reshape) in c, t in d
  EXPECT_EQ(in_place_concats, 0);  // c copies used_twice, d copies x
  std::vector<float> xv(static_cast<size_t>(n)), x2v(static_cast<size_t>(2 * n));
  // quarters: every product and sum below is exact, so the host's arithmetic (which clang and
  // aarch64 GCC may contract into fmas) rounds nothing
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = static_cast<float>(i) * 0.25f - 50.0f;
  for (size_t i = 0; i < x2v.size(); ++i) x2v[i] = static_cast<float>(i) * -0.003f + 0.5f;
  auto check = [&](const std::shared_ptr<Program>& prog) {
    auto r = run_sim(prog, {{{1, 4, 100}, xv}, {{2, 4, 100}, x2v}});
    ASSERT_EQ(r[0].data.size(), static_cast<size_t>(3 * n));
    for (int64_t i = 0; i < n; ++i) {
      float sq = xv[i] * xv[i];
      EXPECT_EQ(r[0].data[i], 2.0f * xv[i] + sq);
      EXPECT_EQ(r[0].data[n + i], (xv[i] + 1.0f) + sq);
      EXPECT_EQ(r[0].data[2 * n + i], sq + sq);
      EXPECT_EQ(r[1].data[i], xv[i]);
      EXPECT_EQ(r[1].data[n + i], 3.0f * xv[i]);
    }
    for (int64_t img = 0; img < 2; ++img)
      for (int64_t i = 0; i < n; ++i) {
        float v = x2v[img * n + i];
        EXPECT_EQ(r[2].data[img * 2 * n + i], std::exp(v));
        EXPECT_EQ(r[2].data[img * 2 * n + n + i], -v);
      }
  };
  check(p);
  std::string path = ::testing::TempDir() + "/in_place_concat.afp";
  save_program(*p, path, true);
  auto back = load_program(path);
  for (size_t v = 0; v < p->values.size(); ++v) EXPECT_EQ(back->values[v].offset, p->values[v].offset) << v;
  check(back);
}

// When every input is computed in place the concat itself runs nothing; a file whose offset
// puts a value past its slot's end is refused.
TEST(Passes, AConcatOfValuesComputedInPlaceRunsNothingAndBadOffsetsAreRefused) {
  Tensor x = input({1, 3, 50}, DType::fp32, "x");
  Tensor c = call1("concat", {call1("mul", {x, scalar(3.0, DType::fp32)}), call1("sub", {x, scalar(1.0, DType::fp32)})},
                   {{"axis", int64_t{1}}});
  auto p = compile({call1("sum", {c}, {{"axis", std::vector<int64_t>{1}}})}, fp32());
  const Step* cat = nullptr;
  for (const auto& st : p->steps)
    if (st.node->op->name == "concat") cat = &st;
  ASSERT_NE(cat, nullptr);
  EXPECT_EQ(p->values[cat->in[0]].offset, p->values[cat->out[0]].offset);
  EXPECT_EQ(p->values[cat->in[1]].offset, p->values[cat->out[0]].offset + 150);
  std::vector<float> xv(150);
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = static_cast<float>(i) * 0.25f;  // exact sums (see above)
  auto r = run_sim(p, {{{1, 3, 50}, xv}})[0].data;
  for (size_t i = 0; i < 50; ++i)
    EXPECT_EQ(r[i], ((3.0f * xv[i] + 3.0f * xv[50 + i]) + 3.0f * xv[100 + i] + (xv[i] - 1.0f)) + (xv[50 + i] - 1.0f) +
                        (xv[100 + i] - 1.0f)) << i;
  Program bad = *p;
  bad.values[cat->in[1]].offset = bad.slot_elems[static_cast<size_t>(bad.values[cat->in[1]].slot)] - 10;
  std::string path = ::testing::TempDir() + "/bad_offset.afp";
  save_program(bad, path, true);
  try {
    load_program(path);
    FAIL() << "an offset past the slot's end was accepted";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("too small for its type at its offset"), std::string::npos) << e.what();
  }
}
