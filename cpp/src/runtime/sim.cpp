// The simulator backend: runs a Program on the CPU with the engine's numerics.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <unordered_map>

#include "aneforge/engine.h"
#include "aneforge/error.h"
#include "aneforge/op.h"
#include "aneforge/parallel.h"
#include "aneforge/runtime.h"
#include "runtime/chains.h"

namespace af {

void SimContext::store(float* data, size_t n, DType dtype) const {
  switch (dtype) {
    case DType::fp16:
      if (numerics.precision == Precision::fp16) round_to_fp16(data, n, numerics.fp16);
      return;
    case DType::fp32:
      return;
    case DType::boolean:
      for (size_t i = 0; i < n; ++i) data[i] = data[i] != 0.0f ? 1.0f : 0.0f;
      return;
    default: {
      float lo = static_cast<float>(dtype_min(dtype)), hi = static_cast<float>(dtype_max(dtype));
      for (size_t i = 0; i < n; ++i) {
        float v = std::nearbyint(data[i]);
        data[i] = v != v ? 0.0f : std::min(hi, std::max(lo, v));
      }
      // The engine holds int32 in fp16 (docs/engine.md): exact to 2048, rounded beyond.
      if (dtype == DType::int32 && numerics.precision == Precision::fp16) round_to_fp16(data, n, numerics.fp16);
    }
  }
}

namespace {
std::atomic<bool> g_sim_chains{true};
std::atomic<bool> g_sim_fused_finish{true};
std::atomic<int64_t> g_weight_cache_limit{int64_t{256} << 20};
std::atomic<int64_t> g_weight_cache_used{0};
}

void set_sim_chains(bool on) { g_sim_chains.store(on, std::memory_order_relaxed); }
bool sim_chains() { return g_sim_chains.load(std::memory_order_relaxed); }
void set_sim_fused_finish(bool on) { g_sim_fused_finish.store(on, std::memory_order_relaxed); }
bool sim_fused_finish() { return g_sim_fused_finish.load(std::memory_order_relaxed); }
void set_sim_weight_cache(int64_t max_bytes) {
  if (max_bytes < 0) throw ValueError("set_sim_weight_cache: max_bytes must be >= 0, got " + std::to_string(max_bytes));
  g_weight_cache_limit.store(max_bytes);
}
int64_t sim_weight_cache() { return g_weight_cache_limit.load(); }
int64_t sim_weight_cache_bytes() { return g_weight_cache_used.load(); }

void Executable::alias(int, int) {
  throw UnsupportedError("this backend has no resident state");
}

void Executable::hold(int) {
  throw UnsupportedError("this backend has no held inputs");
}

void Executable::write_rows(int, int, int64_t, int64_t, const float*) {
  throw UnsupportedError("this backend has no held inputs");
}

void Executable::share_input(int, Executable&, int) {
  throw UnsupportedError("this backend has no shared inputs");
}

RowRuns row_runs(const Program& p, int in, int dim, int64_t start, int64_t count) {
  if (in < 0 || static_cast<size_t>(in) >= p.inputs.size())
    throw ValueError("write_rows: the program has " + std::to_string(p.inputs.size()) + " inputs; got input " +
                     std::to_string(in));
  const Value& v = p.values[p.inputs[in]];
  const Shape& s = v.type.shape;
  const int rank = static_cast<int>(s.size());
  if (dim < 0) dim += rank;
  if (dim < 0 || dim >= rank)
    throw ValueError("write_rows: input '" + v.name + "' " + shape_str(s) + " has no dim " + std::to_string(dim));
  if (start < 0 || count < 0 || start > s[dim] - count)
    throw ValueError("write_rows: rows " + std::to_string(start) + ".." + std::to_string(start + count - 1) +
                     " are outside dim " + std::to_string(dim) + " of input '" + v.name + "' " + shape_str(s));
  RowRuns r;
  int64_t inner = 1;
  for (int k = dim + 1; k < rank; ++k) inner *= s[k];
  r.outer = 1;
  for (int k = 0; k < dim; ++k) r.outer *= s[k];
  r.run = count * inner;
  r.first = start * inner;
  r.stride = s[dim] * inner;
  return r;
}

void check_alias(const Program& p, int out, int in) {
  if (out < 0 || in < 0 || static_cast<size_t>(out) >= p.outputs.size() || static_cast<size_t>(in) >= p.inputs.size())
    throw ValueError("alias: the program has " + std::to_string(p.outputs.size()) + " outputs and " +
                     std::to_string(p.inputs.size()) + " inputs; got output " + std::to_string(out) + ", input " +
                     std::to_string(in));
  const Value& o = p.values[p.outputs[out]];
  const Value& i = p.values[p.inputs[in]];
  if (!(o.type == i.type))
    throw ValueError("alias: output " + std::to_string(out) + " " + shape_str(o.type.shape) + " " +
                     std::string(dtype_name(o.type.dtype)) + " cannot be input '" + i.name + "' " +
                     shape_str(i.type.shape) + " " + std::string(dtype_name(i.type.dtype)) +
                     ": resident state keeps its type");
}

namespace {

// Zeroed floats from calloc: a large buffer is fresh pages the kernel zeroes when first
// touched, so memory a run never touches (an input's slot once the input is held or shared,
// as an LLM's KV caches are) costs no time at load and no resident memory.
class ZeroedFloats {
 public:
  explicit ZeroedFloats(size_t n) : p_(static_cast<float*>(std::calloc(std::max<size_t>(n, 1), sizeof(float)))) {
    if (!p_) throw std::bad_alloc();
  }
  float* data() const { return p_.get(); }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> p_;
};

class SimExecutable final : public Executable {
 public:
  explicit SimExecutable(std::shared_ptr<const Program> p) : prog_(std::move(p)), ctx_{prog_->options.numerics} {
    for (auto n : prog_->slot_elems) slots_.emplace_back(static_cast<size_t>(n));
    ptr_.resize(prog_->values.size(), nullptr);
    for (size_t v = 0; v < prog_->values.size(); ++v) {
      const auto& val = prog_->values[v];
      if (widened(val)) continue;
      if (val.data) ptr_[v] = const_cast<float*>(val.data->values.data());
      else if (val.slot >= 0) ptr_[v] = slots_[val.slot].data() + val.offset;
    }
    for (const auto& s : prog_->steps) {
      StepPtrs sp;
      int64_t scratch = 0;  // this layer's widened weights, one after the other
      const auto& reads_half = s.node->op->half_inputs;
      for (size_t i = 0; i < s.in.size(); ++i) {
        const Value& val = prog_->values[s.in[i]];
        bool as_half = val.data && val.data->values.is_half() &&
                       std::find(reads_half.begin(), reads_half.end(), static_cast<int>(i)) != reads_half.end();
        sp.in.push_back(ptr_[s.in[i]]);
        sp.in_types.push_back(&val.type);
        sp.half.push_back(as_half ? val.data->values.half_data() : nullptr);
        const auto& checked = s.node->op->finite_checked_inputs;
        sp.finite.push_back(std::find(checked.begin(), checked.end(), static_cast<int>(i)) != checked.end() &&
                            constant_is_finite(val));
        sp.scratch_at.push_back(widened(val) && !as_half ? scratch : -1);
        if (widened(val) && !as_half) scratch += numel(val.type.shape);
      }
      scratch_elems_ = std::max(scratch_elems_, scratch);
      for (int v : s.out) sp.out.push_back(ptr_[v]);
      sp.stored = s.node->op->exact_output && outputs_need_no_rounding(s);
      sp.in_place = s.node->op->name == "concat" && s.out.size() == 1;  // its inputs computed where it would copy them
      for (size_t i = 0, at = 0; i < s.in.size() && sp.in_place; ++i) {
        sp.in_place = sp.in[i] == sp.out[0] + at;
        at += static_cast<size_t>(numel(prog_->values[s.in[i]].type.shape));
      }
      sp.finishable = s.out.size() == 1 && std::all_of(s.epilogue.begin(), s.epilogue.end(), [](const auto& e) {
        return e->op->elementwise && e->inputs.size() == 1 && e->outputs.size() == 1;
      });
      steps_.push_back(std::move(sp));
    }
    // Chains never hold a step whose constants are widened into the one scratch buffer.
    std::vector<bool> widens(prog_->steps.size(), false);
    for (size_t s = 0; s < steps_.size(); ++s)
      for (int64_t at : steps_[s].scratch_at) widens[s] = widens[s] || at >= 0;
    chains_ = plan_elementwise_chains(*prog_, widens);
    chain_at_.assign(prog_->steps.size(), -1);
    for (size_t c = 0; c < chains_.size(); ++c) chain_at_[chains_[c].first] = static_cast<int>(c);
  }

  ~SimExecutable() override { g_weight_cache_used -= widened_bytes_; }

  const Program& program() const override { return *prog_; }

  void alias(int out, int in) override {
    auto mu = mu_;
    std::lock_guard<std::mutex> lock(*mu);
    check_alias(*prog_, out, in);
    if (is_held(in))
      throw ValueError("alias: input '" + prog_->values[prog_->inputs[in]].name + "' is held (hold_input)");
    aliases_.push_back({out, in});
  }

  // The held value is the input's buffer itself: a run reads it where it is.
  void hold(int in) override {
    auto mu = mu_;
    std::lock_guard<std::mutex> lock(*mu);
    hold_locked(in);
  }

  void share_input(int in, Executable& src_exe, int src_in) override {
    auto* src = dynamic_cast<SimExecutable*>(&src_exe);
    if (!src) throw ValueError("share_input: both programs must run on the same backend");
    if (src == this) throw ValueError("share_input: a program cannot share an input with itself");
    auto mine = mu_, theirs = src->mu_;
    std::unique_lock<std::mutex> a(*mine, std::defer_lock), b(*theirs, std::defer_lock);
    if (mine == theirs) a.lock();
    else std::lock(a, b);
    const Program& p = *prog_;
    row_runs(p, in, 0, 0, 0);  // checks the indices
    row_runs(*src->prog_, src_in, 0, 0, 0);
    const Value& v = p.values[p.inputs[in]];
    const Value& w = src->prog_->values[src->prog_->inputs[src_in]];
    if (!(v.type == w.type))
      throw ValueError("share_input: input '" + v.name + "' " + shape_str(v.type.shape) + " " +
                       std::string(dtype_name(v.type.dtype)) + " cannot share input '" + w.name + "' " +
                       shape_str(w.type.shape) + " " + std::string(dtype_name(w.type.dtype)) +
                       ": shared inputs have one shape and dtype");
    if (std::any_of(aliases_.begin(), aliases_.end(), [&](auto x) { return x.second == in; }))
      throw ValueError("share_input: input '" + v.name + "' is resident (make_resident)");
    if (mine != theirs && (lends_ || borrows_))
      throw ValueError("share_input: this program already shares inputs with others; share from one program to all");
    src->hold_locked(src_in);
    held_.resize(p.inputs.size());
    bind_held(in, src->held_[src_in]);
    src->lends_ = borrows_ = true;
    mu_ = theirs;  // one lock for every program that reads the buffer
  }

  void write_rows(int in, int dim, int64_t start, int64_t count, const float* src) override {
    auto mu = mu_;
    std::lock_guard<std::mutex> lock(*mu);
    RowRuns r = row_runs(*prog_, in, dim, start, count);
    if (!is_held(in))
      throw ValueError("write_rows: input '" + prog_->values[prog_->inputs[in]].name + "' is not held (hold_input)");
    const DType dt = prog_->values[prog_->inputs[in]].type.dtype;
    for (int64_t o = 0; o < r.outer; ++o) {
      float* dst = held_[in]->data() + r.first + o * r.stride;
      std::memcpy(dst, src + o * r.run, static_cast<size_t>(r.run) * sizeof(float));
      ctx_.store(dst, static_cast<size_t>(r.run), dt);
    }
  }

  void run(const float* const* inputs, float* const* outputs) override {
    auto mu = mu_;
    std::lock_guard<std::mutex> lock(*mu);
    const Program& p = *prog_;
    state_.resize(p.inputs.size());
    check_int_inputs(p, inputs);
    for (size_t i = 0; i < p.inputs.size(); ++i) {
      const Value& v = p.values[p.inputs[i]];
      size_t n = static_cast<size_t>(numel(v.type.shape));
      const float* src = inputs[i];
      if (is_held(static_cast<int>(i))) {  // read in place; a given value replaces it
        if (src) {
          std::memcpy(held_[i]->data(), src, n * sizeof(float));
          ctx_.store(held_[i]->data(), n, v.type.dtype);
        }
        continue;
      }
      if (!src) {
        if (state_[i].empty())
          throw ValueError("input '" + v.name + "' has no value: give it (a resident input needs one on the first run)");
        src = state_[i].data();
      }
      std::memcpy(ptr_[p.inputs[i]], src, n * sizeof(float));
      // int32 inputs stay exact: the host offsets index inputs per chunk (encode_index_rows)
      // and check_int_inputs refuses other values fp16 cannot hold.
      if (v.type.dtype != DType::int32) ctx_.store(ptr_[p.inputs[i]], n, v.type.dtype);
    }
    const bool chained = sim_chains();
    for (size_t s = 0; s < p.steps.size(); ++s) {
      if (chained && chain_at_[s] >= 0) {
        const ElementwiseChain& c = chains_[static_cast<size_t>(chain_at_[s])];
        run_chain(c);
        s = c.last;
        continue;
      }
      const Node& node = *p.steps[s].node;
      if (node.op->view && steps_[s].out[0] == steps_[s].in[0]) continue;  // the input's buffer, as it is
      if (steps_[s].in_place) continue;  // a concat whose inputs are already in its output
      unpack_weights(s);
      KernelArgs args{node, steps_[s].in.data(), steps_[s].out.data(), ctx_, steps_[s].in_types.data(),
                      steps_[s].in.size(), steps_[s].half.data(), steps_[s].finite.data()};
      std::function<void(float*, size_t)> finish;
      if (steps_[s].finishable && sim_fused_finish()) {
        finish = [this, s](float* piece, size_t n) { finish_piece(s, piece, n); };
        args.finish = &finish;
      }
      std::function<const float*(size_t)> widen = [this, s](size_t i) { return widened_constant(s, i); };
      args.widened = &widen;
      node.op->kernel(args);
      if (!args.finished) {
        for (size_t o = 0; o < node.outputs.size() && !steps_[s].stored && !args.outputs_stored; ++o)
          ctx_.store(steps_[s].out[o], static_cast<size_t>(numel(node.outputs[o].shape)), node.outputs[o].dtype);
        run_epilogue(s, steps_[s].out[0], node.outputs[0].shape);
      }
      if (p.options.check_finite) check_finite(s);
    }
    for (size_t j = 0; j < p.outputs.size(); ++j) {
      const Value& v = p.values[p.outputs[j]];
      std::memcpy(outputs[j], ptr_[p.outputs[j]], static_cast<size_t>(numel(v.type.shape)) * sizeof(float));
    }
    for (auto [out, in] : aliases_) {
      const float* src = ptr_[p.outputs[out]];
      state_[in].assign(src, src + numel(p.values[p.outputs[out]].type.shape));
    }
    scratch_.reset();  // between runs the program holds only the packed weights
  }

 private:
  bool is_held(int in) const { return in >= 0 && in < static_cast<int>(held_.size()) && held_[in]; }

  void hold_locked(int in) {
    const Program& p = *prog_;
    row_runs(p, in, 0, 0, 0);  // checks the index
    const Value& v = p.values[p.inputs[in]];
    if (v.type.dtype != DType::fp16 && v.type.dtype != DType::fp32)
      throw ValueError("hold: input '" + v.name + "' is " + std::string(dtype_name(v.type.dtype)) + "; held inputs are float");
    if (std::any_of(aliases_.begin(), aliases_.end(), [&](auto a) { return a.second == in; }))
      throw ValueError("hold: input '" + v.name + "' is already resident (make_resident)");
    if (is_held(in)) return;
    held_.resize(p.inputs.size());
    bind_held(in, std::make_shared<ZeroedFloats>(static_cast<size_t>(numel(v.type.shape))));
  }

  // The steps that read input `in` read `buffer` from now on.
  void bind_held(int in, std::shared_ptr<ZeroedFloats> buffer) {
    const Program& p = *prog_;
    float* old = ptr_[p.inputs[in]];
    held_[in] = std::move(buffer);
    ptr_[p.inputs[in]] = held_[in]->data();
    for (size_t s = 0; s < p.steps.size(); ++s)
      for (size_t i = 0; i < p.steps[s].in.size(); ++i)
        if (p.steps[s].in[i] == p.inputs[in] && steps_[s].in[i] == old) steps_[s].in[i] = held_[in]->data();
  }

  // check_finite: inf/NaN in a layer's output while its inputs were finite is the overflow
  // the user asked to locate; a FloatingPointError names the layer and its input range.
  void check_finite(size_t s) const {
    const Program& p = *prog_;
    const Step& st = p.steps[s];
    size_t bad = 0, total = 0;
    for (size_t o = 0; o < st.out.size(); ++o) {
      const float* y = steps_[s].out[o];
      size_t n = static_cast<size_t>(numel(p.values[st.out[o]].type.shape));
      total += n;
      for (size_t i = 0; i < n; ++i) bad += !std::isfinite(y[i]);
    }
    if (!bad) return;
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < st.in.size(); ++i) {
      const Value& v = p.values[st.in[i]];
      if (v.data && v.data->packed) continue;  // dequantized weights are finite
      const float* x = steps_[s].in[i];
      if (!x) {  // fp16 bits the kernel read: a weight, outside the input range reported
        const uint16_t* h = steps_[s].half[i];
        for (int64_t k = 0, n = numel(v.type.shape); k < n; ++k)
          if ((h[k] & 0x7c00) == 0x7c00) return;  // inf or NaN: not this layer's doing
        continue;
      }
      for (int64_t k = 0, n = numel(v.type.shape); k < n; ++k) {
        if (!std::isfinite(x[k])) return;  // not this layer's doing
        lo = std::min(lo, x[k]), hi = std::max(hi, x[k]);
      }
    }
    char range[96];
    std::snprintf(range, sizeof range, "[%.6g, %.6g]", lo, hi);
    throw FloatingPointError("check_finite: layer '" + st.node->name + "' (" + layer_label(st) + ") gave " +
                             std::to_string(bad) + " inf/NaN of " + std::to_string(total) +
                             " values from finite inputs in " + range + " (fp16 holds magnitudes up to 65504)");
  }

  // Input i of step s (an fp16-stored constant) as float32, widened on first use and kept
  // while the process's weight cache has room (set_sim_weight_cache); else null.
  const float* widened_constant(size_t s, size_t i) {
    const int v = prog_->steps[s].in[i];
    if (auto it = widened_.find(v); it != widened_.end()) return it->second.get();
    const uint16_t* h = steps_[s].half[i];
    if (!h) return nullptr;
    const int64_t n = numel(prog_->values[v].type.shape), bytes = n * static_cast<int64_t>(sizeof(float));
    for (int64_t used = g_weight_cache_used.load();;)  // reserve the bytes, or give up
      if (used + bytes > g_weight_cache_limit.load()) return nullptr;
      else if (g_weight_cache_used.compare_exchange_weak(used, used + bytes)) break;
    std::unique_ptr<float[]> kept;
    try {
      kept.reset(new float[static_cast<size_t>(n)]);
    } catch (...) {
      g_weight_cache_used -= bytes;
      throw;
    }
    halves_to_floats(h, kept.get(), static_cast<size_t>(n));
    widened_bytes_ += bytes;
    return (widened_[v] = std::move(kept)).get();
  }

  // Fused elementwise ops of step s, in place over buf (all of output 0, or a piece of it
  // given as a flat shape).
  void run_epilogue(size_t s, float* buf, const Shape& shape) const {
    for (const auto& e : prog_->steps[s].epilogue) {
      const float* ein = buf;
      TensorType in_type{shape, prog_->steps[s].node->outputs[0].dtype}, out_type{shape, e->outputs[0].dtype};
      const TensorType* et = &in_type;
      const TensorType* ot[] = {&out_type};
      KernelArgs ea{*e, &ein, &buf, ctx_, &et, 1};
      ea.out_types = ot;
      e->op->kernel(ea);
      if (!ea.outputs_stored) ctx_.store(buf, static_cast<size_t>(numel(shape)), out_type.dtype);
    }
  }

  // KernelArgs::finish of step s: a piece of its output rounded, then its fused ops.
  void finish_piece(size_t s, float* piece, size_t n) const {
    const Node& node = *prog_->steps[s].node;
    if (!steps_[s].stored) ctx_.store(piece, n, node.outputs[0].dtype);
    run_epilogue(s, piece, Shape{static_cast<int64_t>(n)});
  }

  // A chain's blocks across the pool; in each, every step of the chain in turn, its values
  // used only inside the chain in this thread's block buffers.
  void run_chain(const ElementwiseChain& c) const {
    const Program& p = *prog_;
    const int64_t block = c.rows_per_block * c.inner;
    const size_t blocks = static_cast<size_t>((c.rows + c.rows_per_block - 1) / c.rows_per_block);
    parallel_for(blocks, 1, [&](size_t b, size_t e) {
      thread_local std::vector<float> buffers;
      if (buffers.size() < static_cast<size_t>(c.internals * block)) buffers.resize(static_cast<size_t>(c.internals * block));
      std::vector<const float*> in;
      std::vector<TensorType> types;
      std::vector<const TensorType*> type_ptrs;
      for (size_t blk = b; blk < e; ++blk) {
        const int64_t r0 = static_cast<int64_t>(blk) * c.rows_per_block, nr = std::min(c.rows_per_block, c.rows - r0);
        for (size_t s = c.first; s <= c.last; ++s) {
          if (c.out_internal[s - c.first] == kChainView) continue;
          const Node& node = *p.steps[s].node;
          const auto& ops = c.in[s - c.first];
          in.clear();
          types.clear();
          type_ptrs.clear();
          for (size_t i = 0; i < ops.size(); ++i) {
            const ChainOperand& o = ops[i];
            types.push_back({o.shape, steps_[s].in_types[i]->dtype});
            if (o.rows || o.internal >= 0) types.back().shape[0] = nr;
            if (o.internal >= 0) in.push_back(buffers.data() + o.internal * block);
            else in.push_back(o.rows ? steps_[s].in[i] + r0 * o.row_elems : steps_[s].in[i]);
          }
          for (const auto& t : types) type_ptrs.push_back(&t);
          const int to = c.out_internal[s - c.first];
          float* out = to >= 0 ? buffers.data() + to * block : steps_[s].out[0] + r0 * c.inner;
          TensorType out_type{c.out_shape, node.outputs[0].dtype};
          out_type.shape[0] = nr;
          const TensorType* out_types[] = {&out_type};
          KernelArgs args{node, in.data(), &out, ctx_, type_ptrs.data(), in.size()};
          args.out_types = out_types;
          node.op->kernel(args);
          if (!steps_[s].stored && !args.outputs_stored) ctx_.store(out, static_cast<size_t>(nr * c.inner), out_type.dtype);
        }
      }
    });
  }

  // An exact_output op's outputs are its inputs' elements (or bool 0/1): values of the output
  // dtype already when every input they come from has that dtype (int32 indices aside).
  bool outputs_need_no_rounding(const Step& s) const {
    const Program& p = *prog_;
    for (int o : s.out) {
      DType dt = p.values[o].type.dtype;
      if (dt == DType::boolean) continue;
      for (int i : s.in) {
        DType it = p.values[i].type.dtype;
        if (it != dt && it != DType::boolean && !(it == DType::int32 && is_float(dt))) return false;
      }
    }
    return true;
  }

  // Weights the program holds in fewer bytes than float32 are widened into a scratch buffer
  // just before their layer runs: a compressed weight dequantized to the fp16 values the
  // engine's constexpr op produces, an fp16-stored one converted exactly.
  static bool widened(const Value& v) { return v.data && (v.data->packed || v.data->values.is_half()); }

  // A constant held as float32 or fp16 bits with no inf/NaN (compressed ones are not checked),
  // scanned once per constant and remembered with it.
  static bool constant_is_finite(const Value& v) {
    if (!v.data || v.data->packed) return false;
    int known = v.data->finite.load(std::memory_order_relaxed);
    if (known >= 0) return known == 1;
    const auto& c = v.data->values;
    std::atomic<bool> bad{false};
    parallel_for(c.size(), 1 << 20, [&](size_t b, size_t e) {
      int found = 0;  // branch-free, so the loops vectorise
      if (c.is_half()) {
        const uint16_t* h = c.half_data();
        for (size_t i = b; i < e; ++i) found |= (h[i] & 0x7c00) == 0x7c00;
      } else {
        const float* f = c.data();
        for (size_t i = b; i < e; ++i) found |= !std::isfinite(f[i]);
      }
      if (found) bad = true;
    });
    v.data->finite.store(bad ? 0 : 1, std::memory_order_relaxed);
    return !bad;
  }

  void unpack_weights(size_t s) {
    const Program& p = *prog_;
    for (size_t i = 0; i < p.steps[s].in.size(); ++i) {
      int64_t at = steps_[s].scratch_at[i];
      if (at < 0) continue;
      const Value& v = p.values[p.steps[s].in[i]];
      if (!scratch_) scratch_.reset(new float[static_cast<size_t>(scratch_elems_)]);  // not zero-filled
      float* dst = scratch_.get() + at;
      size_t n = static_cast<size_t>(numel(v.type.shape));
      if (v.data->packed) {
        v.data->packed->dequantize(dst);
        ctx_.store(dst, n, v.type.dtype);
      } else {
        halves_to_floats(v.data->values.half_data(), dst, n);
      }
      steps_[s].in[i] = dst;
    }
  }

  struct StepPtrs {
    std::vector<const float*> in;
    std::vector<float*> out;
    std::vector<const TensorType*> in_types;
    std::vector<int64_t> scratch_at;  // per input: its offset in scratch_ when widened, else -1
    std::vector<const uint16_t*> half;  // per input: fp16 bits the kernel reads itself, else null
    std::vector<uint8_t> finite;        // per input: a constant checked free of inf/NaN at load
    bool stored = false;                // outputs already values of their dtype (exact_output)
    bool in_place = false;              // a concat whose inputs the memory plan put in its output
    bool finishable = false;            // one output, fused ops all elementwise: KernelArgs::finish
  };
  std::shared_ptr<const Program> prog_;
  SimContext ctx_;
  std::vector<ZeroedFloats> slots_;
  std::vector<float*> ptr_;
  std::vector<StepPtrs> steps_;
  std::vector<ElementwiseChain> chains_;
  std::vector<int> chain_at_;  // per step: the chain it starts, else -1
  int64_t scratch_elems_ = 0;
  std::unique_ptr<float[]> scratch_;          // the running layer's weight, dequantized; freed after each run
  std::unordered_map<int, std::unique_ptr<float[]>> widened_;  // by value: fp16 weights kept as float32
  int64_t widened_bytes_ = 0;                                  // their bytes, counted in the process's cache
  std::vector<std::pair<int, int>> aliases_;  // resident state: output -> input
  std::vector<std::vector<float>> state_;     // per input: its resident value
  // Per input: its held value (hold), shared with other programs by share_input; else null.
  std::vector<std::shared_ptr<ZeroedFloats>> held_;
  bool lends_ = false, borrows_ = false;  // shares inputs with other programs: its own / theirs
  std::shared_ptr<std::mutex> mu_ = std::make_shared<std::mutex>();
};

class SimBackend final : public Backend {
 public:
  std::string name() const override { return "sim"; }
  bool available() const override { return true; }
  std::unique_ptr<Executable> load(std::shared_ptr<const Program> p) override {
    return std::make_unique<SimExecutable>(std::move(p));
  }
};

}  // namespace

class EngineBackend final : public Backend {
 public:
  std::string name() const override { return "engine"; }
  bool available() const override { return engine::probe().available; }
  std::unique_ptr<Executable> load(std::shared_ptr<const Program> p) override { return engine::load_program(std::move(p)); }
};

Backend& backend(const std::string& name) {
  static SimBackend sim;
  static EngineBackend eng;
  if (name == "sim" || name.empty()) return sim;
  if (name == "engine") return eng;
  throw ValueError("unknown backend '" + name + "'; valid backends: sim, engine");
}

std::vector<std::string> backend_names() { return {"sim", "engine"}; }

std::vector<HostTensor> run_sim(std::shared_ptr<const Program> p, const std::vector<HostTensor>& in) {
  if (in.size() != p->inputs.size())
    throw ValueError("run: expected " + std::to_string(p->inputs.size()) + " inputs, got " +
                     std::to_string(in.size()));
  std::vector<const float*> ip;
  for (size_t i = 0; i < in.size(); ++i) {
    const auto& v = p->values[p->inputs[i]];
    if (in[i].shape != v.type.shape)
      throw ValueError("run: input '" + v.name + "' expects shape " + shape_str(v.type.shape) + ", got " +
                       shape_str(in[i].shape));
    ip.push_back(in[i].data.data());
  }
  std::vector<HostTensor> out;
  for (int v : p->outputs) {
    const auto& t = p->values[v].type;
    out.push_back({t.shape, std::vector<float>(static_cast<size_t>(numel(t.shape)))});
  }
  std::vector<float*> op;
  for (auto& o : out) op.push_back(o.data.data());
  auto exe = backend("sim").load(p);
  exe->run(ip.data(), op.data());
  return out;
}

}  // namespace af
