// Reductions over an axis or a tuple of axes (keepdims), accumulated in fp32.
#include <algorithm>

#include "ops/kernel_util.h"
#include "ops/register.h"

namespace af {

namespace {

void infer_reduce(InferContext& c) {
  const Shape& s = c.in(0).shape();
  int r = static_cast<int>(s.size());
  std::vector<int64_t> axes;
  if (!c.attrs.has("axis")) {
    for (int i = 0; i < r; ++i) axes.push_back(i);
  } else {
    for (auto a : c.attrs.ints("axis")) axes.push_back(normalize_axis(a, r, c.op.name));
  }
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end())
    c.fail("axis " + attr_str(c.attrs.get("axis")) + " repeats an axis");
  bool keep = c.attrs.b("keepdims");
  Shape out;
  for (int i = 0; i < r; ++i) {
    bool red = std::binary_search(axes.begin(), axes.end(), i);
    if (!red) out.push_back(s[i]);
    else if (keep) out.push_back(1);
  }
  c.attrs.set("axis", axes);
  c.attrs.set("keepdims", keep);
  c.outputs = {{out, c.in(0).dtype()}};
}

// Sum over `axes`, scaled by `scale`. Contiguous axis runs use an (outer, R, inner) loop.
void reduce_sum(const float* x, const Shape& s, const std::vector<int64_t>& axes, float scale, float* y) {
  int r = static_cast<int>(s.size());
  bool contiguous = !axes.empty() && axes.back() - axes.front() + 1 == static_cast<int64_t>(axes.size());
  if (axes.empty()) {
    std::copy(x, x + numel(s), y);
    return;
  }
  if (contiguous) {
    int64_t outer = 1, R = 1, inner = 1;
    for (int i = 0; i < r; ++i) {
      if (i < axes.front()) outer *= s[i];
      else if (i <= axes.back()) R *= s[i];
      else inner *= s[i];
    }
    if (inner == 1) {
      parallel_for(outer, std::max<int64_t>(1, 4096 / R), [&](size_t ob, size_t oe) {
        for (size_t o = ob; o < oe; ++o) {
          const float* p = x + o * R;
          float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
          int64_t j = 0;
          for (; j + 8 <= R; j += 8)
            for (int t = 0; t < 8; ++t) acc[t] += p[j + t];
          float tot = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
          for (; j < R; ++j) tot += p[j];
          y[o] = tot * scale;
        }
      });
    } else {
      parallel_for(outer, 1, [&](size_t ob, size_t oe) {
        for (size_t o = ob; o < oe; ++o) {
          float* yo = y + o * inner;
          std::fill(yo, yo + inner, 0.0f);
          for (int64_t j = 0; j < R; ++j) {
            const float* p = x + (o * R + j) * inner;
            for (int64_t i = 0; i < inner; ++i) yo[i] += p[i];
          }
          for (int64_t i = 0; i < inner; ++i) yo[i] *= scale;
        }
      });
    }
    return;
  }
  // General case: map every input element to its output element.
  Shape os;
  std::vector<int64_t> ostride_full(r, 0);
  for (int i = 0; i < r; ++i)
    if (!std::binary_search(axes.begin(), axes.end(), i)) os.push_back(s[i]);
  auto ost = strides_of(os);
  for (int i = 0, k = 0; i < r; ++i)
    if (!std::binary_search(axes.begin(), axes.end(), i)) ostride_full[i] = ost[k++];
  int64_t n = numel(s), on = numel(os);
  std::fill(y, y + on, 0.0f);
  std::vector<int64_t> idx(r, 0);
  int64_t oi = 0;
  for (int64_t e = 0; e < n; ++e) {
    y[oi] += x[e];
    for (int d = r - 1; d >= 0; --d) {
      oi += ostride_full[d];
      if (++idx[d] < s[d]) break;
      oi -= ostride_full[d] * s[d];
      idx[d] = 0;
    }
  }
  for (int64_t i = 0; i < on; ++i) y[i] *= scale;
}

void sum_kernel(const KernelArgs& k) {
  reduce_sum(k.in[0], k.in_type(0).shape, k.node.attrs.ints("axis"), 1.0f, k.out[0]);
}

void mean_kernel(const KernelArgs& k) {
  const Shape& s = k.in_type(0).shape;
  auto axes = k.node.attrs.ints("axis");
  int64_t R = 1;
  for (auto a : axes) R *= s[a];
  reduce_sum(k.in[0], s, axes, 1.0f / static_cast<float>(R), k.out[0]);
}

void def_reduce(const char* name, const char* mil, const char* doc, SimKernel kernel) {
  OpDef d;
  d.name = name;
  d.category = "reduction";
  d.doc = doc;
  d.params = {P("x", ParamKind::tensor), P("axis", ParamKind::axes, "None"),
              P("keepdims", ParamKind::bool_, "False")};
  d.method = true;
  d.infer = infer_reduce;
  d.kernel = kernel;
  d.mil_op = mil;
  register_op(std::move(d));
}

}  // namespace

void register_reduction_ops() {
  def_reduce("sum", "reduce_sum", "Sum over axis (int, tuple or None for all), fp32 accumulation.", sum_kernel);
  def_reduce("mean", "reduce_mean", "Mean over axis (int, tuple or None for all), fp32 accumulation.", mean_kernel);
}

}  // namespace af
