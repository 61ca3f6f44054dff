#include "aneforge/dtype.h"

#include <array>

#include "aneforge/error.h"

namespace af {
namespace {
constexpr std::array<std::string_view, 9> kNames = {"fp16", "fp32", "int8", "uint8", "int32",
                                                    "bool", "int4", "uint4", "uint1"};
}

std::string_view dtype_name(DType t) { return kNames[static_cast<size_t>(t)]; }

DType dtype_from_name(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i)
    if (kNames[i] == name) return static_cast<DType>(i);
  if (name == "float16" || name == "half") return DType::fp16;
  if (name == "float32" || name == "float") return DType::fp32;
  if (name == "bool_") return DType::boolean;
  std::string valid;
  for (auto n : kNames) valid += (valid.empty() ? "" : ", ") + std::string(n);
  throw ValueError("unknown dtype '" + std::string(name) + "'; valid dtypes: " + valid);
}

bool is_float(DType t) { return t == DType::fp16 || t == DType::fp32; }
bool is_integer(DType t) { return !is_float(t) && t != DType::boolean; }

int dtype_bits(DType t) {
  switch (t) {
    case DType::fp16: return 16;
    case DType::fp32: return 32;
    case DType::int8: case DType::uint8: case DType::boolean: return 8;
    case DType::int32: return 32;
    case DType::int4: case DType::uint4: return 4;
    case DType::uint1: return 1;
  }
  return 32;
}

double dtype_min(DType t) {
  switch (t) {
    case DType::int8: return -128;
    case DType::uint8: case DType::uint4: case DType::uint1: case DType::boolean: return 0;
    case DType::int32: return -2147483648.0;
    case DType::int4: return -8;
    default: return -3.4028234663852886e38;
  }
}

double dtype_max(DType t) {
  switch (t) {
    case DType::int8: return 127;
    case DType::uint8: return 255;
    case DType::boolean: case DType::uint1: return 1;
    case DType::int32: return 2147483647.0;
    case DType::int4: return 7;
    case DType::uint4: return 15;
    default: return 3.4028234663852886e38;
  }
}

}  // namespace af
