// The internal MIL representation: one function of typed SSA ops built from a Program.
// From it: MIL text (iOS17 program(1.0) / iOS18 program(1.3)), the MILBlob v2 weight file,
// the Model protobuf and a complete .mlpackage (docs/mil.md).
#pragma once
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "aneforge/program.h"

namespace af::mil {

struct Type {
  DType dtype = DType::fp16;
  Shape shape;
  bool scalar = false;  // rank 0
  bool is_string = false;
  bool is_uint32 = false;  // uint32 parameters (e.g. pixel_unshuffle's downscale_factor)
};

// An immediate or blob-stored constant value.
struct Literal {
  Type type;
  std::vector<double> numbers;   // numeric data (for fp16 holds the exact fp16 values)
  std::string text;              // string constants
  int64_t blob_offset = -1;      // >= 0: stored in the weight blob at this metadata offset
  DType blob_dtype = DType::fp16;
  bool to_blob = false;          // goes to the weight blob (written when the build finishes)
};

struct Op {
  std::string type;                                        // "conv", "const", ...
  std::string name;                                        // op name (= first output for single-output ops)
  std::vector<std::pair<std::string, std::vector<std::string>>> inputs;  // param -> vars (several for tuples)
  std::vector<std::pair<std::string, Type>> outputs;
  Literal value;                                           // const ops only
  std::vector<std::pair<std::string, Literal>> attrs;      // parameters given as attributes (iOS17 constexpr ops)
};

struct Function {
  std::vector<std::pair<std::string, Type>> inputs;
  std::vector<Op> ops;
  std::vector<std::string> outputs;
};

struct Blob {
  std::string bytes;  // the whole weight.bin
};

struct Program {
  int opset = 17;  // 17 (iOS17, spec 8) or 18 (iOS18, spec 9)
  Function main;
  Blob weights;
};

// Builds MIL from a compiled program. Throws UnsupportedError naming an op that has no
// MIL emission.
Program build(const af::Program& p, int opset);
std::string to_text(const Program& m);
std::string to_model_proto(const Program& m);  // serialized Model
// Writes the package durably (docs/reliability.md). An existing package this library wrote is
// replaced atomically; any other directory is refused; a file only with `overwrite`.
void write_mlpackage(const Program& m, const std::string& dir, bool overwrite = false);

std::string type_name(DType t);  // "fp16", "int32", ...
int64_t int_value(double x, DType t);  // rounded and saturated to an integer dtype's range

// Used by op emitters (OpDef::emit_mil).
class Builder {
 public:
  explicit Builder(Program& m) : m_(m) {}
  std::string fresh(const std::string& base);
  std::string ints(const std::vector<int64_t>& v, const std::string& hint = "p");  // int32 tensor [n]
  std::string int_scalar(int64_t v, const std::string& hint = "p");
  std::string uint_scalar(uint32_t v, const std::string& hint = "p");
  bool is_const(const std::string& var) const { return consts_.count(var) > 0; }
  // The same constant as fp32 (for op parameters typed apart from x, "U" in the iOS17 ops).
  std::string as_fp32(const std::string& var);
  // An op whose parameters are attributes (the iOS16/17 constexpr_* forms); blob-bound
  // literals are written with the other weights.
  std::string attr_op(const std::string& type, std::vector<std::pair<std::string, Literal>> attrs, const Type& out,
                      const std::string& hint);
  // A literal for attr_op: numbers of a tensor (to the blob from 10 elements) or a scalar.
  static Literal literal_of(const std::vector<double>& v, const Shape& shape, DType t);
  // Drops constants no op uses, then writes the weight blob from the rest, in order.
  void finish();
  std::string float_scalar(double v, DType t, const std::string& hint = "p");
  std::string floats(const std::vector<double>& v, DType t, const std::string& hint = "p");
  std::string bool_scalar(bool v, const std::string& hint = "p");
  std::string string_scalar(const std::string& v, const std::string& hint = "p");
  std::string tensor(const std::vector<float>& v, const Shape& shape, DType t, const std::string& hint = "c");
  // Emits an op; `out` names its result (fresh when empty). Returns the result var.
  std::string op(const std::string& type, std::vector<std::pair<std::string, std::vector<std::string>>> inputs,
                 const Type& out, const std::string& out_name = "");
  std::vector<std::string> op_multi(const std::string& type,
                                    std::vector<std::pair<std::string, std::vector<std::string>>> inputs,
                                    const std::vector<Type>& outs, const std::vector<std::string>& names);
  // int32 and bool values are fp16 in the program (the engine computes neither; docs/engine.md):
  // a comparison gives its bool to select directly and an fp16 0/1 to everything else.
  // compare(): `type` (equal, less, ...) of x and y as an fp16 0/1 named `out_name`.
  std::string compare(const std::string& type, const std::string& x, const std::string& y, const Type& out,
                      const std::string& out_name = "");
  // select(c, 1, 0) (inverted: 0, 1) as an fp16 value typed `out`.
  std::string select01(const std::string& c, const Type& out, const std::string& out_name = "", bool inverted = false);
  // The bool form of a value for select's cond: the comparison behind it, else value != 0.
  std::string condition(const std::string& var);
  // An input whose port holds one row per 2048-row chunk (ids offset on the host): row 0
  // stands for the input; port_row() gives row k as `out_name` ("" if var is no such input).
  void set_port_rows(const std::string& row0, const std::string& port, int rows) { port_rows_[row0] = {port, rows}; }
  std::string port_row(const std::string& var, int64_t k, const std::string& out_name);
  const Type& type_of(const std::string& var) const { return types_.at(var); }
  void declare(const std::string& var, const Type& t) { types_[var] = t; }
  int opset() const { return m_.opset; }

 private:
  std::string add_const(Literal lit, const std::string& hint);
  Program& m_;
  std::map<std::string, int> counters_;
  std::map<std::string, Type> types_;
  std::map<std::string, bool> consts_;
  std::map<std::string, std::string> conditions_;  // fp16 0/1 var -> the bool it was selected from
  std::map<std::string, std::pair<std::string, int>> port_rows_;  // row-0 var -> (port, rows)
  std::map<std::string, std::string> ones_;  // "fp16(2, 3)" -> a fill of ones of that type
};

// What an op's emitter sees: its input vars and types, the vars its outputs must get.
struct StepView {
  const Node& node;
  std::vector<std::string> in;
  std::vector<Type> in_types;    // as emitted: int32 and bool values are fp16
  std::vector<std::string> out;
  std::vector<Type> out_types;
  std::vector<DType> in_dtypes, out_dtypes;  // the program's own dtypes (int32, bool, ...)
  const Attrs& attrs() const { return node.attrs; }
};

}  // namespace af::mil
