#include <algorithm>
#include <set>

#include "aneforge/op.h"
#include "passes/passes.h"

namespace af {

// Whether step s's output can be its input's buffer: a view (reshape) of a value some step
// computed (not a program input, which a held or shared input rebinds, nor a constant).
static bool is_buffer_view(const Program& p, const Step& st) {
  if (!st.node->op->view || st.in.size() != 1 || st.out.size() != 1 || !st.epilogue.empty()) return false;
  const Value& in = p.values[st.in[0]];
  return !in.data && in.producer >= 0 && st.node->op->view(in.type.dtype, p.values[st.out[0]].type.dtype);
}

// The inputs of a concat that can be computed where the concat would copy them: the concat
// joins whole blocks (every dim before its axis is 1), and the input (or the value it is a
// view of) is computed by a step, read by nothing else, not a program output and not placed
// already. Sets, per value, the concat output it lives in (else -1), and its offset there.
static void place_concat_inputs(const Program& p, std::vector<int>& in_concat, std::vector<int64_t>& offset) {
  std::vector<int> uses(p.values.size(), 0);
  for (const auto& st : p.steps)
    for (int v : st.in) ++uses[v];
  for (int v : p.outputs) uses[v] += 2;  // never placed
  for (const auto& st : p.steps) {
    if (st.node->op->name != "concat" || st.out.size() != 1 || !st.epilogue.empty() || st.in.size() < 2) continue;
    const Value& out = p.values[st.out[0]];
    int64_t axis = st.node->attrs.i("axis", 0);
    bool blocks = !out.data;
    for (int64_t d = 0; d < axis && blocks; ++d) blocks = out.type.shape[static_cast<size_t>(d)] == 1;
    if (!blocks || in_concat[st.out[0]] >= 0) continue;
    int64_t at = 0;
    for (int v : st.in) {
      int u = v;  // the value a step computes, which then sits in place
      const Value& val = p.values[v];
      if (val.producer >= 0 && is_buffer_view(p, p.steps[static_cast<size_t>(val.producer)])) {
        u = p.steps[static_cast<size_t>(val.producer)].in[0];
        if (uses[u] != 1) u = -1;  // read by the view alone
      }
      // Not a concat's output: its own inputs may sit in its slot, one level of placing deep.
      bool placed = u >= 0 && uses[v] == 1 && !p.values[u].data && p.values[u].producer >= 0 && in_concat[u] < 0 &&
                    !is_buffer_view(p, p.steps[static_cast<size_t>(p.values[u].producer)]) &&
                    p.steps[static_cast<size_t>(p.values[u].producer)].node->op->name != "concat";
      if (placed) {
        in_concat[u] = in_concat[v] = st.out[0];
        offset[u] = offset[v] = at;
      }
      at += numel(val.type.shape);
    }
  }
}

// Buffer slots by liveness: a value's slot is free again after its last use. A view's output
// shares its input's slot, which stays taken until the last use of either. A concat's placed
// inputs live in its output's slot, at their offsets, which is taken from the first of them
// computed until the last use of the concat. Slot sizes are in elements (the simulator's
// float buffers); peak bytes are reported as fp16.
void plan_memory(Program& p) {
  p.slot_elems.clear();
  p.slot_bytes.clear();
  std::vector<int> in_concat(p.values.size(), -1);
  std::vector<int64_t> offset(p.values.size(), 0);
  place_concat_inputs(p, in_concat, offset);
  std::vector<int> owner(p.values.size());  // the value whose slot a value lives in
  for (size_t v = 0; v < owner.size(); ++v) owner[v] = in_concat[v] >= 0 ? in_concat[v] : static_cast<int>(v);
  for (const auto& st : p.steps)
    if (is_buffer_view(p, st) && in_concat[st.out[0]] < 0) {
      owner[st.out[0]] = owner[st.in[0]];
      offset[st.out[0]] = offset[st.in[0]];
    }
  std::vector<int> last_use(p.values.size(), -1);  // of the owner: the last use of any value in its slot
  for (size_t s = 0; s < p.steps.size(); ++s)
    for (int v : p.steps[s].in) last_use[owner[v]] = static_cast<int>(s);
  for (int v : p.outputs) last_use[owner[v]] = static_cast<int>(p.steps.size());

  std::multiset<std::pair<int64_t, int>> free_slots;
  auto alloc = [&](int64_t n) {
    auto it = free_slots.lower_bound({n, -1});
    if (it != free_slots.end()) {
      int s = it->second;
      free_slots.erase(it);
      return s;
    }
    if (!free_slots.empty()) {  // grow the largest free slot
      auto last = std::prev(free_slots.end());
      int s = last->second;
      free_slots.erase(last);
      p.slot_elems[s] = n;
      return s;
    }
    p.slot_elems.push_back(n);
    return static_cast<int>(p.slot_elems.size()) - 1;
  };
  auto release = [&](int v) {
    if (p.values[v].slot >= 0) free_slots.insert({p.slot_elems[p.values[v].slot], p.values[v].slot});
  };
  for (auto& v : p.values) v.slot = -1, v.offset = 0;
  for (int v : p.inputs) p.values[v].slot = alloc(std::max<int64_t>(1, numel(p.values[v].type.shape)));
  for (size_t s = 0; s < p.steps.size(); ++s) {
    for (int v : p.steps[s].out) {
      int o = owner[v];
      if (p.values[o].slot < 0) p.values[o].slot = alloc(std::max<int64_t>(1, numel(p.values[o].type.shape)));
      p.values[v].slot = p.values[o].slot;
      p.values[v].offset = offset[v];
    }
    std::set<int> done;
    for (int v : p.steps[s].in)
      if (last_use[owner[v]] == static_cast<int>(s) && !p.values[v].data && done.insert(owner[v]).second) release(owner[v]);
    for (int v : p.steps[s].out)
      if (owner[v] == v && last_use[v] < 0) release(v);
  }
  // Outputs that are constants (fully folded graphs) still need a buffer to copy from.
  for (int v : p.outputs)
    if (p.values[v].slot < 0 && !p.values[v].data) p.values[v].slot = alloc(std::max<int64_t>(1, numel(p.values[v].type.shape)));
  p.slot_bytes.assign(p.slot_elems.size(), 0);
  for (const auto& v : p.values)
    if (v.slot >= 0) p.slot_bytes[v.slot] = std::max(p.slot_bytes[v.slot], engine_bytes(v.type.shape));
}

}  // namespace af
