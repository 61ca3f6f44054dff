// Shape ops that move data without arithmetic: reshape, permute, transpose, squeeze,
// expand_dims, flatten, concat, stack, split, tile.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "ops/kernel_util.h"
#include "ops/mil_util.h"
#include "ops/register.h"
#include "runtime/transpose.h"

namespace af {

void permute_copy(const float* x, const Shape& s, const std::vector<int64_t>& dims, float* y) {
  const int r = static_cast<int>(s.size());
  if (r == 0) {
    y[0] = x[0];
    return;
  }
  auto ist = strides_of(s);
  Shape os(static_cast<size_t>(r));
  std::array<std::vector<int64_t>, 1> src{std::vector<int64_t>(static_cast<size_t>(r))};
  for (int i = 0; i < r; ++i) {
    os[i] = s[dims[i]];
    src[0][i] = ist[dims[i]];
  }
  collapse_dims<1>(os, src);
  const int m = static_cast<int>(os.size());
  const int64_t inner = os[m - 1], outer = numel(os) / inner, inner_st = src[0][m - 1];
  // A transpose of the last two dims (the input's rows become columns: weight gradients,
  // k^T): bands of 16 output rows, transposed in registers (runtime/transpose.cpp).
  if (m >= 2 && inner >= 16 && os[m - 2] >= 16 && src[0][m - 2] == 1) {
    const int64_t R = os[m - 2], plane = R * inner, tiles = (R + 15) / 16;
    Shape ps(os.begin(), os.end() - 1);  // rows of ps (all but its last dim) are the planes
    std::array<std::vector<int64_t>, 1> pst{std::vector<int64_t>(src[0].begin(), src[0].end() - 1)};
    parallel_for(numel(os) / plane * tiles, std::max<int64_t>(1, 4096 / (16 * inner)), [&](size_t b, size_t e) {
      for (size_t t = b; t < e;) {
        const size_t p = t / tiles, t_end = std::min(e, (p + 1) * tiles);
        for_rows<1>(ps, pst, p, p + 1, [&](size_t, const std::array<int64_t, 1>& off) {
          const float* xp = x + off[0];
          float* yp = y + p * plane;
          for (size_t tt = t; tt < t_end; ++tt) {
            const int64_t r0 = static_cast<int64_t>(tt % tiles) * 16, r1 = std::min(R, r0 + 16);
            // y[r][c] = x[c * inner_st + r]: x's rows c hold consecutive r
            transpose_floats(xp + r0, inner_st, yp + r0 * inner, inner, inner, r1 - r0);
          }
        });
        t = t_end;
      }
    });
    return;
  }
  if (m >= 2 && inner < 16) {  // short rows (a max-pool gradient's 2x2 windows): copy blocks of the last two dims
    // (three when two make fewer than 64 elements: a block per loop over rows, not per window)
    const bool three = m >= 3 && os[m - 2] * inner < 64;
    const int64_t n2 = os[m - 2], st2 = src[0][m - 2];
    const int64_t n3 = three ? os[m - 3] : 1, st3 = three ? src[0][m - 3] : 0, block = n3 * n2 * inner;
    Shape bs(os.begin(), os.end() - (three ? 2 : 1));  // rows of bs (all but its last dim) are the blocks
    std::array<std::vector<int64_t>, 1> bst{std::vector<int64_t>(src[0].begin(), src[0].end() - (three ? 2 : 1))};
    // Rows of 2 or 4 contiguous values copy with a length known at compile time (I; 0: not).
    auto copy_blocks = [&](auto row_len) {
      constexpr int64_t I = decltype(row_len)::value;
      const int64_t len = I ? I : inner, js = I ? 1 : inner_st;
      parallel_for(numel(bs) / bs.back(), std::max<int64_t>(1, 16384 / block), [&](size_t b, size_t e) {
        for_rows<1>(bs, bst, b, e, [&](size_t row, const std::array<int64_t, 1>& off) {
          float* yb = y + row * block;
          for (int64_t c = 0; c < n3; ++c, yb += n2 * len) {
            const float* xb = x + off[0] + c * st3;
            for (int64_t a = 0; a < n2; ++a)
              for (int64_t j = 0; j < len; ++j) yb[a * len + j] = xb[a * st2 + j * js];
          }
        });
      });
    };
    if (inner_st == 1 && inner == 2) copy_blocks(std::integral_constant<int64_t, 2>{});
    else if (inner_st == 1 && inner == 4) copy_blocks(std::integral_constant<int64_t, 4>{});
    else copy_blocks(std::integral_constant<int64_t, 0>{});
    return;
  }
  parallel_for(outer, std::max<int64_t>(1, 16384 / inner), [&](size_t b, size_t e) {
    for_rows<1>(os, src, b, e, [&](size_t row, const std::array<int64_t, 1>& off) {
      float* yr = y + row * inner;
      const float* xr = x + off[0];
      if (inner_st == 1 && inner >= 16) std::memcpy(yr, xr, sizeof(float) * inner);
      else
        for (int64_t j = 0; j < inner; ++j) yr[j] = xr[j * inner_st];
    });
  });
}

namespace {

void copy_kernel(const KernelArgs& k) {
  size_t n = static_cast<size_t>(numel(k.out_type(0).shape));
  if (k.out[0] != k.in[0]) std::memcpy(k.out[0], k.in[0], n * sizeof(float));
}

OpDef shape_op(const char* name, const char* mil, const char* doc, std::vector<Param> params,
               std::function<void(InferContext&)> infer, SimKernel kernel, bool method = true) {
  OpDef d;
  d.name = name;
  d.category = "shape";
  d.exact_output = true;  // the input's elements, rearranged (cast sets false)
  d.doc = doc;
  d.params = std::move(params);
  d.method = method;
  d.infer = std::move(infer);
  d.kernel = std::move(kernel);
  d.mil_op = mil;
  return d;
}

void infer_reshape(InferContext& c) {
  const Shape& s = c.in(0).shape();
  auto want = c.attrs.ints("shape");
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] == -1) {
      if (infer_at >= 0) c.fail("shape " + attr_str(want) + " has more than one -1");
      infer_at = static_cast<int64_t>(i);
    } else if (want[i] < 1 || want[i] > kMaxElements || known > kMaxElements / want[i]) {
      c.fail("shape " + attr_str(want) + " has an invalid dimension " + std::to_string(want[i]) +
             " (or more than 2^31 elements)");
    } else {
      known *= want[i];
    }
  }
  if (infer_at >= 0) {
    if (numel(s) % known) c.fail("cannot reshape x " + shape_str(s) + " to " + attr_str(want));
    want[infer_at] = numel(s) / known;
  }
  if (numel(want) != numel(s))
    c.fail("cannot reshape x " + shape_str(s) + " (" + std::to_string(numel(s)) + " elements) to " +
           shape_str(want) + " (" + std::to_string(numel(want)) + " elements)");
  c.attrs.set("shape", want);
  c.outputs = {{want, c.in(0).dtype()}};
}

void infer_permute(InferContext& c) {
  const Shape& s = c.in(0).shape();
  int r = static_cast<int>(s.size());
  auto dims = c.attrs.ints("dims");
  if (static_cast<int>(dims.size()) != r)
    c.fail("dims " + attr_str(dims) + " must list all " + std::to_string(r) + " axes of x " + shape_str(s));
  std::vector<int64_t> norm;
  for (auto d : dims) norm.push_back(normalize_axis(d, r, c.op.name));
  auto sorted = norm;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < r; ++i)
    if (sorted[i] != i) c.fail("dims " + attr_str(dims) + " is not a permutation of 0.." + std::to_string(r - 1));
  Shape out;
  for (auto d : norm) out.push_back(s[d]);
  c.attrs.set("dims", norm);
  c.outputs = {{out, c.in(0).dtype()}};
}

void infer_squeeze(InferContext& c) {
  const Shape& s = c.in(0).shape();
  int r = static_cast<int>(s.size());
  std::vector<int64_t> axes;
  if (c.attrs.has("dim")) {
    for (auto a : c.attrs.ints("dim")) axes.push_back(normalize_axis(a, r, c.op.name));
  } else {
    for (int i = 0; i < r; ++i)
      if (s[i] == 1) axes.push_back(i);
  }
  Shape out;
  for (int i = 0; i < r; ++i)
    if (std::find(axes.begin(), axes.end(), i) == axes.end() || s[i] != 1) out.push_back(s[i]);
  c.attrs.set("dim", axes);
  c.outputs = {{out, c.in(0).dtype()}};
}

void infer_expand_dims(InferContext& c) {
  Shape s = c.in(0).shape();
  int r = static_cast<int>(s.size());
  int a = normalize_axis(c.attrs.i("axis"), r + 1, c.op.name);
  s.insert(s.begin() + a, 1);
  c.attrs.set("axis", int64_t{a});
  c.outputs = {{s, c.in(0).dtype()}};
}

void infer_concat(InferContext& c) {
  if (c.inputs.empty()) c.fail("needs at least one tensor");
  const Shape& s0 = c.in(0).shape();
  int r = static_cast<int>(s0.size());
  if (r == 0) c.fail("cannot concatenate 0-d tensors; use stack");
  int axis = normalize_axis(c.attrs.i("axis", 0), r, c.op.name);
  Shape out = s0;
  out[axis] = 0;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const Shape& s = c.in(i).shape();
    c.expect_same_dtype(0, i);
    bool ok = static_cast<int>(s.size()) == r;
    for (int d = 0; ok && d < r; ++d) ok = d == axis || s[d] == s0[d];
    if (!ok)
      c.fail("tensor " + std::to_string(i) + " has shape " + shape_str(s) + "; all shapes must match " +
             shape_str(s0) + " except on axis " + std::to_string(axis));
    out[axis] += s[axis];
  }
  c.attrs.set("axis", int64_t{axis});
  c.outputs = {{out, c.in(0).dtype()}};
}

void concat_kernel(const KernelArgs& k) {
  const Shape& os = k.out_type(0).shape;
  int axis = static_cast<int>(k.node.attrs.i("axis"));
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= os[i];
  for (size_t i = axis + 1; i < os.size(); ++i) inner *= os[i];
  int64_t orow = os[axis] * inner, off = 0;
  for (size_t t = 0; t < k.num_inputs; ++t) {
    int64_t len = k.in_type(t).shape[axis] * inner;
    const float* src = k.in[t];
    float* dst = k.out[0] + off;
    if (src == dst && outer == 1) {  // computed in place (passes/memory_plan.cpp)
      off += len;
      continue;
    }
    // rows cut in pieces of at most 64K values, so one long row (a UNet skip joined along
    // channels, im2col taps) is copied by every thread
    const int64_t piece = std::max<int64_t>(1, std::min<int64_t>(len, 1 << 16)), pieces = (len + piece - 1) / piece;
    parallel_for(outer * pieces, std::max<int64_t>(1, 16384 / piece), [&](size_t b, size_t e) {
      for (size_t t2 = b; t2 < e; ++t2) {
        const int64_t o = static_cast<int64_t>(t2) / pieces, at = static_cast<int64_t>(t2) % pieces * piece;
        std::memcpy(dst + o * orow + at, src + o * len + at, sizeof(float) * std::min(piece, len - at));
      }
    });
    off += len;
  }
}

void infer_split(InferContext& c) {
  const Shape& s = c.in(0).shape();
  int r = static_cast<int>(s.size());
  if (r == 0) c.fail("cannot split a 0-d tensor");
  int axis = normalize_axis(c.attrs.i("dim", 0), r, c.op.name);
  auto sz = c.attrs.ints("split_size_or_sections");
  std::vector<int64_t> sizes;
  if (sz.size() == 1 && !std::holds_alternative<std::vector<int64_t>>(c.attrs.get("split_size_or_sections"))) {
    if (sz[0] < 1) c.fail("split_size must be >= 1");
    for (int64_t done = 0; done < s[axis]; done += sz[0]) sizes.push_back(std::min(sz[0], s[axis] - done));
  } else {
    sizes = sz;
    int64_t tot = 0;
    for (auto v : sizes) {
      if (v < 1) c.fail("sections must be >= 1, got " + attr_str(sz));
      tot += v;
    }
    if (tot != s[axis])
      c.fail("sections " + attr_str(sz) + " sum to " + std::to_string(tot) + ", but x " + shape_str(s) +
             " has " + std::to_string(s[axis]) + " on axis " + std::to_string(axis));
  }
  c.attrs.set("split_size_or_sections", sizes);
  c.attrs.set("dim", int64_t{axis});
  for (auto v : sizes) {
    Shape o = s;
    o[axis] = v;
    c.outputs.push_back({o, c.in(0).dtype()});
  }
}

void split_kernel(const KernelArgs& k) {
  const Shape& s = k.in_type(0).shape;
  int axis = static_cast<int>(k.node.attrs.i("dim"));
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= s[i];
  for (size_t i = axis + 1; i < s.size(); ++i) inner *= s[i];
  int64_t irow = s[axis] * inner, off = 0;
  for (size_t t = 0; t < k.node.outputs.size(); ++t) {
    int64_t len = k.out_type(t).shape[axis] * inner;
    for (int64_t o = 0; o < outer; ++o) std::memcpy(k.out[t] + o * len, k.in[0] + o * irow + off, sizeof(float) * len);
    off += len;
  }
}

void infer_tile(InferContext& c) {
  Shape s = c.in(0).shape();
  auto reps = c.attrs.ints("dims");
  for (auto v : reps)
    if (v < 1) c.fail("dims must be >= 1, got " + attr_str(reps));
  while (s.size() < reps.size()) s.insert(s.begin(), 1);
  while (reps.size() < s.size()) reps.insert(reps.begin(), 1);
  Shape out(s.size());
  for (size_t i = 0; i < s.size(); ++i) out[i] = s[i] * reps[i];
  c.attrs.set("dims", reps);
  c.outputs = {{out, c.in(0).dtype()}};
}

void tile_kernel(const KernelArgs& k) {
  const Shape& os = k.out_type(0).shape;
  Shape s = k.in_type(0).shape;
  while (s.size() < os.size()) s.insert(s.begin(), 1);
  Shape so = os.empty() ? Shape{1} : os;
  if (s.empty()) s = {1};
  auto ist = strides_of(s);
  int r = static_cast<int>(so.size());
  int64_t inner = so[r - 1], outer = numel(so) / inner;
  parallel_for(outer, std::max<int64_t>(1, 8192 / inner), [&](size_t b, size_t e) {
    for (size_t row = b; row < e; ++row) {
      int64_t rem = static_cast<int64_t>(row), off = 0;
      for (int d = r - 2; d >= 0; --d) {
        off += ((rem % so[d]) % s[d]) * ist[d];
        rem /= so[d];
      }
      float* y = k.out[0] + row * inner;
      for (int64_t j = 0; j < inner; ++j) y[j] = k.in[0][off + j % s[r - 1]];
    }
  });
}

}  // namespace

void register_slicing_ops();
void register_layout_ops();

OpDef view_op(OpDef d) {
  d.view = [](DType, DType) { return true; };
  return d;
}

void register_shape_ops() {
  register_op(view_op(shape_op("reshape", "reshape", "Same data, new shape; one dimension may be -1.",
                               {P("x", ParamKind::tensor), P("shape", ParamKind::ints)}, infer_reshape, copy_kernel)));
  register_op(shape_op("permute", "transpose", "Reorder axes: output axis i is input axis dims[i] (torch.permute).",
                       {P("x", ParamKind::tensor), P("dims", ParamKind::ints)}, infer_permute, [](const KernelArgs& k) {
    permute_copy(k.in[0], k.in_type(0).shape, k.node.attrs.ints("dims"), k.out[0]);
  }));
  register_op(view_op(shape_op("squeeze", "squeeze", "Drop size-1 axes (all, or those in dim).",
                               {P("x", ParamKind::tensor), P("dim", ParamKind::axes, "None")}, infer_squeeze, copy_kernel)));
  register_op(view_op(shape_op("expand_dims", "expand_dims", "Insert a size-1 axis at axis (torch.unsqueeze).",
                               {P("x", ParamKind::tensor), P("axis", ParamKind::int_)}, infer_expand_dims, copy_kernel)));
  {
    OpDef d = shape_op("concat", "concat", "Join tensors along an existing axis (torch.cat).",
                       {P("tensors", ParamKind::tensors), P("axis", ParamKind::int_, "0")}, infer_concat, concat_kernel, false);
    d.aliases = {"cat"};
    register_op(std::move(d));
  }
  {
    OpDef d = shape_op("split", "split", "Split into chunks of split_size, or into sections (torch.split).",
                       {P("x", ParamKind::tensor), P("split_size_or_sections", ParamKind::any), P("dim", ParamKind::int_, "0")},
                       infer_split, split_kernel);
    d.num_outputs = -1;
    register_op(std::move(d));
  }
  register_op(shape_op("tile", "tile", "Repeat the tensor dims[i] times along each axis (torch.tile).",
                       {P("x", ParamKind::tensor), P("dims", ParamKind::ints)}, infer_tile, tile_kernel));

  // Composites: API sugar over the ops above.
  OpDef t = shape_op("transpose", "transpose", "Swap two axes (torch.transpose); becomes a permute.",
                     {P("x", ParamKind::tensor), P("dim0", ParamKind::int_), P("dim1", ParamKind::int_)}, nullptr, nullptr);
  t.build = [](const std::vector<Tensor>& in, const Attrs& a) {
    int r = in[0].rank();
    int d0 = normalize_axis(a.i("dim0"), r, "transpose"), d1 = normalize_axis(a.i("dim1"), r, "transpose");
    std::vector<int64_t> dims(r);
    for (int i = 0; i < r; ++i) dims[i] = i;
    std::swap(dims[d0], dims[d1]);
    return call("permute", in, {{"dims", dims}});
  };
  register_op(std::move(t));
  OpDef u = shape_op("unsqueeze", "expand_dims", "Insert a size-1 axis (same as expand_dims).",
                     {P("x", ParamKind::tensor), P("dim", ParamKind::int_)}, nullptr, nullptr);
  u.build = [](const std::vector<Tensor>& in, const Attrs& a) { return call("expand_dims", in, {{"axis", a.i("dim")}}); };
  register_op(std::move(u));
  OpDef f = shape_op("flatten", "reshape", "Merge axes start_dim..end_dim into one (torch.flatten).",
                     {P("x", ParamKind::tensor), P("start_dim", ParamKind::int_, "0"), P("end_dim", ParamKind::int_, "-1")},
                     nullptr, nullptr);
  f.build = [](const std::vector<Tensor>& in, const Attrs& a) {
    Shape s = in[0].shape();
    if (s.empty()) return call("reshape", in, {{"shape", std::vector<int64_t>{1}}});
    int r = static_cast<int>(s.size());
    int b = normalize_axis(a.i("start_dim"), r, "flatten"), e = normalize_axis(a.i("end_dim"), r, "flatten");
    if (b > e) throw ValueError("flatten: start_dim " + std::to_string(b) + " is after end_dim " + std::to_string(e));
    Shape out(s.begin(), s.begin() + b);
    int64_t m = 1;
    for (int i = b; i <= e; ++i) m *= s[i];
    out.push_back(m);
    out.insert(out.end(), s.begin() + e + 1, s.end());
    return call("reshape", in, {{"shape", out}});
  };
  register_op(std::move(f));
  OpDef st = shape_op("stack", "stack", "Join tensors along a new axis (torch.stack).",
                      {P("tensors", ParamKind::tensors), P("axis", ParamKind::int_, "0")}, nullptr, nullptr, false);
  st.build = [](const std::vector<Tensor>& in, const Attrs& a) {
    if (in.empty()) throw ValueError("stack: needs at least one tensor");
    std::vector<Tensor> ex;
    for (const auto& t : in) {
      if (t.shape() != in[0].shape())
        throw ValueError("stack: all shapes must match, got " + shape_str(in[0].shape()) + " and " + shape_str(t.shape()));
      ex.push_back(call1("expand_dims", {t}, {{"axis", a.i("axis")}}));
    }
    int axis = normalize_axis(a.i("axis"), in[0].rank() + 1, "stack");
    return call("concat", ex, {{"axis", int64_t{axis}}});
  };
  register_op(std::move(st));
  register_slicing_ops();
  register_layout_ops();
}

// MIL emission of this family's ops (the rest use the default mil_op(x=..., y=...)).
void attach_shape_mil() {
  using namespace milx;
  unary_params("reshape", "reshape", [](Builder& b, const StepView& s) { return Args{{"shape", {Is(b, s.out_types[0].shape, "shape")}}}; });
  unary_params("permute", "transpose", [](Builder& b, const StepView& s) { return Args{{"perm", {Is(b, s.attrs().ints("dims"), "perm")}}}; });
  emit("squeeze", [](Builder& b, const StepView& s) {
    b.op("reshape", {{"x", {s.in[0]}}, {"shape", {Is(b, s.out_types[0].shape, "shape")}}}, s.out_types[0], s.out[0]);
  });
  unary_params("expand_dims", "expand_dims", [](Builder& b, const StepView& s) { return Args{{"axes", {Is(b, {s.attrs().i("axis")}, "axes")}}}; });
  unary_params("slice", "slice_by_index", [](Builder& b, const StepView& s) {
    return Args{{"begin", {Is(b, s.attrs().ints("begin"), "begin")}}, {"end", {Is(b, s.attrs().ints("end"), "end")}},
                {"stride", {Is(b, s.attrs().ints("step"), "stride")}}};
  });
  unary_params("slice_by_size", "slice_by_size", [](Builder& b, const StepView& s) {
    return Args{{"begin", {Is(b, s.attrs().ints("begin"), "begin")}}, {"size", {Is(b, s.attrs().ints("size"), "size")}}};
  });
  unary_params("crop", "crop", [](Builder& b, const StepView& s) {
    const Shape& xs = s.in_types[0].shape;
    int64_t H = xs[xs.size() - 2], W = xs.back(), t = s.attrs().i("top"), l = s.attrs().i("left");
    return Args{{"crop_height", {Is(b, {t, H - t - s.attrs().i("height")}, "crop_height")}},
                {"crop_width", {Is(b, {l, W - l - s.attrs().i("width")}, "crop_width")}}};
  });
  emit("concat", [](Builder& b, const StepView& s) {
    b.op("concat", {{"values", s.in}, {"axis", {I(b, s.attrs().i("axis"), "axis")}}, {"interleave", {B(b, false, "interleave")}}},
         s.out_types[0], s.out[0]);
  });
  emit("split", [](Builder& b, const StepView& s) {
    b.op_multi("split", {{"x", {s.in[0]}}, {"split_sizes", {Is(b, s.attrs().ints("split_size_or_sections"), "split_sizes")}},
                         {"axis", {I(b, s.attrs().i("dim"), "axis")}}}, s.out_types, s.out);
  });
  emit("tile", [](Builder& b, const StepView& s) {
    auto reps = s.attrs().ints("dims");
    std::string x = s.in[0];
    if (s.in_types[0].shape.size() < reps.size()) {
      Shape xs = s.in_types[0].shape;
      while (xs.size() < reps.size()) xs.insert(xs.begin(), 1);
      x = b.op("reshape", {{"x", {x}}, {"shape", {Is(b, xs, "shape")}}}, like(s.in_types[0], xs));
    }
    b.op("tile", {{"x", {x}}, {"reps", {Is(b, reps, "reps")}}}, s.out_types[0], s.out[0]);
  });
  unary_params("pad", "pad", [](Builder& b, const StepView& s) {
    auto p = s.attrs().ints("pad");  // F.pad order: last axis first
    size_t r = s.in_types[0].shape.size();
    std::vector<int64_t> mil(2 * r);
    for (size_t i = 0; i < r; ++i) {
      mil[2 * (r - 1 - i)] = p[2 * i];
      mil[2 * (r - 1 - i) + 1] = p[2 * i + 1];
    }
    return Args{{"pad", {Is(b, mil, "pad")}}, {"mode", {S(b, s.attrs().s("mode"), "mode")}},
                {"constant_val", {F(b, s, s.attrs().f("value"), "constant_val")}}};
  });
  unary_params("pixel_shuffle", "pixel_shuffle", [](Builder& b, const StepView& s) {
    return Args{{"upscale_factor", {I(b, s.attrs().i("upscale_factor"), "upscale_factor")}}};
  });
  unary_params("pixel_unshuffle", "pixel_unshuffle", [](Builder& b, const StepView& s) {
    return Args{{"downscale_factor", {b.uint_scalar(static_cast<uint32_t>(s.attrs().i("downscale_factor")), "downscale_factor")}}};
  });
  for (const char* n : {"space_to_depth", "depth_to_space"})
    unary_params(n, n, [](Builder& b, const StepView& s) { return Args{{"block_size", {I(b, s.attrs().i("block_size"), "block_size")}}}; });
}

}  // namespace af

// ---- gradients (in other ops) ----
#include "ops/grad_util.h"

namespace af {

void attach_shape_grad() {
  using namespace gr;
  mutable_op("reshape").grad = [](const Node& n, const std::vector<Tensor>& g) {
    return std::vector<Tensor>{reshape(g[0], n.inputs[0].shape())};
  };
  mutable_op("permute").grad = [](const Node& n, const std::vector<Tensor>& g) {
    auto dims = n.attrs.ints("dims");
    std::vector<int64_t> inv(dims.size());
    for (size_t i = 0; i < dims.size(); ++i) inv[static_cast<size_t>(dims[i])] = static_cast<int64_t>(i);
    return std::vector<Tensor>{permute(g[0], inv)};
  };
  for (const char* name : {"squeeze", "expand_dims"})
    mutable_op(name).grad = [](const Node& n, const std::vector<Tensor>& g) {
      return std::vector<Tensor>{reshape(g[0], n.inputs[0].shape())};
    };
  mutable_op("concat").grad = [](const Node& n, const std::vector<Tensor>& g) {
    int axis = static_cast<int>(n.attrs.i("axis"));
    std::vector<Tensor> r;
    int64_t at = 0;
    for (const auto& in : n.inputs) {
      r.push_back(narrow(g[0], axis, at, in.shape()[axis]));
      at += in.shape()[axis];
    }
    return r;
  };
  mutable_op("split").grad = [](const Node& n, const std::vector<Tensor>& g) {
    return std::vector<Tensor>{concat(g, n.attrs.i("dim"))};
  };
  // Sum over the copies: each repeated dimension becomes (copies, size) and the copies are
  // summed. Dimensions not repeated merge with their neighbours, so the view stays within the
  // engine's rank 5 for a rank-4 input with one or two repeated dimensions.
  mutable_op("tile").grad = [](const Node& n, const std::vector<Tensor>& g) {
    const Shape& s = n.inputs[0].shape();
    auto reps = n.attrs.ints("dims");
    int lead = static_cast<int>(reps.size()) - static_cast<int>(s.size());
    Shape view;
    std::vector<int64_t> axes;
    int64_t pending = 1;  // product of the consecutive dimensions not repeated
    for (size_t i = 0; i < reps.size(); ++i) {
      int d = static_cast<int>(i) - lead;
      int64_t size = d >= 0 ? s[d] : 1;
      if (reps[i] == 1) {
        pending *= size;
        continue;
      }
      if (pending > 1) view.push_back(pending);
      axes.push_back(static_cast<int64_t>(view.size()));
      view.push_back(reps[i]);
      pending = size;
    }
    if (pending > 1 || view.empty()) view.push_back(pending);
    if (axes.empty()) return std::vector<Tensor>{reshape(g[0], s)};
    return std::vector<Tensor>{reshape(reduce("sum", reshape(g[0], view), axes, false), s)};
  };
}

}  // namespace af
