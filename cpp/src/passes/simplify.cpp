// Simplifying passes: constant folding, common-subexpression elimination, dead code.
#include <cstdint>
#include <cstring>
#include <map>
#include <unordered_map>

#include "aneforge/op.h"
#include "aneforge/runtime.h"
#include "passes/passes.h"

namespace af {

namespace {
constexpr int64_t kMaxFoldElements = 1 << 22;  // larger constant results are computed at run time
}

namespace {

uint32_t bits_of(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

// FNV-1a over the stored bytes, 8 at a time (a form's bytes: fp16 bits or float32), so
// hashing a model's weights runs at memory speed. Equal values in different forms hash apart
// and are simply not merged.
uint64_t bits_hash(const ConstValues& v) {
  const char* p = v.is_half() ? reinterpret_cast<const char*>(v.half_data()) : reinterpret_cast<const char*>(v.data());
  const size_t n = v.size() * (v.is_half() ? 2 : 4);
  uint64_t h = 1469598103934665603ull ^ (v.is_half() ? 1 : 0);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 1099511628211ull;
  }
  for (; i < n; ++i) h = (h ^ static_cast<unsigned char>(p[i])) * 1099511628211ull;
  return h;
}

// Large borrowed constants (a checkpoint's weights) are keyed by their memory: the same array
// is the same constant. Hashing gigabytes of weights in every compile would cost more than
// the rare merge of two equal arrays at different addresses.
bool by_address(const ConstValues& v) {
  return v.borrowed_memory() && static_cast<int64_t>(v.size()) >= kHalfConstMin;
}

uint64_t const_key(const ConstValues& v) {
  if (by_address(v)) return reinterpret_cast<uintptr_t>(v.borrowed_memory()) * 2 + (v.is_half() ? 1 : 0);
  return bits_hash(v);
}

bool same_bits(const ConstValues& a, const ConstValues& b) {
  if (by_address(a) || by_address(b))
    return a.borrowed_memory() == b.borrowed_memory() && a.is_half() == b.is_half() && a.size() == b.size();
  if (a.size() != b.size()) return false;
  if (a.is_half() && b.is_half()) return std::memcmp(a.half_data(), b.half_data(), a.size() * 2) == 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (bits_of(a[i]) != bits_of(b[i])) return false;
  return true;
}

}  // namespace

void fold_constants(Program& p) {
  SimContext ctx{p.options.numerics};
  std::vector<bool> dead(p.steps.size(), false);
  for (size_t s = 0; s < p.steps.size(); ++s) {
    Step& st = p.steps[s];
    bool all_const = !st.in.empty();
    for (int v : st.in) all_const &= static_cast<bool>(p.values[v].data);
    if (!all_const || !st.node->op->kernel) continue;
    int64_t total = 0;
    for (int v : st.out) total += numel(p.values[v].type.shape);
    if (total > kMaxFoldElements) continue;
    std::vector<const float*> in;
    std::vector<const TensorType*> types;
    // Inputs read at their stored precision, exactly as at run time.
    std::vector<std::vector<float>> stored;
    for (int v : st.in) {
      stored.push_back(p.values[v].data->values.to_vector());
      ctx.store(stored.back().data(), stored.back().size(), p.values[v].type.dtype);
      in.push_back(stored.back().data());
      types.push_back(&p.values[v].type);
    }
    std::vector<std::shared_ptr<ConstData>> outs;
    std::vector<float*> optr;
    for (int v : st.out) {
      outs.push_back(std::make_shared<ConstData>());
      auto& vals = outs.back()->values.mutable_floats();
      vals.resize(static_cast<size_t>(std::max<int64_t>(1, numel(p.values[v].type.shape))));
      optr.push_back(vals.data());
    }
    KernelArgs args{*st.node, in.data(), optr.data(), ctx, types.data(), in.size()};
    st.node->op->kernel(args);
    for (size_t o = 0; o < st.out.size(); ++o) {
      Value& v = p.values[st.out[o]];
      ctx.store(optr[o], outs[o]->values.size(), v.type.dtype);
      v.data = outs[o];
      v.producer = -1;
    }
    dead[s] = true;
  }
  remove_steps(p, dead);
}

void eliminate_common_subexpressions(Program& p) {
  // Identical constants first (same dtype, shape and bits), then identical layers.
  // Keyed by a hash of the bits (no copy of the weights), then compared bit for bit.
  std::map<std::tuple<int, Shape, uint64_t>, std::vector<int>> consts;
  for (size_t v = 0; v < p.values.size(); ++v) {
    const Value& val = p.values[v];
    if (!val.data || val.data->packed) continue;
    auto key = std::make_tuple(static_cast<int>(val.type.dtype), val.type.shape, const_key(val.data->values));
    auto& same = consts[key];
    int found = -1;
    for (int c : same)
      if (same_bits(p.values[c].data->values, val.data->values)) found = c;
    if (found >= 0) redirect(p, static_cast<int>(v), found);
    else same.push_back(static_cast<int>(v));
  }
  std::map<std::string, size_t> seen;
  std::vector<bool> dead(p.steps.size(), false);
  for (size_t s = 0; s < p.steps.size(); ++s) {
    const Step& st = p.steps[s];
    if (!st.epilogue.empty()) continue;
    std::string key = st.node->op->name + "|" + st.node->attrs.str() + "|";
    for (int v : st.in) key += std::to_string(v) + ",";
    auto [it, fresh] = seen.emplace(key, s);
    if (fresh) continue;
    const Step& first = p.steps[it->second];
    for (size_t o = 0; o < st.out.size(); ++o) redirect(p, st.out[o], first.out[o]);
    dead[s] = true;
  }
  remove_steps(p, dead);
}

void eliminate_dead_code(Program& p) {
  std::vector<bool> live(p.values.size(), false);
  for (int v : p.outputs) live[v] = true;
  std::vector<bool> dead(p.steps.size(), true);
  for (size_t s = p.steps.size(); s-- > 0;) {
    bool any = false;
    for (int v : p.steps[s].out) any |= live[v];
    if (!any) continue;
    dead[s] = false;
    for (int v : p.steps[s].in) live[v] = true;
  }
  remove_steps(p, dead);
  // Drop values nothing refers to and renumber (graph inputs always stay).
  std::vector<bool> keep(p.values.size(), false);
  for (int v : p.inputs) keep[v] = true;
  for (int v : p.outputs) keep[v] = true;
  for (const auto& s : p.steps) {
    for (int v : s.in) keep[v] = true;
    for (int v : s.out) keep[v] = true;
  }
  std::vector<int> remap(p.values.size(), -1);
  std::vector<Value> vals;
  for (size_t v = 0; v < p.values.size(); ++v)
    if (keep[v]) {
      remap[v] = static_cast<int>(vals.size());
      vals.push_back(std::move(p.values[v]));
    }
  p.values = std::move(vals);
  for (int& v : p.inputs) v = remap[v];
  for (int& v : p.outputs) v = remap[v];
  for (auto& s : p.steps) {
    for (int& v : s.in) v = remap[v];
    for (int& v : s.out) v = remap[v];
  }
}

}  // namespace af
