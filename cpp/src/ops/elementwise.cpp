// Elementwise ops: activations, unary math, binary arithmetic and comparisons (broadcast),
// where, logical_not, cast.
#include <algorithm>
#include <array>
#include <functional>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "ops/kernel_util.h"
#include "ops/mil_util.h"
#include "ops/register.h"

namespace af {

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

void infer_same(InferContext& c) { c.outputs = {c.in(0).type()}; }
void infer_same_float(InferContext& c) {
  c.expect_float(0, "x");
  c.outputs = {c.in(0).type()};
}

// Rounds a finished piece of an elementwise op's output to the output's dtype, as the sim
// would round the whole output afterwards (the same function on the same values).
struct StoreChunk {
  const KernelArgs& k;
  void operator()(float* p, size_t n) const { k.ctx.store(p, n, k.out_type(0).dtype); }
};

template <class F>
void map(const KernelArgs& k, F f) {
  map_unary(k.in[0], k.out[0], numel(k.in_type(0).shape), f, StoreChunk{k});
  k.outputs_stored = true;
}

// Functions that cost far more than a lookup (erf, exp, tanh, ...) on fp16 data of at least
// kTableMin elements: f runs once on each of the 65,536 fp16 values, through map() itself (the
// same loop, the same rounding), and each element then looks its result up. Same function,
// same input value: same bits. `key` names f with its attributes; tables are kept per key and
// rounding mode, at most kTablesKept per kernel (256 KiB each).
constexpr int64_t kTableMin = 1 << 15;
constexpr size_t kTablesKept = 64;

template <class F>
std::shared_ptr<const std::vector<float>> fp16_table(const KernelArgs& k, F f, const std::string& key) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const std::vector<float>>> tables;
  const Fp16Mode m = k.ctx.numerics.fp16;
  std::string full = key + (m.round == RoundMode::nearest_even ? "/even" : "/away") + (m.flush_subnormals ? "/ftz" : "");
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = tables.find(full);
    if (it != tables.end()) return it->second;
  }
  std::vector<float> in(65536);
  for (uint32_t h = 0; h < 65536; ++h) in[h] = half_to_float(static_cast<uint16_t>(h));
  auto table = std::make_shared<std::vector<float>>(65536);
  map_unary(in.data(), table->data(), 65536, f, StoreChunk{k});
  std::lock_guard<std::mutex> lock(mu);
  if (tables.size() >= kTablesKept) tables.clear();  // runs holding a table keep it alive
  tables.emplace(full, table);
  return table;
}

template <class F>
void map_costly(const KernelArgs& k, F f, const std::string& key) {
  const int64_t n = numel(k.in_type(0).shape);
  if (n < kTableMin || k.in_type(0).dtype != DType::fp16 || k.out_type(0).dtype != DType::fp16 ||
      k.ctx.numerics.precision != Precision::fp16)
    return map(k, f);
  auto table = fp16_table(k, f, key);
  const float* x = k.in[0];
  float* y = k.out[0];
  parallel_for(n, 1 << 15, [&](size_t s, size_t e) {
    size_t i = s + lookup_halves(x + s, y + s, e - s, table->data());
    if (i == e) return;
    for (size_t j = i; j < e; ++j) y[j] = f(x[j]);  // a value that is not fp16 (not met in a run)
    StoreChunk{k}(y + i, e - i);
  });
  k.outputs_stored = true;
}

// A table key: the op's name and its float attributes' values.
std::string table_key(const KernelArgs& k, std::initializer_list<const char*> attrs) {
  std::string key = k.node.op->name;
  for (const char* a : attrs) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "/%a", k.node.attrs.f(a));
    key += buf;
  }
  return key;
}

OpDef unary(const char* name, const char* cat, const char* mil, const char* doc, std::vector<Param> extra,
            SimKernel kernel, bool float_only = true) {
  OpDef d;
  d.name = name;
  d.category = cat;
  d.doc = doc;
  d.params = {P("x", ParamKind::tensor)};
  for (auto& p : extra) d.params.push_back(p);
  d.method = true;
  d.infer = float_only ? infer_same_float : infer_same;
  d.kernel = std::move(kernel);
  d.mil_op = mil;
  d.elementwise = true;
  return d;
}

// GELU's limits: gelu(+inf) = +inf, gelu(-inf) = 0 (torch gives NaN at both).
float gelu_exact(float x) {
  if (std::isinf(x)) return x > 0 ? x : -0.0f;
  return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
}
float gelu_tanh(float x) {
  if (std::isinf(x)) return x > 0 ? x : -0.0f;
  if (std::fabs(x) > 20.0f) return x > 0 ? x : -0.0f;  // x^3 would overflow the tanh argument's precision
  return 0.5f * x * (1.0f + std::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}
// sin/cos from native ops for families without them: u = 2 (x / 2pi - round(x / 2pi)) in
// [-1, 1], then sin(pi u) (odd) or cos(pi u) (even) as a Taylor polynomial in u, in Horner
// form. Coefficients pi^k / k! stay in fp16's normal range (no flushed subnormals).
Tensor sincos_decomposition(const Tensor& x, bool is_sin) {
  DType dt = x.dtype();
  auto c = [&](double v) { return scalar(v, dt); };
  auto mul = [](const Tensor& a, const Tensor& b) { return call1("mul", {a, b}); };
  auto add = [](const Tensor& a, const Tensor& b) { return call1("add", {a, b}); };
  Tensor t = mul(x, c(0.15915494309189535));
  Tensor u = mul(call1("sub", {t, call1("round", {t})}), c(2.0));
  Tensor u2 = mul(u, u);
  std::vector<double> co;
  double pk = is_sin ? M_PI : 1.0, fact = 1.0;
  for (int k = is_sin ? 1 : 0, sign = 1; k <= (is_sin ? 15 : 14); k += 2, sign = -sign) {
    if (k > 1) {
      pk *= M_PI * M_PI;
      fact *= (k - 1) * k;
    }
    co.push_back(sign * pk / fact);
  }
  Tensor acc = c(co.back());
  for (int i = static_cast<int>(co.size()) - 2; i >= 0; --i) acc = add(mul(acc, u2), c(co[i]));
  return is_sin ? mul(acc, u) : acc;
}

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
// std::max(x, lo) is (x < lo ? lo : x) and std::min(m, hi) is (hi < m ? hi : m): a NaN x
// comes through both as it is, with no branch (so the loops vectorise).
float relu6(float x) { return std::min(std::max(x, 0.0f), 6.0f); }

void register_unary() {
  const auto A = ParamKind::float_;
  register_op(exact(unary("relu", "activation", "relu", "max(x, 0).", {}, [](const KernelArgs& k) {
    map(k, [](float x) { return x > 0.0f ? x : (x == x ? 0.0f : x); });
  }, false)));
  register_op(unary("relu6", "activation", "relu6", "min(max(x, 0), 6).", {},
                    // a lambda, not the function pointer: the call inlines and the loop vectorises
                    // (the pointer made conv+relu6 35% slower than conv+clip)
                    [](const KernelArgs& k) { map(k, [](float x) { return relu6(x); }); }));
  register_op(unary("leaky_relu", "activation", "leaky_relu", "x if x >= 0 else negative_slope * x.",
                    {P("negative_slope", A, "0.01")}, [](const KernelArgs& k) {
    float a = static_cast<float>(k.node.attrs.f("negative_slope"));
    map(k, [a](float x) { return x >= 0.0f ? x : a * x; });
  }));
  register_op(unary("elu", "activation", "elu", "x if x > 0 else alpha * (exp(x) - 1).", {P("alpha", A, "1.0")},
                    [](const KernelArgs& k) {
    float a = static_cast<float>(k.node.attrs.f("alpha"));
    map_costly(k, [a](float x) { return x > 0.0f ? x : a * std::expm1(x); }, table_key(k, {"alpha"}));
  }));
  {
    OpDef d = unary("gelu", "activation", "gelu", "GELU; approximate='none' (erf) or 'tanh'.",
                    {P("approximate", ParamKind::str, "'none'")}, [](const KernelArgs& k) {
      if (k.node.attrs.s("approximate") == "tanh") map_costly(k, gelu_tanh, "gelu/tanh");
      else map_costly(k, gelu_exact, "gelu/none");
    });
    d.infer = [](InferContext& c) {
      c.expect_float(0);
      std::string m = c.attrs.s("approximate", "none");
      if (m != "none" && m != "tanh") c.fail("approximate must be 'none' or 'tanh', got '" + m + "'");
      c.attrs.set("approximate", m);
      c.outputs = {c.in(0).type()};
    };
    register_op(std::move(d));
  }
  register_op(unary("silu", "activation", "silu", "x * sigmoid(x).", {},
                    [](const KernelArgs& k) { map_costly(k, [](float x) { return x * sigmoid(x); }, "silu"); }));
  register_op(unary("sigmoid", "activation", "sigmoid", "1 / (1 + exp(-x)).", {},
                    [](const KernelArgs& k) { map_costly(k, [](float x) { return sigmoid(x); }, "sigmoid"); }));
  register_op(aliased(unary("hard_sigmoid", "activation", "sigmoid_hard", "relu6(x + 3) / 6 (torch hardsigmoid).", {},
                    [](const KernelArgs& k) { map(k, [](float x) { return relu6(x + 3.0f) / 6.0f; }); }), {"hardsigmoid"}));
  register_op(aliased(unary("hard_swish", "activation", "mul(x, sigmoid_hard(x))", "x * relu6(x + 3) / 6 (torch hardswish).",
                    {}, [](const KernelArgs& k) { map(k, [](float x) { return x * relu6(x + 3.0f) / 6.0f; }); }), {"hardswish"}));
  register_op(unary("tanh", "activation", "tanh", "Hyperbolic tangent.", {},
                    [](const KernelArgs& k) { map_costly(k, [](float x) { return std::tanh(x); }, "tanh"); }));
  register_op(unary("scaled_tanh", "activation", "scaled_tanh", "alpha * tanh(beta * x).",
                    {P("alpha", A, "1.0"), P("beta", A, "1.0")}, [](const KernelArgs& k) {
    float a = static_cast<float>(k.node.attrs.f("alpha")), b = static_cast<float>(k.node.attrs.f("beta"));
    map_costly(k, [a, b](float x) { return a * std::tanh(b * x); }, table_key(k, {"alpha", "beta"}));
  }));
  register_op(unary("softplus", "activation", "softplus", "log(1 + exp(beta * x)) / beta; x where beta * x > threshold.",
                    {P("beta", A, "1.0"), P("threshold", A, "20.0")}, [](const KernelArgs& k) {
    float b = static_cast<float>(k.node.attrs.f("beta")), t = static_cast<float>(k.node.attrs.f("threshold"));
    map_costly(k, [b, t](float x) { return b * x > t ? x : std::log1p(std::exp(b * x)) / b; }, table_key(k, {"beta", "threshold"}));
  }));
  register_op(unary("softsign", "activation", "softsign", "x / (1 + |x|).", {},
                    [](const KernelArgs& k) { map(k, [](float x) { return x / (1.0f + std::fabs(x)); }); }));
  register_op(unary("clamped_relu", "activation", "clamped_relu", "min(beta, x if x >= 0 else alpha * x).",
                    {P("alpha", A, "0.0"), P("beta", A, "6.0")}, [](const KernelArgs& k) {
    float a = static_cast<float>(k.node.attrs.f("alpha")), b = static_cast<float>(k.node.attrs.f("beta"));
    map(k, [a, b](float x) { return x != x ? x : std::min(b, x >= 0.0f ? x : a * x); });
  }));
  register_op(unary("threshold", "activation", "select(greater(x, threshold), x, value)",
                    "x if x > threshold else value (torch threshold).",
                    {P("threshold", A), P("value", A)}, [](const KernelArgs& k) {
    float t = static_cast<float>(k.node.attrs.f("threshold")), v = static_cast<float>(k.node.attrs.f("value"));
    map(k, [t, v](float x) { return x > t ? x : (x != x ? x : v); });
  }));
  register_op(unary("thresholded_relu", "activation", "thresholded_relu", "x if x > alpha else 0.",
                    {P("alpha", A, "1.0")}, [](const KernelArgs& k) {
    float a = static_cast<float>(k.node.attrs.f("alpha"));
    map(k, [a](float x) { return x > a ? x : 0.0f; });
  }));
  register_op(unary("linear_activation", "activation", "linear_activation", "alpha * x + beta.",
                    {P("alpha", A, "1.0"), P("beta", A, "0.0")}, [](const KernelArgs& k) {
    float a = static_cast<float>(k.node.attrs.f("alpha")), b = static_cast<float>(k.node.attrs.f("beta"));
    map(k, [a, b](float x) { return a * x + b; });
  }));
  {
    OpDef d = unary("clip", "activation", "clip", "min(max(x, min), max); None leaves a side open (torch clamp).",
                    {P("min", ParamKind::any, "None"), P("max", ParamKind::any, "None")}, [](const KernelArgs& k) {
      float lo = static_cast<float>(k.node.attrs.f("min")), hi = static_cast<float>(k.node.attrs.f("max"));
      map(k, [lo, hi](float x) { return std::min(std::max(x, lo), hi); });  // NaN kept, as relu6
    }, false);
    d.infer = [](InferContext& c) {
      double lo = c.attrs.has("min") ? c.attrs.f("min") : -INFINITY;
      double hi = c.attrs.has("max") ? c.attrs.f("max") : INFINITY;
      if (lo > hi) c.fail("min " + std::to_string(lo) + " is greater than max " + std::to_string(hi));
      c.attrs.set("min", lo);
      c.attrs.set("max", hi);
      c.outputs = {c.in(0).type()};
    };
    d.aliases = {"clamp"};
    register_op(std::move(d));
  }
  struct M { const char* name; const char* mil; const char* doc; float (*f)(float); bool costly = false; };
  static const M math[] = {
      {"exp", "exp", "e^x.", [](float x) { return std::exp(x); }, true},
      {"exp2", "exp2", "2^x.", [](float x) { return std::exp2(x); }, true},
      {"log", "log", "Natural logarithm.", [](float x) { return std::log(x); }, true},
      {"sqrt", "sqrt", "Square root.", [](float x) { return std::sqrt(x); }},
      {"rsqrt", "rsqrt", "1 / sqrt(x).", [](float x) { return 1.0f / std::sqrt(x); }},
      {"reciprocal", "inverse", "1 / x.", [](float x) { return 1.0f / x; }},
      {"square", "square", "x * x.", [](float x) { return x * x; }},
      {"sin", "sin", "Sine.", [](float x) { return std::sin(x); }, true},
      {"cos", "cos", "Cosine.", [](float x) { return std::cos(x); }, true},
      {"atan", "atan", "Arc tangent.", [](float x) { return std::atan(x); }, true},
      {"erf", "erf", "Error function.", [](float x) { return std::erf(x); }, true},
  };
  for (const M& m : math) {
    auto f = m.f;
    std::string key = m.name;
    OpDef d = m.costly ? unary(m.name, "math", m.mil, m.doc, {}, [f, key](const KernelArgs& k) { map_costly(k, f, key); })
                       : unary(m.name, "math", m.mil, m.doc, {}, [f](const KernelArgs& k) { map(k, f); });
    if (std::string(m.name) == "sin" || std::string(m.name) == "cos") {
      d.min_family = "h15";  // native sin/cos from H15 (ane-guide s17; eiln/ane docs) [R]
      bool is_sin = std::string(m.name) == "sin";
      d.decompose = [is_sin](const std::vector<Tensor>& in, const Attrs&) {
        return std::vector<Tensor>{sincos_decomposition(in[0], is_sin)};
      };
    }
    register_op(std::move(d));
  }
  static const M any_dtype[] = {
      {"abs", "abs", "|x|.", [](float x) { return std::fabs(x); }},
      {"neg", "mul(x, -1)", "-x.", [](float x) { return -x; }},
      {"sign", "sign", "-1, 0 or 1 (NaN gives 0, as torch.sign).", [](float x) { return x > 0 ? 1.0f : x < 0 ? -1.0f : 0.0f; }},
      {"floor", "floor", "Round down.", [](float x) { return std::floor(x); }},
      {"ceil", "ceil", "Round up.", [](float x) { return std::ceil(x); }},
      {"round", "round", "Round half to even (torch.round).", [](float x) { return std::nearbyint(x); }},
  };
  for (const M& m : any_dtype) {
    auto f = m.f;
    OpDef d = unary(m.name, "math", m.mil, m.doc, {}, [f](const KernelArgs& k) { map(k, f); }, false);
    d.exact_output = d.name == "abs" || d.name == "neg";  // the input's values, signs changed
    register_op(std::move(d));
  }
  OpDef ln = unary("logical_not", "logic", "logical_not", "True where x is zero/False.", {}, [](const KernelArgs& k) {
    map(k, [](float x) { return x == 0.0f ? 1.0f : 0.0f; });
  }, false);
  ln.infer = [](InferContext& c) { c.outputs = {{c.in(0).shape(), DType::boolean}}; };
  register_op(exact(std::move(ln)));

  OpDef cast = unary("cast", "shape", "cast", "Convert to dtype (fp16, fp32, int8, uint8, int32, bool).",
                     {P("dtype", ParamKind::str)}, [](const KernelArgs& k) {
    if (is_integer(k.out_type(0).dtype)) map(k, [](float x) { return x != x ? 0.0f : std::trunc(x); });  // toward zero, as torch
    else map(k, [](float x) { return x; });
  }, false);
  cast.infer = [](InferContext& c) {
    DType t = dtype_from_name(c.attrs.s("dtype"));
    if (t == DType::int4 || t == DType::uint4 || t == DType::uint1) c.fail("int4/uint4/uint1 are weight storage formats, not tensor dtypes");
    c.attrs.set("dtype", std::string(dtype_name(t)));
    c.outputs = {{c.in(0).shape(), t}};
  };
  cast.view = [](DType in, DType out) {  // the sim's float buffers hold the same numbers
    return in == out || (in == DType::boolean && is_float(out)) || (in == DType::fp16 && out == DType::fp32);
  };
  register_op(std::move(cast));

  OpDef pr;
  pr.name = "prelu";
  pr.category = "activation";
  pr.doc = "x if x >= 0 else weight[c] * x, weight per channel (axis 1) or one value (torch prelu).";
  pr.params = {P("x", ParamKind::tensor), P("weight", ParamKind::tensor)};
  pr.mil_op = "prelu";
  pr.infer = [](InferContext& c) {
    c.expect_float(0);
    c.expect_same_dtype(0, 1);
    int64_t n = numel(c.in(1).shape()), C = c.in(0).rank() >= 2 ? c.in(0).shape()[1] : 1;
    if (c.in(1).rank() > 1 || (n != 1 && n != C))
      c.fail("weight must have 1 or " + std::to_string(C) + " (channels) elements, got weight " +
             shape_str(c.in(1).shape()) + " for x " + shape_str(c.in(0).shape()));
    c.outputs = {c.in(0).type()};
  };
  pr.kernel = [](const KernelArgs& k) {
    const Shape& s = k.in_type(0).shape;
    int64_t n = numel(s), C = s.size() >= 2 ? s[1] : 1, inner = 1;
    for (size_t i = 2; i < s.size(); ++i) inner *= s[i];
    bool per_channel = numel(k.in_type(1).shape) > 1;
    const float *x = k.in[0], *w = k.in[1];
    float* y = k.out[0];
    parallel_for(n, 1 << 15, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) {
        float a = per_channel ? w[(static_cast<int64_t>(i) / inner) % C] : w[0];
        y[i] = x[i] >= 0.0f ? x[i] : a * x[i];
      }
    });
  };
  register_op(std::move(pr));
}

// ---- binary ------------------------------------------------------------------------

void infer_binary(InferContext& c) {
  c.expect_same_dtype(0, 1);
  Shape out;
  if (!broadcast_shapes(c.in(0).shape(), c.in(1).shape(), out))
    c.fail("shapes " + shape_str(c.in(0).shape()) + " and " + shape_str(c.in(1).shape()) +
           " do not broadcast (each dimension must match or be 1, aligned from the right)");
  c.outputs = {{out, c.in(0).dtype()}};
}

template <class F>
SimKernel binary_kernel(F f) {
  return [f](const KernelArgs& k) {
    broadcast_binary(k.in[0], k.in_type(0).shape, k.in[1], k.in_type(1).shape, k.out[0], k.out_type(0).shape, f,
                     StoreChunk{k});
    k.outputs_stored = true;
  };
}

OpDef binary(const char* name, const char* cat, const char* mil, const char* doc, SimKernel k,
             std::function<void(InferContext&)> infer = infer_binary) {
  OpDef d;
  d.name = name;
  d.category = cat;
  d.doc = doc;
  d.params = {P("x", ParamKind::tensor), P("y", ParamKind::tensor)};
  d.infer = std::move(infer);
  d.kernel = std::move(k);
  d.mil_op = mil;
  d.exact_output = std::string(cat) == "comparison";  // 0 or 1
  d.elementwise = true;
  return d;
}

void register_binary() {
  register_op(binary("add", "binary", "add", "x + y with broadcasting.", binary_kernel([](float a, float b) { return a + b; })));
  register_op(aliased(binary("sub", "binary", "sub", "x - y with broadcasting.", binary_kernel([](float a, float b) { return a - b; })), {"subtract"}));
  register_op(aliased(binary("mul", "binary", "mul", "x * y with broadcasting.", binary_kernel([](float a, float b) { return a * b; })), {"multiply"}));
  auto float_binary = [](InferContext& c) {
    c.expect_float(0, "x");
    infer_binary(c);
  };
  register_op(aliased(binary("div", "binary", "real_div", "x / y with broadcasting (true division).",
                     binary_kernel([](float a, float b) { return a / b; }), float_binary), {"divide"}));
  register_op(binary("pow", "binary", "pow", "x ** y with broadcasting.",
                     binary_kernel([](float a, float b) { return std::pow(a, b); }), float_binary));
  register_op(exact(binary("maximum", "binary", "maximum", "Elementwise max; NaN propagates (torch.maximum).",
                           binary_kernel([](float a, float b) { return a != a || b != b ? kNaN : std::max(a, b); }))));
  register_op(exact(binary("minimum", "binary", "minimum", "Elementwise min; NaN propagates (torch.minimum).",
                           binary_kernel([](float a, float b) { return a != a || b != b ? kNaN : std::min(a, b); }))));
  auto cmp_infer = [](InferContext& c) {
    infer_binary(c);
    c.outputs[0].dtype = DType::boolean;
  };
  register_op(aliased(binary("less", "comparison", "less", "x < y (bool).", binary_kernel([](float a, float b) { return float(a < b); }), cmp_infer), {"lt"}));
  register_op(aliased(binary("less_equal", "comparison", "less_equal", "x <= y (bool).", binary_kernel([](float a, float b) { return float(a <= b); }), cmp_infer), {"le"}));
  register_op(aliased(binary("greater", "comparison", "greater", "x > y (bool).", binary_kernel([](float a, float b) { return float(a > b); }), cmp_infer), {"gt"}));
  register_op(aliased(binary("greater_equal", "comparison", "greater_equal", "x >= y (bool).", binary_kernel([](float a, float b) { return float(a >= b); }), cmp_infer), {"ge"}));
  register_op(aliased(binary("equal", "comparison", "equal", "x == y (bool).", binary_kernel([](float a, float b) { return float(a == b); }), cmp_infer), {"eq"}));
  register_op(aliased(binary("not_equal", "comparison", "not_equal", "x != y (bool).", binary_kernel([](float a, float b) { return float(a != b); }), cmp_infer), {"ne"}));

  OpDef w;
  w.name = "where";
  w.category = "logic";
  w.doc = "x where cond else y, all three broadcast (torch.where).";
  w.params = {P("cond", ParamKind::tensor), P("x", ParamKind::tensor), P("y", ParamKind::tensor)};
  w.mil_op = "select";
  w.elementwise = true;
  w.infer = [](InferContext& c) {
    if (c.in(0).dtype() != DType::boolean)
      c.fail("cond must be bool (e.g. from a comparison), got " + std::string(dtype_name(c.in(0).dtype())));
    c.expect_same_dtype(1, 2);
    Shape s1, s2;
    if (!broadcast_shapes(c.in(1).shape(), c.in(2).shape(), s1) || !broadcast_shapes(c.in(0).shape(), s1, s2))
      c.fail("shapes cond " + shape_str(c.in(0).shape()) + ", x " + shape_str(c.in(1).shape()) + ", y " +
             shape_str(c.in(2).shape()) + " do not broadcast");
    c.outputs = {{s2, c.in(1).dtype()}};
  };
  w.kernel = [](const KernelArgs& k) {
    const Shape& os = k.out_type(0).shape;
    Shape shp = os.empty() ? Shape{1} : os;
    std::array<std::vector<int64_t>, 3> st;
    for (size_t j = 0; j < 3; ++j) st[j] = broadcast_strides(k.in_type(j).shape, shp);
    collapse_dims<3>(shp, st);
    const size_t r = shp.size();
    const int64_t inner = shp[r - 1];
    auto flat = [&](size_t j) { return st[j][r - 1] <= 1; };  // a row read in order, or one value
    if (st[0][r - 1] == 0 && flat(1) && flat(2)) {  // one condition per row (attention's masked rows): whole rows
      parallel_for(numel(shp) / inner, std::max<int64_t>(1, 16384 / inner), [&](size_t b, size_t e) {
        for_rows<3>(shp, st, b, e, [&](size_t row, const std::array<int64_t, 3>& off) {
          const size_t j = k.in[0][off[0]] != 0.0f ? 1 : 2;
          const float* src = k.in[j] + off[j];
          float* o = k.out[0] + row * inner;
          if (st[j][r - 1] == 1) std::memcpy(o, src, sizeof(float) * static_cast<size_t>(inner));
          else std::fill(o, o + inner, *src);
        });
      });
      return;
    }
    broadcast_nary<3>({k.in[0], k.in[1], k.in[2]}, {k.in_type(0).shape, k.in_type(1).shape, k.in_type(2).shape},
                      k.out[0], os, [](const float* v) { return v[0] != 0.0f ? v[1] : v[2]; });
  };
  register_op(exact(std::move(w)));
}

}  // namespace

void register_elementwise_ops() {
  register_unary();
  register_binary();
}

namespace {

// cast, where int32 and bool are fp16: to bool, value != 0 as 0/1; to int32, toward zero with
// NaN as 0 (the sim's rule); between fp16 forms, nothing to do.
void emit_cast(mil::Builder& b, const mil::StepView& s) {
  using namespace milx;
  DType from = s.in_dtypes[0], to = s.out_dtypes[0];
  const Type &it = s.in_types[0], &ot = s.out_types[0];
  auto mil_cast = [&](const std::string& x, const Type& out, const std::string& name) {
    return b.op("cast", {{"x", {x}}, {"dtype", {S(b, mil::type_name(out.dtype), "dtype")}}}, out, name);
  };
  if (to == DType::boolean) {
    b.select01(b.condition(s.in[0]), ot, s.out[0]);
    return;
  }
  if (to == DType::int32 && is_float(from) && !s.attrs().b("exact_integers", false)) {
    Type bt = it;
    bt.dtype = DType::boolean;
    std::string zero = b.float_scalar(0.0, it.dtype, "zero");
    std::string up = b.op("greater_equal", {{"x", {s.in[0]}}, {"y", {zero}}}, bt);
    std::string t = b.op("select", {{"cond", {up}}, {"a", {b.op("floor", {{"x", {s.in[0]}}}, it)}}, {"b", {b.op("ceil", {{"x", {s.in[0]}}}, it)}}}, it);
    std::string num = b.op("equal", {{"x", {s.in[0]}}, {"y", {s.in[0]}}}, bt);  // false for NaN
    std::string r = b.op("select", {{"cond", {num}}, {"a", {t}}, {"b", {zero}}}, it, it.dtype == ot.dtype ? s.out[0] : "");
    if (it.dtype != ot.dtype) mil_cast(r, ot, s.out[0]);
    return;
  }
  if (it.dtype == ot.dtype) {
    b.op("identity", {{"x", {s.in[0]}}}, ot, s.out[0]);
    return;
  }
  mil_cast(s.in[0], ot, s.out[0]);
}

}  // namespace

// MIL emission of this family's ops (the rest use the default mil_op(x=..., y=...)).
void attach_elementwise_mil() {
  using namespace milx;
  unary_params("leaky_relu", "leaky_relu", [](Builder& b, const StepView& s) {
    return Args{{"alpha", {P(b, s.attrs().f("negative_slope"), "alpha")}}};
  });
  unary_params("elu", "elu", [](Builder& b, const StepView& s) { return Args{{"alpha", {P(b, s.attrs().f("alpha"), "alpha")}}}; });
  unary_params("gelu", "gelu", [](Builder& b, const StepView& s) {
    return Args{{"mode", {S(b, s.attrs().s("approximate") == "tanh" ? "TANH_APPROXIMATION" : "EXACT", "mode")}}};
  });
  unary_params("hard_sigmoid", "sigmoid_hard", [](Builder& b, const StepView& s) {
    return Args{{"alpha", {P(b, 1.0 / 6, "alpha")}}, {"beta", {P(b, 0.5, "beta")}}};
  });
  emit("hard_swish", [](Builder& b, const StepView& s) {
    std::string h = b.op("sigmoid_hard", {{"x", {s.in[0]}}, {"alpha", {P(b, 1.0 / 6, "alpha")}}, {"beta", {P(b, 0.5, "beta")}}},
                         s.out_types[0]);
    b.op("mul", {{"x", {s.in[0]}}, {"y", {h}}}, s.out_types[0], s.out[0]);
  });
  unary_params("scaled_tanh", "scaled_tanh", [](Builder& b, const StepView& s) {
    return Args{{"alpha", {P(b, s.attrs().f("alpha"), "alpha")}}, {"beta", {P(b, s.attrs().f("beta"), "beta")}}};
  });
  emit("softplus", [](Builder& b, const StepView& s) {
    // torch: x where beta*x > threshold, else log1p(exp(beta*x))/beta. MIL softplus has no
    // threshold: select it explicitly.
    double beta = s.attrs().f("beta"), thr = s.attrs().f("threshold");
    const Type& t = s.out_types[0];
    std::string bx = beta == 1.0 ? s.in[0] : b.op("mul", {{"x", {s.in[0]}}, {"y", {F(b, s, beta, "beta")}}}, t);
    std::string sp = b.op("softplus", {{"x", {bx}}}, t);
    if (beta != 1.0) sp = b.op("real_div", {{"x", {sp}}, {"y", {F(b, s, beta, "beta")}}}, t);
    Type bt = t;
    bt.dtype = DType::boolean;
    std::string big = b.op("greater", {{"x", {bx}}, {"y", {F(b, s, thr, "threshold")}}}, bt);
    b.op("select", {{"cond", {big}}, {"a", {s.in[0]}}, {"b", {sp}}}, t, s.out[0]);
  });
  unary_params("clamped_relu", "clamped_relu", [](Builder& b, const StepView& s) {
    return Args{{"alpha", {P(b, s.attrs().f("alpha"), "alpha")}}, {"beta", {P(b, s.attrs().f("beta"), "beta")}}};
  });
  emit("threshold", [](Builder& b, const StepView& s) {
    // torch: x > threshold ? x : value, NaN stays NaN: select on x <= threshold (false for NaN).
    Type bt = like(s.out_types[0], s.out_types[0].shape);
    bt.dtype = DType::boolean;
    std::string c = b.op("less_equal", {{"x", {s.in[0]}}, {"y", {F(b, s, s.attrs().f("threshold"), "threshold")}}}, bt);
    b.op("select", {{"cond", {c}}, {"a", {F(b, s, s.attrs().f("value"), "value")}}, {"b", {s.in[0]}}}, s.out_types[0], s.out[0]);
  });
  unary_params("thresholded_relu", "thresholded_relu", [](Builder& b, const StepView& s) {
    return Args{{"alpha", {P(b, s.attrs().f("alpha"), "alpha")}}};
  });
  unary_params("linear_activation", "linear_activation", [](Builder& b, const StepView& s) {
    return Args{{"alpha", {P(b, s.attrs().f("alpha"), "alpha")}}, {"beta", {P(b, s.attrs().f("beta"), "beta")}}};
  });
  emit("clip", [](Builder& b, const StepView& s) {
    // MIL clip needs finite bounds: an infinite (or beyond-range) side is no bound at all,
    // so +-inf inputs stay +-inf as in torch.
    double lim = dt(s) == DType::fp16 ? 65504.0 : 3.4028234663852886e38;
    double lo = s.attrs().f("min"), hi = s.attrs().f("max");
    bool has_lo = lo >= -lim, has_hi = hi <= lim;
    const Type& t = s.out_types[0];
    if (has_lo && has_hi)
      return void(b.op("clip", {{"x", {s.in[0]}}, {"alpha", {F(b, s, lo, "alpha")}}, {"beta", {F(b, s, hi, "beta")}}}, t, s.out[0]));
    std::string y = s.in[0];
    if (has_lo) y = b.op("maximum", {{"x", {y}}, {"y", {F(b, s, lo, "alpha")}}}, t, has_hi ? "" : s.out[0]);
    if (has_hi) y = b.op("minimum", {{"x", {y}}, {"y", {F(b, s, hi, "beta")}}}, t, s.out[0]);
    if (!has_lo && !has_hi) b.op("identity", {{"x", {y}}}, t, s.out[0]);
  });
  emit("neg", [](Builder& b, const StepView& s) {
    b.op("mul", {{"x", {s.in[0]}}, {"y", {F(b, s, -1.0, "minus_one")}}}, s.out_types[0], s.out[0]);
  });
  for (const char* n : {"rsqrt", "reciprocal"}) {
    std::string mil = n == std::string("rsqrt") ? "rsqrt" : "inverse";
    unary_params(n, mil.c_str(), [](Builder& b, const StepView& s) { return Args{{"epsilon", {P(b, 0.0, "epsilon")}}}; });
  }
  emit("cast", emit_cast);
  emit("prelu", [](Builder& b, const StepView& s) {
    const Type& xt = s.in_types[0];
    Shape ws(xt.shape.size() >= 2 ? xt.shape.size() - 1 : 1, 1);
    if (xt.shape.size() >= 2) ws[0] = s.in_types[1].shape.empty() ? 1 : s.in_types[1].shape[0];
    std::string w = b.op("reshape", {{"x", {s.in[1]}}, {"shape", {Is(b, ws, "shape")}}}, like(xt, ws));
    std::string neg = b.op("mul", {{"x", {s.in[0]}}, {"y", {w}}}, xt);
    Type bt = xt;
    bt.dtype = DType::boolean;
    std::string c = b.op("greater_equal", {{"x", {s.in[0]}}, {"y", {F(b, s, 0.0, "zero")}}}, bt);
    b.op("select", {{"cond", {c}}, {"a", {s.in[0]}}, {"b", {neg}}}, s.out_types[0], s.out[0]);
  });
  emit("where", [](Builder& b, const StepView& s) {
    // coremltools infers select's shape from a and b only: broadcast a to the full shape
    // when the condition alone carries the larger shape.
    const Shape& out = s.out_types[0].shape;
    Shape ab;
    broadcast_shapes(s.in_types[1].shape, s.in_types[2].shape, ab);
    std::string a = s.in[1];
    if (ab != out) {
      Shape as = s.in_types[1].shape;
      while (as.size() < out.size()) as.insert(as.begin(), 1);
      std::vector<int64_t> reps(out.size());
      for (size_t i = 0; i < out.size(); ++i) reps[i] = out[i] / as[i];
      if (as != s.in_types[1].shape) a = b.op("reshape", {{"x", {a}}, {"shape", {Is(b, as, "shape")}}}, like(s.in_types[1], as));
      a = b.op("tile", {{"x", {a}}, {"reps", {Is(b, reps, "reps")}}}, like(s.in_types[1], out));
    }
    b.op("select", {{"cond", {b.condition(s.in[0])}}, {"a", {a}}, {"b", {s.in[2]}}}, s.out_types[0], s.out[0]);
  });

  // Comparisons on any dtype, bools and int32 included (all fp16 here): the bool goes to
  // select's cond, the fp16 0/1 to everything else.
  for (const char* n : {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"})
    emit(n, [n](Builder& b, const StepView& s) { b.compare(n, s.in[0], s.in[1], s.out_types[0], s.out[0]); });
  emit("logical_not", [](Builder& b, const StepView& s) {
    b.select01(b.condition(s.in[0]), s.out_types[0], s.out[0], true);
  });
}

}  // namespace af

// ---- gradients (in other ops) ----
#include "ops/grad_util.h"

namespace af {

void attach_elementwise_grad() {
  using namespace gr;
  auto set = [](const char* name, GradFn f) { mutable_op(name).grad = std::move(f); };
  set("add", [](const Node& n, const std::vector<Tensor>& g) {
    return std::vector<Tensor>{unbroadcast(g[0], n.inputs[0].shape()), unbroadcast(g[0], n.inputs[1].shape())};
  });
  set("sub", [](const Node& n, const std::vector<Tensor>& g) {
    return std::vector<Tensor>{unbroadcast(g[0], n.inputs[0].shape()), unbroadcast(op("neg", {g[0]}), n.inputs[1].shape())};
  });
  set("mul", [](const Node& n, const std::vector<Tensor>& g) {
    const Tensor &x = n.inputs[0], &y = n.inputs[1];
    return std::vector<Tensor>{unbroadcast(mul(g[0], y), x.shape()), unbroadcast(mul(g[0], x), y.shape())};
  });
  set("div", [](const Node& n, const std::vector<Tensor>& g) {
    const Tensor &x = n.inputs[0], &y = n.inputs[1];
    Tensor gx = div(g[0], y);
    return std::vector<Tensor>{unbroadcast(gx, x.shape()), unbroadcast(op("neg", {mul(gx, div(x, y))}), y.shape())};
  });
  set("neg", [](const Node&, const std::vector<Tensor>& g) { return std::vector<Tensor>{op("neg", {g[0]})}; });
  set("relu", [](const Node& n, const std::vector<Tensor>& g) {
    const Tensor& x = n.inputs[0];
    return std::vector<Tensor>{mul(g[0], cast(op("greater", {x, like(x, 0.0)}), x.dtype()))};
  });
  set("sigmoid", [](const Node& n, const std::vector<Tensor>& g) {
    Tensor s = op("sigmoid", {n.inputs[0]});
    return std::vector<Tensor>{mul(g[0], mul(s, sub(like(s, 1.0), s)))};
  });
  set("tanh", [](const Node& n, const std::vector<Tensor>& g) {
    Tensor t = op("tanh", {n.inputs[0]});
    return std::vector<Tensor>{mul(g[0], sub(like(t, 1.0), mul(t, t)))};
  });
  set("exp", [](const Node& n, const std::vector<Tensor>& g) { return std::vector<Tensor>{mul(g[0], op("exp", {n.inputs[0]}))}; });
  set("log", [](const Node& n, const std::vector<Tensor>& g) { return std::vector<Tensor>{div(g[0], n.inputs[0])}; });
  set("square", [](const Node& n, const std::vector<Tensor>& g) {
    return std::vector<Tensor>{mul(g[0], mul(n.inputs[0], like(n.inputs[0], 2.0)))};
  });
  set("sqrt", [](const Node& n, const std::vector<Tensor>& g) {
    return std::vector<Tensor>{div(g[0], mul(op("sqrt", {n.inputs[0]}), like(n.inputs[0], 2.0)))};
  });
  set("cast", [](const Node& n, const std::vector<Tensor>& g) {  // back to the input's dtype; none into integers
    const Tensor& x = n.inputs[0];
    Tensor back = is_float(x.dtype()) ? g[0] : mul(g[0], like(g[0], 0.0));
    return std::vector<Tensor>{cast(back, x.dtype())};
  });
  set("abs", [](const Node& n, const std::vector<Tensor>& g) {  // sign(x): 0 at 0, as torch
    return std::vector<Tensor>{mul(g[0], op("sign", {n.inputs[0]}))};
  });
  // maximum/minimum: the gradient goes to the larger (smaller) input; ties split it in half, as torch.
  for (const char* m : {"maximum", "minimum"}) {
    const std::string cmp = m == std::string("maximum") ? "greater" : "less";
    set(m, [cmp](const Node& n, const std::vector<Tensor>& g) {
      const Tensor &x = n.inputs[0], &y = n.inputs[1];
      Tensor wins = cast(op(cmp, {x, y}), g[0].dtype()), tie = cast(op("equal", {x, y}), g[0].dtype());
      Tensor wx = op("add", {wins, mul(tie, like(g[0], 0.5))});
      return std::vector<Tensor>{unbroadcast(mul(g[0], wx), x.shape()), unbroadcast(sub(g[0], mul(g[0], wx)), y.shape())};
    });
  }
  set("silu", [](const Node& n, const std::vector<Tensor>& g) {  // s (1 + x (1 - s))
    const Tensor& x = n.inputs[0];
    Tensor s = op("sigmoid", {x});
    return std::vector<Tensor>{mul(g[0], mul(s, op("add", {like(x, 1.0), mul(x, sub(like(x, 1.0), s))})))};
  });
  set("softplus", [](const Node& n, const std::vector<Tensor>& g) {  // sigmoid(beta x), 1 past the threshold
    const Tensor& x = n.inputs[0];
    double b = n.attrs.f("beta"), t = n.attrs.f("threshold");
    Tensor bx = mul(x, like(x, b));
    Tensor past = cast(op("greater", {bx, like(x, t)}), x.dtype());
    Tensor s = op("sigmoid", {bx});
    return std::vector<Tensor>{mul(g[0], op("add", {s, mul(past, sub(like(x, 1.0), s))}))};
  });
  // d/dx as a function of x alone: gradient = g * d(x).
  auto unary_grad = [&set](const char* name, std::function<Tensor(const Node&, const Tensor&)> d) {
    set(name, [d](const Node& n, const std::vector<Tensor>& g) { return std::vector<Tensor>{mul(g[0], d(n, n.inputs[0]))}; });
  };
  auto is = [](const char* cmp, const Tensor& x, double v) { return cast(op(cmp, {x, like(x, v)}), x.dtype()); };
  unary_grad("relu6", [is](const Node&, const Tensor& x) { return mul(is("greater", x, 0.0), is("less", x, 6.0)); });
  unary_grad("elu", [is](const Node& n, const Tensor& x) {  // 1, or alpha * exp(x) for x <= 0
    Tensor pos = is("greater", x, 0.0);
    return op("add", {pos, mul(sub(like(x, 1.0), pos), mul(op("exp", {x}), like(x, n.attrs.f("alpha"))))});
  });
  unary_grad("gelu", [](const Node& n, const Tensor& x) {
    const double k = 0.7978845608028654;  // sqrt(2 / pi)
    if (n.attrs.s("approximate") == "tanh") {  // 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2)
      Tensor x2 = mul(x, x);
      Tensor t = op("tanh", {mul(mul(x, op("add", {like(x, 1.0), mul(x2, like(x, 0.044715))})), like(x, k))});
      Tensor dt = mul(sub(like(x, 1.0), mul(t, t)), mul(op("add", {like(x, 1.0), mul(x2, like(x, 3 * 0.044715))}), like(x, k)));
      return mul(op("add", {op("add", {like(x, 1.0), t}), mul(x, dt)}), like(x, 0.5));
    }  // Phi(x) + x phi(x)
    Tensor cdf = mul(op("add", {like(x, 1.0), op("erf", {mul(x, like(x, 0.7071067811865476))})}), like(x, 0.5));
    Tensor pdf = mul(op("exp", {mul(mul(x, x), like(x, -0.5))}), like(x, 0.3989422804014327));
    return op("add", {cdf, mul(x, pdf)});
  });
  unary_grad("hard_sigmoid", [is](const Node&, const Tensor& x) {
    return mul(mul(is("greater", x, -3.0), is("less", x, 3.0)), like(x, 1.0 / 6.0));
  });
  unary_grad("hard_swish", [is](const Node&, const Tensor& x) {  // 0 below -3, x/3 + 1/2 up to 3, then 1 (torch)
    Tensor mid = mul(is("greater_equal", x, -3.0), is("less_equal", x, 3.0));
    Tensor slope = op("add", {mul(x, like(x, 1.0 / 3.0)), like(x, 0.5)});
    return op("add", {mul(mid, slope), is("greater", x, 3.0)});
  });
  unary_grad("scaled_tanh", [](const Node& n, const Tensor& x) {
    double a = n.attrs.f("alpha"), b = n.attrs.f("beta");
    Tensor t = op("tanh", {mul(x, like(x, b))});
    return mul(sub(like(x, 1.0), mul(t, t)), like(x, a * b));
  });
  unary_grad("softsign", [](const Node&, const Tensor& x) {
    Tensor d = op("add", {like(x, 1.0), op("abs", {x})});
    return op("reciprocal", {mul(d, d)});
  });
  unary_grad("clamped_relu", [is](const Node& n, const Tensor& x) {  // slope below 0, 0 where clamped at beta
    double a = n.attrs.f("alpha"), b = n.attrs.f("beta");
    Tensor ge = op("greater_equal", {x, like(x, 0.0)}), pos = cast(ge, x.dtype());
    Tensor pre = where(ge, x, mul(x, like(x, a)));
    Tensor slope = op("add", {pos, mul(sub(like(x, 1.0), pos), like(x, a))});
    return mul(slope, is("less", pre, b));
  });
  unary_grad("threshold", [is](const Node& n, const Tensor& x) { return is("greater", x, n.attrs.f("threshold")); });
  unary_grad("thresholded_relu", [is](const Node& n, const Tensor& x) { return is("greater", x, n.attrs.f("alpha")); });
  unary_grad("linear_activation", [](const Node& n, const Tensor& x) { return like(x, n.attrs.f("alpha")); });
  unary_grad("clip", [is](const Node& n, const Tensor& x) {  // 1 inside [min, max], bounds included (torch clamp)
    double lo = n.attrs.f("min"), hi = n.attrs.f("max");
    Tensor m = like(x, 1.0);  // a scalar; g * m has g's shape
    if (std::isfinite(lo)) m = mul(m, is("greater_equal", x, lo));
    if (std::isfinite(hi)) m = mul(m, is("less_equal", x, hi));
    return m;
  });
  unary_grad("sin", [](const Node&, const Tensor& x) { return op("cos", {x}); });
  unary_grad("cos", [](const Node&, const Tensor& x) { return op("neg", {op("sin", {x})}); });
  unary_grad("atan", [](const Node&, const Tensor& x) { return op("reciprocal", {op("add", {like(x, 1.0), mul(x, x)})}); });
  unary_grad("erf", [](const Node&, const Tensor& x) {
    return mul(op("exp", {op("neg", {mul(x, x)})}), like(x, 1.1283791670955126));
  });
  unary_grad("exp2", [](const Node&, const Tensor& x) { return mul(op("exp2", {x}), like(x, 0.6931471805599453)); });
  unary_grad("reciprocal", [](const Node&, const Tensor& x) {
    Tensor r = op("reciprocal", {x});
    return op("neg", {mul(r, r)});
  });
  unary_grad("rsqrt", [](const Node&, const Tensor& x) {  // -1/2 x^(-3/2)
    return mul(div(op("rsqrt", {x}), x), like(x, -0.5));
  });
  set("pow", [](const Node& n, const std::vector<Tensor>& g) {  // y x^(y-1); x^y log x
    const Tensor &x = n.inputs[0], &y = n.inputs[1];
    Tensor gx = mul(g[0], mul(y, op("pow", {x, sub(y, like(y, 1.0))})));
    Tensor gy = mul(g[0], mul(op("pow", {x, y}), op("log", {x})));
    return std::vector<Tensor>{unbroadcast(gx, x.shape()), unbroadcast(gy, y.shape())};
  });
  set("where", [](const Node& n, const std::vector<Tensor>& g) {
    const Tensor &c = n.inputs[0], &x = n.inputs[1], &y = n.inputs[2];
    Tensor zero = like(g[0], 0.0);
    return std::vector<Tensor>{Tensor(), unbroadcast(where(c, g[0], zero), x.shape()), unbroadcast(where(c, zero, g[0]), y.shape())};
  });
  set("prelu", [](const Node& n, const std::vector<Tensor>& g) {  // weight per channel (axis 1) or one value
    const Tensor &x = n.inputs[0], &w = n.inputs[1];
    Shape ws(static_cast<size_t>(x.rank()), 1);
    if (numel(w.shape()) > 1) ws[1] = numel(w.shape());
    Tensor wb = reshape(w, ws);
    Tensor neg = cast(op("less", {x, like(x, 0.0)}), x.dtype());
    Tensor gx = mul(g[0], op("add", {sub(like(x, 1.0), neg), mul(neg, wb)}));
    Tensor gw = unbroadcast(mul(g[0], mul(x, neg)), ws);
    return std::vector<Tensor>{gx, reshape(gw, w.shape())};
  });
  // No gradient flows through these (integer-valued or constant almost everywhere).
  for (const char* name : {"ceil", "floor", "round", "sign", "equal", "not_equal", "greater", "greater_equal", "less",
                           "less_equal", "logical_not"})
    mutable_op(name).no_grad = true;
  set("leaky_relu", [](const Node& n, const std::vector<Tensor>& g) {
    const Tensor& x = n.inputs[0];
    double a = n.attrs.f("negative_slope");
    Tensor pos = cast(op("greater_equal", {x, like(x, 0.0)}), x.dtype());
    return std::vector<Tensor>{mul(g[0], op("add", {pos, mul(sub(like(x, 1.0), pos), like(x, a))}))};
  });
}

}  // namespace af
