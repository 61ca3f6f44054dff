// split_index_ranges: index ops over more than 2048 rows become 2048-row chunks, each reading
// its ids offset by the chunk's first row (index_offset), so every one-hot compare is of
// integers fp16 holds exactly (the engine's integer format; docs/engine.md). index_offset is
// pushed through shape ops up to the program input, where the host computes it exactly.
// Also finds, per int32 graph input, the table it indexes and whether anything else reads it.
#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "aneforge/error.h"
#include "aneforge/op.h"
#include "ops/lower_util.h"
#include "passes/passes.h"

namespace af {

namespace {

using namespace lw;

// The ids operand of an index op and the size of the range it indexes (0: not an index op).
int index_operand(const Node& n, int64_t* range) {
  const std::string& op = n.op->name;
  if (op == "embedding") return *range = n.inputs[1].shape()[0], 0;
  if (op == "index_select" || op == "gather") return *range = n.inputs[0].shape()[n.attrs.i("dim")], 1;
  if (op == "one_hot") return *range = n.attrs.i("num_classes"), 0;
  *range = 0;
  return -1;
}

// Ops that only move the ids around, one tensor in; the whole ones keep every id.
bool moves_ids(const std::string& op) {
  static const std::set<std::string> ops = {"reshape", "expand_dims", "flatten", "permute", "squeeze", "transpose",
                                            "unsqueeze", "slice", "slice_by_size", "split", "crop"};
  return ops.count(op) > 0;
}
bool keeps_all_ids(const std::string& op) { return moves_ids(op) && op != "slice" && op != "slice_by_size" && op != "split" && op != "crop"; }

struct Splitter {
  std::map<std::pair<const Node*, int>, std::map<int64_t, Tensor>> memo;

  // ids - offset, pushed through shape ops to a graph input.
  Tensor offset(const Tensor& ids, int64_t off) {
    if (off == 0) return ids;
    auto& m = memo[{ids.node().get(), ids.index()}];
    if (auto it = m.find(off); it != m.end()) return it->second;
    const Node& n = *ids.node();
    Tensor r;
    if (!n.is_input() && !n.is_const() && moves_ids(n.op->name) && n.inputs.size() == 1) {
      auto outs = call(n.op->name, {offset(n.inputs[0], off)}, n.attrs);
      r = outs.at(static_cast<size_t>(ids.index()));
    } else {
      r = call1("index_offset", {ids}, {{"offset", off}});
    }
    return m[off] = r;
  }

  // The op over chunks [2048 k, 2048 k + len): summed (index_select, gather) or concatenated
  // (one_hot); an embedding stays one layer that takes the offset ids of each chunk.
  Tensor split(const Node& n, const std::vector<Tensor>& in, int idx, int64_t range) {
    const std::string& op = n.op->name;
    if (op == "embedding") {  // one layer keeps its table (compressed whole, named as given)
      std::vector<Tensor> ins = {in[0], in[1]};
      for (int64_t first = kIndexChunk; first < range; first += kIndexChunk) ins.push_back(offset(in[0], first));
      return call1(op, ins, n.attrs);
    }
    std::vector<Tensor> parts;
    for (int64_t first = 0; first < range; first += kIndexChunk) {
      int64_t len = std::min(kIndexChunk, range - first);
      std::vector<Tensor> ins = in;
      ins[idx] = offset(in[idx], first);
      Attrs a = n.attrs;
      if (op == "one_hot") a.set("num_classes", len);
      else ins[0] = narrow(in[0], static_cast<int>(n.attrs.i("dim")), first, len);
      parts.push_back(call1(op, ins, a));
    }
    if (op == "one_hot") return concat(parts, static_cast<int64_t>(parts[0].rank()) - 1);
    Tensor sum = parts[0];
    for (size_t i = 1; i < parts.size(); ++i) sum = add(sum, parts[i]);
    return sum;
  }
};

}  // namespace

std::vector<Tensor> split_index_ranges(const std::vector<Tensor>& outputs, std::map<std::string, IntInputRule>* rules) {
  auto order = topo_sort(outputs);
  // Rules first, on the graph as given: follow each int32 input through whole-id moves.
  std::unordered_map<const Node*, std::vector<std::pair<const Node*, int>>> users;  // node -> (user, operand)
  for (auto& n : order)
    for (size_t i = 0; i < n->inputs.size(); ++i) users[n->inputs[i].node().get()].push_back({n.get(), static_cast<int>(i)});
  for (auto& n : order) {
    if (!n->is_input() || n->outputs[0].dtype != DType::int32) continue;
    IntInputRule r{0, false};
    std::vector<std::pair<const Node*, bool>> todo = {{n.get(), true}};  // (node, holds every id)
    while (!todo.empty()) {
      auto [cur, whole] = todo.back();
      todo.pop_back();
      for (auto [user, operand] : users[cur]) {
        int64_t range = 0;
        if (index_operand(*user, &range) == operand) {
          if (whole) r.index_limit = r.index_limit ? std::min(r.index_limit, range) : range;
        } else if (moves_ids(user->op->name) && user->inputs.size() == 1) {
          todo.push_back({user, whole && keeps_all_ids(user->op->name)});
        } else {
          r.plain_use = true;
        }
      }
    }
    if (r.index_limit == 0) r.plain_use = true;
    (*rules)[n->name] = r;
  }
  bool any = false;
  for (auto& n : order) {
    int64_t range = 0;
    any |= index_operand(*n, &range) >= 0 && range > kIndexChunk && !(n->op->name == "embedding" && n->inputs.size() > 2);
  }
  if (!any) return outputs;
  Splitter sp;
  return rewrite_graph(outputs, [&](const Node& n, std::vector<Tensor>& ins) -> std::vector<Tensor> {
    int64_t range = 0;
    int idx = index_operand(n, &range);
    if (idx < 0 || range <= kIndexChunk || (n.op->name == "embedding" && n.inputs.size() > 2)) return {};
    Tensor out = sp.split(n, ins, idx, range);
    out.node()->name = n.name, out.node()->auto_name = n.auto_name;  // the layer keeps its name
    return {out};
  });
}

}  // namespace af
