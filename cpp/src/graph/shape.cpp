#include "aneforge/shape.h"

#include "aneforge/error.h"

namespace af {

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

int64_t checked_numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) {
    if (d < 1 || d > kMaxElements || n > kMaxElements / d) return -1;
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  if (s.size() == 1) r += ",";
  return r + ")";
}

bool broadcast_shapes(const Shape& a, const Shape& b, Shape& out) {
  size_t r = std::max(a.size(), b.size());
  out.assign(r, 1);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1) return false;
    out[i] = da == 1 ? db : da;
  }
  return true;
}

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int i = static_cast<int>(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

int normalize_axis(int64_t axis, int rank, const std::string& op) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    throw ValueError(op + ": axis " + std::to_string(axis) + " is out of range for rank " +
                     std::to_string(rank) + " (valid: " + std::to_string(-rank) + ".." +
                     std::to_string(rank - 1) + ")");
  return static_cast<int>(a);
}

}  // namespace af
