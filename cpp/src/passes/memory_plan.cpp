#include <algorithm>
#include <set>

#include "passes/passes.h"

namespace af {

// Buffer slots by liveness: a value's slot is free again after its last use. Slot sizes
// are in elements (the simulator's float buffers); peak bytes are reported as fp16.
void plan_memory(Program& p) {
  p.slot_elems.clear();
  p.slot_bytes.clear();
  std::vector<int> last_use(p.values.size(), -1);
  for (size_t s = 0; s < p.steps.size(); ++s)
    for (int v : p.steps[s].in) last_use[v] = static_cast<int>(s);
  for (int v : p.outputs) last_use[v] = static_cast<int>(p.steps.size());

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
    for (int v : p.steps[s].out) p.values[v].slot = alloc(std::max<int64_t>(1, numel(p.values[v].type.shape)));
    std::set<int> done;
    for (int v : p.steps[s].in)
      if (last_use[v] == static_cast<int>(s) && !p.values[v].data && done.insert(v).second) release(v);
    for (int v : p.steps[s].out)
      if (last_use[v] < 0) release(v);
  }
  // Outputs that are constants (fully folded graphs) still need a buffer to copy from.
  for (int v : p.outputs)
    if (p.values[v].slot < 0 && !p.values[v].data) p.values[v].slot = alloc(std::max<int64_t>(1, numel(p.values[v].type.shape)));
  p.slot_bytes.assign(p.slot_elems.size(), 0);
  for (const auto& v : p.values)
    if (v.slot >= 0) p.slot_bytes[v.slot] = std::max(p.slot_bytes[v.slot], engine_bytes(v.type.shape));
}

}  // namespace af
