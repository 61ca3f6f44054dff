// int8 activations (w8a8): the named conv/linear layers read their input through
// quantize -> dequantize with the layer's calibrated scale. A graph rewrite before the
// program is built: the user's graph is left as it is (rebuilt nodes keep their names).

#include "aneforge/error.h"
#include "aneforge/op.h"
#include "passes/passes.h"

namespace af {

std::vector<Tensor> quantize_activations(const std::vector<Tensor>& outputs, const std::map<std::string, double>& scales) {
  if (scales.empty()) return outputs;
  std::map<std::string, bool> found;
  auto res = rewrite_graph(outputs, [&](const Node& n, std::vector<Tensor>& ins) -> std::vector<Tensor> {
    auto it = scales.find(n.name);
    if (it != scales.end() && (n.op->name == "conv" || n.op->name == "linear") && !ins.empty()) {
      found[n.name] = true;
      Attrs a;
      a.set("scale", it->second);
      ins[0] = call1("dequantize", {call1("quantize", {ins[0]}, a)}, a);  // the node is rebuilt on it
    }
    return {};
  });
  for (const auto& [name, s] : scales)
    if (!found.count(name))
      throw ValueError("compile: int8 activations for layer '" + name + "': the graph has no conv or linear layer of that name");
  return res;
}

}  // namespace af
