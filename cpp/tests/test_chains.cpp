// Elementwise chains (runtime/chains.h): the sim runs runs of elementwise steps block by block
// with the same bits as step by step, at any thread count; the planner finds them, keeps
// values read after the chain in their own buffers, and leaves out a chain that would write
// over a broadcast input's slot.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "aneforge/aneforge.h"
#include "aneforge/parallel.h"
#include "runtime/chains.h"
#include "test_util.h"

using namespace af;

namespace {

Tensor op(const char* name, std::vector<Tensor> in, const Attrs& attrs = {}) { return call1(name, in, attrs); }

std::vector<HostTensor> run_with(const std::shared_ptr<Program>& p, const std::vector<HostTensor>& in, bool chains) {
  set_sim_chains(chains);
  auto out = run_sim(p, in);
  set_sim_chains(true);
  return out;
}

// x (rows, cols) with special values, a per-row r (rows, 1) and a per-column c (cols,).
struct Case {
  int64_t rows, cols;
  std::vector<HostTensor> in;
  Case(int64_t r, int64_t c) : rows(r), cols(c) {
    auto x = randn(static_cast<size_t>(r * c), 1, 3.0f), y = randn(static_cast<size_t>(r * c), 2);
    const float special[] = {std::numeric_limits<float>::quiet_NaN(), INFINITY, -INFINITY, -0.0f, 0.0f, 65504.0f, 1e-6f, -7e4f};
    for (size_t i = 0; i < 8; ++i) x[i * 97] = special[i];
    in = {{{r, c}, x}, {{r, c}, y}, {{r, 1}, randn(static_cast<size_t>(r), 3)}, {{c}, randn(static_cast<size_t>(c), 4)}};
  }
};

// GELU's backward as autodiff writes it, then a mixed chain: broadcasts per row and per
// column, a value read again after the chain, where, comparisons, an int32 round trip, costly
// functions (their fp16 tables), a reduction between two chains.
std::shared_ptr<Program> mixed_program(const Case& c, Precision precision) {
  Tensor x = input({c.rows, c.cols}, DType::fp16, "x"), y = input({c.rows, c.cols}, DType::fp16, "y");
  Tensor r = input({c.rows, 1}, DType::fp16, "r"), col = input({c.cols}, DType::fp16, "c");
  auto s = [](double v) { return scalar(v); };
  Tensor cdf = op("mul", {op("add", {s(1.0), op("erf", {op("mul", {x, s(0.7071067811865476)})})}), s(0.5)});
  Tensor pdf = op("mul", {op("exp", {op("mul", {op("mul", {x, x}), s(-0.5)})}), s(0.3989422804014327)});
  Tensor g1 = op("mul", {op("add", {cdf, op("mul", {x, pdf})}), y});
  Tensor a = op("add", {op("tanh", {op("mul", {x, r})}), op("div", {y, op("add", {col, s(3.0)})})});
  Tensor b = op("where", {op("greater", {a, r}), op("mul", {a, s(2.0)}), op("sub", {op("sigmoid", {a}), col})});
  Tensor e = op("sub", {op("mul", {op("relu", {b}), x}), op("maximum", {b, y})});
  Tensor f = op("mul", {op("cast", {op("cast", {op("mul", {e, s(100.0)})}, {{"dtype", std::string("int32")}})},
                           {{"dtype", std::string("fp16")}}), s(0.01)});
  Tensor lt = op("cast", {op("less", {g1, y})}, {{"dtype", std::string("fp16")}});  // a view, and an output
  Tensor h = op("add", {op("sub", {op("add", {op("abs", {f}), op("square", {g1})}), op("silu", {e})}), lt});
  Tensor q = op("sum", {h}, {{"axis", std::vector<int64_t>{1}}, {"keepdims", true}});
  Tensor z = op("add", {op("mul", {op("sub", {h, q}), op("gelu", {a})}), op("cast", {op("greater", {b, s(0.0)})}, {{"dtype", std::string("fp16")}})});
  Tensor q_flat = op("reshape", {q}, {{"shape", std::vector<int64_t>{c.rows}}});  // views of q inside the chain
  z = op("mul", {z, op("reshape", {q_flat}, {{"shape", std::vector<int64_t>{c.rows, 1}}})});
  CompileOptions o;
  o.numerics.precision = precision;
  return compile({g1, a, z, q, lt}, o);
}

}  // namespace

TEST(Chains, SameBitsAsStepByStepAtAnyThreadCount) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1024, 512}, {77, 1999}, {3, 40000}}) {
    Case c(rows, cols);
    for (Precision prec : {Precision::fp16, Precision::fp32}) {
      auto p = mixed_program(c, prec);
      auto chains = plan_elementwise_chains(*p);
      ASSERT_GE(chains.size(), 2u) << rows << "x" << cols;  // before and after the reduction
      set_num_threads(2);
      auto want = run_with(p, c.in, false);
      for (int threads : {1, 2, 3}) {
        set_num_threads(threads);
        expect_same_bits(want, run_with(p, c.in, true), std::to_string(rows) + "x" + std::to_string(cols) + ", " +
                                                            std::to_string(threads) + " threads");
      }
      set_num_threads(2);
    }
  }
}

TEST(Chains, ValuesReadAfterTheChainKeepTheirBuffers) {
  Case c(1024, 512);
  auto p = mixed_program(c, Precision::fp16);
  auto chains = plan_elementwise_chains(*p);
  ASSERT_FALSE(chains.empty());
  std::vector<bool> is_output(p->values.size(), false);
  for (int v : p->outputs) is_output[v] = true;
  int internal = 0, views = 0;
  for (const auto& ch : chains) {
    EXPECT_GT(ch.last, ch.first);
    for (size_t s = ch.first; s <= ch.last; ++s) {
      int v = p->steps[s].out[0];
      views += ch.out_internal[s - ch.first] == kChainView;
      if (is_output[v]) {  // in its own buffer: written, or a view of a value written
        int written = ch.out_internal[s - ch.first];
        if (written == kChainView) {
          int producer = p->values[p->steps[s].in[0]].producer;
          written = producer >= static_cast<int>(ch.first) ? ch.out_internal[static_cast<size_t>(producer) - ch.first] : -1;
        }
        EXPECT_EQ(written, -1) << "output " << p->values[v].name;
      }
      internal += ch.out_internal[s - ch.first] >= 0;
    }
  }
  EXPECT_GT(internal, 5);  // most of GELU's backward never reaches memory
  EXPECT_EQ(views, 4);  // casts of comparisons to fp16 (their inputs' buffers), two reshapes of q
  CompileOptions checked;
  checked.check_finite = true;  // every layer's output checked: no chains
  Tensor x = input({1024, 512}, DType::fp16, "x");
  EXPECT_TRUE(plan_elementwise_chains(*compile({op("exp", {op("mul", {x, x})})}, checked)).empty());
}

// u (one value per row) is read whole by every block of mul(x, u); the memory plan gives the
// chain's output the slot u leaves, grown to size. Block by block, the first block's output
// would overwrite u before the others read it: the planner must leave this chain out.
TEST(Chains, NoChainWritesOverABroadcastInputsSlot) {
  const int64_t R = 256, C = 1024;
  Tensor x = input({R, C}, DType::fp16, "x");
  Tensor u = op("sum", {x}, {{"axis", std::vector<int64_t>{1}}, {"keepdims", true}});
  Tensor b = op("add", {op("mul", {x, u}), scalar(1.0)});
  Tensor m = op("max", {x}, {{"axis", std::vector<int64_t>{1}}, {"keepdims", true}});  // keeps x's slot taken
  auto p = compile({b, m});
  int ub = -1, bb = -1;
  for (const auto& st : p->steps) {
    if (st.node->op->name == "sum") ub = p->values[st.out[0]].slot;
    if (st.node->op->name == "add") bb = p->values[st.out[0]].slot;
  }
  ASSERT_EQ(ub, bb) << "the memory plan no longer reuses u's slot for the output; rebuild this case";
  EXPECT_TRUE(plan_elementwise_chains(*p).empty());
  std::vector<HostTensor> in{{{R, C}, randn(static_cast<size_t>(R * C), 5)}};
  expect_same_bits(run_with(p, in, false), run_with(p, in, true), "broadcast input's slot");
}
