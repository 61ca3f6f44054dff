// Pooling, resizing and geometry on (N, C, H, W): max_pool, avg_pool, global pooling,
// upsample/resize (nearest, bilinear; PyTorch coordinate rules), affine warp.
#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/kernel_util.h"
#include "ops/mil_util.h"
#include "ops/register.h"

namespace af {

namespace {

int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, bool ceil_mode) {
  int64_t num = in + 2 * p - k;
  if (num < 0) return 0;  // the window does not fit the padded input (C++ division would truncate to 0)
  int64_t out = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

void infer_pool(InferContext& c) {
  c.expect_rank(0, 4, 4, "x");
  c.expect_float(0);
  const Shape& s = c.in(0).shape();
  auto k = int_pair(c, "kernel_size", {}, 1);
  if (k.empty()) c.fail("kernel_size is required");
  auto st = c.attrs.has("stride") ? int_pair(c, "stride", k, 1) : k;
  auto p = int_pair(c, "padding", {0, 0}, 0);
  if (p[0] * 2 > k[0] || p[1] * 2 > k[1])
    c.fail("padding " + attr_str(p) + " must be at most half of kernel_size " + attr_str(k));
  bool ceil_mode = c.attrs.b("ceil_mode");
  int64_t Ho = pool_out(s[2], k[0], st[0], p[0], ceil_mode), Wo = pool_out(s[3], k[1], st[1], p[1], ceil_mode);
  if (Ho < 1 || Wo < 1)
    c.fail("kernel_size " + attr_str(k) + " does not fit x " + shape_str(s) + " padded by " + attr_str(p) +
           " (output size " + std::to_string(Ho) + "x" + std::to_string(Wo) + " is too small)");
  c.attrs.set("kernel_size", k);
  c.attrs.set("stride", st);
  c.attrs.set("padding", p);
  c.attrs.set("ceil_mode", ceil_mode);
  if (c.op.name == "avg_pool") c.attrs.set("count_include_pad", c.attrs.b("count_include_pad", true));
  c.outputs = {{{s[0], s[1], Ho, Wo}, c.in(0).dtype()}};
}

template <bool Max>
void pool_kernel(const KernelArgs& k) {
  const Shape &s = k.in_type(0).shape, &os = k.out_type(0).shape;
  auto ks = k.node.attrs.ints("kernel_size"), st = k.node.attrs.ints("stride"), p = k.node.attrs.ints("padding");
  bool include_pad = !Max && k.node.attrs.b("count_include_pad");
  int64_t H = s[2], W = s[3], Ho = os[2], Wo = os[3];
  // 2x2 windows at stride 2, unpadded, inside the plane (CNNs' usual pooling): the same
  // four values in the same order as below, without the per-window bounds.
  const bool tiled2 = ks[0] == 2 && ks[1] == 2 && st[0] == 2 && st[1] == 2 && p[0] == 0 && p[1] == 0 &&
                      2 * Ho <= H && 2 * Wo <= W;
  parallel_for(s[0] * s[1], 1, [&](size_t b, size_t e) {
    for (size_t plane = b; plane < e; ++plane) {
      const float* x = k.in[0] + plane * H * W;
      float* y = k.out[0] + plane * Ho * Wo;
      if (tiled2) {
        for (int64_t oh = 0; oh < Ho; ++oh) {
          const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
          float* yr = y + oh * Wo;
          for (int64_t ow = 0; ow < Wo; ++ow) {
            const float v[4] = {r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]};
            float acc = Max ? -std::numeric_limits<float>::infinity() : 0.0f;
            for (float x4 : v) {
              if (Max) acc = (x4 > acc || x4 != x4) ? x4 : acc;
              else acc += x4;
            }
            yr[ow] = Max ? acc : acc / 4.0f;
          }
        }
        continue;
      }
      // A row of outputs at a time, tap by tap over the columns each tap reaches (a vector
      // loop per tap): every output combines its in-range taps in (i, j) order, as a loop
      // over its window would.
      for (int64_t oh = 0; oh < Ho; ++oh) {
        float* acc = y + oh * Wo;
        std::fill(acc, acc + Wo, Max ? -std::numeric_limits<float>::infinity() : 0.0f);
        const int64_t hs = oh * st[0] - p[0];
        for (int64_t i = 0; i < ks[0]; ++i) {
          const int64_t ih = hs + i;
          if (ih < 0 || ih >= H) continue;
          const float* xr = x + ih * W;
          for (int64_t j = 0; j < ks[1]; ++j) {
            // the outputs whose input column ow * s + shift lies in [0, W)
            const int64_t shift = j - p[1], s1 = st[1];
            const int64_t ow0 = shift >= 0 ? 0 : (-shift + s1 - 1) / s1;
            const int64_t ow1 = std::min<int64_t>(Wo, W - 1 - shift < 0 ? 0 : (W - 1 - shift) / s1 + 1);
            for (int64_t ow = ow0; ow < ow1; ++ow) {
              const float v = xr[ow * s1 + shift], a = acc[ow];
              if (Max) acc[ow] = (v > a || v != v) ? v : a;
              else acc[ow] = a + v;
            }
          }
        }
        if (Max) continue;
        const int64_t he = std::min(hs + ks[0], H + p[0]), rows = std::min(he, H) - std::max<int64_t>(hs, 0);
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const int64_t ws = ow * st[1] - p[1], we = std::min(ws + ks[1], W + p[1]);
          const int64_t n = include_pad ? (he - hs) * (we - ws) : rows * (std::min(we, W) - std::max<int64_t>(ws, 0));
          acc[ow] /= static_cast<float>(n);
        }
      }
    }
  });
}

// ---- resize ------------------------------------------------------------------------

// Source coordinate of output index `o` (PyTorch's area_pixel_compute_source_index).
float src_coord(int64_t o, int64_t in, int64_t out, double scale, bool align, bool linear) {
  if (align) return out > 1 ? static_cast<float>(o) * static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.0f;
  float r = scale > 0 ? static_cast<float>(1.0 / scale) : static_cast<float>(in) / static_cast<float>(out);
  if (!linear) return std::min(std::floor(static_cast<float>(o) * r), static_cast<float>(in - 1));
  return std::max((static_cast<float>(o) + 0.5f) * r - 0.5f, 0.0f);
}

void resize_plane(const float* x, int64_t H, int64_t W, float* y, int64_t Ho, int64_t Wo, bool linear, bool align,
                  double sh, double sw) {
  for (int64_t oh = 0; oh < Ho; ++oh) {
    float fy = src_coord(oh, H, Ho, sh, align, linear);
    int64_t y0 = static_cast<int64_t>(fy), y1 = std::min(y0 + 1, H - 1);
    float ly = fy - static_cast<float>(y0);
    for (int64_t ow = 0; ow < Wo; ++ow) {
      float fx = src_coord(ow, W, Wo, sw, align, linear);
      int64_t x0 = static_cast<int64_t>(fx), x1 = std::min(x0 + 1, W - 1);
      if (!linear) {
        y[oh * Wo + ow] = x[y0 * W + x0];
        continue;
      }
      float lx = fx - static_cast<float>(x0);
      y[oh * Wo + ow] = (1 - ly) * ((1 - lx) * x[y0 * W + x0] + lx * x[y0 * W + x1]) +
                        ly * ((1 - lx) * x[y1 * W + x0] + lx * x[y1 * W + x1]);
    }
  }
}

void resize_kernel(const KernelArgs& k) {
  const Shape &s = k.in_type(0).shape, &os = k.out_type(0).shape;
  bool linear = k.node.attrs.s("mode") == "bilinear", align = k.node.attrs.b("align_corners");
  auto sc = k.node.attrs.floats("scale");
  parallel_for(s[0] * s[1], 1, [&](size_t b, size_t e) {
    for (size_t p = b; p < e; ++p)
      resize_plane(k.in[0] + p * s[2] * s[3], s[2], s[3], k.out[0] + p * os[2] * os[3], os[2], os[3], linear,
                   align, sc[0], sc[1]);
  });
}

OpDef resize_op(const char* name, const char* mil, const char* doc, bool by_scale, bool linear) {
  OpDef d;
  d.name = name;
  d.category = "geometry";
  d.doc = doc;
  d.mil_op = mil;
  d.params = {P("x", ParamKind::tensor), P(by_scale ? "scale_factor" : "size", ParamKind::any)};
  if (linear) d.params.push_back(P("align_corners", ParamKind::bool_, "False"));
  d.infer = [by_scale, linear](InferContext& c) {
    c.expect_rank(0, 4, 4, "x");
    c.expect_float(0);
    const Shape& s = c.in(0).shape();
    int64_t Ho, Wo;
    std::vector<double> scale{0.0, 0.0};
    if (by_scale) {
      auto f = c.attrs.floats("scale_factor");
      if (f.size() == 1) f.push_back(f[0]);
      if (f.size() != 2 || !(f[0] > 0 && f[0] <= 65536) || !(f[1] > 0 && f[1] <= 65536))
        c.fail("scale_factor must be a positive number or pair up to 65536, got " + attr_str(c.attrs.get("scale_factor")));
      Ho = static_cast<int64_t>(std::floor(s[2] * f[0]));
      Wo = static_cast<int64_t>(std::floor(s[3] * f[1]));
      scale = f;
    } else {
      auto sz = c.attrs.ints("size");
      if (sz.size() == 1) sz.push_back(sz[0]);
      if (sz.size() != 2 || sz[0] < 1 || sz[1] < 1)
        c.fail("size must be a positive int or (height, width), got " + attr_str(c.attrs.get("size")));
      Ho = sz[0];
      Wo = sz[1];
    }
    if (Ho < 1 || Wo < 1) c.fail("output size (" + std::to_string(Ho) + ", " + std::to_string(Wo) + ") is empty");
    c.attrs.set("mode", std::string(linear ? "bilinear" : "nearest"));
    c.attrs.set("align_corners", linear && c.attrs.b("align_corners"));
    c.attrs.set("scale", scale);
    c.outputs = {{{s[0], s[1], Ho, Wo}, c.in(0).dtype()}};
  };
  d.kernel = resize_kernel;
  return d;
}

// ---- affine warp -------------------------------------------------------------------

void infer_affine(InferContext& c) {
  c.expect_rank(0, 4, 4, "x");
  c.expect_float(0);
  c.expect_same_dtype(0, 1);
  const Shape &s = c.in(0).shape(), &t = c.in(1).shape();
  if (t != Shape{s[0], 2, 3}) c.fail("theta must have shape (" + std::to_string(s[0]) + ", 2, 3), got " + shape_str(t));
  auto sz = c.attrs.has("size") ? c.attrs.ints("size") : std::vector<int64_t>{s[2], s[3]};
  if (sz.size() != 2 || sz[0] < 1 || sz[1] < 1) c.fail("size must be (height, width), got " + attr_str(sz));
  c.attrs.set("size", sz);
  c.attrs.set("align_corners", c.attrs.b("align_corners"));
  c.outputs = {{{s[0], s[1], sz[0], sz[1]}, c.in(0).dtype()}};
}

// Normalised [-1, 1] coordinate of output index i of n (torch affine_grid).
float affine_base(int64_t i, int64_t n, bool align) {
  return align ? (n > 1 ? -1.0f + 2.0f * static_cast<float>(i) / static_cast<float>(n - 1) : 0.0f)
               : (2.0f * static_cast<float>(i) + 1.0f) / static_cast<float>(n) - 1.0f;
}

void affine_kernel(const KernelArgs& k) {
  const Shape &s = k.in_type(0).shape, &os = k.out_type(0).shape;
  bool align = k.node.attrs.b("align_corners");
  int64_t H = s[2], W = s[3], Ho = os[2], Wo = os[3];
  auto unnorm = [align](float g, int64_t n) { return align ? (g + 1) / 2 * (n - 1) : ((g + 1) * n - 1) / 2; };
  parallel_for(s[0] * s[1], 1, [&](size_t b, size_t e) {
    for (size_t p = b; p < e; ++p) {
      int64_t n = static_cast<int64_t>(p) / s[1];
      const float* th = k.in[1] + n * 6;
      const float* x = k.in[0] + p * H * W;
      float* y = k.out[0] + p * Ho * Wo;
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j) {
          float bx = affine_base(j, Wo, align), by = affine_base(i, Ho, align);
          float gx = th[0] * bx + th[1] * by + th[2], gy = th[3] * bx + th[4] * by + th[5];
          float fx = unnorm(gx, W), fy = unnorm(gy, H);
          float x0f = std::floor(fx), y0f = std::floor(fy);
          int64_t x0 = static_cast<int64_t>(x0f), y0 = static_cast<int64_t>(y0f);
          float lx = fx - x0f, ly = fy - y0f, acc = 0.0f;
          auto at = [&](int64_t yy, int64_t xx) { return (yy >= 0 && yy < H && xx >= 0 && xx < W) ? x[yy * W + xx] : 0.0f; };
          acc = (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x0 + 1)) + ly * ((1 - lx) * at(y0 + 1, x0) + lx * at(y0 + 1, x0 + 1));
          y[i * Wo + j] = acc;
        }
    }
  });
}

}  // namespace

void register_pool_ops() {
  for (bool mx : {true, false}) {
    OpDef d;
    d.name = mx ? "max_pool" : "avg_pool";
    d.category = "pooling";
    d.doc = mx ? "2-D max pooling (torch max_pool2d; padding counts as -inf)."
               : "2-D average pooling (torch avg_pool2d: ceil_mode, count_include_pad).";
    d.mil_op = mx ? "max_pool" : "avg_pool";
    d.params = {P("x", ParamKind::tensor), P("kernel_size", ParamKind::any), P("stride", ParamKind::any, "None"),
                P("padding", ParamKind::any, "0"), P("ceil_mode", ParamKind::bool_, "False")};
    if (!mx) d.params.push_back(P("count_include_pad", ParamKind::bool_, "True"));
    d.infer = infer_pool;
    d.kernel = mx ? SimKernel(pool_kernel<true>) : SimKernel(pool_kernel<false>);
    d.exact_output = mx;  // a window's largest element
    d.aliases = {mx ? "max_pool2d" : "avg_pool2d"};
    register_op(std::move(d));
  }
  for (bool mx : {false, true}) {
    OpDef g;
    g.name = mx ? "global_max_pool" : "global_avg_pool";
    g.category = "pooling";
    g.doc = mx ? "Max over H and W, keeping (N, C, 1, 1)." : "Mean over H and W, keeping (N, C, 1, 1).";
    g.mil_op = mx ? "reduce_max" : "reduce_mean";
    g.params = {P("x", ParamKind::tensor)};
    g.build = [mx](const std::vector<Tensor>& in, const Attrs&) {
      if (in[0].rank() != 4) throw ValueError(std::string(mx ? "global_max_pool" : "global_avg_pool") +
                                              ": x must have rank 4, got x " + shape_str(in[0].shape()));
      return call(mx ? "max" : "mean", in, {{"axis", std::vector<int64_t>{2, 3}}, {"keepdims", true}});
    };
    register_op(std::move(g));
  }
  register_op(resize_op("upsample_nearest", "upsample_nearest_neighbor", "Nearest upsampling by scale_factor (torch interpolate 'nearest').", true, false));
  register_op(resize_op("upsample_bilinear", "upsample_bilinear", "Bilinear upsampling by scale_factor (torch interpolate 'bilinear').", true, true));
  register_op(resize_op("resize_nearest", "resize_nearest_neighbor", "Nearest resize to size (torch interpolate 'nearest').", false, false));
  register_op(resize_op("resize_bilinear", "resize_bilinear", "Bilinear resize to size (torch interpolate 'bilinear').", false, true));
  OpDef a;
  a.name = "affine";
  a.category = "geometry";
  a.doc = "Affine warp: grid_sample(x, affine_grid(theta, size)), bilinear, zero padding (torch).";
  a.mil_op = "affine";
  a.params = {P("x", ParamKind::tensor), P("theta", ParamKind::tensor), P("size", ParamKind::ints, "None"),
              P("align_corners", ParamKind::bool_, "False")};
  a.infer = infer_affine;
  a.min_family = "h14";  // a texture-engine (resample) op: H14+ (ane-guide s17; eiln/ane docs) [R]
  a.kernel = affine_kernel;
  register_op(std::move(a));
}

// ---- resize emission -----------------------------------------------------------------
// MIL's resize ops derive their sampling grid from the sizes (upsample_* recompute the scale
// as out/in), while torch's scale_factor rules (which the simulator follows) use the user's
// scale. The native op is emitted when its documented grid equals the simulator's on both
// axes; otherwise the resize is two matmuls with constant selection/interpolation matrices
// (rows of (1 - frac, frac) weights), which compute exactly the simulator's samples.

namespace {

// The MIL op's source coordinate for output index o (coremltools' op definitions).
double mil_coord(int64_t o, int64_t in, int64_t out, bool linear, bool align) {
  if (!linear) return static_cast<double>(std::min<int64_t>((o * in) / out, in - 1));
  if (align) return out > 1 ? static_cast<double>(o) * static_cast<double>(in - 1) / static_cast<double>(out - 1) : 0.0;
  double g = (static_cast<double>(o) + 0.5) * static_cast<double>(in) / static_cast<double>(out) - 0.5;
  return std::min(std::max(g, 0.0), static_cast<double>(in - 1));
}

bool grids_match(int64_t in, int64_t out, double scale, bool linear, bool align) {
  for (int64_t o = 0; o < out; ++o) {
    // indices past in - 1 sample the last row (the kernel clamps i0 + 1): compare clamped
    double sim = std::min<double>(src_coord(o, in, out, scale, align, linear), static_cast<double>(in - 1));
    if (!linear) sim = std::floor(sim);
    if (std::abs(sim - mil_coord(o, in, out, linear, align)) > 1e-6) return false;
  }
  return true;
}

// [out, in] matrix whose row o holds the simulator's sampling weights of output o.
std::vector<float> resize_matrix(int64_t in, int64_t out, double scale, bool linear, bool align) {
  std::vector<float> m(static_cast<size_t>(out * in), 0.0f);
  for (int64_t o = 0; o < out; ++o) {
    float f = src_coord(o, in, out, scale, align, linear);
    int64_t i0 = static_cast<int64_t>(f), i1 = std::min(i0 + 1, in - 1);
    float l = linear ? f - static_cast<float>(i0) : 0.0f;
    m[static_cast<size_t>(o * in + i0)] += 1 - l;
    m[static_cast<size_t>(o * in + i1)] += l;
  }
  return m;
}

std::vector<float> transposed(const std::vector<float>& m, int64_t rows, int64_t cols) {
  std::vector<float> t(m.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[static_cast<size_t>(c * rows + r)] = m[static_cast<size_t>(r * cols + c)];
  return t;
}

void emit_resize(milx::Builder& b, const milx::StepView& s) {
  using namespace milx;
  const Shape &in = s.in_types[0].shape, &out = s.out_types[0].shape;
  bool linear = s.attrs().s("mode") == "bilinear", align = s.attrs().b("align_corners");
  auto sc = s.attrs().floats("scale");
  bool by_scale = s.node.op->name.rfind("upsample", 0) == 0;
  if (grids_match(in[2], out[2], sc[0], linear, align) && grids_match(in[3], out[3], sc[1], linear, align)) {
    const Type& t = s.out_types[0];
    if (by_scale && linear) {
      b.op("upsample_bilinear", {{"x", {s.in[0]}}, {"scale_factor_height", {b.float_scalar(double(out[2]) / double(in[2]), DType::fp32, "scale_h")}},
                                 {"scale_factor_width", {b.float_scalar(double(out[3]) / double(in[3]), DType::fp32, "scale_w")}},
                                 {"align_corners", {B(b, align, "align_corners")}}, {"half_pixel_centers", {B(b, !align, "half_pixel_centers")}}},
           t, s.out[0]);
    } else if (by_scale) {
      b.op("upsample_nearest_neighbor", {{"x", {s.in[0]}}, {"scale_factor_height", {b.float_scalar(double(out[2]) / double(in[2]), DType::fp32, "scale_h")}},
                                         {"scale_factor_width", {b.float_scalar(double(out[3]) / double(in[3]), DType::fp32, "scale_w")}}},
           t, s.out[0]);
    } else if (linear) {
      b.op("resize_bilinear", {{"x", {s.in[0]}}, {"target_size_height", {I(b, out[2], "height")}}, {"target_size_width", {I(b, out[3], "width")}},
                               {"sampling_mode", {S(b, align ? "STRICT_ALIGN_CORNERS" : "UNALIGN_CORNERS", "sampling_mode")}}},
           t, s.out[0]);
    } else {
      b.op("resize_nearest_neighbor", {{"x", {s.in[0]}}, {"target_size_height", {I(b, out[2], "height")}},
                                       {"target_size_width", {I(b, out[3], "width")}}},
           t, s.out[0]);
    }
    return;
  }
  const Type& xt = s.in_types[0];
  Shape mid{in[0], in[1], out[2], in[3]};
  std::string sh = b.tensor(resize_matrix(in[2], out[2], sc[0], linear, align), {out[2], in[2]}, xt.dtype, "rows");
  std::string h = b.op("matmul", {{"x", {sh}}, {"y", {s.in[0]}}, {"transpose_x", {B(b, false, "transpose_x")}},
                                  {"transpose_y", {B(b, false, "transpose_y")}}}, like(xt, mid));
  std::string sw = b.tensor(transposed(resize_matrix(in[3], out[3], sc[1], linear, align), out[3], in[3]), {in[3], out[3]}, xt.dtype, "cols");
  b.op("matmul", {{"x", {h}}, {"y", {sw}}, {"transpose_x", {B(b, false, "transpose_x")}}, {"transpose_y", {B(b, false, "transpose_y")}}},
       s.out_types[0], s.out[0]);
}

}  // namespace

// MIL emission of this family's ops (the rest use the default mil_op(x=..., y=...)).
void attach_pool_mil() {
  using namespace milx;
  for (const char* n : {"max_pool", "avg_pool"}) {
    bool avg = n == std::string("avg_pool");
    emit(n, [avg](Builder& b, const StepView& s) {
      auto p = s.attrs().ints("padding");
      Args a{{"x", {s.in[0]}}, {"kernel_sizes", {Is(b, s.attrs().ints("kernel_size"), "kernel_sizes")}},
             {"strides", {Is(b, s.attrs().ints("stride"), "strides")}}, {"pad_type", {S(b, "custom", "pad_type")}},
             {"pad", {Is(b, {p[0], p[0], p[1], p[1]}, "pad")}}, {"ceil_mode", {B(b, s.attrs().b("ceil_mode"), "ceil_mode")}}};
      if (avg) a.push_back({"exclude_padding_from_average", {B(b, !s.attrs().b("count_include_pad"), "exclude_padding")}});
      b.op(avg ? "avg_pool" : "max_pool", a, s.out_types[0], s.out[0]);
    });
  }
  for (const char* n : {"upsample_nearest", "upsample_bilinear", "resize_bilinear", "resize_nearest"})
    emit(n, emit_resize);
  emit("affine", [](Builder& b, const StepView& s) {
    int64_t N = s.in_types[1].shape[0];
    std::string m = b.op("reshape", {{"x", {s.in[1]}}, {"shape", {Is(b, {N, 6}, "shape")}}}, like(s.in_types[1], {N, 6}));
    b.op("affine", {{"x", {s.in[0]}}, {"transform_matrix", {m}}, {"output_height", {I(b, s.out_types[0].shape[2], "height")}},
                    {"output_width", {I(b, s.out_types[0].shape[3], "width")}}, {"sampling_mode", {S(b, "bilinear", "sampling_mode")}},
                    {"padding_mode", {S(b, "constant", "padding_mode")}}, {"padding_value", {F(b, s, 0.0, "padding_value")}},
                    {"coordinates_mode", {S(b, "normalized_minus_one_to_one", "coordinates_mode")}},
                    {"align_corners", {B(b, s.attrs().b("align_corners"), "align_corners")}}},
         s.out_types[0], s.out[0]);
  });
}

}  // namespace af

// ---- gradients (in other ops) ----
#include "ops/grad_util.h"

namespace af {

void attach_affine_grad();

namespace {

using namespace gr;

// Pooling's gradient, one kernel tap at a time: the window entry each output read (max: the
// first maximum, as torch; avg: all, divided as the forward divided) gets g back, placed by
// the adjoint of the strided read; the padding is cut off at the end.
// Windows that tile x exactly (stride = kernel, no padding): each window's entries laid along
// a last axis, so max's routing is one comparison and a running count (first maximum wins).
Tensor tiled_pool_grad(const Node& n, const Tensor& g, bool is_max) {
  const Tensor& x = n.inputs[0];
  auto k = n.attrs.ints("kernel_size");
  int64_t N = x.shape()[0], C = x.shape()[1], Ho = g.shape()[2], Wo = g.shape()[3], kk = k[0] * k[1];
  Tensor gw = reshape(g, {N * C, Ho, Wo, 1});
  Tensor r;
  if (is_max) {
    Tensor xw = reshape(permute(reshape(x, {N * C, Ho, k[0], Wo, k[1]}), {0, 1, 3, 2, 4}), {N * C, Ho, Wo, kk});
    Tensor y = reshape(op("max_pool", {x}, n.attrs), {N * C, Ho, Wo, 1});
    Tensor hit = cast(op("equal", {xw, y}), g.dtype());
    // score_j = (hits before j) + kk * hit_j: kk exactly where j is the first hit (a miss
    // scores at most j < kk; a later hit at least kk + 1). Exact in fp16 for kk < 1024.
    std::vector<float> weigh(static_cast<size_t>(kk * kk), 0.0f);
    for (int64_t i = 0; i < kk; ++i)
      for (int64_t j = i; j < kk; ++j) weigh[static_cast<size_t>(i * kk + j)] = i == j ? static_cast<float>(kk) : 1.0f;
    Tensor score = op("matmul", {hit, constant(std::move(weigh), {kk, kk}, g.dtype())});
    r = mul(cast(op("equal", {score, like(hit, static_cast<double>(kk))}), g.dtype()), gw);
  } else {
    r = mul(mul(gw, like(g, 1.0 / static_cast<double>(kk))), constant(std::vector<float>(kk, 1.0f), {1, 1, 1, kk}, g.dtype()));
  }
  return reshape(permute(reshape(r, {N * C, Ho, Wo, k[0], k[1]}), {0, 1, 3, 2, 4}), x.shape());
}

std::vector<Tensor> pool_grad(const Node& n, const std::vector<Tensor>& g, bool is_max) {
  const Tensor& x = n.inputs[0];
  auto k = n.attrs.ints("kernel_size"), st = n.attrs.ints("stride"), p = n.attrs.ints("padding");
  int64_t H = x.shape()[2], W = x.shape()[3], Ho = n.outputs[0].shape[2], Wo = n.outputs[0].shape[3];
  if (st == k && p[0] == 0 && p[1] == 0 && Ho * k[0] == H && Wo * k[1] == W && k[0] * k[1] <= 1024) return {tiled_pool_grad(n, g[0], is_max)};
  int64_t Hp = std::max(H + 2 * p[0], (Ho - 1) * st[0] + k[0]), Wp = std::max(W + 2 * p[1], (Wo - 1) * st[1] + k[1]);
  Tensor gs = g[0], xp, y;
  if (is_max) {
    xp = op("pad", {x}, {{"pad", std::vector<int64_t>{p[1], Wp - W - p[1], p[0], Hp - H - p[0]}},
                         {"mode", std::string("constant")}, {"value", -65504.0}});
    y = op("max_pool", {x}, n.attrs);
  } else {  // divide by what each output divided by (torch avg_pool2d's rule)
    bool include_pad = n.attrs.b("count_include_pad");
    std::vector<float> div(static_cast<size_t>(Ho * Wo));
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow) {
        int64_t hs = oh * st[0] - p[0], ws = ow * st[1] - p[1];
        int64_t he = std::min(hs + k[0], H + p[0]), we = std::min(ws + k[1], W + p[1]);
        int64_t size = (he - hs) * (we - ws);
        if (!include_pad)
          size = (std::min(he, H) - std::max<int64_t>(hs, 0)) * (std::min(we, W) - std::max<int64_t>(ws, 0));
        div[static_cast<size_t>(oh * Wo + ow)] = 1.0f / static_cast<float>(size);
      }
    gs = mul(g[0], constant(std::move(div), {1, 1, Ho, Wo}, g[0].dtype()));
  }
  Tensor acc, taken;
  for (int64_t ky = 0; ky < k[0]; ++ky)
    for (int64_t kx = 0; kx < k[1]; ++kx) {
      Tensor part = gs;
      if (is_max) {
        Tensor xs = take_strided(take_strided(xp, 2, ky, st[0], Ho), 3, kx, st[1], Wo);
        Tensor hit = cast(op("equal", {xs, y}), g[0].dtype());
        if (taken.valid()) hit = mul(hit, sub(like(hit, 1.0), taken));
        taken = taken.valid() ? op("add", {taken, hit}) : hit;
        part = mul(gs, hit);
      }
      Tensor placed = scatter_strided(scatter_strided(part, 2, ky, st[0], Hp), 3, kx, st[1], Wp);
      acc = acc.valid() ? op("add", {acc, placed}) : placed;
    }
  return {narrow(narrow(acc, 2, p[0], H), 3, p[1], W)};
}

std::vector<Tensor> resize_grad(const Node& n, const std::vector<Tensor>& g) {
  const Shape& s = n.inputs[0].shape();
  const Shape& os = n.outputs[0].shape;
  bool linear = n.attrs.s("mode") == "bilinear", align = n.attrs.b("align_corners");
  auto sc = n.attrs.floats("scale");
  DType t = g[0].dtype();
  // Resizes are separable and linear: y = A_h x A_w^T per plane, so dx = A_h^T g A_w.
  Tensor ah = constant(resize_matrix(s[2], os[2], sc[0], linear, align), {os[2], s[2]}, t);
  Tensor aw = constant(resize_matrix(s[3], os[3], sc[1], linear, align), {os[3], s[3]}, t);
  Tensor gw = op("matmul", {g[0], aw});                                     // (N, C, Ho, W)
  return {op("matmul", {permute(ah, {1, 0}), gw})};                         // (N, C, H, W)
}

}  // namespace

void attach_pool_grad() {
  mutable_op("max_pool").grad = [](const Node& n, const std::vector<Tensor>& g) { return pool_grad(n, g, true); };
  mutable_op("avg_pool").grad = [](const Node& n, const std::vector<Tensor>& g) { return pool_grad(n, g, false); };
  for (const char* name : {"upsample_nearest", "upsample_bilinear", "resize_nearest", "resize_bilinear"})
    mutable_op(name).grad = resize_grad;
  attach_affine_grad();
}

}  // namespace af

// ---- affine's gradient: through its definition (sampling grid, floor, four gathers) ----

namespace af {

namespace {

Tensor affine_decomposed(const std::vector<Tensor>& in, const Attrs& a) {
  using namespace gr;
  const Tensor &x = in[0], &theta = in[1];
  bool align = a.b("align_corners");
  int64_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  auto size = a.ints("size");
  int64_t Ho = size[0], Wo = size[1], P = Ho * Wo;
  DType t = x.dtype();
  std::vector<float> grid(static_cast<size_t>(P * 3));
  for (int64_t i = 0; i < Ho; ++i)
    for (int64_t j = 0; j < Wo; ++j) {
      float* r = &grid[static_cast<size_t>((i * Wo + j) * 3)];
      r[0] = affine_base(j, Wo, align), r[1] = affine_base(i, Ho, align), r[2] = 1.0f;
    }
  Tensor g = op("matmul", {constant(std::move(grid), {1, P, 3}, t), permute(theta, {0, 2, 1})});  // (N, P, 2)
  auto coord = [&](int k, int64_t n) {  // pixel coordinate from the normalised one
    Tensor c = reshape(narrow(g, 2, k, 1), {N, 1, P});
    double s = align ? (n - 1) / 2.0 : n / 2.0, o = align ? (n - 1) / 2.0 : (n - 1) / 2.0;
    return op("add", {mul(c, like(c, s)), like(c, o)});
  };
  Tensor fx = coord(0, W), fy = coord(1, H);
  Tensor x0 = op("floor", {fx}), y0 = op("floor", {fy});
  Tensor lx = sub(fx, x0), ly = sub(fy, y0);
  Tensor flat = reshape(x, {N, C, H * W});
  Tensor acc;
  for (int dy = 0; dy < 2; ++dy)
    for (int dx = 0; dx < 2; ++dx) {
      Tensor xi = op("add", {x0, like(x0, dx)}), yi = op("add", {y0, like(y0, dy)});
      auto inside = [&](const Tensor& v, int64_t n) {
        return mul(cast(op("greater_equal", {v, like(v, 0.0)}), t), cast(op("less_equal", {v, like(v, n - 1.0)}), t));
      };
      Tensor valid = mul(inside(xi, W), inside(yi, H));
      Tensor cx = op("clip", {xi}, {{"min", 0.0}, {"max", W - 1.0}}), cy = op("clip", {yi}, {{"min", 0.0}, {"max", H - 1.0}});
      Tensor idx = index_cast(op("add", {mul(cy, like(cy, static_cast<double>(W))), cx}));  // (N, 1, P)
      idx = op("tile", {idx}, {{"dims", std::vector<int64_t>{1, C, 1}}});
      Tensor v = op("gather", {flat, idx}, {{"dim", int64_t{2}}});
      Tensor wx = dx ? lx : sub(like(lx, 1.0), lx), wy = dy ? ly : sub(like(ly, 1.0), ly);
      Tensor term = mul(v, mul(mul(wx, wy), valid));
      acc = acc.valid() ? op("add", {acc, term}) : term;
    }
  return reshape(acc, {N, C, Ho, Wo});
}

}  // namespace

void attach_affine_grad() {
  mutable_op("affine").grad = gr::through([](const std::vector<Tensor>& in, const Attrs& a) {
    return std::vector<Tensor>{affine_decomposed(in, a)};
  });
}

}  // namespace af
