#include "aneforge/autodiff.h"

#include <map>
#include <set>

#include "aneforge/error.h"
#include "aneforge/op.h"

namespace af {

namespace {

using Key = std::pair<const Node*, int>;

// Nodes reachable from outputs, inputs before users, not walking past the `stop` nodes.
std::vector<const Node*> order_until(const std::vector<Tensor>& outputs, const std::set<const Node*>& stop) {
  std::vector<const Node*> order;
  std::set<const Node*> seen;
  std::vector<std::pair<const Node*, size_t>> stack;
  for (const auto& o : outputs) {
    if (!seen.insert(o.node().get()).second) continue;
    stack.push_back({o.node().get(), 0});
    while (!stack.empty()) {
      auto& [n, next] = stack.back();
      if (!stop.count(n) && next < n->inputs.size()) {
        const Node* in = n->inputs[next++].node().get();
        if (seen.insert(in).second) stack.push_back({in, 0});
        continue;
      }
      order.push_back(n);
      stack.pop_back();
    }
  }
  return order;
}

Tensor zeros(const Shape& s, DType t) { return constant(std::vector<float>(static_cast<size_t>(numel(s)), 0.0f), s, t); }

// Reverse accumulation from seeded gradients; returns the gradient reaching each wrt (invalid: none).
std::vector<Tensor> backprop(const std::vector<Tensor>& outputs, std::map<Key, Tensor> g, const std::vector<Tensor>& wrt,
                             bool stop_at_wrt) {
  std::set<const Node*> targets;
  for (const auto& t : wrt) targets.insert(t.node().get());
  auto order = order_until(outputs, stop_at_wrt ? targets : std::set<const Node*>{});
  std::set<const Node*> live;  // depends on a wrt tensor: only these need gradients
  for (const Node* n : order) {
    bool on = targets.count(n) > 0;
    if (!(stop_at_wrt && on))
      for (const auto& in : n->inputs) on |= live.count(in.node().get()) > 0;
    if (on) live.insert(n);
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const Node& n = **it;
    if (!live.count(&n) || n.is_input() || n.is_const() || (stop_at_wrt && targets.count(&n))) continue;
    if (n.op->no_grad) continue;  // integer or piecewise-constant: nothing flows back
    std::vector<Tensor> outs(n.outputs.size());
    bool any = false;
    for (size_t i = 0; i < outs.size(); ++i) {
      auto f = g.find({&n, static_cast<int>(i)});
      if (f != g.end()) outs[i] = f->second, any = true;
    }
    if (!any) continue;
    if (!n.op->grad)
      throw ValueError("grad: op '" + n.op->name + "' (" + n.name + ") has no gradient yet; docs/ops.md lists the "
                       "differentiable ops");
    for (size_t i = 0; i < outs.size(); ++i)
      if (!outs[i].valid()) outs[i] = zeros(n.outputs[i].shape, n.outputs[i].dtype);
    std::vector<Tensor> gin = n.op->grad(n, outs);
    for (size_t k = 0; k < gin.size() && k < n.inputs.size(); ++k) {
      const Tensor& in = n.inputs[k];
      if (!gin[k].valid() || !live.count(in.node().get()) || !is_float(in.dtype())) continue;
      if (gin[k].shape() != in.shape())
        throw Error(Status::internal, "grad of " + n.op->name + ": input " + std::to_string(k) + " gradient is " +
                                          shape_str(gin[k].shape()) + ", expected " + shape_str(in.shape()));
      Tensor gk = gin[k].dtype() == in.dtype() ? gin[k] : call1("cast", {gin[k]}, {{"dtype", std::string(dtype_name(in.dtype()))}});
      Key key{in.node().get(), in.index()};
      auto f = g.find(key);
      g[key] = f == g.end() ? gk : call1("add", {f->second, gk});
    }
  }
  std::vector<Tensor> res;
  for (const auto& t : wrt) {
    auto f = g.find({t.node().get(), t.index()});
    res.push_back(f != g.end() ? f->second : Tensor());
  }
  return res;
}

}  // namespace

std::vector<Tensor> grad(const Tensor& loss, const std::vector<Tensor>& wrt) {
  if (!loss.valid() || numel(loss.shape()) != 1)
    throw ValueError("grad: the loss must have one element, got " + (loss.valid() ? shape_str(loss.shape()) : std::string("none")));
  if (!is_float(loss.dtype())) throw ValueError("grad: the loss must be fp16 or fp32");
  std::map<Key, Tensor> seed;
  seed[{loss.node().get(), loss.index()}] = constant(std::vector<float>(1, 1.0f), loss.shape(), loss.dtype());
  auto res = backprop({loss}, std::move(seed), wrt, false);
  for (size_t i = 0; i < res.size(); ++i)
    if (!res[i].valid()) res[i] = zeros(wrt[i].shape(), wrt[i].dtype());
  return res;
}

std::vector<Tensor> vjp(const std::vector<Tensor>& outputs, const std::vector<Tensor>& cotangents,
                        const std::vector<Tensor>& wrt) {
  if (outputs.size() != cotangents.size()) throw ValueError("vjp: one cotangent per output");
  std::map<Key, Tensor> seed;
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!cotangents[i].valid() || !is_float(outputs[i].dtype())) continue;
    Key k{outputs[i].node().get(), outputs[i].index()};
    auto f = seed.find(k);
    seed[k] = f == seed.end() ? cotangents[i] : call1("add", {f->second, cotangents[i]});
  }
  return backprop(outputs, std::move(seed), wrt, true);  // non-float inputs never receive a gradient
}

}  // namespace af
