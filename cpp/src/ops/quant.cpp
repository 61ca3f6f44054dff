// int8 activations (compress="w8a8", docs/compression.md): quantize and dequantize with a
// per-tensor scale fitted on calibration data. The engine computes int8 natively from h16
// (M4); MIL's iOS17 quantize/dequantize carry the scale.
#include <algorithm>
#include <cmath>

#include "aneforge/fp16.h"
#include "ops/mil_util.h"

namespace af {

namespace {

// The engine holds the scale in fp16: it is rounded to fp16 here, and must be a positive
// fp16 normal number.
double checked_scale(InferContext& c) {
  double s = c.attrs.f("scale");
  float h = half_to_float(float_to_half(static_cast<float>(s)));
  if (!(s > 0) || !std::isfinite(h) || h < 6.103515625e-05f)
    c.fail("scale must be a positive number from 2^-14 to 65504 (an fp16 normal), got " + std::to_string(s));
  c.attrs.set("scale", static_cast<double>(h));
  return h;
}

}  // namespace

void register_quant_ops() {
  OpDef q;
  q.name = "quantize";
  q.category = "quantization";
  q.doc = "int8 of x / scale, rounded half to even and saturated to -128..127 (MIL quantize).";
  q.params = {P("x", ParamKind::tensor), P("scale", ParamKind::float_)};
  q.mil_op = "quantize";
  q.min_family = "h16";
  q.no_grad = true;  // integer output
  q.infer = [](InferContext& c) {
    c.expect_float(0);
    checked_scale(c);
    c.outputs = {{c.in(0).shape(), DType::int8}};
  };
  q.kernel = [](const KernelArgs& k) {
    const float s = static_cast<float>(k.node.attrs.f("scale"));
    const int64_t n = numel(k.in_type(0).shape);
    for (int64_t i = 0; i < n; ++i) {
      float v = std::nearbyint(k.in[0][i] / s);
      k.out[0][i] = v != v ? 0.0f : std::min(127.0f, std::max(-128.0f, v));
    }
  };
  q.emit_mil = [](mil::Builder& b, const mil::StepView& s) {
    using namespace milx;
    b.op("quantize", {{"input", {s.in[0]}}, {"scale", {F(b, s, s.node.attrs.f("scale"), "scale")}},
                      {"output_dtype", {S(b, "int8", "output_dtype")}}},
         s.out_types[0], s.out[0]);
  };
  register_op(std::move(q));

  OpDef d;
  d.name = "dequantize";
  d.no_grad = true;  // integer input
  d.category = "quantization";
  d.doc = "q * scale for int8 q, in fp16 (MIL dequantize).";
  d.params = {P("x", ParamKind::tensor), P("scale", ParamKind::float_)};
  d.mil_op = "dequantize";
  d.min_family = "h16";
  d.infer = [](InferContext& c) {
    if (c.in(0).dtype() != DType::int8) c.fail("x must be int8");
    checked_scale(c);
    c.outputs = {{c.in(0).shape(), DType::fp16}};
  };
  d.kernel = [](const KernelArgs& k) {
    const float s = static_cast<float>(k.node.attrs.f("scale"));
    const int64_t n = numel(k.in_type(0).shape);
    for (int64_t i = 0; i < n; ++i) k.out[0][i] = k.in[0][i] * s;
  };
  d.emit_mil = [](mil::Builder& b, const mil::StepView& s) {
    b.op("dequantize", {{"input", {s.in[0]}}, {"scale", {b.float_scalar(s.node.attrs.f("scale"), DType::fp16, "scale")}}},
         s.out_types[0], s.out[0]);
  };
  register_op(std::move(d));
}

}  // namespace af
