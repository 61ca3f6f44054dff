// Shape ops: reshape, permute, and transpose (two-axis swap, built as a permute).
#include <algorithm>
#include <cstring>

#include "ops/kernel_util.h"
#include "ops/register.h"

namespace af {

namespace {

void infer_reshape(InferContext& c) {
  const Shape& s = c.in(0).shape();
  auto want = c.attrs.ints("shape");
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] == -1) {
      if (infer_at >= 0) c.fail("shape " + attr_str(want) + " has more than one -1");
      infer_at = static_cast<int64_t>(i);
    } else if (want[i] < 1) {
      c.fail("shape " + attr_str(want) + " has an invalid dimension " + std::to_string(want[i]));
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

void copy_kernel(const KernelArgs& k) {
  size_t n = static_cast<size_t>(numel(k.out_type(0).shape));
  if (k.out[0] != k.in[0]) std::memcpy(k.out[0], k.in[0], n * sizeof(float));
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

void permute_kernel(const KernelArgs& k) {
  const Shape& s = k.in_type(0).shape;
  const Shape& os = k.out_type(0).shape;
  auto dims = k.node.attrs.ints("dims");
  int r = static_cast<int>(s.size());
  auto ist = strides_of(s);
  std::vector<int64_t> src_stride(r);
  for (int i = 0; i < r; ++i) src_stride[i] = ist[dims[i]];
  int64_t n = numel(os);
  if (r == 0) {
    k.out[0][0] = k.in[0][0];
    return;
  }
  int64_t inner = os[r - 1], outer = n / inner, inner_st = src_stride[r - 1];
  const float* x = k.in[0];
  float* y = k.out[0];
  parallel_for(outer, std::max<int64_t>(1, 16384 / inner), [&](size_t b, size_t e) {
    for (size_t row = b; row < e; ++row) {
      int64_t rem = static_cast<int64_t>(row), off = 0;
      for (int d = r - 2; d >= 0; --d) {
        off += (rem % os[d]) * src_stride[d];
        rem /= os[d];
      }
      float* yr = y + row * inner;
      for (int64_t j = 0; j < inner; ++j) yr[j] = x[off + j * inner_st];
    }
  });
}

}  // namespace

void register_shape_ops() {
  OpDef r;
  r.name = "reshape";
  r.category = "shape";
  r.doc = "Same data, new shape; one dimension may be -1.";
  r.params = {P("x", ParamKind::tensor), P("shape", ParamKind::ints)};
  r.method = true;
  r.infer = infer_reshape;
  r.kernel = copy_kernel;
  r.mil_op = "reshape";
  register_op(std::move(r));

  OpDef p;
  p.name = "permute";
  p.category = "shape";
  p.doc = "Reorder axes: output axis i is input axis dims[i] (torch.permute).";
  p.params = {P("x", ParamKind::tensor), P("dims", ParamKind::ints)};
  p.method = true;
  p.infer = infer_permute;
  p.kernel = permute_kernel;
  p.mil_op = "transpose";
  register_op(std::move(p));

  OpDef t;
  t.name = "transpose";
  t.category = "shape";
  t.doc = "Swap two axes (torch.transpose); becomes a permute node.";
  t.params = {P("x", ParamKind::tensor), P("dim0", ParamKind::int_), P("dim1", ParamKind::int_)};
  t.method = true;
  t.mil_op = "transpose";
  t.build = [](const std::vector<Tensor>& in, const Attrs& a) {
    if (in.size() != 1) throw ValueError("transpose: expects one tensor");
    int r = in[0].rank();
    int d0 = normalize_axis(a.i("dim0"), r, "transpose"), d1 = normalize_axis(a.i("dim1"), r, "transpose");
    std::vector<int64_t> dims(r);
    for (int i = 0; i < r; ++i) dims[i] = i;
    std::swap(dims[d0], dims[d1]);
    return call("permute", in, {{"dims", dims}});
  };
  register_op(std::move(t));
}

}  // namespace af
