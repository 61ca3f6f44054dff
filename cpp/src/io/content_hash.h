// A 128-bit content hash (two FNV-1a style lanes) as 32 hex digits: a cache name and a
// program identity, not a security boundary.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace af::io {

inline std::string content_hash(const std::vector<std::string_view>& parts) {
  uint64_t a = 1469598103934665603ull, b = 1099511628211ull * 7919;
  for (std::string_view p : parts) {
    for (unsigned char c : p) {
      a = (a ^ c) * 1099511628211ull;
      b = (b ^ c) * 0x100000001b3ull + 0x9e3779b97f4a7c15ull;
    }
    a = (a ^ 0xff) * 1099511628211ull;  // part boundary
  }
  char hex[33];
  std::snprintf(hex, sizeof(hex), "%016llx%016llx", static_cast<unsigned long long>(a), static_cast<unsigned long long>(b));
  return hex;
}

}  // namespace af::io
