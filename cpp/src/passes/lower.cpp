#include "passes/passes.h"

#include "aneforge/error.h"
#include "aneforge/op.h"
#include "ops/lower_util.h"

namespace af {

static int family_number(const std::string& f) { return f == "h14" ? 14 : f == "h15" ? 15 : f == "h16" ? 16 : 13; }

std::vector<Tensor> lower_bridges(const std::vector<Tensor>& outputs, int family) {
  auto order = topo_sort(outputs);
  auto decomposes = [&](const Node& n) {
    return n.op->decompose && family_number(n.op->min_family) > family;
  };
  bool any = false;
  for (auto& n : order) any |= n->op->bridge || decomposes(*n);
  if (!any) return outputs;
  return rewrite_graph(outputs, [&](const Node& n, std::vector<Tensor>& ins) -> std::vector<Tensor> {
    if (!n.op->bridge && !decomposes(n)) return {};
    const LowerFn& fn = n.op->bridge ? n.op->lower : n.op->decompose;
    if (!fn) throw UnsupportedError("compile: bridge op '" + n.op->name + "' has no lowering");
    auto outs = fn(ins, n.attrs);
    if (outs.size() != n.outputs.size())
      throw Error(Status::internal, "lowering of '" + n.op->name + "' returned the wrong number of outputs");
    for (size_t i = 0; i < outs.size(); ++i)
      if (!(outs[i].type() == n.outputs[i]))
        throw Error(Status::internal, "lowering of '" + n.op->name + "' output " + std::to_string(i) + " is " +
                                          shape_str(outs[i].shape()) + " " + std::string(dtype_name(outs[i].dtype())) +
                                          ", expected " + shape_str(n.outputs[i].shape));
    return outs;
  });
}

}  // namespace af

namespace af {

// A patch embedding (ViT's 16x16 conv with stride 16) is wider than every target's kernel
// limit. A conv whose stride equals its square kernel, unpadded and undilated, reads each
// input pixel once: it is pixel_unshuffle by the kernel size and a 1x1 conv, the same sum of
// products per output (one rounding), with the weight reshaped to (O, C*k*k, 1, 1) in
// pixel_unshuffle's channel order (c, i, j).
std::vector<Tensor> patchify_wide_convs(const std::vector<Tensor>& outputs, int64_t kernel_w_max) {
  auto is_patchify = [&](const Node& n, const std::vector<Tensor>& ins) {
    if (n.op->name != "conv" || ins.size() < 2 || ins[0].rank() != 4 || ins[1].rank() != 4) return false;
    const Shape& w = ins[1].shape();
    int64_t k = w[3];
    if (k <= kernel_w_max || w[2] != k || n.attrs.i("groups", 1) != 1) return false;
    return n.attrs.ints("stride") == std::vector<int64_t>{k, k} && n.attrs.ints("dilation") == std::vector<int64_t>{1, 1} &&
           n.attrs.ints("pad") == std::vector<int64_t>{0, 0, 0, 0};
  };
  bool any = false;
  for (auto& n : topo_sort(outputs)) {
    std::vector<Tensor> ins;
    for (const auto& t : n->inputs) ins.push_back(t);
    any |= is_patchify(*n, ins);
  }
  if (!any) return outputs;
  return rewrite_graph(outputs, [&](const Node& n, std::vector<Tensor>& ins) -> std::vector<Tensor> {
    if (!is_patchify(n, ins)) return {};
    const Shape xs = ins[0].shape(), w = ins[1].shape();
    const int64_t k = w[3], hp = xs[2] / k, wp = xs[3] / k;
    Tensor x = lw::narrow(lw::narrow(ins[0], 2, 0, hp * k), 3, 0, wp * k);  // rows and columns no patch reads
    Tensor u = lw::op("pixel_unshuffle", {x}, {{"downscale_factor", k}});
    std::vector<Tensor> conv_in = {u, lw::reshape(ins[1], {w[0], w[1] * k * k, 1, 1})};
    if (ins.size() > 2) conv_in.push_back(ins[2]);
    return {lw::op("conv", conv_in, {{"stride", std::vector<int64_t>{1, 1}}, {"pad", std::vector<int64_t>{0, 0, 0, 0}},
                                     {"dilation", std::vector<int64_t>{1, 1}}, {"groups", int64_t{1}}})};
  });
}

}  // namespace af
