#include <algorithm>
#include <map>
#include <memory>
#include <mutex>

#include "aneforge/op.h"
#include "ops/grad_util.h"
#include "ops/register.h"

namespace af {

namespace {
struct Registry {
  std::map<std::string, std::unique_ptr<OpDef>> ops;
  std::map<std::string, std::string> aliases;  // alias -> op name
};

Registry& registry_storage() {
  static Registry r;
  return r;
}

// A bridge op without a gradient of its own is differentiated through its lowering: the
// native ops it becomes, built on the node's inputs, then a vector-Jacobian product.
void attach_lowered_grads() {
  for (auto& [name, def] : registry_storage().ops) {
    if (!def->lower || def->grad || def->no_grad) continue;
    def->grad = gr::through(def->lower);
  }
}

void register_builtin_ops() {
  register_leaf_ops();
  register_elementwise_ops();
  register_linalg_ops();
  register_reduction_ops();
  register_shape_ops();
  register_pool_ops();
  register_norm_ops();
  register_bridge_ops();
  register_indexing_ops();
  register_quant_ops();
  attach_elementwise_mil();
  attach_linalg_mil();
  attach_reduction_mil();
  attach_norm_mil();
  attach_shape_mil();
  attach_pool_mil();
  attach_elementwise_grad();
  attach_linalg_grad();
  attach_reduction_grad();
  attach_shape_grad();
  attach_layout_grad();
  attach_slicing_grad();
  attach_conv_grad();
  attach_pool_grad();
  attach_norm_grad();
  attach_indexing_grad();
  attach_lowered_grads();
}

Registry& registry() {
  static std::once_flag once;
  std::call_once(once, register_builtin_ops);
  return registry_storage();
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> d(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) d[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t prev = d[0];
    d[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cur = d[j];
      d[j] = std::min({d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] != b[j - 1])});
      prev = cur;
    }
  }
  return d[b.size()];
}
}  // namespace

OpDef& mutable_op(const std::string& name) {
  auto it = registry_storage().ops.find(name);
  if (it == registry_storage().ops.end()) throw ValueError("unknown op '" + name + "'");
  return *it->second;
}

void register_op(OpDef def) {
  auto& r = registry_storage();
  std::string name = def.name;
  if (r.ops.count(name) || r.aliases.count(name)) throw ValueError("op '" + name + "' is registered twice");
  for (const auto& a : def.aliases) {
    if (r.ops.count(a) || r.aliases.count(a)) throw ValueError("alias '" + a + "' of op '" + name + "' is taken");
    r.aliases[a] = name;
  }
  r.ops[name] = std::make_unique<OpDef>(std::move(def));
}

const OpDef* find_op(const std::string& name) {
  auto& r = registry();
  auto it = r.ops.find(name);
  if (it == r.ops.end()) {
    auto a = r.aliases.find(name);
    if (a == r.aliases.end()) return nullptr;
    it = r.ops.find(a->second);
  }
  return it->second.get();
}

const OpDef& op_def(const std::string& name) {
  if (auto p = find_op(name)) return *p;
  std::string close;
  for (const auto& [n, d] : registry().ops)
    if (d->category != "graph" && edit_distance(n, name) <= 2) close += (close.empty() ? "" : ", ") + n;
  throw ValueError("unknown op '" + name + "'" + (close.empty() ? "" : "; did you mean: " + close));
}

std::vector<const OpDef*> all_ops() {
  std::vector<const OpDef*> v;
  for (const auto& [_, p] : registry().ops) v.push_back(p.get());
  std::stable_sort(v.begin(), v.end(), [](const OpDef* a, const OpDef* b) {
    return std::tie(a->category, a->name) < std::tie(b->category, b->name);
  });
  return v;
}

std::vector<int64_t> int_pair(InferContext& c, const char* key, std::vector<int64_t> dflt, int64_t lo) {
  if (!c.attrs.has(key)) return dflt;
  auto v = c.attrs.ints(key);
  if (v.size() == 1) v.push_back(v[0]);
  if (v.size() != 2) c.fail(std::string(key) + " must be an int or a pair, got " + attr_str(c.attrs.get(key)));
  for (auto x : v)
    if (x < lo) c.fail(std::string(key) + " must be >= " + std::to_string(lo) + ", got " + attr_str(c.attrs.get(key)));
  return v;
}

std::string python_name(const Param& p) {
  if (p.name == "pad" && p.kind == ParamKind::any) return "padding";
  if (p.name == "axis") return "dim";
  if (p.name == "keepdims") return "keepdim";
  return p.name;
}

void InferContext::fail(const std::string& msg) const { throw ValueError(op.name + ": " + msg); }

void InferContext::expect_rank(size_t i, int lo, int hi, const char* what) const {
  int r = in(i).rank();
  if (r < lo || r > hi) {
    std::string want = lo == hi ? "rank " + std::to_string(lo)
                                : "rank " + std::to_string(lo) + " to " + std::to_string(hi);
    fail(std::string(what) + " must have " + want + ", got " + what + " " + shape_str(in(i).shape()));
  }
}

void InferContext::expect_float(size_t i, const char* what) const {
  if (!is_float(in(i).dtype()))
    fail(std::string(what) + " must be fp16 or fp32, got " + std::string(dtype_name(in(i).dtype())));
}

void InferContext::expect_same_dtype(size_t i, size_t j) const {
  if (in(i).dtype() != in(j).dtype())
    fail("dtypes differ: " + std::string(dtype_name(in(i).dtype())) + " and " +
         std::string(dtype_name(in(j).dtype())) + "; cast one side with .cast()");
}

// Graph leaves: their nodes are made by af::input and af::constant.
void register_leaf_ops() {
  OpDef in;
  in.name = "input";
  in.category = "graph";
  in.doc = "A named graph input fed at call time.";
  in.mil_op = "(function input)";
  register_op(std::move(in));
  OpDef c;
  c.name = "const";
  c.category = "graph";
  c.doc = "A constant tensor (weights), stored as fp16 in the weight blob.";
  c.mil_op = "const";
  register_op(std::move(c));
}

}  // namespace af
