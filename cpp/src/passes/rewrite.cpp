// rewrite_graph: the walk shared by the graph-level passes (passes.h).
#include <unordered_map>

#include "aneforge/op.h"
#include "passes/passes.h"

namespace af {

std::vector<Tensor> rewrite_graph(const std::vector<Tensor>& outputs, const GraphRewrite& replace) {
  std::unordered_map<const Node*, std::vector<Tensor>> mapped;
  for (auto& n : topo_sort(outputs)) {
    std::vector<Tensor> ins;
    for (const auto& t : n->inputs) ins.push_back(mapped.at(t.node().get()).at(t.index()));
    std::vector<Tensor> outs = replace(*n, ins);
    if (outs.empty()) {
      bool changed = false;
      for (size_t i = 0; i < ins.size(); ++i)
        changed |= ins[i].node() != n->inputs[i].node() || ins[i].index() != n->inputs[i].index();
      if (changed) {
        outs = call(n->op->name, ins, n->attrs);
        // The rebuilt node keeps the user's layer name: compile options name layers (per-layer
        // compression) and must find them whatever was rewritten upstream.
        if (!outs.empty() && outs[0].node()->op == n->op) outs[0].node()->name = n->name, outs[0].node()->auto_name = n->auto_name;
      } else {
        for (size_t i = 0; i < n->outputs.size(); ++i) outs.emplace_back(n, static_cast<int>(i));
      }
    }
    mapped[n.get()] = std::move(outs);
  }
  std::vector<Tensor> res;
  for (const auto& t : outputs) res.push_back(mapped.at(t.node().get()).at(t.index()));
  return res;
}

}  // namespace af
