// Shapes: up to rank 5, as on the engine.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace af {

using Shape = std::vector<int64_t>;
inline constexpr int kMaxRank = 5;
// The largest tensor, in elements (2^31: 4 GiB of fp16; the engine's own limits are far
// below). Shapes past it are refused before anything is allocated.
inline constexpr int64_t kMaxElements = int64_t(1) << 31;

int64_t numel(const Shape& s);
// The element count if every dimension is >= 1 and the product is at most kMaxElements
// (computed without overflow); -1 otherwise.
int64_t checked_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "(1, 3, 32, 32)"
// NumPy broadcasting; returns false when the shapes do not broadcast.
bool broadcast_shapes(const Shape& a, const Shape& b, Shape& out);
// Row-major strides in elements.
std::vector<int64_t> strides_of(const Shape& s);
// Normalise a possibly negative axis; throws ValueError naming `op`.
int normalize_axis(int64_t axis, int rank, const std::string& op);

}  // namespace af
