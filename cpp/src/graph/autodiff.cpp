#include "aneforge/autodiff.h"

#include <map>
#include <set>

#include "aneforge/error.h"
#include "aneforge/op.h"

namespace af {

std::vector<Tensor> grad(const Tensor& loss, const std::vector<Tensor>& wrt) {
  if (!loss.valid() || numel(loss.shape()) != 1)
    throw ValueError("grad: the loss must have one element, got " + (loss.valid() ? shape_str(loss.shape()) : std::string("none")));
  if (!is_float(loss.dtype())) throw ValueError("grad: the loss must be fp16 or fp32");
  auto order = topo_sort({loss});
  // Nodes that depend on a wrt tensor: only their gradients are needed.
  std::set<const Node*> targets, live;
  for (const auto& t : wrt) targets.insert(t.node().get());
  for (const auto& n : order) {
    bool on = targets.count(n.get()) > 0;
    for (const auto& in : n->inputs) on |= live.count(in.node().get()) > 0;
    if (on) live.insert(n.get());
  }
  using Key = std::pair<const Node*, int>;
  std::map<Key, Tensor> g;
  g[{loss.node().get(), loss.index()}] = constant(std::vector<float>(1, 1.0f), loss.shape(), loss.dtype());
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const Node& n = **it;
    if (!live.count(&n) || n.is_input() || n.is_const()) continue;
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
      if (!outs[i].valid()) {
        std::vector<float> z(static_cast<size_t>(numel(n.outputs[i].shape)), 0.0f);
        outs[i] = constant(std::move(z), n.outputs[i].shape, n.outputs[i].dtype);
      }
    std::vector<Tensor> gin = n.op->grad(n, outs);
    for (size_t k = 0; k < gin.size() && k < n.inputs.size(); ++k) {
      const Tensor& in = n.inputs[k];
      if (!gin[k].valid() || !live.count(in.node().get())) continue;
      if (gin[k].shape() != in.shape())
        throw Error(Status::internal, "grad of " + n.op->name + ": input " + std::to_string(k) + " gradient is " +
                                          shape_str(gin[k].shape()) + ", expected " + shape_str(in.shape()));
      Key key{in.node().get(), in.index()};
      auto f = g.find(key);
      g[key] = f == g.end() ? gin[k] : call1("add", {f->second, gin[k]});
    }
  }
  std::vector<Tensor> res;
  for (const auto& t : wrt) {
    auto f = g.find({t.node().get(), t.index()});
    if (f != g.end()) res.push_back(f->second);
    else res.push_back(constant(std::vector<float>(static_cast<size_t>(numel(t.shape())), 0.0f), t.shape(), t.dtype()));
  }
  return res;
}

}  // namespace af
