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

// Buffer slots by liveness: a value's slot is free again after its last use. A view's output
// shares its input's slot, which stays taken until the last use of either. Slot sizes are in
// elements (the simulator's float buffers); peak bytes are reported as fp16.
void plan_memory(Program& p) {
  p.slot_elems.clear();
  p.slot_bytes.clear();
  std::vector<int> owner(p.values.size());  // the value whose slot a value lives in
  for (size_t v = 0; v < owner.size(); ++v) owner[v] = static_cast<int>(v);
  for (const auto& st : p.steps)
    if (is_buffer_view(p, st)) owner[st.out[0]] = owner[st.in[0]];
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
  for (auto& v : p.values) v.slot = -1;
  for (int v : p.inputs) p.values[v].slot = alloc(std::max<int64_t>(1, numel(p.values[v].type.shape)));
  for (size_t s = 0; s < p.steps.size(); ++s) {
    for (int v : p.steps[s].out)
      p.values[v].slot = owner[v] != v ? p.values[owner[v]].slot : alloc(std::max<int64_t>(1, numel(p.values[v].type.shape)));
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
