// A program loaded on the engine by one of the two paths, behind one interface.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "aneforge/engine.h"

namespace af::engine {

// What a path needs to load a program: the MIL and weights as written to the model
// directory, and the ports in MIL order.
struct ProgramFiles {
  std::string dir;       // <cache>/<key>: model.mil, weights/weight.bin
  std::string mil_path;  // dir/model.mil
  std::string mil_text;
  std::string weights;   // the MILBlob v2 bytes (empty when the program has no weights)
  std::string target;    // the compiler target, statically gated
  std::vector<Port> inputs, outputs;
};

class Loaded {
 public:
  virtual ~Loaded() = default;
  // `fill` writes input i (packed, port dtype) into memory the engine reads.
  virtual void write_input(size_t i, const std::function<void(void*)>& fill) = 0;
  virtual void execute() = 0;
  virtual void read_output(size_t j, const std::function<void(const void*)>& read) = 0;
  // Bytes [offset, offset + n) of input i's packed form, written in place (a held input's
  // new rows); the rest of the input keeps its value.
  virtual void write_input_range(size_t i, size_t offset, const void* src, size_t n) = 0;
  virtual void read_input(size_t i, const std::function<void(const void*)>& read) = 0;
  // Output `out` is also input `in` from now on: one buffer, no host copy (resident state).
  // Before the first execute only.
  virtual void alias(size_t out, size_t in) = 0;
  // Input i reads input src_i of `src` (another loaded program on the same path) from now on:
  // one buffer, which `src` owns and must outlive this binding. Before the first execute.
  // False when this path cannot bind the two ports to one buffer (the caller then keeps a
  // copy per program).
  virtual bool share_input(size_t i, Loaded& src, size_t src_i) = 0;
};

// A path records what the engine told it about the ports (see last_port_report()).
void record_port_report(std::vector<std::string> lines);

// Each path: nullptr and `why` set when its library is missing; throws EngineError when the
// library is there but refuses the program.
std::unique_ptr<Loaded> load_e5rt(const ProgramFiles& f, std::string* why);
std::unique_ptr<Loaded> load_inmemory(const ProgramFiles& f, std::string* why);
// Whether each path's library and symbols are present (for probe()).
bool e5rt_present(std::string* library, std::string* why);
bool inmemory_present(std::string* library, std::string* why);

}  // namespace af::engine
