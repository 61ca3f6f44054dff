#include <gtest/gtest.h>

#include "aneforge/aneforge.h"

using namespace af;

static std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ValueError& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(Graph, InputAndShapes) {
  Tensor x = input({1, 3, 32, 32}, DType::fp16, "image");
  EXPECT_EQ(x.shape(), (Shape{1, 3, 32, 32}));
  EXPECT_EQ(x.name(), "image");
  EXPECT_EQ(x.str(), "Tensor('image', (1, 3, 32, 32), fp16, op=input)");
}

TEST(Graph, ConvShapeRule) {
  Tensor x = input({2, 4, 17, 9});
  Tensor w = constant(std::vector<float>(8 * 2 * 3 * 3, 0.1f), {8, 2, 3, 3});
  Tensor y = call1("conv", {x, w}, {{"stride", int64_t{2}}, {"pad", int64_t{1}}, {"groups", int64_t{2}}});
  EXPECT_EQ(y.shape(), (Shape{2, 8, 9, 5}));
  EXPECT_EQ(y.node()->attrs.ints("pad"), (std::vector<int64_t>{1, 1, 1, 1}));
  Tensor s = call1("conv", {x, constant(std::vector<float>(8 * 4 * 4 * 4, 0.f), {8, 4, 4, 4})},
                   {{"pad", std::string("same")}});
  EXPECT_EQ(s.shape(), (Shape{2, 8, 17, 9}));
  EXPECT_EQ(s.node()->attrs.ints("pad"), (std::vector<int64_t>{1, 2, 1, 2}));
}

TEST(Graph, ConvErrorsNameOpAndShapes) {
  Tensor x = input({1, 3, 32, 32});
  Tensor w = constant(std::vector<float>(16 * 4 * 9, 0.f), {16, 4, 3, 3});
  EXPECT_EQ(error_of([&] { call1("conv", {x, w}); }),
            "conv: weight (16, 4, 3, 3) expects 4 input channels, got x (1, 3, 32, 32)");
  Tensor w3 = constant(std::vector<float>(16 * 3 * 9, 0.f), {16, 3, 3, 3});
  EXPECT_NE(error_of([&] { call1("conv", {x, w3}, {{"pad", std::string("full")}}); }).find("pad must be"),
            std::string::npos);
  EXPECT_NE(error_of([&] { call1("conv", {input({1, 3, 2, 2}), w3}); }).find("does not fit"), std::string::npos);
  EXPECT_NE(error_of([&] { call1("conv", {input({3, 32, 32}), w3}); }).find("weight must be (O, C/groups, k)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { call1("conv", {input({32, 32}), w3}); }).find("x must have rank 3 to 4"),
            std::string::npos);
}

TEST(Graph, BinaryBroadcastAndErrors) {
  Tensor a = input({4, 1, 5}), b = input({3, 1});
  EXPECT_EQ(call1("add", {a, b}).shape(), (Shape{4, 3, 5}));
  EXPECT_EQ(error_of([&] { call1("mul", {input({2, 3}), input({4, 3})}); }),
            "mul: shapes (2, 3) and (4, 3) do not broadcast (each dimension must match or be 1, "
            "aligned from the right)");
  EXPECT_NE(error_of([&] { call1("add", {input({2}, DType::fp16), input({2}, DType::int32)}); })
                .find("dtypes differ"),
            std::string::npos);
}

TEST(Graph, MatmulLinearReduceReshape) {
  EXPECT_EQ(call1("matmul", {input({2, 1, 3, 4}), input({5, 4, 6})}).shape(), (Shape{2, 5, 3, 6}));
  EXPECT_EQ(call1("matmul", {input({4}), input({4, 6})}).shape(), (Shape{6}));
  EXPECT_NE(error_of([&] { call1("matmul", {input({3, 4}), input({5, 6})}); }).find("inner dimensions differ"),
            std::string::npos);
  EXPECT_EQ(call1("linear", {input({7, 10}), input({3, 10})}).shape(), (Shape{7, 3}));
  Tensor x = input({2, 3, 4, 5});
  EXPECT_EQ(call1("mean", {x}, {{"axis", std::vector<int64_t>{2, 3}}}).shape(), (Shape{2, 3}));
  EXPECT_EQ(call1("sum", {x}, {{"axis", int64_t{-1}}, {"keepdims", true}}).shape(), (Shape{2, 3, 4, 1}));
  EXPECT_EQ(call1("sum", {x}).shape(), Shape{});
  EXPECT_EQ(call1("reshape", {x}, {{"shape", std::vector<int64_t>{6, -1}}}).shape(), (Shape{6, 20}));
  EXPECT_EQ(call1("transpose", {x}, {{"dim0", int64_t{1}}, {"dim1", int64_t{3}}}).shape(), (Shape{2, 5, 4, 3}));
  EXPECT_NE(error_of([&] { call1("mean", {x}, {{"axis", std::vector<int64_t>{1, 1}}}); }).find("repeats"),
            std::string::npos);
}

TEST(Graph, RankAndUnknownOp) {
  EXPECT_NE(error_of([] { input({1, 2, 3, 4, 5, 6}); }).find("maximum rank 5"), std::string::npos);
  EXPECT_NE(error_of([] { input({1, 0}); }).find("non-positive"), std::string::npos);
  EXPECT_EQ(error_of([] { call("conb", {input({1})}); }).rfind("unknown op 'conb'; did you mean: conv", 0), 0u);
}

TEST(Graph, TopoSortIsInputsFirst) {
  Tensor x = input({4});
  Tensor y = call1("relu", {call1("add", {x, x})});
  auto order = topo_sort({y});
  ASSERT_EQ(order.size(), 3u);
  EXPECT_TRUE(order[0]->is_input());
  EXPECT_EQ(order[2]->op->name, "relu");
}

TEST(OpTable, EveryOpCanRun) {
  for (const OpDef* d : all_ops()) {
    if (d->category == "graph" || d->is_composite()) continue;
    if (d->bridge) EXPECT_TRUE(static_cast<bool>(d->lower)) << d->name;  // lowered into native ops
    else EXPECT_TRUE(static_cast<bool>(d->kernel)) << d->name;
    EXPECT_FALSE(d->mil_op.empty()) << d->name;
    EXPECT_TRUE(static_cast<bool>(d->infer)) << d->name;
  }
}

TEST(Autodiff, EveryOpHasAGradientOrIsMarkedWithout) {
  for (const OpDef* d : all_ops()) {
    if (d->category == "graph" || d->is_composite()) continue;
    EXPECT_TRUE(static_cast<bool>(d->grad) || d->no_grad) << d->name;
  }
}

TEST(Autodiff, AnOpWithoutAGradientIsAValueErrorNamingIt) {
  OpDef d;
  d.name = "test_opaque";
  d.category = "test";
  d.params = {Param{"x", ParamKind::tensor, ""}};
  d.infer = [](InferContext& c) { c.outputs = {c.in(0).type()}; };
  d.mil_op = "identity";
  register_op(std::move(d));
  Tensor x = input({3});
  Tensor loss = call1("sum", {call1("test_opaque", {call1("square", {x})})});
  EXPECT_NE(error_of([&] { grad(loss, {x}); }).find("op 'test_opaque'"), std::string::npos);
  // comparisons pass nothing back: zeros, not an error
  Tensor cmp = call1("sum", {call1("cast", {call1("greater", {x, x})}, {{"dtype", std::string("fp16")}})});
  EXPECT_EQ(grad(cmp, {x})[0].shape(), (Shape{3}));
}
