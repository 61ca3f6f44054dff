#include "passes/passes.h"

#include "aneforge/error.h"
#include "aneforge/op.h"

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
