// Rearrangements between space and channels: pixel_shuffle / pixel_unshuffle (PyTorch,
// CRD order) and depth_to_space / space_to_depth (MIL and TensorFlow, DCR order).
#include "ops/kernel_util.h"
#include <utility>

#include "ops/register.h"

namespace af {

namespace {

struct Rearrange {
  const char* name;
  const char* mil;
  const char* doc;
  const char* factor;
  bool to_space;  // channels -> space
  std::vector<int64_t> perm;
  bool dcr;       // view of the channel axis: (r, r, C) instead of (C, r, r)
};

void register_one(const Rearrange& R) {
  OpDef d;
  d.name = R.name;
  d.category = "shape";
  d.exact_output = true;  // the input's elements, rearranged
  d.doc = R.doc;
  d.mil_op = R.mil;
  d.method = false;
  d.params = {P("x", ParamKind::tensor), P(R.factor, ParamKind::int_)};
  std::string factor = R.factor;
  bool to_space = R.to_space;
  d.infer = [factor, to_space](InferContext& c) {
    c.expect_rank(0, 4, 4, "x");
    int64_t r = c.attrs.i(factor);
    const Shape& s = c.in(0).shape();
    if (r < 1) c.fail(factor + " must be >= 1, got " + std::to_string(r));
    Shape out = s;
    if (to_space) {
      if (s[1] % (r * r))
        c.fail("channels of x " + shape_str(s) + " must be divisible by " + factor + "^2 = " + std::to_string(r * r));
      out = {s[0], s[1] / (r * r), s[2] * r, s[3] * r};
    } else {
      if (s[2] % r || s[3] % r)
        c.fail("height and width of x " + shape_str(s) + " must be divisible by " + factor + " = " + std::to_string(r));
      out = {s[0], s[1] * r * r, s[2] / r, s[3] / r};
    }
    c.outputs = {{out, c.in(0).dtype()}};
  };
  auto perm = R.perm;
  bool dcr = R.dcr;
  d.kernel = [factor, to_space, perm, dcr](const KernelArgs& k) {
    int64_t r = k.node.attrs.i(factor);
    const Shape& s = k.in_type(0).shape;
    Shape view;
    if (to_space) {
      int64_t C = s[1] / (r * r);
      view = dcr ? Shape{s[0], r, r, C, s[2], s[3]} : Shape{s[0], C, r, r, s[2], s[3]};
    } else {
      view = {s[0], s[1], s[2] / r, r, s[3] / r, r};
    }
    permute_copy(k.in[0], view, perm, k.out[0]);
  };
  register_op(std::move(d));
}

}  // namespace

void register_layout_ops() {
  register_one({"pixel_shuffle", "pixel_shuffle", "(N, C*r*r, H, W) -> (N, C, H*r, W*r) (torch pixel_shuffle).",
                "upscale_factor", true, {0, 1, 4, 2, 5, 3}, false});
  register_one({"pixel_unshuffle", "pixel_unshuffle", "(N, C, H*r, W*r) -> (N, C*r*r, H, W) (torch pixel_unshuffle).",
                "downscale_factor", false, {0, 1, 3, 5, 2, 4}, false});
  register_one({"depth_to_space", "depth_to_space", "(N, r*r*C, H, W) -> (N, C, H*r, W*r), DCR order (MIL, TF).",
                "block_size", true, {0, 3, 4, 1, 5, 2}, true});
  register_one({"space_to_depth", "space_to_depth", "(N, C, H*r, W*r) -> (N, r*r*C, H, W), DCR order (MIL, TF).",
                "block_size", false, {0, 3, 5, 1, 2, 4}, true});
}

}  // namespace af

// ---- gradients (in other ops) ----

namespace af {

void attach_layout_grad() {  // each rearrangement's gradient is its inverse, by the same factor
  for (auto [name, inverse] : {std::pair{"pixel_shuffle", "pixel_unshuffle"}, std::pair{"pixel_unshuffle", "pixel_shuffle"},
                               std::pair{"depth_to_space", "space_to_depth"}, std::pair{"space_to_depth", "depth_to_space"}}) {
    std::string inv = inverse, factor = mutable_op(name).params[1].name, inv_factor = mutable_op(inverse).params[1].name;
    mutable_op(name).grad = [inv, factor, inv_factor](const Node& n, const std::vector<Tensor>& g) {
      return std::vector<Tensor>{call1(inv, {g[0]}, {{inv_factor, n.attrs.i(factor)}})};
    };
  }
}

}  // namespace af
