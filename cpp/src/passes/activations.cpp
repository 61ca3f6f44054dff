// int8 activations (w8a8): the named conv/linear layers read their input through
// quantize -> dequantize with the layer's calibrated scale. A graph rewrite before the
// program is built: the user's graph is left as it is (rebuilt nodes keep their names).
#include <unordered_map>

#include "aneforge/error.h"
#include "aneforge/op.h"
#include "passes/passes.h"

namespace af {

std::vector<Tensor> quantize_activations(const std::vector<Tensor>& outputs, const std::map<std::string, double>& scales) {
  if (scales.empty()) return outputs;
  auto order = topo_sort(outputs);
  std::unordered_map<const Node*, std::vector<Tensor>> mapped;
  std::map<std::string, bool> found;
  for (auto& n : order) {
    std::vector<Tensor> outs;
    std::vector<Tensor> ins;
    bool changed = false;
    for (const auto& t : n->inputs) {
      ins.push_back(mapped.at(t.node().get()).at(t.index()));
      changed |= ins.back().node() != t.node() || ins.back().index() != t.index();
    }
    auto it = scales.find(n->name);
    const bool quantized = it != scales.end() && (n->op->name == "conv" || n->op->name == "linear") && !ins.empty();
    if (quantized) {
      found[n->name] = true;
      Attrs a;
      a.set("scale", it->second);
      ins[0] = call1("dequantize", {call1("quantize", {ins[0]}, a)}, a);
      changed = true;
    }
    if (changed) {
      outs = call(n->op->name, ins, n->attrs);
      if (!outs.empty()) outs[0].node()->name = n->name, outs[0].node()->auto_name = n->auto_name;
    } else {
      for (size_t i = 0; i < n->outputs.size(); ++i) outs.emplace_back(n, static_cast<int>(i));
    }
    mapped[n.get()] = std::move(outs);
  }
  for (const auto& [name, s] : scales)
    if (!found.count(name))
      throw ValueError("compile: int8 activations for layer '" + name + "': the graph has no conv or linear layer of that name");
  std::vector<Tensor> res;
  for (const auto& t : outputs) res.push_back(mapped.at(t.node().get()).at(t.index()));
  return res;
}

}  // namespace af
