// The op table. One OpDef per op holds everything about it: its Python-facing
// signature, its shape rule (run when a node is built), its simulator kernel, and the
// hooks later layers fill (gradient, MIL emission, bridge lowering, target support).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "aneforge/error.h"
#include "aneforge/graph.h"

namespace af {

enum class ParamKind {
  tensor,      // a Tensor (Python scalars and NumPy arrays become constants)
  opt_tensor,  // a Tensor or None; absent ones are dropped and attr "has_<name>" is false
  tensors,     // a list of Tensors
  int_, ints, float_, bool_, str,
  axes,        // None, an int, or a tuple of ints
  any,         // int, float, str or tuple: the shape rule normalises it
};

struct Param {
  std::string name;
  ParamKind kind;
  std::string dflt;  // Python literal of the default; empty means required; "*" for *args
};

// The parameter's name in the Python API: PyTorch's where the table keeps MIL's (axis -> dim,
// keepdims -> keepdim, conv's pad -> padding; F.pad's `pad`, a list of ints, keeps its name).
// Python accepts both spellings; C++ af::call takes the table's.
std::string python_name(const Param& p);

struct OpDef;
namespace mil {
class Builder;
struct StepView;
}  // namespace mil
// MIL emission: the ops (named s.out) that compute the layer. Ops whose MIL op takes just
// x (and y) need none: the default emits `mil_op(x=..., y=...)`.
using MilEmitFn = std::function<void(mil::Builder&, const mil::StepView&)>;

// What a shape rule sees and fills.
struct InferContext {
  const OpDef& op;
  std::vector<Tensor>& inputs;
  Attrs& attrs;
  std::vector<TensorType> outputs;

  [[noreturn]] void fail(const std::string& msg) const;
  const Tensor& in(size_t i) const { return inputs.at(i); }
  // Shared checks with op-named messages.
  void expect_rank(size_t i, int lo, int hi, const char* what = "x") const;
  void expect_float(size_t i, const char* what = "x") const;
  void expect_same_dtype(size_t i, size_t j) const;
};

struct SimContext;

// What a kernel gets: the node (for its op, attributes and output types), its input
// buffers with their types (from the program, which passes may have rewritten), outputs.
struct KernelArgs {
  const Node& node;
  const float* const* in;
  float* const* out;
  const SimContext& ctx;
  const TensorType* const* in_types;
  size_t num_inputs;
  // Per input, fp16 bits where the sim holds it that way and the op reads it so (its
  // OpDef::half_inputs); that input's `in` pointer is then null. Null: every input is float32.
  const uint16_t* const* half_in = nullptr;
  const uint16_t* half(size_t i) const { return half_in ? half_in[i] : nullptr; }
  // Per input, nonzero when it is a constant the sim found free of inf/NaN once, at load (its
  // OpDef::finite_checked_inputs): the kernel need not scan it on every run.
  const uint8_t* finite_in = nullptr;
  bool known_finite(size_t i) const { return finite_in && finite_in[i]; }
  const TensorType& in_type(size_t i) const { return *in_types[i]; }
  // Output types where they differ from the node's (a block of an elementwise chain).
  const TensorType* const* out_types = nullptr;
  const TensorType& out_type(size_t i) const { return out_types ? *out_types[i] : node.outputs[i]; }
  // Set by a kernel that rounded its outputs to their dtypes itself, piece by piece while
  // they were in cache: the sim then skips its pass over them.
  mutable bool outputs_stored = false;
  // Where the sim offers it (one output, fused ops all elementwise): rounds a piece of
  // output 0 to its dtype and runs the step's fused ops over it, what the sim otherwise does
  // over the whole output after the kernel. Safe from several threads on disjoint pieces. A
  // kernel that passes every element of output 0 through it once, while in cache, sets
  // `finished`, and the sim skips those passes.
  const std::function<void(float*, size_t)>* finish = nullptr;
  mutable bool finished = false;
  // An fp16-stored constant input as float32, widened once and kept by the sim within its
  // weight cache (set_sim_weight_cache); null when not kept: the kernel widens it per call.
  const std::function<const float*(size_t)>* widened = nullptr;
  const float* widened_input(size_t i) const { return widened ? (*widened)(i) : nullptr; }
};
using SimKernel = std::function<void(const KernelArgs&)>;

// Composite ops are sugar built from other ops when called (no node of their own).
using BuildFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&, const Attrs&)>;
// Gradient: given the node and the gradient of each output, the gradient of each input,
// written in other ops (filled by the training issue).
using GradFn = std::function<std::vector<Tensor>(const Node&, const std::vector<Tensor>&)>;
// Bridge lowering: the native ops that compute the node's outputs from its inputs, in the
// same program. Gets the (possibly rewritten) inputs and the node's canonical attributes.
using LowerFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&, const Attrs&)>;

struct OpDef {
  std::string name;
  std::string category;   // "activation", "binary", "linalg", "reduction", "shape", ...
  std::string doc;        // one line
  std::vector<Param> params;
  bool method = false;    // also a Tensor method in Python
  std::vector<std::string> aliases;  // other names of the op (PyTorch's: "cat" for concat)
  bool bridge = false;    // lowered into native ops by the compiler
  // Whether the output is the input's elements in the same order, for these dtypes (a
  // reshape; a cast that changes no value, bool -> fp16): the sim gives it the input's
  // buffer (memory_plan.cpp) and runs nothing. Null: never.
  bool (*view)(DType in, DType out) = nullptr;
  // Every output element is one of the inputs' elements (data movement, max, relu) or a
  // comparison's 0/1: already a value of the output's dtype, so the sim does not round it
  // again (when the inputs have that dtype).
  bool exact_output = false;
  // Output element i is a function of the inputs' elements at i (broadcast) alone, and the
  // kernel reads shapes only from KernelArgs (in_type/out_type): the sim may run a chain of
  // such ops block by block (runtime/chains.cpp).
  bool elementwise = false;
  int num_outputs = 1;

  std::function<void(InferContext&)> infer;
  SimKernel kernel = nullptr;
  // Inputs the kernel reads as fp16 bits when the program stores them so (large fp16
  // weights, kHalfConstMin): the weight crosses memory at 2 bytes per element, widened in
  // cache-sized pieces, instead of being widened whole before the layer.
  std::vector<int> half_inputs;
  // Inputs whose inf/NaN the kernel looks for (a one-hot matmul's 0 * inf): when constant, the
  // sim checks them once at load and tells the kernel (KernelArgs::known_finite).
  std::vector<int> finite_checked_inputs;
  BuildFn build;
  GradFn grad;
  // The output is integer-valued or constant almost everywhere in its inputs (comparisons,
  // floor, argmax): no gradient flows through it, by definition rather than by omission.
  bool no_grad = false;
  LowerFn lower;
  std::string mil_op;     // the MIL op it becomes
  MilEmitFn emit_mil;     // when the default (mil_op with x, y) is not enough
  // Target support: the first engine family that runs it natively ("h13" = every MIL target).
  // Per-target limits and decompositions live in the target table (targets layer).
  std::string min_family = "h13";
  // Native ops only: the same result from other ops, used on families below min_family.
  // Without it the op cannot run there (a compile error naming op, shape and target).
  LowerFn decompose;

  bool is_composite() const { return static_cast<bool>(build); }
};

void register_op(OpDef def);
const OpDef* find_op(const std::string& name);  // also by alias
const OpDef& op_def(const std::string& name);  // throws ValueError listing close names
std::vector<const OpDef*> all_ops();            // sorted by category, then name

}  // namespace af
