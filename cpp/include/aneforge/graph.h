// The lazy graph: tensors are handles to nodes; nodes are checked when built.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "aneforge/attrs.h"
#include "aneforge/dtype.h"
#include "aneforge/shape.h"

namespace af {

struct OpDef;
struct Node;

struct TensorType {
  Shape shape;
  DType dtype = DType::fp16;
  bool operator==(const TensorType& o) const { return shape == o.shape && dtype == o.dtype; }
};

// A weight stored compressed (docs/compression.md): what the program holds, writes to program
// files and emits as MIL constexpr ops; dequantize() gives the dense values.
// format: "int8" (symmetric, a scale per output row or per block), "int4" (4-bit indices
// into 16-entry fp16 LUTs), "sparse" (a bitmask and the fp16 non-zeros), "sparse+int8" and
// "sparse+int4" (the non-zeros stored as int8 or int4 the same way).
struct PackedWeights {
  std::string format;
  Shape shape;                   // the dense shape; axis 0 is the output channel
  int64_t block = 0;             // int8: input elements per scale (0: one scale per output row)
  int64_t group_rows = 0;        // int4: output rows per LUT (0: one LUT for the tensor)
  std::vector<int8_t> q8;        // int8: one per stored value
  std::vector<uint16_t> scales;  // int8: fp16 bits, [rows][blocks]
  std::vector<uint8_t> q4;       // int4: two indices per byte, the first in the low nibble
  std::vector<uint16_t> lut;     // int4: fp16 bits, [groups][16]
  std::vector<uint8_t> mask;     // sparse: a bit per element (LSB first), set where stored
  std::vector<uint16_t> nz16;    // "sparse": the stored values in fp16, in element order
  int64_t groups() const { return group_rows > 0 ? rows() / group_rows : 1; }
  // When known (not stored in files): ||dequantized - original|| / ||original||, with
  // `original` the weight after pruning (what rounding alone costs), and what pruning costs.
  double rel_error = -1;
  double prune_error = 0;        // ||pruned weights|| / ||original||
  bool sparse() const { return format.rfind("sparse", 0) == 0; }
  std::string value_format() const;  // how the stored values are held: "fp16", "int8" or "int4"
  int64_t stored_count() const;      // values held: every element, or the mask's set bits
  bool stored_at(int64_t i) const { return !sparse() || (mask[static_cast<size_t>(i >> 3)] >> (i & 7)) & 1; }
  int64_t rows() const { return shape.empty() ? 1 : shape[0]; }
  int64_t cols() const;          // elements per output row
  int64_t blocks() const { return block > 0 ? cols() / block : 1; }
  void dequantize(float* out) const;   // numel(shape) floats
  int64_t stored_bytes() const;        // what the program holds and writes
  std::string check() const;           // "" when every size agrees, else what does not
};

// A constant's values in one of three forms: float32 owned, float32 borrowed from memory the
// caller keeps alive through `owner` (an imported model's parameters: no copy while the graph
// is built), or fp16 bits (large fp16 weights of a compiled program: half the bytes). Every
// form reads element by element; data() is the float32 forms only.
class ConstValues {
 public:
  ConstValues() = default;
  ConstValues(std::vector<float> v) : owned_(std::move(v)) {}  // NOLINT: implicit, like the vector it was
  static ConstValues borrow(const float* p, size_t n, std::shared_ptr<const void> owner);
  static ConstValues halves(std::vector<uint16_t> bits);
  // fp16 bits in memory `owner` keeps alive (a checkpoint's weights, rounded once on load).
  static ConstValues borrow_halves(const uint16_t* p, size_t n, std::shared_ptr<const void> owner);

  size_t size() const { return borrowed_ || half_borrowed_ ? n_ : half_.empty() ? owned_.size() : half_.size(); }
  bool empty() const { return size() == 0; }
  bool is_half() const { return !half_.empty() || half_borrowed_; }
  bool is_borrowed() const { return borrowed_ != nullptr; }
  // Memory held by someone else (float32 or fp16 bits), or null.
  const void* borrowed_memory() const {
    return borrowed_ ? static_cast<const void*>(borrowed_) : static_cast<const void*>(half_borrowed_);
  }
  float operator[](size_t i) const;
  const float* data() const;                  // float32 forms; throws for fp16 bits
  const uint16_t* half_data() const { return half_borrowed_ ? half_borrowed_ : half_.data(); }
  std::vector<float> to_vector() const;       // a float32 copy of any form
  std::vector<float>& mutable_floats();       // the owned float32 vector (copies other forms first)
  int64_t bytes() const { return static_cast<int64_t>(size()) * (is_half() ? 2 : 4); }
  const std::shared_ptr<const void>& owner() const { return owner_; }  // of borrowed memory

  class iterator {
   public:
    using value_type = float;
    using difference_type = std::ptrdiff_t;
    iterator(const ConstValues* v, size_t i) : v_(v), i_(i) {}
    float operator*() const { return (*v_)[i_]; }
    iterator& operator++() { return ++i_, *this; }
    bool operator!=(const iterator& o) const { return i_ != o.i_; }
    bool operator==(const iterator& o) const { return i_ == o.i_; }
   private:
    const ConstValues* v_;
    size_t i_;
  };
  iterator begin() const { return {this, 0}; }
  iterator end() const { return {this, size()}; }

 private:
  std::vector<float> owned_;
  const float* borrowed_ = nullptr;
  size_t n_ = 0;
  std::shared_ptr<const void> owner_;
  std::vector<uint16_t> half_;
  const uint16_t* half_borrowed_ = nullptr;
};

// Constant payload. Values read as float32 (every supported dtype fits exactly except int32
// beyond 2^24, which constants do not use); a compressed weight holds `packed` instead, and
// `values` stays empty.
struct ConstData {
  ConstValues values;
  std::shared_ptr<const PackedWeights> packed;
  // Whether `values` hold no inf/NaN, found once by the first program that asks (-1: not yet);
  // programs sharing this data (an LLM's prefill and decode) share the answer.
  mutable std::atomic<int> finite{-1};
  ConstData() = default;
  ConstData(const ConstData& o) : values(o.values), packed(o.packed) {}
};

// A handle to one output of a node.
class Tensor {
 public:
  Tensor() = default;
  Tensor(std::shared_ptr<Node> node, int index) : node_(std::move(node)), index_(index) {}

  bool valid() const { return node_ != nullptr; }
  const std::shared_ptr<Node>& node() const { return node_; }
  int index() const { return index_; }
  const TensorType& type() const;
  const Shape& shape() const { return type().shape; }
  DType dtype() const { return type().dtype; }
  int rank() const { return static_cast<int>(shape().size()); }
  const std::string& op_name() const;
  std::string name() const;  // node name, with ":k" for outputs past the first
  std::string str() const;   // "Tensor('relu_3', (1, 16, 32, 32), fp16, op=relu)"

 private:
  std::shared_ptr<Node> node_;
  int index_ = 0;
};

struct Node {
  uint64_t id = 0;  // creation order; graph inputs are fed in this order by default
  const OpDef* op = nullptr;
  std::vector<Tensor> inputs;
  Attrs attrs;
  std::vector<TensorType> outputs;
  std::string name;
  bool auto_name = true;  // generated from the process-wide id, not given by the user
  std::shared_ptr<const ConstData> data;  // for "const" nodes only

  bool is_input() const;
  bool is_const() const;
};

uint64_t next_node_id();

// Graph inputs and constants.
Tensor input(const Shape& shape, DType dtype = DType::fp16, const std::string& name = "");
Tensor constant(std::vector<float> values, const Shape& shape, DType dtype = DType::fp16);
Tensor constant(ConstValues values, const Shape& shape, DType dtype = DType::fp16);
Tensor scalar(double value, DType dtype = DType::fp16);

// Build a node of a registered op. Checks inputs and attributes with the op's shape rule
// and throws ValueError naming the op, the shapes it got and what it expected.
std::vector<Tensor> call(const std::string& op, const std::vector<Tensor>& inputs,
                         const Attrs& attrs = {});
Tensor call1(const std::string& op, const std::vector<Tensor>& inputs, const Attrs& attrs = {});

// All nodes reachable from `outputs`, inputs first (topological order, stable by id).
std::vector<std::shared_ptr<Node>> topo_sort(const std::vector<Tensor>& outputs);

}  // namespace af
