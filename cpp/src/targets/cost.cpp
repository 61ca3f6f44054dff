// The per-target cost model: overhead + sum over fused layers of
// (layer overhead + max(flops / peak, bytes / bandwidth)). Errors against published
// measurements: docs/targets.md.
#include <algorithm>

#include "aneforge/op.h"
#include "aneforge/target.h"
#include "passes/passes.h"

namespace af {

namespace {

double layer_flops(const Program& p, const Step& st) {
  const std::string& op = st.node->op->name;
  const Shape& out = p.values[st.out[0]].type.shape;
  double n_out = static_cast<double>(numel(out));
  if (op == "conv" || op == "dynamic_conv") {
    const Shape& w = p.values[st.in[1]].type.shape;
    return 2.0 * n_out * static_cast<double>(numel(w) / w[0]);
  }
  if (op == "conv_transpose") {
    const Shape& w = p.values[st.in[1]].type.shape;
    return 2.0 * static_cast<double>(numel(p.values[st.in[0]].type.shape)) * static_cast<double>(numel(w) / w[0]);
  }
  if (op == "matmul" || op == "linear") {
    const Shape& x = p.values[st.in[0]].type.shape;
    return 2.0 * n_out * static_cast<double>(x.empty() ? 1 : x.back());
  }
  if (op == "embedding")  // its engine form: a one-hot matmul over the whole vocabulary
    return 2.0 * n_out * static_cast<double>(p.values[st.in[1]].type.shape[0]);
  double in = 0;
  for (int v : st.in) in += static_cast<double>(numel(p.values[v].type.shape));
  return std::max(in, n_out) * (1 + st.epilogue.size());
}

double value_bytes(const Value& v) {
  if (!v.data) return static_cast<double>(v.engine_bytes ? v.engine_bytes : engine_bytes(v.type.shape));
  double n = static_cast<double>(numel(v.type.shape));
  return v.data->packed ? static_cast<double>(v.data->packed->stored_bytes()) : 2.0 * n;
}

// Effective fraction of the MAC peak by layer kind:
// - 3x3 stride-1 convs use the hardware Winograd path, ~1.45x the direct peak (751K; ANEForge mlperf.md) [R];
// - matmul reaches about half the conv roof (ANEForge ROOFLINES: 4.6 vs 9.6 TF/s on M1 Max,
//   10.2 vs 18.8 on M5 Pro) [R] -- fitted from the same source as the GEMM checks.
double efficiency(const Program& p, const Step& st) {
  const std::string& op = st.node->op->name;
  if (op == "conv" && st.in.size() > 1) {
    const Shape& w = p.values[st.in[1]].type.shape;
    auto stride = st.node->attrs.ints("stride");
    bool s1 = std::all_of(stride.begin(), stride.end(), [](int64_t v) { return v == 1; });
    if (w.size() == 4 && w[2] == 3 && w[3] == 3 && s1 && st.node->attrs.i("groups") == 1) return 1.45;
    return 1.0;
  }
  if (op == "matmul" || op == "embedding" || (op == "linear" && !st.node->attrs.b("as_conv1x1"))) return 0.5;
  return 1.0;
}

}  // namespace

Estimate estimate(const Program& p, const Target& t) {
  Estimate e;
  e.target = t.name;
  e.dispatch_us = t.dispatch_us;
  e.total_us = t.dispatch_us;
  if (t.fp16_tflops <= 0) return e;
  for (const auto& st : p.steps) {
    LayerCost c;
    c.layer = st.node->name;
    c.flops = layer_flops(p, st);
    for (int v : st.in) c.bytes += value_bytes(p.values[v]);
    for (int v : st.out) c.bytes += value_bytes(p.values[v]);
    double peak = t.fp16_tflops * efficiency(p, st);
    double compute = c.flops / (peak * 1e6), memory = c.bytes / (t.bandwidth_gbs * 1e3);
    c.compute_bound = compute >= memory;
    c.us = t.layer_us + std::max(compute, memory);
    e.total_us += c.us;
    e.layers.push_back(std::move(c));
  }
  return e;
}

}  // namespace af
