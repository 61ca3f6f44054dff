// Elementwise ops: binary arithmetic with broadcasting, and unary activations.
#include "ops/kernel_util.h"
#include "ops/register.h"

namespace af {

namespace {

void infer_binary(InferContext& c) {
  c.expect_same_dtype(0, 1);
  Shape out;
  if (!broadcast_shapes(c.in(0).shape(), c.in(1).shape(), out))
    c.fail("shapes " + shape_str(c.in(0).shape()) + " and " + shape_str(c.in(1).shape()) +
           " do not broadcast (each dimension must match or be 1, aligned from the right)");
  c.outputs = {{out, c.in(0).dtype()}};
}

void infer_float_binary(InferContext& c) {
  c.expect_float(0, "x");
  infer_binary(c);
}

template <class F>
void binary_kernel(const KernelArgs& k) {
  broadcast_binary(k.in[0], k.in_type(0).shape, k.in[1], k.in_type(1).shape, k.out[0],
                   k.out_type(0).shape, F{});
}

struct Add { float operator()(float a, float b) const { return a + b; } };
struct Sub { float operator()(float a, float b) const { return a - b; } };
struct Mul { float operator()(float a, float b) const { return a * b; } };
struct Div { float operator()(float a, float b) const { return a / b; } };

void def_binary(const char* name, const char* mil, const char* doc, SimKernel k,
                void (*infer)(InferContext&) = infer_binary) {
  OpDef d;
  d.name = name;
  d.category = "binary";
  d.doc = doc;
  d.params = {P("x", ParamKind::tensor), P("y", ParamKind::tensor)};
  d.infer = infer;
  d.kernel = k;
  d.mil_op = mil;
  register_op(std::move(d));
}

void infer_same(InferContext& c) { c.outputs = {c.in(0).type()}; }

template <class F>
void unary_kernel(const KernelArgs& k) {
  map_unary(k.in[0], k.out[0], numel(k.in_type(0).shape), F{});
}

struct Relu {
  // NaN passes through; the engine's LUT behaviour is modelled per target later.
  float operator()(float x) const { return x > 0.0f ? x : (x == x ? 0.0f : x); }
};

void def_unary(const char* name, const char* category, const char* mil, const char* doc, SimKernel k) {
  OpDef d;
  d.name = name;
  d.category = category;
  d.doc = doc;
  d.params = {P("x", ParamKind::tensor)};
  d.method = true;
  d.infer = infer_same;
  d.kernel = k;
  d.mil_op = mil;
  register_op(std::move(d));
}

}  // namespace

void register_elementwise_ops() {
  def_binary("add", "add", "x + y with broadcasting.", binary_kernel<Add>);
  def_binary("sub", "sub", "x - y with broadcasting.", binary_kernel<Sub>);
  def_binary("mul", "mul", "x * y with broadcasting.", binary_kernel<Mul>);
  def_binary("div", "real_div", "x / y with broadcasting (true division).", binary_kernel<Div>,
             infer_float_binary);
  def_unary("relu", "activation", "relu", "max(x, 0).", unary_kernel<Relu>);
}

}  // namespace af
