// Test doubles: a MIL program read back from the text and weight blob a double was handed,
// as an ANEForge graph the simulator runs. The C++ doubles compute with it, so a wrong blob
// or a wrong op in the MIL changes their results (never the original Program's).
// Reads the subset of MIL our engine tests emit; anything else is a clear MilReadError.
#pragma once
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "aneforge/aneforge.h"

namespace dbl {

struct MilReadError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct MilGraph {
  std::vector<std::pair<std::string, af::Tensor>> inputs;   // function inputs, in order
  std::vector<std::pair<std::string, af::Tensor>> outputs;  // function outputs, in order
};

// Parses `text` (one function, main) and resolves BLOBFILE constants in `blob` (MILBlob v2:
// a 64-byte header, then per constant a 64-byte metadata record: sentinel 0xDEADBEEF, dtype,
// size, data offset). Every size and offset is checked against the blob before use.
MilGraph read_mil(const std::string& text, const std::string& blob);

}  // namespace dbl
