// Folding into conv/linear: batch_norm after a conv, and a constant per-channel add as bias.
#include <cmath>

#include "aneforge/op.h"
#include "passes/passes.h"

namespace af {

namespace {

bool is_const(const Program& p, int v) { return static_cast<bool>(p.values[v].data); }

// The conv/linear step producing `v` when `v` has exactly one use, else -1.
int sole_producer(const Program& p, const std::vector<int>& uses, int v, bool conv_only) {
  int ps = p.values[v].producer;
  if (ps < 0 || uses[v] != 1) return -1;
  const std::string& op = p.steps[ps].node->op->name;
  if (op != "conv" && (conv_only || op != "linear")) return -1;
  if (!p.steps[ps].epilogue.empty() || !is_const(p, p.steps[ps].in[1])) return -1;
  if (p.steps[ps].node->attrs.b("has_bias") && !is_const(p, p.steps[ps].in[2])) return -1;
  return ps;
}

// Gives the layer a (new) constant bias and returns its values to edit.
std::vector<float>& ensure_bias(Program& p, Step& st, int64_t O) {
  auto node = std::make_shared<Node>(*st.node);
  std::vector<float> b(static_cast<size_t>(O), 0.0f);
  if (node->attrs.b("has_bias")) b = p.values[st.in[2]].data->values.to_vector();
  int bv = p.add_constant(std::move(b), {O}, p.values[st.in[0]].type.dtype);
  if (node->attrs.b("has_bias")) st.in[2] = bv;
  else st.in.push_back(bv);
  node->attrs.set("has_bias", true);
  st.node = std::move(node);
  return std::const_pointer_cast<ConstData>(p.values[bv].data)->values.mutable_floats();
}

}  // namespace

void fold_batch_norm(Program& p) {
  auto uses = use_counts(p);
  std::vector<bool> dead(p.steps.size(), false);
  for (size_t s = 0; s < p.steps.size(); ++s) {
    Step& bn = p.steps[s];
    if (bn.node->op->name != "batch_norm") continue;
    bool consts = true;
    for (size_t i = 1; i < bn.in.size(); ++i) consts &= is_const(p, bn.in[i]);
    int ps = sole_producer(p, uses, bn.in[0], true);
    if (!consts || ps < 0) continue;
    Step& conv = p.steps[ps];
    const Shape ws = p.values[conv.in[1]].type.shape;  // a copy: add_constant grows values
    int64_t O = ws[0], per = numel(ws) / O;
    const auto& mean = p.values[bn.in[1]].data->values;
    const auto& var = p.values[bn.in[2]].data->values;
    size_t k = 3;
    const ConstValues* gamma = bn.node->attrs.b("has_weight") ? &p.values[bn.in[k++]].data->values : nullptr;
    const ConstValues* beta = bn.node->attrs.b("has_bias") ? &p.values[bn.in[k++]].data->values : nullptr;
    double eps = bn.node->attrs.f("eps");
    std::vector<float> w = p.values[conv.in[1]].data->values.to_vector();
    std::vector<float>& b = ensure_bias(p, conv, O);
    for (int64_t o = 0; o < O; ++o) {
      double scale = (gamma ? (*gamma)[o] : 1.0) / std::sqrt(static_cast<double>(var[o]) + eps);
      for (int64_t j = 0; j < per; ++j) w[o * per + j] = static_cast<float>(w[o * per + j] * scale);
      b[o] = static_cast<float>((b[o] - mean[o]) * scale + (beta ? (*beta)[o] : 0.0));
    }
    conv.in[1] = p.add_constant(std::move(w), ws, p.values[conv.in[1]].type.dtype);
    redirect(p, bn.out[0], conv.out[0]);
    dead[s] = true;
  }
  remove_steps(p, dead);
}

void matmul_as_linear(Program& p) {
  for (auto& st : p.steps) {
    if (st.node->op->name != "matmul" || !is_const(p, st.in[1])) continue;
    const Shape& xs = p.values[st.in[0]].type.shape;
    const Shape ws = p.values[st.in[1]].type.shape;
    if (ws.size() != 2 || xs.size() < 2) continue;
    // x @ W with a constant (K, N) W is linear(x, W^T): one layer that takes a bias.
    const auto& w = p.values[st.in[1]].data->values;
    std::vector<float> wt(w.size());
    for (int64_t k = 0; k < ws[0]; ++k)
      for (int64_t n = 0; n < ws[1]; ++n) wt[n * ws[0] + k] = w[k * ws[1] + n];
    DType dt = p.values[st.in[1]].type.dtype;
    st.in[1] = p.add_constant(std::move(wt), {ws[1], ws[0]}, dt);
    auto node = std::make_shared<Node>(*st.node);
    node->op = &op_def("linear");
    node->attrs = Attrs{{"has_bias", false}};
    st.node = std::move(node);
  }
}

// matmul(permute(a, swap of the last two axes), y) reads a with transpose_x (and y with
// transpose_y): BLAS reads the operand transposed, and the permute, if nothing else uses it,
// is dead code. Autodiff writes ten of these per transformer layer's weight gradients.
void fold_matmul_transposes(Program& p) {
  auto swaps_last_two = [](const std::vector<int64_t>& d) {
    const size_t r = d.size();
    if (r < 2 || d[r - 2] != static_cast<int64_t>(r) - 1 || d[r - 1] != static_cast<int64_t>(r) - 2) return false;
    for (size_t i = 0; i + 2 < r; ++i)
      if (d[i] != static_cast<int64_t>(i)) return false;
    return true;
  };
  for (auto& st : p.steps) {
    if (st.node->op->name != "matmul" || st.in.size() != 2) continue;
    std::shared_ptr<Node> node;
    for (int side = 0; side < 2; ++side) {
      const int ps = p.values[st.in[side]].producer;
      if (ps < 0 || p.values[st.in[side]].type.shape.size() < 2) continue;
      const Step& perm = p.steps[static_cast<size_t>(ps)];
      if (perm.node->op->name != "permute" || !perm.epilogue.empty() || !swaps_last_two(perm.node->attrs.ints("dims")))
        continue;
      if (!node) node = std::make_shared<Node>(*st.node);
      const char* flag = side == 0 ? "transpose_x" : "transpose_y";
      node->attrs.set(flag, !(node->attrs.has(flag) && node->attrs.b(flag)));
      st.in[side] = perm.in[0];
      if (static_cast<size_t>(side) < node->inputs.size() && !perm.node->inputs.empty())
        node->inputs[static_cast<size_t>(side)] = perm.node->inputs[0];  // the node's view of its inputs, kept in step
    }
    if (node) st.node = std::move(node);
  }
}

void fuse_bias(Program& p) {
  auto uses = use_counts(p);
  std::vector<bool> dead(p.steps.size(), false);
  for (size_t s = 0; s < p.steps.size(); ++s) {
    Step& add = p.steps[s];
    if (add.node->op->name != "add") continue;
    for (int side = 0; side < 2; ++side) {
      int x = add.in[side], c = add.in[1 - side];
      if (!is_const(p, c)) continue;
      int ps = sole_producer(p, uses, x, false);
      if (ps < 0 || p.values[add.out[0]].type.shape != p.values[x].type.shape) continue;
      Step& layer = p.steps[ps];
      const Shape ys = p.values[x].type.shape;
      const Shape cs = p.values[c].type.shape;
      bool is_conv = layer.node->op->name == "conv";
      int64_t O = is_conv ? ys[1] : ys.back();
      // The constant must vary along the channel axis only: (O,), (O, 1, 1), (1, O, 1, 1) for conv.
      bool per_channel = numel(cs) == O || numel(cs) == 1;
      if (is_conv && numel(cs) == O && O > 1) {
        int axis_from_end = static_cast<int>(ys.size()) - 2;  // channel axis counted from the right
        per_channel = static_cast<int>(cs.size()) >= axis_from_end + 1 &&
                      cs[cs.size() - 1 - axis_from_end] == O;
      } else if (!is_conv && numel(cs) == O && O > 1) {
        per_channel = cs.back() == O;
      }
      if (!per_channel) continue;
      const auto cv = p.values[c].data->values;
      std::vector<float>& b = ensure_bias(p, layer, O);
      for (int64_t o = 0; o < O; ++o) b[o] += cv[numel(cs) == 1 ? 0 : o];
      redirect(p, add.out[0], x);
      dead[s] = true;
      break;
    }
  }
  remove_steps(p, dead);
}

}  // namespace af
