// Planning elementwise chains (runtime/chains.h).
#include "runtime/chains.h"

#include <algorithm>

#include "aneforge/op.h"

namespace af {

namespace {

// A step the memory plan made a view (a cast bool -> fp16): its output is its input's buffer.
bool is_view(const Program& p, const Step& st) {
  const OpDef& op = *st.node->op;
  return op.view && st.in.size() == 1 && st.out.size() == 1 && st.epilogue.empty() &&
         p.values[st.out[0]].slot >= 0 && p.values[st.out[0]].slot == p.values[st.in[0]].slot &&
         p.values[st.out[0]].offset == p.values[st.in[0]].offset &&
         op.view(p.values[st.in[0]].type.dtype, p.values[st.out[0]].type.dtype);
}

// An elementwise step that runs a kernel: one op producing one value in its own buffer.
bool computes(const Program& p, const Step& st) {
  const OpDef& op = *st.node->op;
  if (!op.elementwise || st.out.size() != 1 || !st.epilogue.empty() || p.values[st.out[0]].slot < 0) return false;
  return !(op.view && op.view(p.values[st.in[0]].type.dtype, p.values[st.out[0]].type.dtype));
}

// Whether step s can join a chain that started at `first` with outputs of `shape`: a step
// that computes one, or a view (nothing runs): of a chain value, with the same shape (a cast
// of a comparison: the value's block), or of a value from before the chain, any shape (a
// reshape of a gradient the chain then reads).
bool joins(const Program& p, size_t s, size_t first, const Shape& shape) {
  const Step& st = p.steps[s];
  if (is_view(p, st)) {
    int v = st.in[0];  // through views to the value computed
    while (p.values[v].producer >= 0 && is_view(p, p.steps[static_cast<size_t>(p.values[v].producer)]))
      v = p.steps[static_cast<size_t>(p.values[v].producer)].in[0];
    return p.values[v].producer < static_cast<int>(first) || p.values[st.out[0]].type.shape == shape;
  }
  return computes(p, st) && p.values[st.out[0]].type.shape == shape;
}

// `s` right-aligned to `rank` dims (leading 1s).
Shape aligned(const Shape& s, size_t rank) {
  Shape r(rank - s.size(), 1);
  r.insert(r.end(), s.begin(), s.end());
  return r;
}

// The most leading dims of `out` every input either spans (the same sizes) or is broadcast
// along (all 1): blocks are then runs of rows over those dims.
size_t split_dims(const Program& p, size_t first, size_t last, const Shape& out) {
  for (size_t lead = out.size(); lead > 0; --lead) {
    bool ok = true;
    for (size_t s = first; s <= last && ok; ++s)
      for (int v : is_view(p, p.steps[s]) ? std::vector<int>{} : p.steps[s].in) {  // a view reads nothing
        Shape t = aligned(p.values[v].type.shape, out.size());
        bool spans = std::equal(t.begin(), t.begin() + lead, out.begin());
        bool broadcast = std::all_of(t.begin(), t.begin() + lead, [](int64_t d) { return d == 1; });
        if (!spans && !broadcast) {
          ok = false;
          break;
        }
      }
    if (ok) return lead;
  }
  return 0;
}

bool plan_one(const Program& p, const std::vector<int>& last_read, size_t first, size_t last, ElementwiseChain& c) {
  const Shape out = p.values[p.steps[first].out[0]].type.shape;
  const size_t lead = split_dims(p, first, last, out);
  if (lead == 0) return false;
  c.first = first;
  c.last = last;
  c.rows = 1;
  for (size_t d = 0; d < lead; ++d) c.rows *= out[d];
  c.inner = numel(out) / c.rows;
  if (c.inner > kChainBlock * 8) return false;
  c.rows_per_block = std::max<int64_t>(1, kChainBlock / c.inner);
  if (c.rows < 2 * c.rows_per_block) return false;  // one block: nothing to gain
  c.out_shape = Shape{1};
  c.out_shape.insert(c.out_shape.end(), out.begin() + static_cast<std::ptrdiff_t>(lead), out.end());
  std::vector<int> buffer_of(p.values.size(), -1);  // chain values that live in block buffers
  std::vector<std::pair<int, int64_t>> written;  // (slot, offset) of each output written block by block
  // A view and its input are one buffer: kept in a block buffer only if neither is read
  // after the chain.
  std::vector<int> read_until(last_read);
  for (size_t s = last + 1; s-- > first;)
    if (is_view(p, p.steps[s])) {
      int in = p.steps[s].in[0], out = p.steps[s].out[0];
      read_until[in] = std::max(read_until[in], read_until[out]);
    }
  for (size_t s = first; s <= last; ++s) {
    const Step& st = p.steps[s];
    std::vector<ChainOperand> ops;
    for (int v : is_view(p, st) ? std::vector<int>{} : st.in) {
      ChainOperand o;
      Shape t = aligned(p.values[v].type.shape, out.size());
      o.internal = buffer_of[v];
      o.rows = std::equal(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(lead), out.begin());
      o.shape = Shape{1};
      o.shape.insert(o.shape.end(), t.begin() + static_cast<std::ptrdiff_t>(lead), t.end());
      o.row_elems = numel(o.shape);
      ops.push_back(std::move(o));
    }
    c.in.push_back(std::move(ops));
    int v = st.out[0];
    if (is_view(p, st)) {  // nothing runs; the output is the input's block or buffer
      c.out_internal.push_back(kChainView);
      buffer_of[v] = buffer_of[st.in[0]];
      continue;
    }
    bool internal = read_until[v] <= static_cast<int>(last);  // read by no step after the chain, not an output
    c.out_internal.push_back(internal ? c.internals : -1);
    if (internal) buffer_of[v] = c.internals++;
    else written.push_back({p.values[v].slot, p.values[v].offset});
  }
  // A value read whole (or with rows of another length, or from another offset) by every
  // block must not share a slot with an output the chain writes block by block.
  for (size_t s = first; s <= last; ++s)
    for (size_t i = 0; i < c.in[s - first].size(); ++i) {
      const ChainOperand& o = c.in[s - first][i];
      const Value& v = p.values[p.steps[s].in[i]];
      if (o.internal >= 0 || v.slot < 0) continue;
      for (auto [slot, offset] : written)
        if (slot == v.slot && !(o.rows && o.row_elems == c.inner && offset == v.offset)) return false;
    }
  return true;
}

}  // namespace

std::vector<ElementwiseChain> plan_elementwise_chains(const Program& p, const std::vector<bool>& excluded) {
  std::vector<ElementwiseChain> chains;
  if (p.options.check_finite) return chains;  // every step's output is checked on its own
  std::vector<int> last_read(p.values.size(), -1);
  for (size_t s = 0; s < p.steps.size(); ++s)
    for (int v : p.steps[s].in) last_read[v] = static_cast<int>(s);
  for (int v : p.outputs) last_read[v] = static_cast<int>(p.steps.size());
  auto allowed = [&](size_t s) { return !(s < excluded.size() && excluded[s]); };
  for (size_t s = 0; s < p.steps.size();) {
    if (!allowed(s) || !computes(p, p.steps[s])) {
      ++s;
      continue;
    }
    const Shape& shape = p.values[p.steps[s].out[0]].type.shape;
    size_t e = s;
    while (e + 1 < p.steps.size() && allowed(e + 1) && joins(p, e + 1, s, shape)) ++e;
    while (e > s && is_view(p, p.steps[e])) --e;  // a chain ends on a step that computes
    if (numel(shape) < 2 * kChainBlock) {
      s = e + 1;
      continue;
    }
    // The longest chain from s that plans (a shorter one may avoid a slot conflict), then on.
    size_t end = e;
    ElementwiseChain c;
    while (end > s && !plan_one(p, last_read, s, end, c)) c = ElementwiseChain{}, --end;
    if (end > s) chains.push_back(std::move(c));
    s = end + 1;
  }
  return chains;
}

}  // namespace af
