#include "passes/passes.h"

#include <unordered_map>

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
  std::unordered_map<const Node*, std::vector<Tensor>> mapped;
  for (auto& n : order) {
    std::vector<Tensor> outs;
    if (n->inputs.empty()) {
      for (size_t i = 0; i < n->outputs.size(); ++i) outs.emplace_back(n, static_cast<int>(i));
      mapped[n.get()] = std::move(outs);
      continue;
    }
    std::vector<Tensor> ins;
    bool changed = false;
    for (const auto& t : n->inputs) {
      ins.push_back(mapped.at(t.node().get()).at(t.index()));
      changed |= ins.back().node() != t.node() || ins.back().index() != t.index();
    }
    if (n->op->bridge || decomposes(*n)) {
      const LowerFn& fn = n->op->bridge ? n->op->lower : n->op->decompose;
      if (!fn) throw UnsupportedError("compile: bridge op '" + n->op->name + "' has no lowering");
      outs = fn(ins, n->attrs);
      if (outs.size() != n->outputs.size())
        throw Error(Status::internal, "lowering of '" + n->op->name + "' returned the wrong number of outputs");
      for (size_t i = 0; i < outs.size(); ++i)
        if (!(outs[i].type() == n->outputs[i]))
          throw Error(Status::internal, "lowering of '" + n->op->name + "' output " + std::to_string(i) + " is " +
                                            shape_str(outs[i].shape()) + " " + std::string(dtype_name(outs[i].dtype())) +
                                            ", expected " + shape_str(n->outputs[i].shape));
    } else if (changed) {
      outs = call(n->op->name, ins, n->attrs);
      // The rebuilt node keeps the user's layer name: compile options name layers (per-layer
      // compression) and must find them whatever was lowered upstream.
      if (!outs.empty() && outs[0].node()->op == n->op) outs[0].node()->name = n->name, outs[0].node()->auto_name = n->auto_name;
    } else {
      for (size_t i = 0; i < n->outputs.size(); ++i) outs.emplace_back(n, static_cast<int>(i));
    }
    mapped[n.get()] = std::move(outs);
  }
  std::vector<Tensor> res;
  for (const auto& t : outputs) res.push_back(mapped.at(t.node().get()).at(t.index()));
  return res;
}

}  // namespace af
