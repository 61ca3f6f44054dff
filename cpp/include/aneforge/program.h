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
  std::string compress;        // conv/linear weights: "" (fp16), "int8" (per output channel) or "int8:<block>"
  std::map<std::string, std::string> compress_layers;  // per layer (node name): a format, or "fp16"
  // Weights already packed (data-aware rounding), per layer: used instead of packing the
  // layer's weight; must match its shape and its format in compress_layers.
  std::map<std::string, std::shared_ptr<const PackedWeights>> packed_layers;
  // int8 activations (w8a8): per conv/linear layer, the scale of its int8 input (h16+).
  std::map<std::string, double> act_scales;
  bool dump_passes = false;    // keep the program text after each pass (Program::pass_log)
  // The sim checks each layer: inf/NaN from finite inputs is a FloatingPointError naming it.
  bool check_finite = false;
  // false: layers whose inputs are all constants stay layers (the MIL computes them instead of
  // holding what the sim's kernels folded; the equivalence tests use it).
  bool fold_constants = true;
};

// An fp16 program holds its dense fp16 constants of at least this many elements as fp16 bits
// (half the memory of float32); the sim widens each into a scratch buffer as its layer runs.
inline constexpr int64_t kHalfConstMin = 4096;

// One value in the program: a graph input, a constant, or an op result.
struct Value {
  TensorType type;
  std::string name;
  bool auto_name = false;   // a generated name (process-dependent): emitted MIL names it by position
  int producer = -1;        // index into steps, -1 for inputs and constants
  int slot = -1;            // buffer slot (memory plan); -1 for constants
  int64_t offset = 0;       // elements into the slot (a concat's input computed in place in its output)
  std::shared_ptr<const ConstData> data;  // constants (already rounded to fp16 if fp16)
  std::string encoding;     // constants: "" (dense) or the compression format ("int8:32", "sparse+int4", ...)
  std::string layout;       // engine layout from the layout pass: "BCHW", "BC1S" or "" (constants)
  int64_t engine_bytes = 0;  // fp16 bytes with the engine's 64-byte row alignment
};

struct Step {
  std::shared_ptr<Node> node;  // op and attributes (node->inputs may be stale: `in` is authoritative)
  std::vector<int> in;         // value ids
  std::vector<int> out;        // value ids
  // Elementwise ops fused into this layer, applied in order to its (single) output. Each
  // result is stored (rounded) as if unfused, so fusion never changes results.
  std::vector<std::shared_ptr<Node>> epilogue;
};

struct Program {
  std::vector<Value> values;
  std::vector<Step> steps;
  std::vector<int> inputs;   // value ids, in call order
  std::vector<int> outputs;  // value ids
  std::vector<std::string> output_names;
  std::vector<int64_t> slot_elems;  // buffer slot sizes (elements, for the simulator)
  std::vector<int64_t> slot_bytes;  // the same slots on the engine: fp16 with 64-byte rows
  CompileOptions options;

  std::string pass_log;              // with CompileOptions::dump_passes
  std::map<std::string, std::string> metadata;  // saved with the program (e.g. the Python output structure)

  int64_t weight_bytes() const;        // constants as stored (fp16, or int8 + scales)
  int64_t peak_activation_bytes() const;  // planned buffers, fp16 with 64-byte rows
  std::string summary() const;
  std::string text() const;            // one line per value and layer, for dumps and tests
  int add_constant(std::vector<float> values, const Shape& shape, DType dtype);
};

// Integer inputs (docs/engine.md, "Integers and booleans"): the engine holds int32 in fp16,
// exact to 2048. Ids into a table of more than 2048 rows reach each 2048-row chunk offset by
// the chunk's first row, computed on the host: the input's port holds one row per chunk.
inline constexpr int64_t kIndexChunk = 2048;
// Per input: ids must lie in [0, index_limit) (0: not an index input); plain_use: something
// besides index lookups reads the value, so it must be exact in fp16. Kept in the program's
// metadata ("aneforge.int_inputs"); ValueError if that is malformed.
struct IntInputRule {
  int64_t index_limit = 0;
  bool plain_use = true;
};
std::vector<IntInputRule> int_input_rules(const Program& p);
void set_int_input_rules(Program& p, const std::vector<IntInputRule>& rules);
int index_port_rows(const Program& p, size_t input);  // 1 + the chunks the host offsets
// Before every run, on every backend: IndexError for an id outside its table, ValueError for
// an integer fp16 cannot hold where the value itself is used.
void check_int_inputs(const Program& p, const float* const* inputs);
// The port of an index input: row k holds x - 2048 k (exact on the host).
void encode_index_rows(const float* x, size_t n, int rows, float* out);

std::string layer_label(const Step& s);  // "conv+relu": the op and its fused epilogue

std::shared_ptr<Program> compile(const std::vector<Tensor>& outputs, const CompileOptions& opts = {});

// Program files (docs/program-file.md): versioned, checksummed, written atomically
// (temp file, then rename). Loading a truncated, corrupt or newer file throws IOError.
// 2: compressed weights are stored packed (int8 values and fp16 scales, int4 LUTs);
// 3: and sparse weights (a bitmask and the stored values); 4: dense fp16 constants as fp16
// (an element size per constant). Older versions still load.
inline constexpr uint32_t kProgramFormatVersion = 5;
// Durable and atomic (docs/reliability.md); an existing file is replaced only if it is a
// program file or `overwrite` is set.
void save_program(const Program& p, const std::string& path, bool overwrite = false);
// Loading trusts nothing after the checksum (docs/program-file.md): every count, size, id,
// slot and layer is validated; failures are IOError naming the file and the problem.
std::shared_ptr<Program> load_program(const std::string& path);
std::shared_ptr<Program> parse_program(const std::string& bytes, const std::string& label);  // the same, from memory

}  // namespace af
