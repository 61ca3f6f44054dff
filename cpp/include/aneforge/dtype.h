// Element types of graph tensors.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace af {

enum class DType : uint8_t { fp16, fp32, int8, uint8, int32, boolean, int4, uint4, uint1 };

std::string_view dtype_name(DType t);
DType dtype_from_name(std::string_view name);  // throws ValueError listing valid names
bool is_float(DType t);
bool is_integer(DType t);
// Bits per element in a packed buffer (4 for int4/uint4, 1 for uint1: MIL bitmasks).
int dtype_bits(DType t);
// Inclusive range of an integer dtype; used for saturation in the simulator.
double dtype_min(DType t);
double dtype_max(DType t);

}  // namespace af
