// Layer fusion: conv/linear/matmul followed by elementwise ops becomes one layer, and
// constant-weight linear layers are marked for emission as 1x1 convs.
#include <set>

#include "aneforge/op.h"
#include "passes/passes.h"

namespace af {

namespace {
const std::set<std::string> kHeads = {"conv", "dynamic_conv", "conv_transpose", "linear", "matmul"};

bool fusable_tail(const Step& s, const Program& p) {
  const OpDef& op = *s.node->op;
  if (s.in.size() != 1 || s.out.size() != 1) return false;
  if (op.category != "activation" && op.category != "math") return false;
  return p.values[s.in[0]].type == p.values[s.out[0]].type;
}
}  // namespace

void fuse_activations(Program& p) {
  auto uses = use_counts(p);
  std::vector<bool> dead(p.steps.size(), false);
  for (size_t s = 0; s < p.steps.size(); ++s) {
    Step& st = p.steps[s];
    if (dead[s] || !fusable_tail(st, p)) continue;
    int src = st.in[0];
    int ps = p.values[src].producer;
    if (ps < 0 || uses[src] != 1 || dead[ps]) continue;
    Step& head = p.steps[ps];
    if (!kHeads.count(head.node->op->name) || head.out.size() != 1) continue;
    head.epilogue.push_back(st.node);
    // The fused layer now produces the tail's value (its name is what users asked for).
    int tail_out = st.out[0];
    redirect(p, tail_out, src);
    p.values[src].name = p.values[tail_out].name;
    p.values[src].auto_name = p.values[tail_out].auto_name;
    uses[src] = uses[tail_out];
    dead[s] = true;
  }
  remove_steps(p, dead);
}

void linear_as_conv(Program& p) {
  for (auto& st : p.steps) {
    if (st.node->op->name != "linear" || !p.values[st.in[1]].data || st.node->attrs.b("as_conv1x1")) continue;
    auto n = std::make_shared<Node>(*st.node);
    n->attrs.set("as_conv1x1", true);  // emitted as reshape -> 1x1 conv -> reshape
    st.node = std::move(n);
  }
}

}  // namespace af
