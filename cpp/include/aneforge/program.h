// A compiled program: the whole graph after the passes, ready for a backend.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "aneforge/fp16.h"
#include "aneforge/graph.h"

namespace af {

enum class Precision : uint8_t { fp16, fp32 };

// The engine's numerics as the simulator models them (see docs/numerics.md).
struct Numerics {
  Precision precision = Precision::fp16;  // fp16 storage of activations and weights
  Fp16Mode fp16;                          // rounding of ties, subnormal flush
};

struct CompileOptions {
  std::string target = "";  // empty: the default target
  Numerics numerics;
  std::vector<std::string> output_names;
  std::vector<Tensor> inputs;  // fixes input order; empty: creation order
  std::string compress;        // "" or "int8" (weight-only, per output channel)
};

// One value in the program: a graph input, a constant, or an op result.
struct Value {
  TensorType type;
  std::string name;
  int producer = -1;        // index into steps, -1 for inputs and constants
  int slot = -1;            // buffer slot (memory plan); -1 for constants
  std::shared_ptr<const ConstData> data;  // constants (already rounded to fp16 if fp16)
  std::string encoding;     // constants: "" (dense) or "int8"
};

struct Step {
  std::shared_ptr<Node> node;
  std::vector<int> in;   // value ids
  std::vector<int> out;  // value ids
};

struct Program {
  std::vector<Value> values;
  std::vector<Step> steps;
  std::vector<int> inputs;   // value ids, in call order
  std::vector<int> outputs;  // value ids
  std::vector<std::string> output_names;
  std::vector<int64_t> slot_elems;  // buffer slot sizes (elements)
  CompileOptions options;

  int64_t weight_bytes() const;        // constants as fp16
  int64_t peak_activation_bytes() const;  // sum of slots as fp16
  std::string summary() const;
};

std::shared_ptr<Program> compile(const std::vector<Tensor>& outputs, const CompileOptions& opts = {});

}  // namespace af
