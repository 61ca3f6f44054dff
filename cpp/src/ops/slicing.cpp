// Slicing and padding: slice (begin/end/step per axis, x[...] in Python), slice_by_size,
// crop, pad (constant, reflect, replicate; torch F.pad order).
#include <algorithm>
#include <cstring>

#include "ops/kernel_util.h"
#include "ops/register.h"

namespace af {

namespace {

// Strided copy: out[i] = x[sum_d (begin[d] + i_d * step[d]) * stride[d]].
void strided_copy(const float* x, const Shape& s, const std::vector<int64_t>& begin,
                  const std::vector<int64_t>& step, float* y, const Shape& os) {
  int r = static_cast<int>(s.size());
  if (r == 0) {
    y[0] = x[0];
    return;
  }
  auto st = strides_of(s);
  int64_t base = 0;
  Shape shp = os;
  std::array<std::vector<int64_t>, 1> src{std::vector<int64_t>(static_cast<size_t>(r))};
  for (int d = 0; d < r; ++d) {
    base += begin[d] * st[d];
    src[0][d] = step[d] * st[d];
  }
  collapse_dims<1>(shp, src);  // rows found by an odometer, not a division per dim per row
  const int64_t inner = shp.back(), js = src[0].back();
  if (shp.size() >= 2 && inner < 32 && js == 1) {  // short rows (a conv's im2col taps): a block of rows per step
    const int64_t n2 = shp[shp.size() - 2], st2 = src[0][shp.size() - 2], block = n2 * inner;
    Shape bs(shp.begin(), shp.end() - 1);  // rows of bs (all but its last dim) are the blocks
    std::array<std::vector<int64_t>, 1> bst{std::vector<int64_t>(src[0].begin(), src[0].end() - 1)};
    parallel_for(numel(bs) / n2, std::max<int64_t>(1, 8192 / block), [&](size_t b, size_t e) {
      for_rows<1>(bs, bst, b, e, [&](size_t row, const std::array<int64_t, 1>& off) {
        float* yb = y + row * block;
        const float* xb = x + base + off[0];
        for (int64_t a = 0; a < n2; ++a)
          for (int64_t j = 0; j < inner; ++j) yb[a * inner + j] = xb[a * st2 + j];
      });
    });
    return;
  }
  parallel_for(numel(shp) / inner, std::max<int64_t>(1, 8192 / inner), [&](size_t b, size_t e) {
    for_rows<1>(shp, src, b, e, [&](size_t row, const std::array<int64_t, 1>& off) {
      float* yr = y + row * inner;
      const float* xr = x + base + off[0];
      if (js == 1) std::memcpy(yr, xr, sizeof(float) * static_cast<size_t>(inner));
      else
        for (int64_t j = 0; j < inner; ++j) yr[j] = xr[j * js];
    });
  });
}

void infer_slice(InferContext& c) {
  const Shape& s = c.in(0).shape();
  int r = static_cast<int>(s.size());
  auto get = [&](const char* k, int64_t dflt) {
    std::vector<int64_t> v(r, dflt);
    if (c.attrs.has(k)) {
      auto given = c.attrs.ints(k);
      if (static_cast<int>(given.size()) > r)
        c.fail(std::string(k) + " " + attr_str(given) + " has more entries than x " + shape_str(s) + " has axes");
      for (size_t i = 0; i < given.size(); ++i) v[i] = given[i];
    }
    return v;
  };
  auto begin = get("begin", 0), end = get("end", INT64_MAX), step = get("step", 1);
  Shape out(r);
  for (int d = 0; d < r; ++d) {
    if (step[d] < 1) c.fail("step must be >= 1 (negative steps are not supported), got " + attr_str(step));
    int64_t b = begin[d] < 0 ? begin[d] + s[d] : begin[d], e = end[d] < 0 ? end[d] + s[d] : end[d];
    b = std::clamp<int64_t>(b, 0, s[d]);
    e = std::clamp<int64_t>(e, 0, s[d]);
    int64_t n = e > b ? (e - b + step[d] - 1) / step[d] : 0;
    if (n == 0)
      c.fail("slice is empty on axis " + std::to_string(d) + " (begin " + std::to_string(begin[d]) + ", end " +
             std::to_string(end[d]) + " of " + std::to_string(s[d])) ;
    begin[d] = b;
    end[d] = b + (n - 1) * step[d] + 1;
    out[d] = n;
  }
  c.attrs.set("begin", begin);
  c.attrs.set("end", end);
  c.attrs.set("step", step);
  c.outputs = {{out, c.in(0).dtype()}};
}

void slice_kernel(const KernelArgs& k) {
  strided_copy(k.in[0], k.in_type(0).shape, k.node.attrs.ints("begin"), k.node.attrs.ints("step"), k.out[0],
               k.out_type(0).shape);
}

void infer_slice_by_size(InferContext& c) {
  const Shape& s = c.in(0).shape();
  auto begin = c.attrs.ints("begin"), size = c.attrs.ints("size");
  if (begin.size() != s.size() || size.size() != s.size())
    c.fail("begin " + attr_str(begin) + " and size " + attr_str(size) + " need one entry per axis of x " + shape_str(s));
  Shape out(s.size());
  for (size_t d = 0; d < s.size(); ++d) {
    int64_t b = begin[d] < 0 ? begin[d] + s[d] : begin[d];
    int64_t n = size[d] == -1 ? s[d] - b : size[d];
    if (b < 0 || n < 1 || b + n > s[d])
      c.fail("begin " + attr_str(begin) + " + size " + attr_str(size) + " is out of bounds for x " + shape_str(s));
    begin[d] = b;
    out[d] = n;
  }
  c.attrs.set("begin", begin);
  c.attrs.set("size", std::vector<int64_t>(out.begin(), out.end()));
  c.outputs = {{out, c.in(0).dtype()}};
}

void slice_by_size_kernel(const KernelArgs& k) {
  strided_copy(k.in[0], k.in_type(0).shape, k.node.attrs.ints("begin"),
               std::vector<int64_t>(k.in_type(0).shape.size(), 1), k.out[0], k.out_type(0).shape);
}

void infer_crop(InferContext& c) {
  const Shape& s = c.in(0).shape();
  if (s.size() < 2) c.fail("x must have rank >= 2, got x " + shape_str(s));
  int64_t top = c.attrs.i("top"), left = c.attrs.i("left"), h = c.attrs.i("height"), w = c.attrs.i("width");
  int64_t H = s[s.size() - 2], W = s.back();
  if (top < 0 || left < 0 || h < 1 || w < 1 || top + h > H || left + w > W)
    c.fail("window top=" + std::to_string(top) + ", left=" + std::to_string(left) + ", height=" + std::to_string(h) +
           ", width=" + std::to_string(w) + " is outside x " + shape_str(s));
  Shape out = s;
  out[s.size() - 2] = h;
  out.back() = w;
  c.outputs = {{out, c.in(0).dtype()}};
}

void crop_kernel(const KernelArgs& k) {
  const Shape& s = k.in_type(0).shape;
  std::vector<int64_t> begin(s.size(), 0), step(s.size(), 1);
  begin[s.size() - 2] = k.node.attrs.i("top");
  begin.back() = k.node.attrs.i("left");
  strided_copy(k.in[0], s, begin, step, k.out[0], k.out_type(0).shape);
}

void infer_pad(InferContext& c) {
  const Shape& s = c.in(0).shape();
  int r = static_cast<int>(s.size());
  auto p = c.attrs.ints("pad");
  if (p.size() % 2 || static_cast<int>(p.size()) > 2 * r)
    c.fail("pad " + attr_str(p) + " must hold (left, right) pairs for up to " + std::to_string(r) +
           " trailing axes of x " + shape_str(s));
  std::string mode = c.attrs.s("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "replicate")
    c.fail("mode must be 'constant', 'reflect' or 'replicate', got '" + mode + "'");
  std::vector<int64_t> before(r, 0), after(r, 0);  // canonical: per axis, all axes
  for (size_t i = 0; i < p.size() / 2; ++i) {
    int d = r - 1 - static_cast<int>(i);
    before[d] = p[2 * i];
    after[d] = p[2 * i + 1];
    if (before[d] < 0 || after[d] < 0) c.fail("negative padding is not supported, got " + attr_str(p));
    if (mode == "reflect" && (before[d] >= s[d] || after[d] >= s[d]))
      c.fail("reflect padding " + attr_str(p) + " must be smaller than the padded axis of x " + shape_str(s));
  }
  Shape out(r);
  for (int d = 0; d < r; ++d) out[d] = s[d] + before[d] + after[d];
  std::vector<int64_t> canon;
  for (int i = r - 1; i >= 0; --i) {
    canon.push_back(before[i]);
    canon.push_back(after[i]);
  }
  c.attrs.set("pad", canon);
  c.attrs.set("mode", mode);
  c.attrs.set("value", c.attrs.f("value", 0.0));
  c.outputs = {{out, c.in(0).dtype()}};
}

void pad_kernel(const KernelArgs& k) {
  const Shape &s = k.in_type(0).shape, &os = k.out_type(0).shape;
  int r = static_cast<int>(s.size());
  auto p = k.node.attrs.ints("pad");
  std::vector<int64_t> before(r);
  for (int i = 0; i < r; ++i) before[r - 1 - i] = p[2 * i];
  std::string mode = k.node.attrs.s("mode");
  int m = mode == "constant" ? 0 : mode == "reflect" ? 1 : 2;
  float value = static_cast<float>(k.node.attrs.f("value"));
  auto st = strides_of(s);
  int64_t inner = os[r - 1], outer = numel(os) / inner;
  auto src_index = [&](int64_t o, int d) -> int64_t {  // -1: padding
    int64_t i = o - before[d];
    if (i >= 0 && i < s[d]) return i;
    if (m == 0) return -1;
    if (m == 2) return std::clamp<int64_t>(i, 0, s[d] - 1);
    int64_t period = 2 * (s[d] - 1);
    if (period == 0) return 0;
    i = ((i % period) + period) % period;
    return i < s[d] ? i : period - i;
  };
  parallel_for(outer, std::max<int64_t>(1, 8192 / inner), [&](size_t b, size_t e) {
    std::vector<int64_t> idx(static_cast<size_t>(std::max(r - 1, 0)));  // the row's output index, as an odometer
    int64_t rem = static_cast<int64_t>(b);
    for (int d = r - 2; d >= 0; --d) {
      idx[d] = rem % os[d];
      rem /= os[d];
    }
    for (size_t row = b; row < e; ++row) {
      int64_t off = 0;
      bool pad_row = false;
      for (int d = 0; d < r - 1; ++d) {
        int64_t si = src_index(idx[d], d);
        if (si < 0) pad_row = true;
        else off += si * st[d];
      }
      float* y = k.out[0] + row * inner;
      if (m == 0 && !pad_row) {  // constant: value, the row's values, value
        const int64_t b0 = before[r - 1], lo = std::clamp<int64_t>(b0, 0, inner),
                      hi = std::clamp<int64_t>(b0 + s[r - 1], lo, inner);
        std::fill(y, y + lo, value);
        std::memcpy(y + lo, k.in[0] + off + (lo - b0), sizeof(float) * static_cast<size_t>(hi - lo));
        std::fill(y + hi, y + inner, value);
      } else {
        for (int64_t j = 0; j < inner; ++j) {
          int64_t si = pad_row ? -1 : src_index(j, r - 1);
          y[j] = si < 0 ? value : k.in[0][off + si];
        }
      }
      for (int d = r - 2; d >= 0; --d) {
        if (++idx[d] < os[d]) break;
        idx[d] = 0;
      }
    }
  });
}

OpDef op(const char* name, const char* mil, const char* doc, std::vector<Param> params,
         std::function<void(InferContext&)> infer, SimKernel kernel, bool exact_output = true) {
  OpDef d;
  d.name = name;
  d.category = "shape";
  d.exact_output = exact_output;  // a window of x
  d.doc = doc;
  d.params = std::move(params);
  d.infer = std::move(infer);
  d.kernel = std::move(kernel);
  d.mil_op = mil;
  return d;
}

}  // namespace

void register_slicing_ops() {
  register_op(op("slice", "slice_by_index",
                 "x[begin:end:step] per axis (missing trailing axes are whole); Python x[...] uses it.",
                 {P("x", ParamKind::tensor), P("begin", ParamKind::ints, "None"), P("end", ParamKind::ints, "None"),
                  P("step", ParamKind::ints, "None")},
                 infer_slice, slice_kernel));
  register_op(op("slice_by_size", "slice_by_size", "The block of shape size starting at begin (size -1: to the end).",
                 {P("x", ParamKind::tensor), P("begin", ParamKind::ints), P("size", ParamKind::ints)},
                 infer_slice_by_size, slice_by_size_kernel));
  register_op(op("crop", "crop", "Window of the last two axes (torchvision crop(top, left, height, width)).",
                 {P("x", ParamKind::tensor), P("top", ParamKind::int_), P("left", ParamKind::int_),
                  P("height", ParamKind::int_), P("width", ParamKind::int_)},
                 infer_crop, crop_kernel));
  register_op(op("pad", "pad", "Pad trailing axes; pad = (left, right, top, bottom, ...) as torch F.pad.",
                 {P("x", ParamKind::tensor), P("pad", ParamKind::ints), P("mode", ParamKind::str, "'constant'"),
                  P("value", ParamKind::float_, "0.0")},
                 infer_pad, pad_kernel, false));  // the fill value is any float
}

}  // namespace af

// ---- gradients (in other ops) ----
#include "ops/grad_util.h"

namespace af {

void attach_slicing_grad() {
  using namespace gr;
  // A slice's gradient puts g back where the slice came from, zeros elsewhere.
  mutable_op("slice").grad = [](const Node& n, const std::vector<Tensor>& g) {
    const Shape& s = n.inputs[0].shape();
    auto begin = n.attrs.ints("begin"), step = n.attrs.ints("step");
    Tensor r = g[0];
    for (int d = 0; d < static_cast<int>(s.size()); ++d) r = scatter_strided(r, d, begin[d], step[d], s[d]);
    return std::vector<Tensor>{r};
  };
  mutable_op("slice_by_size").grad = [](const Node& n, const std::vector<Tensor>& g) {
    const Shape& s = n.inputs[0].shape();
    auto begin = n.attrs.ints("begin");
    Tensor r = g[0];
    for (int d = 0; d < static_cast<int>(s.size()); ++d) r = scatter_strided(r, d, begin[d], 1, s[d]);
    return std::vector<Tensor>{r};
  };
  mutable_op("crop").grad = [](const Node& n, const std::vector<Tensor>& g) {
    const Shape& s = n.inputs[0].shape();
    int r = static_cast<int>(s.size());
    Tensor t = scatter_strided(g[0], r - 2, n.attrs.i("top"), 1, s[r - 2]);
    return std::vector<Tensor>{scatter_strided(t, r - 1, n.attrs.i("left"), 1, s[r - 1])};
  };
  // pad: the centre, plus (reflect, replicate) what each padded entry copied, added back to its source.
  mutable_op("pad").grad = [](const Node& n, const std::vector<Tensor>& g) {
    const Shape& s = n.inputs[0].shape();
    int r = static_cast<int>(s.size());
    auto p = n.attrs.ints("pad");
    std::string mode = n.attrs.s("mode");
    Tensor t = g[0];
    for (int i = 0; i < r; ++i) {
      int d = r - 1 - i;
      int64_t before = p[2 * i], after = p[2 * i + 1], S = s[d];
      if (before == 0 && after == 0) continue;
      Tensor c = narrow(t, d, before, S);
      auto add_at = [&](const Tensor& piece, int64_t at) {  // piece (size 1 on d) added at index `at`
        c = op("add", {c, pad_axis(piece, d, at, S - 1 - at)});
      };
      if (mode == "replicate") {
        if (before) add_at(reduce("sum", narrow(t, d, 0, before), {d}, true), 0);
        if (after) add_at(reduce("sum", narrow(t, d, before + S, after), {d}, true), S - 1);
      } else if (mode == "reflect") {  // padded entry k before the start copies index k, after the end S-1-k
        for (int64_t k = 1; k <= before; ++k) add_at(narrow(t, d, before - k, 1), k);
        for (int64_t k = 1; k <= after; ++k) add_at(narrow(t, d, before + S - 1 + k, 1), S - 1 - k);
      }
      t = c;
    }
    return std::vector<Tensor>{t};
  };
}

}  // namespace af
