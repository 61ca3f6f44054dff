// conv: 2-D convolution (OIHW weights, PyTorch semantics), im2col + GEMM on the simulator.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "aneforge/fp16.h"
#include "ops/kernel_util.h"
#include "ops/register.h"
#include "runtime/blas.h"
#include "runtime/gemm_fma.h"
#include "runtime/simd.h"

namespace af {

namespace {

// 1-D convs (x (N, C, L), weight (O, C/g, k)) are 2-D convs with H = 1.
Shape as_2d(const Shape& s) { return s.size() == 3 ? Shape{s[0], s[1], 1, s[2]} : s; }

std::vector<int64_t> pair_1d(InferContext& c, const char* key, int64_t dflt, bool one_d) {
  if (!one_d) return int_pair(c, key, {dflt, dflt}, 1);
  auto v = c.attrs.has(key) ? c.attrs.ints(key) : std::vector<int64_t>{dflt};
  if (v.size() == 2 && v[0] == 1) v.erase(v.begin());  // canonical form of a 1-D conv
  if (v.size() != 1 || v[0] < 1) c.fail(std::string(key) + " of a 1-D conv must be one int >= 1, got " + attr_str(v));
  return {1, v[0]};
}

void infer_conv(InferContext& c) {
  const Tensor &x = c.in(0), &w = c.in(1);
  c.expect_rank(0, 3, 4, "x");
  bool one_d = x.rank() == 3;
  if (w.rank() != x.rank())
    c.fail(std::string("weight must be ") + (one_d ? "(O, C/groups, k) for x " : "OIHW (rank 4) for x ") +
           shape_str(x.shape()) + ", got weight " + shape_str(w.shape()));
  c.expect_float(0, "x");
  c.expect_same_dtype(0, 1);
  int64_t groups = c.attrs.i("groups", 1);
  if (groups < 1) c.fail("groups must be >= 1, got " + std::to_string(groups));
  const Shape xs = as_2d(x.shape()), ws = as_2d(w.shape());
  int64_t C = xs[1], O = ws[0];
  if (ws[1] * groups != C) {
    std::string g = groups == 1 ? "" : " with groups=" + std::to_string(groups);
    c.fail("weight " + shape_str(ws) + g + " expects " + std::to_string(ws[1] * groups) +
           " input channels, got x " + shape_str(xs));
  }
  if (O % groups != 0)
    c.fail("weight " + shape_str(w.shape()) + " has " + std::to_string(O) +
           " output channels, not divisible by groups=" + std::to_string(groups));
  bool has_bias = c.inputs.size() > 2;
  if (has_bias) {
    const Tensor& b = c.in(2);
    if (b.shape() != Shape{O})
      c.fail("bias must have shape (" + std::to_string(O) + ",) to match weight " + shape_str(ws) +
             ", got bias " + shape_str(b.shape()));
    c.expect_same_dtype(0, 2);
  }
  auto stride = pair_1d(c, "stride", 1, one_d), dil = pair_1d(c, "dilation", 1, one_d);
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
    if (one_d && p.size() == 1) pad = {0, 0, p[0], p[0]};
    else if (one_d && p.size() == 2) pad = {0, 0, p[0], p[1]};  // (left, right)
    else if (p.size() == 1) pad = {p[0], p[0], p[0], p[0]};
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
  c.attrs.set("stride", one_d ? std::vector<int64_t>{stride[1]} : stride);
  c.attrs.set("dilation", one_d ? std::vector<int64_t>{dil[1]} : dil);
  c.attrs.set("pad", one_d ? std::vector<int64_t>{pad[2], pad[3]} : pad);
  c.attrs.set("groups", groups);
  c.attrs.set("has_bias", has_bias);
  c.outputs = {{one_d ? Shape{xs[0], O, Wo} : Shape{xs[0], O, Ho, Wo}, x.dtype()}};
}

struct ConvGeom {
  int64_t N, C, H, W, O, kh, kw, Ho, Wo, sh, sw, dh, dw, pt, pl, groups;
};

ConvGeom geom(const KernelArgs& k) {
  const Shape xs = as_2d(k.in_type(0).shape), ws = as_2d(k.in_type(1).shape), os = as_2d(k.out_type(0).shape);
  auto st = k.node.attrs.ints("stride"), dl = k.node.attrs.ints("dilation"), pd = k.node.attrs.ints("pad");
  if (st.size() == 1) st.insert(st.begin(), 1);
  if (dl.size() == 1) dl.insert(dl.begin(), 1);
  if (pd.size() == 2) pd.insert(pd.begin(), {0, 0});
  return {xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], ws[3], os[2], os[3],
          st[0], st[1], dl[0], dl[1], pd[0], pd[2], k.node.attrs.i("groups")};
}

// col[(c*kh + i)*kw + j][(oh - oh0)*Wo + ow] for channels [c0, c0 + nc) of image x and
// output rows [oh0, oh1).
void im2col(const float* x, const ConvGeom& g, int64_t c0, int64_t nc, int64_t oh0, int64_t oh1, float* col) {
  int64_t rows = nc * g.kh * g.kw, P = (oh1 - oh0) * g.Wo;
  // about 32K elements per task: a small image's patches are copied by one thread (waking the
  // other cost more than the copy, once per image of a batch)
  parallel_for(rows, static_cast<size_t>(std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, P))),
               [&](size_t rb, size_t re) {
    for (size_t r = rb; r < re; ++r) {
      int64_t c = static_cast<int64_t>(r) / (g.kh * g.kw), ij = static_cast<int64_t>(r) % (g.kh * g.kw);
      int64_t i = ij / g.kw, j = ij % g.kw;
      const float* xc = x + (c0 + c) * g.H * g.W;
      float* dst = col + r * P;
      for (int64_t oh = oh0; oh < oh1; ++oh) {
        int64_t ih = oh * g.sh - g.pt + i * g.dh;
        float* d = dst + (oh - oh0) * g.Wo;
        if (ih < 0 || ih >= g.H) {
          std::memset(d, 0, sizeof(float) * g.Wo);
          continue;
        }
        const float* xr = xc + ih * g.W;
        int64_t iw0 = -g.pl + j * g.dw;
        // the output columns whose input column ow * sw + iw0 lies in [0, W): zeros either side
        const int64_t lo = std::min<int64_t>(g.Wo, iw0 >= 0 ? 0 : (-iw0 + g.sw - 1) / g.sw);
        const int64_t hi = std::max<int64_t>(lo, std::min<int64_t>(g.Wo, g.W - 1 - iw0 < 0 ? 0 : (g.W - 1 - iw0) / g.sw + 1));
        for (int64_t ow = 0; ow < lo; ++ow) d[ow] = 0.0f;
        if (hi > lo) {
          const float* src = xr + lo * g.sw + iw0;
          if (g.sw == 1) std::memcpy(d + lo, src, sizeof(float) * (hi - lo));
          else if (g.sw == 2) for (int64_t c = 0; c < hi - lo; ++c) d[lo + c] = src[2 * c];  // a constant stride vectorises
          else for (int64_t c = 0; c < hi - lo; ++c) d[lo + c] = src[c * g.sw];
        }
        for (int64_t ow = hi; ow < g.Wo; ++ow) d[ow] = 0.0f;
      }
    }
  });
}

// Outputs [0, n) of one depthwise channel, each the sum of its taps in order from +0:
// output q's tap t reads src[t][q]. Sixteen outputs at a time stay in registers through
// every tap (one store each, not one per tap).
[[gnu::always_inline]] inline void depthwise_taps_body(const float* const* src, const float* w, int64_t taps, int64_t n,
                                                       float* out) {
  int64_t q = 0;
  for (; q + 16 <= n; q += 16) {
    float acc[16] = {};
    for (int64_t t = 0; t < taps; ++t) {
      const float* s = src[t] + q;
      const float wv = w[t];
      for (int l = 0; l < 16; ++l) acc[l] += s[l] * wv;
    }
    for (int l = 0; l < 16; ++l) out[q + l] = acc[l];
  }
  for (; q < n; ++q) {
    float a = 0.0f;
    for (int64_t t = 0; t < taps; ++t) a += src[t][q] * w[t];
    out[q] = a;
  }
}

void depthwise_taps(const float* const* src, const float* w, int64_t taps, int64_t n, float* out) {
  depthwise_taps_body(src, w, taps, n, out);
}

#if defined(AF_X86)
// The same operations on 8 lanes (AVX), where the CPU has it: the same bits.
__attribute__((target("avx"))) void depthwise_taps_avx(const float* const* src, const float* w, int64_t taps, int64_t n,
                                                      float* out) {
  depthwise_taps_body(src, w, taps, n, out);
}
#endif

// Depthwise, one channel, as long vector loops: the zero-padded plane split into its
// stride phases (plane (a, b) holds padded rows a, a + sh, ... and columns b, b + sw, ...),
// each Hq x Wq, so that every tap reads one phase at one offset and output (oh, ow) is
// position oh * Wq + ow of one flat loop over Ho * Wq in whole blocks of 16 (the columns
// past Wo and the last block's spare outputs are computed and dropped). A padding tap adds 0 * w = +-0, which leaves a sum that starts at +0 as it is (it
// never becomes -0), so every output is its in-range taps' sum in (i, j) order, as in the
// row loops below. 0 * inf is NaN: a non-finite weight returns false.
bool depthwise_phases(const float* xc, const float* wk, const ConvGeom& g, float* yo) {
  const int64_t taps = g.kh * g.kw;
  for (int64_t t = 0; t < taps; ++t)
    if (!std::isfinite(wk[t])) return false;
  const int64_t ekh = g.dh * (g.kh - 1) + 1, ekw = g.dw * (g.kw - 1) + 1;
  const int64_t Hq = g.Ho + (ekh - 1) / g.sh, Wq = g.Wo + (ekw - 1) / g.sw;
  const int64_t n = (g.Ho * Wq + 15) / 16 * 16;  // whole blocks of 16: no scalar tail (7x7 planes)
  // + Wq + 16: the dropped columns of the last rows, and the last block, read past Hq rows
  const int64_t plane = Hq * Wq + Wq + 16;
  thread_local std::vector<float> phases, acc;
  thread_local std::vector<const float*> src;
  phases.assign(static_cast<size_t>(g.sh * g.sw * plane), 0.0f);
  for (int64_t a = 0; a < g.sh; ++a)
    for (int64_t b = 0; b < g.sw; ++b) {
      float* ph = phases.data() + (a * g.sw + b) * plane;
      // columns c whose input column c * sw + b - pl lies in [0, W)
      const int64_t c0 = std::max<int64_t>(0, (g.pl - b + g.sw - 1) / g.sw);
      const int64_t c1 = std::min<int64_t>(Wq, g.W - 1 + g.pl - b < 0 ? 0 : (g.W - 1 + g.pl - b) / g.sw + 1);
      for (int64_t r = 0; r < Hq; ++r) {
        const int64_t ih = r * g.sh + a - g.pt;
        if (ih < 0 || ih >= g.H) continue;
        const float* xr = xc + ih * g.W + (c0 * g.sw + b - g.pl);  // input column of c0
        float* dst = ph + r * Wq + c0;
        if (c1 <= c0) continue;
        if (g.sw == 1) std::memcpy(dst, xr, sizeof(float) * (c1 - c0));
        else if (g.sw == 2) for (int64_t c = 0; c < c1 - c0; ++c) dst[c] = xr[2 * c];  // a constant stride vectorises
        else for (int64_t c = 0; c < c1 - c0; ++c) dst[c] = xr[c * g.sw];
      }
    }
  src.resize(static_cast<size_t>(taps));
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t a = (i * g.dh) % g.sh, b = (j * g.dw) % g.sw;
      src[static_cast<size_t>(i * g.kw + j)] =
          phases.data() + (a * g.sw + b) * plane + (i * g.dh) / g.sh * Wq + (j * g.dw) / g.sw;
    }
  acc.resize(static_cast<size_t>(n));
#if defined(AF_X86)
  static const bool avx = __builtin_cpu_supports("avx");
  if (avx) depthwise_taps_avx(src.data(), wk, taps, n, acc.data());
  else depthwise_taps(src.data(), wk, taps, n, acc.data());
#else
  depthwise_taps(src.data(), wk, taps, n, acc.data());
#endif
  for (int64_t oh = 0; oh < g.Ho; ++oh) std::memcpy(yo + oh * g.Wo, acc.data() + oh * Wq, sizeof(float) * g.Wo);
  return true;
}

// One input channel per group (depthwise): direct loops, no im2col. Each output row
// accumulates tap by tap over the columns that tap reaches (a vector loop per tap), so every
// output sums its in-range taps in (i, j) order from 0, as a per-pixel loop would.
void conv_depthwise(const float* x, const float* w, const ConvGeom& g, float* y) {
  int64_t mult = g.O / g.groups;
  parallel_for(g.O, 1, [&](size_t ob, size_t oe) {
    for (size_t o = ob; o < oe; ++o) {
      const float* xc = x + (static_cast<int64_t>(o) / mult) * g.H * g.W;
      const float* wk = w + o * g.kh * g.kw;
      float* yo = y + o * g.Ho * g.Wo;
      if (depthwise_phases(xc, wk, g, yo)) continue;
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        float* acc = yo + oh * g.Wo;
        std::fill(acc, acc + g.Wo, 0.0f);
        for (int64_t i = 0; i < g.kh; ++i) {
          int64_t ih = oh * g.sh - g.pt + i * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          const float* xr = xc + ih * g.W;
          for (int64_t j = 0; j < g.kw; ++j) {
            // the output columns whose input column iw = ow * sw + shift lies in [0, W)
            const int64_t shift = j * g.dw - g.pl, s = g.sw;
            const int64_t ow0 = shift >= 0 ? 0 : (-shift + s - 1) / s;
            const int64_t ow1 = std::min<int64_t>(g.Wo, g.W - 1 - shift < 0 ? 0 : (g.W - 1 - shift) / s + 1);
            const float wv = wk[i * g.kw + j];
            if (s == 1)
              for (int64_t ow = ow0; ow < ow1; ++ow) acc[ow] += xr[ow + shift] * wv;
            else
              for (int64_t ow = ow0; ow < ow1; ++ow) acc[ow] += xr[ow * s + shift] * wv;
          }
        }
      }
    }
  });
}

constexpr int64_t kPatchBlock = int64_t{1} << 20;  // floats of im2col patches per GEMM

// Channels [o0, o1) of one image's output y (P positions each), columns [p0, p0 + np) of
// each: the bias added, then the sim's rounding and the layer's fused ops (KernelArgs::finish),
// right after the GEMM that wrote them, while they are in cache. Whole rows go as one piece.
void finish_channels(const KernelArgs& k, const float* bias, float* y, int64_t P, int64_t o0, int64_t o1,
                     int64_t p0, int64_t np) {
  if (!bias && !k.finish) return;
  const bool whole_rows = p0 == 0 && np == P;
  parallel_for(static_cast<size_t>(o1 - o0), static_cast<size_t>(std::max<int64_t>(1, (int64_t{1} << 14) / np)),
               [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      float* seg = y + (o0 + static_cast<int64_t>(i)) * P + p0;
      if (bias) {
        const float bv = bias[o0 + static_cast<int64_t>(i)];
        for (int64_t q = 0; q < np; ++q) seg[q] += bv;
      }
      if (k.finish && !whole_rows) (*k.finish)(seg, static_cast<size_t>(np));
    }
    if (k.finish && whole_rows) (*k.finish)(y + (o0 + static_cast<int64_t>(b)) * P, (e - b) * static_cast<size_t>(P));
  });
}

// The conv as tasks of the sim's GEMM (runtime/gemm_fma.h): each task multiplies a block of
// patches (im2col, or the input itself for a 1x1 conv) into its channels and columns of the
// output and finishes them there (bias, the sim's rounding, fused ops) while they are in
// cache. Tasks are images x groups x channel chunks x column blocks; the channels are split
// only when the blocks are too few to share among the threads (a 7x7 plane), and then the
// blocks' patches are made once, before the tasks, rather than by each chunk.
void conv_fma_tasks(const KernelArgs& k, const float* x, const float* w, const uint16_t* w16, const float* bias,
                    const ConvGeom& g, bool pointwise, float* y) {
  const int64_t Cg = g.C / g.groups, Og = g.O / g.groups, Kg = Cg * g.kh * g.kw, P = g.Ho * g.Wo;
  // Column blocks of the output: pointwise, about 256 positions (128 to 1024 measured the
  // same on MobileNetV2's layers). Else about 256 KiB of patches (64 KiB to 1 MiB measured
  // the same on a UNet): whole output rows where a row is at least 64 positions (a tile's
  // width), else runs of positions made from the patches of the rows they touch.
  constexpr int64_t kCols = 256, kPatchFloats = int64_t{1} << 16, kTile = 64;
  const int64_t budget = std::max<int64_t>(1, kPatchFloats / std::max<int64_t>(1, Kg));  // positions
  int64_t cols = pointwise ? kCols
                 : g.Wo >= kTile ? std::max<int64_t>(1, budget / g.Wo) * g.Wo
                                 : std::max<int64_t>(1, budget / kTile) * kTile;
  const int64_t ncb = (P + cols - 1) / cols;
  // blocks of positions (not whole rows) of even width, in whole vectors: 196 positions as
  // 112 + 84 rather than 192 + 4
  if (pointwise || g.Wo < kTile) cols = ((P + ncb - 1) / ncb + 15) / 16 * 16;
  const int64_t blocks = g.N * g.groups * ncb, threads = num_threads();
  int64_t nrc = blocks >= 2 * threads ? 1 : std::min<int64_t>((Og + 5) / 6, (2 * threads + blocks - 1) / blocks);
  const int64_t chunk = ((Og + nrc - 1) / nrc + 5) / 6 * 6;  // whole 6-row tiles
  nrc = (Og + chunk - 1) / chunk;
  // block b = (n * groups + gi) * ncb + cb: positions [p0, p0 + np), from the patches of
  // output rows [oh0, oh1)
  auto span = [&](int64_t cb, int64_t& p0, int64_t& np, int64_t& oh0, int64_t& oh1) {
    p0 = cb * cols, np = std::min(cols, P - p0);
    oh0 = p0 / g.Wo, oh1 = (p0 + np + g.Wo - 1) / g.Wo;
  };
  const int64_t max_rows = (cols + g.Wo - 1) / g.Wo + 1;  // rows a block can touch
  auto make_patches = [&](int64_t b, float* buf) {
    int64_t p0, np, oh0, oh1;
    span(b % ncb, p0, np, oh0, oh1);
    const int64_t gi = b / ncb % g.groups, n = b / ncb / g.groups;
    im2col(x + n * g.C * g.H * g.W, g, gi * Cg, Cg, oh0, oh1, buf);
  };
  // shared patches when the channels are split: block b's at b * Kg * max_rows * Wo
  const bool shared = !pointwise && nrc > 1;
  std::vector<float> shared_patches;
  if (shared) {
    shared_patches.resize(static_cast<size_t>(blocks * Kg * max_rows * g.Wo));
    for (int64_t b = 0; b < blocks; ++b) make_patches(b, shared_patches.data() + b * Kg * max_rows * g.Wo);
  }
  parallel_for(static_cast<size_t>(blocks * nrc), 1, [&](size_t tb, size_t te) {
    for (size_t t = tb; t < te; ++t) {
      const int64_t rc = static_cast<int64_t>(t) % nrc, b = static_cast<int64_t>(t) / nrc;
      const int64_t cb = b % ncb, gi = b / ncb % g.groups, n = b / ncb / g.groups;
      int64_t p0, np, oh0, oh1;
      span(cb, p0, np, oh0, oh1);
      const float* col;  // the block's first column of patches, rows ldb apart
      int64_t ldb = (oh1 - oh0) * g.Wo;
      if (pointwise) {
        col = x + n * g.C * P + gi * Cg * P + p0, ldb = P;
      } else if (shared) {
        col = shared_patches.data() + b * Kg * max_rows * g.Wo + (p0 - oh0 * g.Wo);
      } else {
        float* buf = scratch(static_cast<size_t>(Kg * ldb), 3);
        make_patches(b, buf);
        col = buf + (p0 - oh0 * g.Wo);
      }
      // the block is computed and finished as one contiguous piece (one call of finish),
      // in place when it is whole rows of y, else in a buffer whose rows are then copied
      float* yn = y + n * g.O * P;
      const int64_t o0 = gi * Og + rc * chunk, o1 = std::min(gi * Og + Og, o0 + chunk);
      const bool in_place = np == P;
      float* blk = in_place ? yn + o0 * P : scratch(static_cast<size_t>((o1 - o0) * np), 2);
      const float* wrows;
      if (w16) {  // an fp16 weight not kept widened: this task's rows, widened here
        float* wbuf = scratch(static_cast<size_t>((o1 - o0) * Kg), 1);
        halves_to_floats(w16 + o0 * Kg, wbuf, static_cast<size_t>((o1 - o0) * Kg));
        wrows = wbuf;
      } else {
        wrows = w + o0 * Kg;
      }
      gemm_fma(wrows, Kg, col, ldb, blk, np, o1 - o0, np, Kg);
      if (bias)
        for (int64_t o = o0; o < o1; ++o)
          for (int64_t q = 0, i = (o - o0) * np; q < np; ++q) blk[i + q] += bias[o];
      if (k.finish) (*k.finish)(blk, static_cast<size_t>((o1 - o0) * np));
      if (!in_place)
        for (int64_t o = o0; o < o1; ++o)
          std::memcpy(yn + o * P + p0, blk + (o - o0) * np, sizeof(float) * static_cast<size_t>(np));
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
  // An fp16-stored weight: a 1x1 conv over a few positions (a language model's decode step in
  // the (B, C, 1, S) layout) or with a large weight (its prefill) runs as linear does, reading
  // the fp16 rows in place or widening a panel at a time; others use it whole, widened once and
  // kept (the sim's weight cache) or, past the cache's limit, on every call.
  const uint16_t* wh = k.half(1);
  bool as_linear = wh && pointwise && g.groups == 1 && (P <= kFp16RowsMax || g.O * g.C > (int64_t{1} << 22));
  // The sim's own GEMM where it is the faster: a reduction of one block (one chain), a 1x1
  // conv (no patches), or patches past kPatchBlock (a UNet's wide planes) into at most 128
  // channels, where BLAS would read them back from memory for little work per patch.
  // OpenBLAS keeps the rest (ResNet-18's 3x3 convs past 64 channels and a 3x3 conv into 256
  // channels at 56x56: its kernel ran them at the same speed or faster) and products of at most
  // kGemmFmaMinProduct, which its small-matrix kernel sums in another order (the mil
  // backend's numpy matmul too: the two stay bit for bit equal).
  const bool wide_patches = Kg * P > kPatchBlock && Og <= 128;
  const bool fma_tasks = !as_linear && !(Cg == 1 && g.groups > 1) && gemm_fma_supported() &&
                         Og * P * Kg > kGemmFmaMinProduct && (Kg <= kGemmFmaBlock || pointwise || wide_patches);
  const uint16_t* w16 = nullptr;  // for conv_fma_tasks: widened by each task
  if (wh && !as_linear) {
    // Spatial kernels only: 1x1 convs are also a language model's projections (the (B, C, 1, S)
    // layout), whose memory is bound to their fp16 weights (docs/models.md).
    const float* kept = g.kh * g.kw > 1 ? k.widened_input(1) : nullptr;
    if (kept) {  // widened once, kept by the sim's weight cache
      w = kept;
    } else if (fma_tasks) {
      w16 = wh;
    } else {
      static thread_local std::vector<float> widened;
      widened.resize(static_cast<size_t>(g.O * Kg));
      halves_to_floats(wh, widened.data(), widened.size());
      w = widened.data();
    }
  }
  if (fma_tasks) {
    conv_fma_tasks(k, x, w, w16, bias, g, pointwise, y);
    k.finished = k.finish != nullptr;
    return;
  }
  // im2col in blocks of output rows, ~4 MiB of patches: OpenBLAS runs a narrow GEMM (a UNet's
  // 32 output channels) at twice the GFLOP/s over 4096 columns as over 768, and the patches
  // still come from cache (1 MiB blocks made the 256x256 UNet 25% slower).
  const int64_t rows_blk = pointwise ? g.Ho : std::max<int64_t>(1, kPatchBlock / std::max<int64_t>(1, Kg * g.Wo));
  auto image = [&](int64_t n) {
    const float* xn = x + n * g.C * g.H * g.W;
    float* yn = y + n * g.O * P;
    if (as_linear) {  // linear over the channels: y^T (P, O) = x^T (P, C) W^T
      if (P == 1) {
        linear_rows(xn, nullptr, wh, yn, 1, g.O, g.C);
      } else {
        float *xt = scratch(static_cast<size_t>(P * g.C), 1), *yt = scratch(static_cast<size_t>(P * g.O), 2);
        permute_copy(xn, {g.C, P}, {1, 0}, xt);
        linear_rows(xt, nullptr, wh, yt, P, g.O, g.C);
        permute_copy(yt, {P, g.O}, {1, 0}, yn);
      }
    } else if (Cg == 1 && g.groups > 1) {
      conv_depthwise(xn, w, g, yn);
    } else {
      for (int64_t gi = 0; gi < g.groups; ++gi) {
        for (int64_t oh0 = 0; oh0 < g.Ho; oh0 += rows_blk) {
          int64_t oh1 = std::min(g.Ho, oh0 + rows_blk), Pb = (oh1 - oh0) * g.Wo;
          const float* col = xn + gi * Cg * g.H * g.W;
          if (!pointwise) {
            float* buf = scratch(static_cast<size_t>(Kg * Pb));
            im2col(xn, g, gi * Cg, Cg, oh0, oh1, buf);
            col = buf;
          }
          blas::sgemm(false, false, Og, Pb, Kg, 1.0f, w + gi * Og * Kg, Kg, col, Pb, 0.0f,
                      yn + gi * Og * P + oh0 * g.Wo, P);
          finish_channels(k, bias, yn, P, gi * Og, (gi + 1) * Og, oh0 * g.Wo, Pb);
        }
      }
      return;
    }
    finish_channels(k, bias, yn, P, 0, g.O, 0, P);
  };
  // Images whose GEMMs OpenBLAS runs on the calling thread (kBlasOneThread) go across the
  // pool, each the same calls as one at a time; larger ones get OpenBLAS's threads.
  const bool gemm_path = !as_linear && !(Cg == 1 && g.groups > 1);
  if (gemm_path && g.N > 1 && Og * std::min(P, rows_blk * g.Wo) * Kg <= kBlasOneThread)
    parallel_for(static_cast<size_t>(g.N), 1, [&](size_t b, size_t e) {
      for (size_t n = b; n < e; ++n) image(static_cast<int64_t>(n));
    });
  else
    for (int64_t n = 0; n < g.N; ++n) image(n);
  k.finished = k.finish != nullptr;
}

// ---- conv_transpose ----------------------------------------------------------------

void infer_conv_transpose(InferContext& c) {
  const Tensor &x = c.in(0), &w = c.in(1);
  c.expect_rank(0, 3, 4, "x");
  bool one_d = x.rank() == 3;
  if (w.rank() != x.rank())
    c.fail("weight must be (C_in, C_out/groups, kH, kW) with the rank of x " + shape_str(x.shape()) + ", got weight " +
           shape_str(w.shape()));
  c.expect_float(0, "x");
  c.expect_same_dtype(0, 1);
  int64_t groups = c.attrs.i("groups", 1);
  const Shape xs = as_2d(x.shape()), ws = as_2d(w.shape());
  if (groups < 1 || xs[1] % groups) c.fail("groups=" + std::to_string(groups) + " must divide the channels of x " + shape_str(x.shape()));
  if (ws[0] != xs[1])
    c.fail("weight " + shape_str(w.shape()) + " expects " + std::to_string(ws[0]) + " input channels, got x " +
           shape_str(x.shape()));
  int64_t O = ws[1] * groups;
  bool has_bias = c.inputs.size() > 2;
  if (has_bias && c.in(2).shape() != Shape{O})
    c.fail("bias must have shape (" + std::to_string(O) + ",), got bias " + shape_str(c.in(2).shape()));
  auto stride = pair_1d(c, "stride", 1, one_d), dil = pair_1d(c, "dilation", 1, one_d);
  std::vector<int64_t> pad{0, 0}, opad{0, 0};
  for (auto [key, dst] : {std::pair{"pad", &pad}, std::pair{"output_padding", &opad}}) {
    if (!c.attrs.has(key)) continue;
    auto v = c.attrs.ints(key);
    if (one_d && v.size() == 2 && v[0] == 0) v.erase(v.begin());
    if (one_d && v.size() == 1) v.insert(v.begin(), 0);
    else if (v.size() == 1) v.push_back(v[0]);
    if (v.size() != 2 || v[0] < 0 || v[1] < 0) c.fail(std::string(key) + " must be an int or a pair >= 0, got " + attr_str(c.attrs.get(key)));
    *dst = v;
  }
  for (int i = 0; i < 2; ++i)
    if (opad[i] >= std::max(stride[i], dil[i])) c.fail("output_padding must be smaller than stride or dilation");
  int64_t Ho = (xs[2] - 1) * stride[0] - 2 * pad[0] + dil[0] * (ws[2] - 1) + opad[0] + 1;
  int64_t Wo = (xs[3] - 1) * stride[1] - 2 * pad[1] + dil[1] * (ws[3] - 1) + opad[1] + 1;
  if (Ho < 1 || Wo < 1) c.fail("padding " + attr_str(pad) + " leaves an empty output for x " + shape_str(x.shape()));
  c.attrs.set("stride", one_d ? std::vector<int64_t>{stride[1]} : stride);
  c.attrs.set("dilation", one_d ? std::vector<int64_t>{dil[1]} : dil);
  c.attrs.set("pad", one_d ? std::vector<int64_t>{pad[1]} : pad);
  c.attrs.set("output_padding", one_d ? std::vector<int64_t>{opad[1]} : opad);
  c.attrs.set("groups", groups);
  c.attrs.set("has_bias", has_bias);
  c.outputs = {{one_d ? Shape{xs[0], O, Wo} : Shape{xs[0], O, Ho, Wo}, x.dtype()}};
}

void conv_transpose_kernel(const KernelArgs& k) {
  const Shape xs = as_2d(k.in_type(0).shape), ws = as_2d(k.in_type(1).shape), os = as_2d(k.out_type(0).shape);
  auto two = [](std::vector<int64_t> v, int64_t fill) {
    if (v.size() == 1) v.insert(v.begin(), fill);
    return v;
  };
  auto st = two(k.node.attrs.ints("stride"), 1), dl = two(k.node.attrs.ints("dilation"), 1),
       pd = two(k.node.attrs.ints("pad"), 0);
  int64_t G = k.node.attrs.i("groups"), N = xs[0], Ci = xs[1], H = xs[2], W = xs[3];
  int64_t Cig = Ci / G, Cog = ws[1], kh = ws[2], kw = ws[3], Ho = os[2], Wo = os[3], O = Cog * G;
  int64_t rows = Cog * kh * kw, P = H * W;
  const float* bias = k.node.attrs.b("has_bias") ? k.in[2] : nullptr;
  for (int64_t n = 0; n < N; ++n) {
    float* y = k.out[0] + n * O * Ho * Wo;
    std::fill(y, y + O * Ho * Wo, 0.0f);
    for (int64_t g = 0; g < G; ++g) {
      float* col = scratch(static_cast<size_t>(rows * P));
      // col (Cog*kh*kw, H*W) = W_g^T (rows x Cig) @ x_g (Cig x P); W_g is (Cig, rows).
      blas::sgemm(true, false, rows, P, Cig, 1.0f, k.in[1] + g * Cig * rows, rows,
                  k.in[0] + (n * Ci + g * Cig) * P, P, 0.0f, col, P);
      parallel_for(Cog, static_cast<size_t>(std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, kh * kw * P))),
                   [&](size_t cb, size_t ce) {
        for (size_t co = cb; co < ce; ++co) {
          float* yc = y + (g * Cog + static_cast<int64_t>(co)) * Ho * Wo;
          for (int64_t i = 0; i < kh; ++i)
            for (int64_t j = 0; j < kw; ++j) {
              const float* cr = col + ((static_cast<int64_t>(co) * kh + i) * kw + j) * P;
              // the input columns whose output column ow = iw * stride + shift lies in [0, Wo)
              const int64_t shift = j * dl[1] - pd[1], s1 = st[1];
              const int64_t iw0 = std::max<int64_t>(0, shift >= 0 ? 0 : (-shift + s1 - 1) / s1);
              const int64_t iw1 = std::min<int64_t>(W, Wo - 1 - shift < 0 ? 0 : (Wo - 1 - shift) / s1 + 1);
              for (int64_t ih = 0; ih < H; ++ih) {
                int64_t oh = ih * st[0] - pd[0] + i * dl[0];
                if (oh < 0 || oh >= Ho) continue;
                const int64_t base = oh * Wo + shift;  // + iw * s1: in the row for iw in [iw0, iw1)
                const float* xr = cr + ih * W;
                if (s1 == 1)
                  for (int64_t iw = iw0; iw < iw1; ++iw) yc[base + iw] += xr[iw];
                else
                  for (int64_t iw = iw0; iw < iw1; ++iw) yc[base + iw * s1] += xr[iw];
              }
            }
        }
      });
    }
    if (bias)
      for (int64_t o = 0; o < O; ++o)
        for (int64_t p = 0; p < Ho * Wo; ++p) y[o * Ho * Wo + p] += bias[o];
  }
}

}  // namespace

void register_conv_ops() {
  {
    OpDef t;
    t.name = "conv_transpose";
    t.category = "linalg";
    t.doc = "Transposed convolution, weight (C_in, C_out/groups, kH, kW), 1-D or 2-D (torch conv_transpose2d).";
    t.params = {P("x", ParamKind::tensor), P("weight", ParamKind::tensor), P("bias", ParamKind::opt_tensor, "None"),
                P("stride", ParamKind::any, "1"), P("pad", ParamKind::any, "0"), P("output_padding", ParamKind::any, "0"),
                P("groups", ParamKind::int_, "1"), P("dilation", ParamKind::any, "1")};
    t.infer = infer_conv_transpose;
    t.kernel = conv_transpose_kernel;
    t.mil_op = "conv_transpose";
    t.aliases = {"conv_transpose1d", "conv_transpose2d"};
    register_op(std::move(t));
  }
  for (bool dynamic : {false, true}) {
    OpDef d;
    d.name = dynamic ? "dynamic_conv" : "conv";
    d.category = "linalg";
    d.doc = dynamic ? "conv whose weight is a runtime tensor (an input or a computed value), same semantics as conv."
                    : "Convolution, 1-D (x (N, C, L)) or 2-D (OIHW weight), optional bias (torch conv1d/conv2d).";
    d.params = {P("x", ParamKind::tensor), P("weight", ParamKind::tensor), P("bias", ParamKind::opt_tensor, "None"),
                P("stride", ParamKind::any, "1"), P("pad", ParamKind::any, "0"), P("dilation", ParamKind::any, "1"),
                P("groups", ParamKind::int_, "1")};
    d.infer = infer_conv;
    d.kernel = conv_kernel;
    if (!dynamic) d.half_inputs = {1};
    d.mil_op = dynamic ? "conv (non-const weight)" : "conv";
    if (!dynamic) d.aliases = {"conv1d", "conv2d"};
    register_op(std::move(d));
  }
}

}  // namespace af

// ---- gradients (in other ops) ----
#include "ops/grad_util.h"

namespace af {

namespace {

using namespace gr;

// 1-D tensors (N, C, L) as 2-D (N, C, 1, L).
Tensor as4(const Tensor& t) {
  if (t.rank() == 4) return t;
  const Shape& s = t.shape();
  return reshape(t, {s[0], s[1], 1, s[2]});
}

struct Window {
  int64_t sh, sw, dh, dw;
  std::vector<int64_t> pad;  // top, bottom, left, right
};

// d loss / d weight of a conv from X (N, C, H, W) to the output gradient G (N, O, Ho, Wo):
// every kernel tap's strided window of X side by side, (groups, taps * Cg, positions), against
// G in one (grouped) matmul, over chunks of images and output rows that keep every axis within
// the engine's 65536 limit. (One matmul per tap ran nine skinny matmuls for a 3x3 kernel.)
Tensor conv_weight_grad(const Tensor& X, const Tensor& G, int64_t kh, int64_t kw, const Window& w, int64_t groups) {
  constexpr int64_t kMaxPositions = 65536;
  int64_t N = X.shape()[0], C = X.shape()[1], O = G.shape()[1], Ho = G.shape()[2], Wo = G.shape()[3];
  int64_t P = Ho * Wo, Cg = C / groups, Og = O / groups, kk = kh * kw;
  int64_t rows = P <= kMaxPositions ? Ho : std::max<int64_t>(1, kMaxPositions / Wo);
  int64_t images = P <= kMaxPositions ? std::max<int64_t>(1, kMaxPositions / P) : 1;
  // X as (C, N, H, W), padded: each tap's strided window is then (groups, Cg, n*P) as it lies.
  Tensor xc = permute(X, {1, 0, 2, 3});
  if (w.pad[0] || w.pad[1] || w.pad[2] || w.pad[3])  // both axes in one pad: one pass over X, not two
    xc = op("pad", {xc}, {{"pad", std::vector<int64_t>{w.pad[2], w.pad[3], w.pad[0], w.pad[1]}},
                          {"mode", std::string("constant")}, {"value", 0.0}});
  Tensor acc;
  for (int64_t n0 = 0; n0 < N; n0 += images)
    for (int64_t h0 = 0; h0 < Ho; h0 += rows) {
      int64_t nb = std::min(images, N - n0), hb = std::min(rows, Ho - h0), Pc = hb * Wo;
      Tensor gc = nb == N && hb == Ho ? G  // one chunk: G itself, not a copy
                                      : op("slice_by_size", {G}, {{"begin", std::vector<int64_t>{n0, 0, h0, 0}},
                                                                  {"size", std::vector<int64_t>{nb, O, hb, Wo}}});
      Tensor gt = reshape(permute(reshape(gc, {nb, groups, Og, Pc}), {1, 0, 3, 2}), {groups, nb * Pc, Og});
      std::vector<Tensor> wins;
      for (int64_t ky = 0; ky < kh; ++ky)
        for (int64_t kx = 0; kx < kw; ++kx) {
          int64_t y0 = ky * w.dh + h0 * w.sh, x0 = kx * w.dw;
          Tensor win = op("slice", {xc}, {{"begin", std::vector<int64_t>{0, n0, y0, x0}},
                                          {"end", std::vector<int64_t>{C, n0 + nb, y0 + (hb - 1) * w.sh + 1,
                                                                       x0 + (Wo - 1) * w.sw + 1}},
                                          {"step", std::vector<int64_t>{1, 1, w.sh, w.sw}}});
          wins.push_back(reshape(win, {groups, Cg, nb * Pc}));
        }
      Tensor part = op("matmul", {concat(wins, 1), gt});  // (groups, taps * Cg, Og)
      acc = acc.valid() ? op("add", {acc, part}) : part;
    }
  // (groups, taps, Cg, Og) -> (groups, Og, Cg, taps) = (O, Cg, kh, kw)
  return reshape(permute(reshape(acc, {groups, kk, Cg, Og}), {0, 3, 2, 1}), {O, Cg, kh, kw});
}

// d loss / d x of that conv: the transposed conv of G, unpadded, cut (or zero-extended) to x's size.
// Symmetric padding is the transposed conv's own pad, and the rows a stride left unread its
// output_padding: x's size straight away, no cut (each kept output sums the same taps in the
// same order either way).
Tensor conv_input_grad(const Tensor& G, const Tensor& W, const Shape& xs, const Window& w, int64_t groups) {
  const Shape& ws = W.shape();
  int64_t left_h = (xs[2] + w.pad[0] + w.pad[1] - (w.dh * (ws[2] - 1) + 1)) % w.sh;
  int64_t left_w = (xs[3] + w.pad[2] + w.pad[3] - (w.dw * (ws[3] - 1) + 1)) % w.sw;
  if (w.pad[0] == w.pad[1] && w.pad[2] == w.pad[3] && left_h < std::max(w.sh, w.dh) && left_w < std::max(w.sw, w.dw))
    return op("conv_transpose", {G, W},
              {{"stride", std::vector<int64_t>{w.sh, w.sw}}, {"pad", std::vector<int64_t>{w.pad[0], w.pad[2]}},
               {"output_padding", std::vector<int64_t>{left_h, left_w}},
               {"dilation", std::vector<int64_t>{w.dh, w.dw}}, {"groups", groups}});
  Tensor full = op("conv_transpose", {G, W},
                   {{"stride", std::vector<int64_t>{w.sh, w.sw}}, {"pad", std::vector<int64_t>{0, 0}},
                    {"dilation", std::vector<int64_t>{w.dh, w.dw}}, {"groups", groups}});
  for (int axis : {2, 3}) {
    int64_t before = w.pad[axis == 2 ? 0 : 2], want = xs[axis], have = full.shape()[axis];
    if (have < before + want) full = pad_axis(full, axis, 0, before + want - have);
    full = narrow(full, axis, before, want);
  }
  return full;
}

std::vector<Tensor> conv_grad(const Node& n, const std::vector<Tensor>& g) {
  const Tensor &x = n.inputs[0], &wt = n.inputs[1];
  bool one_d = x.rank() == 3;
  auto st = n.attrs.ints("stride"), dl = n.attrs.ints("dilation"), pd = n.attrs.ints("pad");
  Window w = one_d ? Window{1, st[0], 1, dl[0], {0, 0, pd[0], pd[1]}} : Window{st[0], st[1], dl[0], dl[1], pd};
  int64_t groups = n.attrs.i("groups");
  Tensor X = as4(x), W = as4(wt), G = as4(g[0]);
  std::vector<Tensor> r{reshape(conv_input_grad(G, W, X.shape(), w, groups), x.shape()),
                        reshape(conv_weight_grad(X, G, W.shape()[2], W.shape()[3], w, groups), wt.shape())};
  if (n.attrs.b("has_bias")) r.push_back(reduce("sum", G, {0, 2, 3}, false));
  return r;
}

// conv_transpose is the adjoint of conv: its input gradient is a conv, its weight gradient
// the conv weight gradient with the roles of input and output swapped.
std::vector<Tensor> conv_transpose_grad(const Node& n, const std::vector<Tensor>& g) {
  const Tensor &x = n.inputs[0], &wt = n.inputs[1];
  bool one_d = x.rank() == 3;
  auto st = n.attrs.ints("stride"), dl = n.attrs.ints("dilation"), pd = n.attrs.ints("pad");
  Window w = one_d ? Window{1, st[0], 1, dl[0], {0, 0, pd[0], pd[0]}}
                   : Window{st[0], st[1], dl[0], dl[1], {pd[0], pd[0], pd[1], pd[1]}};
  int64_t groups = n.attrs.i("groups");
  Tensor X = as4(x), W = as4(wt), G = as4(g[0]);
  Tensor gx = op("conv", {G, W}, {{"stride", std::vector<int64_t>{w.sh, w.sw}}, {"pad", w.pad},
                                  {"dilation", std::vector<int64_t>{w.dh, w.dw}}, {"groups", groups}});
  for (int axis : {2, 3}) gx = narrow(gx, axis, 0, X.shape()[axis]);
  std::vector<Tensor> r{reshape(gx, x.shape()),
                        reshape(conv_weight_grad(G, X, W.shape()[2], W.shape()[3], w, groups), wt.shape())};
  if (n.attrs.b("has_bias")) r.push_back(reduce("sum", G, {0, 2, 3}, false));
  return r;
}

}  // namespace

void attach_conv_grad() {
  mutable_op("conv").grad = conv_grad;
  mutable_op("dynamic_conv").grad = conv_grad;
  mutable_op("conv_transpose").grad = conv_transpose_grad;
}

}  // namespace af
