#include "passes/fuse.h"

#include <algorithm>

#include "aneforge/op.h"

namespace af {

void remove_dead_steps(Program& p, const std::vector<bool>& dead) {
  std::vector<Step> kept;
  for (size_t s = 0; s < p.steps.size(); ++s)
    if (!dead[s]) kept.push_back(std::move(p.steps[s]));
  p.steps = std::move(kept);
  for (auto& v : p.values) v.producer = -1;
  for (size_t s = 0; s < p.steps.size(); ++s)
    for (int v : p.steps[s].out) p.values[v].producer = static_cast<int>(s);
}

void fuse_activations(Program& p) {
  std::vector<int> uses(p.values.size(), 0);
  for (const auto& s : p.steps)
    for (int v : s.in) ++uses[v];
  for (int v : p.outputs) uses[v] += 1000;  // graph outputs are never fused away
  std::vector<bool> dead(p.steps.size(), false);
  std::vector<int> redirect(p.values.size());
  for (size_t v = 0; v < redirect.size(); ++v) redirect[v] = static_cast<int>(v);
  for (size_t s = 0; s < p.steps.size(); ++s) {
    Step& st = p.steps[s];
    for (int& v : st.in) v = redirect[v];
    if (st.node->op->name != "relu") continue;
    int src = st.in[0];
    int ps = p.values[src].producer;
    if (ps < 0 || uses[src] != 1) continue;
    Step& prod = p.steps[ps];
    const std::string& pop = prod.node->op->name;
    if ((pop != "conv" && pop != "linear") || prod.node->attrs.has("activation")) continue;
    if (p.values[src].type.dtype != p.values[st.out[0]].type.dtype) continue;
    auto fused = std::make_shared<Node>(*prod.node);
    fused->attrs.set("activation", std::string("relu"));
    prod.node = std::move(fused);
    redirect[st.out[0]] = src;
    uses[src] = uses[st.out[0]];
    dead[s] = true;
  }
  for (int& v : p.outputs) v = redirect[v];
  remove_dead_steps(p, dead);
}

}  // namespace af
