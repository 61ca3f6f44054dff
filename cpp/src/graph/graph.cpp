#include "aneforge/graph.h"

#include <cmath>

#include <algorithm>
#include <unordered_set>

#include "aneforge/error.h"
#include "aneforge/fp16.h"
#include "aneforge/op.h"

namespace af {

namespace {
std::atomic<uint64_t> g_next_id{1};
}

uint64_t next_node_id() { return g_next_id.fetch_add(1); }

const TensorType& Tensor::type() const {
  if (!node_) throw ValueError("use of an empty Tensor handle");
  return node_->outputs.at(static_cast<size_t>(index_));
}

const std::string& Tensor::op_name() const { return node_->op->name; }

std::string Tensor::name() const {
  if (!node_) return "<empty>";
  return index_ == 0 ? node_->name : node_->name + ":" + std::to_string(index_);
}

std::string Tensor::str() const {
  if (!node_) return "Tensor(<empty>)";
  return "Tensor('" + name() + "', " + shape_str(shape()) + ", " + std::string(dtype_name(dtype())) +
         ", op=" + op_name() + ")";
}

bool Node::is_input() const { return op && op->name == "input"; }
bool Node::is_const() const { return op && op->name == "const"; }

static std::shared_ptr<Node> make_leaf(const char* op, TensorType t) {
  auto n = std::make_shared<Node>();
  n->id = next_node_id();
  n->op = &op_def(op);
  n->outputs = {std::move(t)};
  return n;
}

static void check_shape(const Shape& shape, const char* what) {
  if (shape.size() > static_cast<size_t>(kMaxRank))
    throw ValueError(std::string(what) + ": rank " + std::to_string(shape.size()) + " shape " +
                     shape_str(shape) + " exceeds the engine's maximum rank 5");
  for (auto d : shape)
    if (d <= 0)
      throw ValueError(std::string(what) + ": shape " + shape_str(shape) +
                       " has a non-positive dimension; every dimension must be >= 1");
  if (checked_numel(shape) < 0)
    throw ValueError(std::string(what) + ": shape " + shape_str(shape) + " has more than 2^31 elements");
}

Tensor input(const Shape& shape, DType dtype, const std::string& name) {
  check_shape(shape, "input");
  auto n = make_leaf("input", {shape, dtype});
  n->name = name.empty() ? "input_" + std::to_string(n->id) : name;
  n->auto_name = name.empty();
  return Tensor(n, 0);
}

ConstValues ConstValues::borrow(const float* p, size_t n, std::shared_ptr<const void> owner) {
  ConstValues v;
  v.borrowed_ = n ? p : nullptr;
  v.n_ = n;
  v.owner_ = std::move(owner);
  return v;
}

ConstValues ConstValues::halves(std::vector<uint16_t> bits) {
  ConstValues v;
  v.half_ = std::move(bits);
  return v;
}

ConstValues ConstValues::borrow_halves(const uint16_t* p, size_t n, std::shared_ptr<const void> owner) {
  if (!n) return halves({});
  ConstValues v;
  v.half_borrowed_ = p;
  v.n_ = n;
  v.owner_ = std::move(owner);
  return v;
}

float ConstValues::operator[](size_t i) const {
  if (is_half()) return half_to_float(half_data()[i]);
  return borrowed_ ? borrowed_[i] : owned_[i];
}

const float* ConstValues::data() const {
  if (is_half()) throw Error(Status::internal, "constant values are fp16 bits, not float32");
  return borrowed_ ? borrowed_ : owned_.data();
}

std::vector<float> ConstValues::to_vector() const {
  if (!is_half()) return std::vector<float>(data(), data() + size());
  std::vector<float> out(size());
  halves_to_floats(half_data(), out.data(), size());
  return out;
}

std::vector<float>& ConstValues::mutable_floats() {
  if (borrowed_ || is_half()) {
    std::vector<float> v = to_vector();
    *this = ConstValues(std::move(v));
  }
  return owned_;
}

Tensor constant(std::vector<float> values, const Shape& shape, DType dtype) {
  return constant(ConstValues(std::move(values)), shape, dtype);
}

Tensor constant(ConstValues values, const Shape& shape, DType dtype) {
  check_shape(shape, "constant");
  if (static_cast<int64_t>(values.size()) != numel(shape))
    throw ValueError("constant: " + std::to_string(values.size()) + " values do not fill shape " +
                     shape_str(shape));
  auto n = make_leaf("const", {shape, dtype});
  n->name = "const_" + std::to_string(n->id);
  auto d = std::make_shared<ConstData>();
  d->values = std::move(values);
  n->data = std::move(d);
  return Tensor(n, 0);
}

Tensor scalar(double value, DType dtype) {
  return constant({static_cast<float>(value)}, {}, dtype);
}

std::vector<Tensor> call(const std::string& opname, const std::vector<Tensor>& inputs,
                         const Attrs& attrs) {
  const OpDef& op = op_def(opname);
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].valid()) throw ValueError(opname + ": input " + std::to_string(i) + " is empty");
  // No integer attribute (a stride, a pad, a dimension, an axis) is past +-2^31: shape rules
  // multiply and add a few of them, which stays far from int64 overflow.
  for (const auto& [k, v] : attrs.items()) {
    auto bad = [&](int64_t x) { return x > kMaxElements || x < -kMaxElements; };
    if (const auto* i = std::get_if<int64_t>(&v); i && bad(*i))
      throw ValueError(opname + ": " + k + "=" + std::to_string(*i) + " is out of range");
    if (const auto* l = std::get_if<std::vector<int64_t>>(&v))
      for (auto x : *l)
        if (bad(x)) throw ValueError(opname + ": " + k + " holds " + std::to_string(x) + ", out of range");
    if (const auto* d = std::get_if<double>(&v); d && !std::isfinite(*d) && k != "min" && k != "max" && k != "value" &&
                                                   k != "threshold")
      throw ValueError(opname + ": " + k + " must be finite, got " + std::to_string(*d));
  }
  if (op.build) return op.build(inputs, attrs);
  if (!op.infer) throw ValueError(opname + ": cannot be called directly");
  std::vector<Tensor> ins = inputs;
  Attrs at = attrs;
  InferContext ctx{op, ins, at, {}};
  op.infer(ctx);
  for (const auto& t : ctx.outputs) {
    if (t.shape.size() > static_cast<size_t>(kMaxRank))
      ctx.fail("result shape " + shape_str(t.shape) + " exceeds the engine's maximum rank 5");
    for (auto d : t.shape)
      if (d <= 0) ctx.fail("result shape " + shape_str(t.shape) + " has an empty dimension");
    if (checked_numel(t.shape) < 0) ctx.fail("result shape " + shape_str(t.shape) + " has more than 2^31 elements");
  }
  auto n = std::make_shared<Node>();
  n->id = next_node_id();
  n->op = &op;
  n->inputs = std::move(ins);
  n->attrs = std::move(at);
  n->outputs = std::move(ctx.outputs);
  n->name = op.name + "_" + std::to_string(n->id);
  std::vector<Tensor> out;
  for (size_t i = 0; i < n->outputs.size(); ++i) out.emplace_back(n, static_cast<int>(i));
  return out;
}

Tensor call1(const std::string& op, const std::vector<Tensor>& inputs, const Attrs& attrs) {
  auto r = call(op, inputs, attrs);
  if (r.size() != 1) throw ValueError(op + ": returns " + std::to_string(r.size()) + " tensors");
  return r[0];
}

std::vector<std::shared_ptr<Node>> topo_sort(const std::vector<Tensor>& outputs) {
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<const Node*> seen;
  // Iterative DFS (graphs can be deep).
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack;
  for (const auto& t : outputs) {
    if (!t.valid() || seen.count(t.node().get())) continue;
    stack.push_back({t.node(), 0});
    seen.insert(t.node().get());
    while (!stack.empty()) {
      auto& [n, i] = stack.back();
      if (i < n->inputs.size()) {
        const auto& c = n->inputs[i++].node();
        if (seen.insert(c.get()).second) stack.push_back({c, 0});
      } else {
        order.push_back(n);
        stack.pop_back();
      }
    }
  }
  return order;
}

}  // namespace af
