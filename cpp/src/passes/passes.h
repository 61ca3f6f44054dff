// The compiler's passes over a Program. Each is a separate function, run in order by
// af::compile (pipeline.cpp) and tested on its own (cpp/tests/test_passes.cpp).
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "aneforge/program.h"

namespace af {

struct PassInfo {
  const char* name;
  void (*run)(Program&);
};

// Graph level (before the Program exists).
// The walk they share, leaving the user's graph as it is: nodes in topological order, each
// given its inputs as already rewritten (which `replace` may change). `replace` returns the
// node's new outputs, or nothing to keep the node (rebuilt, with its name, if an input changed).
using GraphRewrite = std::function<std::vector<Tensor>(const Node&, std::vector<Tensor>& inputs)>;
std::vector<Tensor> rewrite_graph(const std::vector<Tensor>& outputs, const GraphRewrite& replace);
// Bridge ops become their native lowering; ops native only above `family` (13..16) become
// their decomposition.
std::vector<Tensor> lower_bridges(const std::vector<Tensor>& outputs, int family = 16);
// Convs whose stride equals a square kernel wider than `kernel_w_max` (patch embeddings) ->
// pixel_unshuffle + a 1x1 conv.
std::vector<Tensor> patchify_wide_convs(const std::vector<Tensor>& outputs, int64_t kernel_w_max);
// Index ops over more than 2048 rows -> 2048-row chunks of ids offset by index_offset
// (index_ranges.cpp); `rules` gets, per int32 graph input name, its table and other uses.
std::vector<Tensor> split_index_ranges(const std::vector<Tensor>& outputs, std::map<std::string, IntInputRule>* rules);
// int8 activations: layers named in `scales` read their input through quantize/dequantize.
std::vector<Tensor> quantize_activations(const std::vector<Tensor>& outputs, const std::map<std::string, double>& scales);

// Program level, in pipeline order.
void fold_constants(Program& p);          // steps whose inputs are all constants run now
void eliminate_common_subexpressions(Program& p);
void fold_batch_norm(Program& p);         // conv + batch_norm (constants) -> conv with new weights
void matmul_as_linear(Program& p);        // x @ constant (K, N) -> linear (which takes a bias)
void fold_matmul_transposes(Program& p);  // matmul of a last-two-axes permute: transpose_x/y
void fuse_bias(Program& p);               // conv/linear + add(constant per channel) -> bias
void fuse_activations(Program& p);        // conv/linear/matmul + elementwise chain -> one layer
void linear_as_conv(Program& p);          // mark constant-weight linear layers for 1x1-conv emission
void assign_layout(Program& p);           // BCHW / BC1S, 64-byte row alignment
void cast_constants(Program& p);          // constants rounded to their storage dtype (fp16)
void eliminate_dead_code(Program& p);     // unused steps and values
void plan_memory(Program& p);             // buffer slots reused by liveness

// Weight compression (compress.cpp).
void compress_weights(Program& p, const CompileOptions& o);
// A compression format, parsed: "int8[:block]", "int4[:rows]", "sparse[:fraction]" and
// "sparse[:fraction]+int8[:block]" / "+int4[:rows]". Empty kind: fp16.
struct CompressFormat {
  bool sparse = false;
  double prune = 0;   // sparse: the fraction of weights set to zero by magnitude (0: exact zeros only)
  std::string kind;   // the stored values: "", "int8", "int4"
  int64_t n = 0;      // int8: block (0 per channel); int4: rows per LUT (0 per tensor)
  bool none() const { return !sparse && kind.empty(); }
  std::string packed_format() const;  // PackedWeights::format: "int8", "sparse+int4", ...
};
CompressFormat parse_compress_format(const std::string& f, const std::string& layer);  // ValueError if invalid

// The engine's 4-D view of a shape and its fp16 bytes with 64-byte rows (layout.cpp);
// also used by the targets layer for limits and costs.
Shape engine_shape(const Shape& s);
int64_t engine_bytes(const Shape& s);

// Helpers shared by passes.
std::vector<int> use_counts(const Program& p);  // uses by steps and outputs (outputs count 1000)
void remove_steps(Program& p, const std::vector<bool>& dead);
void redirect(Program& p, int from, int to);   // every use of value `from` now reads `to`

}  // namespace af
