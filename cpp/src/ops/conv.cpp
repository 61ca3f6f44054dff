// conv: 2-D convolution (OIHW weights, PyTorch semantics), im2col + GEMM on the simulator.
#include <algorithm>
#include <cstring>

#include "ops/kernel_util.h"
#include "ops/register.h"
#include "runtime/blas.h"

namespace af {

namespace {

std::vector<int64_t> pair_attr(InferContext& c, const char* key, int64_t dflt) {
  if (!c.attrs.has(key)) return {dflt, dflt};
  auto v = c.attrs.ints(key);
  if (v.size() == 1) v.push_back(v[0]);
  if (v.size() != 2) c.fail(std::string(key) + " must be an int or a pair, got " + attr_str(c.attrs.get(key)));
  for (auto x : v)
    if (x < 1) c.fail(std::string(key) + " must be >= 1, got " + attr_str(c.attrs.get(key)));
  return v;
}

void infer_conv(InferContext& c) {
  const Tensor &x = c.in(0), &w = c.in(1);
  c.expect_rank(0, 4, 4, "x");
  if (w.rank() != 4)
    c.fail("weight must be OIHW (rank 4), got weight " + shape_str(w.shape()));
  c.expect_float(0, "x");
  c.expect_same_dtype(0, 1);
  int64_t groups = c.attrs.i("groups", 1);
  if (groups < 1) c.fail("groups must be >= 1, got " + std::to_string(groups));
  const Shape &xs = x.shape(), &ws = w.shape();
  int64_t C = xs[1], O = ws[0];
  if (ws[1] * groups != C) {
    std::string g = groups == 1 ? "" : " with groups=" + std::to_string(groups);
    c.fail("weight " + shape_str(ws) + g + " expects " + std::to_string(ws[1] * groups) +
           " input channels, got x " + shape_str(xs));
  }
  if (O % groups != 0)
    c.fail("weight " + shape_str(ws) + " has " + std::to_string(O) +
           " output channels, not divisible by groups=" + std::to_string(groups));
  bool has_bias = c.inputs.size() > 2;
  if (has_bias) {
    const Tensor& b = c.in(2);
    if (b.shape() != Shape{O})
      c.fail("bias must have shape (" + std::to_string(O) + ",) to match weight " + shape_str(ws) +
             ", got bias " + shape_str(b.shape()));
    c.expect_same_dtype(0, 2);
  }
  auto stride = pair_attr(c, "stride", 1), dil = pair_attr(c, "dilation", 1);
  int64_t kh = ws[2], kw = ws[3];
  int64_t ekh = dil[0] * (kh - 1) + 1, ekw = dil[1] * (kw - 1) + 1;
  std::vector<int64_t> pad;  // top, bottom, left, right
  const AttrValue pv = c.attrs.has("pad") ? c.attrs.get("pad") : AttrValue(int64_t{0});
  if (auto s = std::get_if<std::string>(&pv)) {
    if (*s == "valid") {
      pad = {0, 0, 0, 0};
    } else if (*s == "same") {
      if (stride[0] != 1 || stride[1] != 1) c.fail("pad='same' needs stride 1 (as in PyTorch)");
      pad = {(ekh - 1) / 2, ekh - 1 - (ekh - 1) / 2, (ekw - 1) / 2, ekw - 1 - (ekw - 1) / 2};
    } else {
      c.fail("pad must be an int, a pair, 'same' or 'valid', got '" + *s + "'");
    }
  } else {
    Attrs tmp;
    tmp.set("pad", pv);
    auto p = tmp.ints("pad");
    if (p.size() == 1) pad = {p[0], p[0], p[0], p[0]};
    else if (p.size() == 2) pad = {p[0], p[0], p[1], p[1]};
    else if (p.size() == 4) pad = p;  // canonical (top, bottom, left, right)
    else c.fail("pad must be an int, a pair, 'same' or 'valid', got " + attr_str(pv));
    for (auto v : pad)
      if (v < 0) c.fail("pad must be >= 0, got " + attr_str(pv));
  }
  int64_t Ho = (xs[2] + pad[0] + pad[1] - ekh) / stride[0] + 1;
  int64_t Wo = (xs[3] + pad[2] + pad[3] - ekw) / stride[1] + 1;
  if (xs[2] + pad[0] + pad[1] < ekh || xs[3] + pad[2] + pad[3] < ekw || Ho < 1 || Wo < 1)
    c.fail("kernel " + std::to_string(kh) + "x" + std::to_string(kw) + " (dilated " +
           std::to_string(ekh) + "x" + std::to_string(ekw) + ") does not fit x " + shape_str(xs) +
           " padded by " + attr_str(pad));
  c.attrs.set("stride", stride);
  c.attrs.set("dilation", dil);
  c.attrs.set("pad", pad);
  c.attrs.set("groups", groups);
  c.attrs.set("has_bias", has_bias);
  c.outputs = {{{xs[0], O, Ho, Wo}, x.dtype()}};
}

struct ConvGeom {
  int64_t N, C, H, W, O, kh, kw, Ho, Wo, sh, sw, dh, dw, pt, pl, groups;
};

ConvGeom geom(const KernelArgs& k) {
  const auto &xs = k.in_type(0).shape, &ws = k.in_type(1).shape, &os = k.out_type(0).shape;
  auto st = k.node.attrs.ints("stride"), dl = k.node.attrs.ints("dilation"), pd = k.node.attrs.ints("pad");
  return {xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], ws[3], os[2], os[3],
          st[0], st[1], dl[0], dl[1], pd[0], pd[2], k.node.attrs.i("groups")};
}

// col[(c*kh + i)*kw + j][oh*Wo + ow] for channels [c0, c0 + nc) of image x.
void im2col(const float* x, const ConvGeom& g, int64_t c0, int64_t nc, float* col) {
  int64_t rows = nc * g.kh * g.kw, P = g.Ho * g.Wo;
  parallel_for(rows, 8, [&](size_t rb, size_t re) {
    for (size_t r = rb; r < re; ++r) {
      int64_t c = static_cast<int64_t>(r) / (g.kh * g.kw), ij = static_cast<int64_t>(r) % (g.kh * g.kw);
      int64_t i = ij / g.kw, j = ij % g.kw;
      const float* xc = x + (c0 + c) * g.H * g.W;
      float* dst = col + r * P;
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        int64_t ih = oh * g.sh - g.pt + i * g.dh;
        float* d = dst + oh * g.Wo;
        if (ih < 0 || ih >= g.H) {
          std::memset(d, 0, sizeof(float) * g.Wo);
          continue;
        }
        const float* xr = xc + ih * g.W;
        int64_t iw0 = -g.pl + j * g.dw;
        if (g.sw == 1) {
          int64_t lo = std::max<int64_t>(0, -iw0), hi = std::min<int64_t>(g.Wo, g.W - iw0);
          if (hi < lo) hi = lo;
          for (int64_t ow = 0; ow < lo; ++ow) d[ow] = 0.0f;
          if (hi > lo) std::memcpy(d + lo, xr + iw0 + lo, sizeof(float) * (hi - lo));
          for (int64_t ow = hi; ow < g.Wo; ++ow) d[ow] = 0.0f;
        } else {
          for (int64_t ow = 0; ow < g.Wo; ++ow) {
            int64_t iw = ow * g.sw + iw0;
            d[ow] = (iw >= 0 && iw < g.W) ? xr[iw] : 0.0f;
          }
        }
      }
    }
  });
}

// One input channel per group (depthwise): direct loops, no im2col.
void conv_depthwise(const float* x, const float* w, const ConvGeom& g, float* y) {
  int64_t mult = g.O / g.groups;
  parallel_for(g.O, 1, [&](size_t ob, size_t oe) {
    for (size_t o = ob; o < oe; ++o) {
      const float* xc = x + (static_cast<int64_t>(o) / mult) * g.H * g.W;
      const float* wk = w + o * g.kh * g.kw;
      float* yo = y + o * g.Ho * g.Wo;
      for (int64_t oh = 0; oh < g.Ho; ++oh)
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          float acc = 0.0f;
          for (int64_t i = 0; i < g.kh; ++i) {
            int64_t ih = oh * g.sh - g.pt + i * g.dh;
            if (ih < 0 || ih >= g.H) continue;
            for (int64_t j = 0; j < g.kw; ++j) {
              int64_t iw = ow * g.sw - g.pl + j * g.dw;
              if (iw >= 0 && iw < g.W) acc += xc[ih * g.W + iw] * wk[i * g.kw + j];
            }
          }
          yo[oh * g.Wo + ow] = acc;
        }
    }
  });
}

void conv_kernel(const KernelArgs& k) {
  ConvGeom g = geom(k);
  const float *x = k.in[0], *w = k.in[1];
  const float* bias = k.node.attrs.b("has_bias") ? k.in[2] : nullptr;
  float* y = k.out[0];
  int64_t Cg = g.C / g.groups, Og = g.O / g.groups, Kg = Cg * g.kh * g.kw, P = g.Ho * g.Wo;
  bool pointwise = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 &&
                   g.Ho == g.H && g.Wo == g.W;
  for (int64_t n = 0; n < g.N; ++n) {
    const float* xn = x + n * g.C * g.H * g.W;
    float* yn = y + n * g.O * P;
    if (Cg == 1 && g.groups > 1) {
      conv_depthwise(xn, w, g, yn);
    } else {
      for (int64_t gi = 0; gi < g.groups; ++gi) {
        const float* col = xn + gi * Cg * g.H * g.W;
        if (!pointwise) {
          float* buf = scratch(static_cast<size_t>(Kg * P));
          im2col(xn, g, gi * Cg, Cg, buf);
          col = buf;
        }
        blas::sgemm(false, false, Og, P, Kg, 1.0f, w + gi * Og * Kg, Kg, col, P, 0.0f,
                    yn + gi * Og * P, P);
      }
    }
    bool relu = k.node.attrs.s("activation", "") == "relu";
    if (bias || relu)
      parallel_for(g.O, 4, [&](size_t ob, size_t oe) {
        for (size_t o = ob; o < oe; ++o) {
          float b = bias ? bias[o] : 0.0f, *yo = yn + o * P;
          if (relu)
            for (int64_t p = 0; p < P; ++p) yo[p] = std::max(yo[p] + b, 0.0f);
          else
            for (int64_t p = 0; p < P; ++p) yo[p] += b;
        }
      });
  }
}

}  // namespace

void register_conv_ops() {
  OpDef d;
  d.name = "conv";
  d.category = "linalg";
  d.doc = "2-D convolution, OIHW weight, optional bias (PyTorch conv2d semantics).";
  d.params = {P("x", ParamKind::tensor),        P("weight", ParamKind::tensor),
              P("bias", ParamKind::opt_tensor, "None"), P("stride", ParamKind::any, "1"),
              P("pad", ParamKind::any, "0"),     P("dilation", ParamKind::any, "1"),
              P("groups", ParamKind::int_, "1")};
  d.infer = infer_conv;
  d.kernel = conv_kernel;
  d.mil_op = "conv";
  register_op(std::move(d));
}

}  // namespace af
