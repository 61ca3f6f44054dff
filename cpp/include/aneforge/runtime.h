// Backends run a compiled Program. The simulator ("sim") runs it on the CPU with the
// engine's numerics; the engine backend (macOS) runs the very same Program.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "aneforge/program.h"

namespace af {

// A host tensor handed to or returned from a backend: float32 values.
struct HostTensor {
  Shape shape;
  std::vector<float> data;
};

class Executable {
 public:
  virtual ~Executable() = default;
  // inputs[i] points at numel(inputs[i] shape) floats, in program input order;
  // outputs[j] must hold numel(output shape) floats. Inputs are rounded to the input dtype.
  // A null inputs[i] keeps the value of a resident input (see alias).
  virtual void run(const float* const* inputs, float* const* outputs) = 0;
  virtual const Program& program() const = 0;
  // Resident state (weights, optimizer moments, KV caches): after each run, output `out`
  // is the value of input `in` on the next, held by the backend without a host round trip
  // (the engine binds one buffer to both ports). The first run gives the input; later runs
  // pass nullptr for it (or a value, which replaces the state). Same dtype and shape.
  virtual void alias(int out, int in);
  // A held input (KV caches): its value stays with the backend between runs, starting at
  // zeros; a run given a value replaces it. write_rows changes entries start..start+count-1
  // of axis `dim` (src packed, the input's shape with `count` on that axis) and moves
  // nothing else, so a decode step sends only its new rows.
  virtual void hold(int in);
  virtual void write_rows(int in, int dim, int64_t start, int64_t count, const float* src);
  // Input `in` becomes held input `src_in` of `src` (held now if it was not): one buffer both
  // programs read and either's write_rows changes, so a KV cache exists once however many
  // programs attend to it. Same backend, dtype and shape. Programs sharing a buffer take one
  // lock: their runs never overlap.
  virtual void share_input(int in, Executable& src, int src_in);
};

// The contiguous runs write_rows touches: `outer` runs of `run` elements, run k starting at
// element first + k * stride of the input. Checks the arguments (ValueError naming the input).
struct RowRuns {
  int64_t outer = 0, run = 0, first = 0, stride = 0;
};
RowRuns row_runs(const Program& p, int in, int dim, int64_t start, int64_t count);

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual bool available() const = 0;
  virtual std::unique_ptr<Executable> load(std::shared_ptr<const Program> program) = 0;
};

// Checks that output `out` can be resident input `in` (ValueError naming both otherwise).
void check_alias(const Program& p, int out, int in);

Backend& backend(const std::string& name);  // "sim" (everywhere) or "engine" (macOS)
std::vector<std::string> backend_names();

struct SimContext {
  Numerics numerics;
  // Rounds a result buffer to the storage of `dtype` under the program's numerics.
  void store(float* data, size_t n, DType dtype) const;
};

// The sim runs runs of elementwise steps of one shape block by block, each block through the
// whole run while it is in cache (runtime/chains.h). The same bits either way (NaN signs
// aside); off runs every step over its whole output (tests compare the two). On by default,
// read at each run.
void set_sim_chains(bool on);
bool sim_chains();

// Kernels that offer it (conv) round their output and run the layer's fused elementwise ops
// piece by piece while each piece is in cache (KernelArgs::finish). The same bits either way
// (NaN signs aside); off leaves them to passes over the whole output. On by default.
void set_sim_fused_finish(bool on);
bool sim_fused_finish();

// Float32 copies of fp16-stored weights that kernels would otherwise widen on every run (a
// conv's whole weight, kernels wider than 1x1), kept by each loaded program until it is destroyed, up to this many
// bytes in the process (default 256 MiB; 0 keeps none). Results are the same bits either way.
void set_sim_weight_cache(int64_t max_bytes);
int64_t sim_weight_cache();        // the limit
int64_t sim_weight_cache_bytes();  // bytes held now

// Convenience: compile-free run of a Program on the simulator with HostTensors.
std::vector<HostTensor> run_sim(std::shared_ptr<const Program> p, const std::vector<HostTensor>& in);

}  // namespace af
