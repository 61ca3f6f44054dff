// Test doubles: the ports of a MIL program, read from its text the way the engine would
// see them (name, bytes per element, element count). Header-only, no ANEForge dependency.
#pragma once
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace dbl {

struct MilPort {
  std::string name;
  uint64_t elem_bytes = 2;
  uint64_t count = 1;
  std::vector<uint64_t> shape;
  uint64_t bytes() const { return elem_bytes * count; }
};

// How the engine lays a port out in its surface, as a loaded model reports it: NCHW (NCDHW
// for rank 5, leading ones for lower ranks), each row padded to 64 bytes (Apple, "Deploying
// Transformers on the Apple Neural Engine": the last axis is padded to 64 bytes).
struct Layout {
  uint64_t n = 1, c = 1, d = 1, h = 1, w = 1, elem = 2;
  uint64_t row = 0, depth = 0, plane = 0, batch = 0;
  uint64_t bytes() const { return n * batch; }
  size_t packed_offset(uint64_t in, uint64_t ic, uint64_t id, uint64_t ih) const {
    return static_cast<size_t>((((in * c + ic) * d + id) * h + ih) * w * elem);
  }
  size_t offset(uint64_t in, uint64_t ic, uint64_t id, uint64_t ih) const {
    return static_cast<size_t>(in * batch + ic * plane + id * depth + ih * row);
  }
};

inline Layout engine_layout(const MilPort& p) {
  std::vector<uint64_t> s = p.shape;
  while (s.size() < 4) s.insert(s.begin(), 1);
  Layout l;
  l.elem = p.elem_bytes;
  l.n = s[0], l.c = s[1];
  if (s.size() == 5) l.d = s[2];
  l.h = s[s.size() - 2], l.w = s[s.size() - 1];
  l.row = (l.w * l.elem + 63) / 64 * 64;
  l.depth = l.row * l.h;
  l.plane = l.depth * l.d;
  l.batch = l.plane * l.c;
  return l;
}

// Packed <-> strided copies, one row at a time.
template <class F>
void each_row(const Layout& l, F&& f) {  // f(packed offset, strided offset)
  for (uint64_t n = 0; n < l.n; ++n)
    for (uint64_t c = 0; c < l.c; ++c)
      for (uint64_t d = 0; d < l.d; ++d)
        for (uint64_t h = 0; h < l.h; ++h) f(l.packed_offset(n, c, d, h), l.offset(n, c, d, h));
}
inline void scatter(const Layout& l, const char* packed, char* strided) {
  each_row(l, [&](size_t p, size_t s) { std::memcpy(strided + s, packed + p, l.w * l.elem); });
}
inline void gather(const Layout& l, const char* strided, char* packed) {
  each_row(l, [&](size_t p, size_t s) { std::memcpy(packed + p, strided + s, l.w * l.elem); });
}

// "tensor<fp16, [1, 3, 4, 4]>" or "fp32" -> bytes per element and count.
inline bool parse_type(const std::string& t, MilPort* p) {
  std::string dt = t;
  std::string dims;
  if (t.rfind("tensor<", 0) == 0) {
    size_t comma = t.find(',');
    size_t lb = t.find('['), rb = t.find(']');
    if (comma == std::string::npos || lb == std::string::npos || rb == std::string::npos) return false;
    dt = t.substr(7, comma - 7);
    dims = t.substr(lb + 1, rb - lb - 1);
  }
  if (dt == "fp16") p->elem_bytes = 2;
  else if (dt == "fp32" || dt == "int32") p->elem_bytes = 4;
  else return false;
  p->count = 1;
  p->shape.clear();
  std::stringstream ss(dims);
  std::string d;
  while (std::getline(ss, d, ',')) p->count *= std::stoull(d), p->shape.push_back(std::stoull(d));
  return true;
}

struct MilSignature {
  std::vector<MilPort> inputs, outputs;
  bool ok = false;
};

inline MilSignature parse_signature(const std::string& text) {
  MilSignature s;
  size_t f = text.find("func main<");
  if (f == std::string::npos) return s;
  size_t open = text.find('(', f), close = text.find(") {", f);
  if (open == std::string::npos || close == std::string::npos) return s;
  std::string args = text.substr(open + 1, close - open - 1);
  // Arguments are "type name" separated by ", " at bracket depth 0.
  int depth = 0;
  std::string cur;
  auto flush = [&] {
    size_t sp = cur.find_last_of(' ');
    if (sp == std::string::npos) return;
    MilPort p;
    p.name = cur.substr(sp + 1);
    size_t b = cur.find_first_not_of(' ');
    if (parse_type(cur.substr(b, sp - b), &p)) s.inputs.push_back(p);
    cur.clear();
  };
  for (char c : args) {
    if (c == '<' || c == '[') ++depth;
    if (c == '>' || c == ']') --depth;
    if (c == ',' && depth == 0) flush();
    else cur += c;
  }
  if (!cur.empty()) flush();
  size_t arrow = text.find("} -> (", close);
  if (arrow == std::string::npos) return s;
  size_t end = text.find(')', arrow);
  std::stringstream outs(text.substr(arrow + 6, end - arrow - 6));
  std::string name;
  while (std::getline(outs, name, ',')) {
    name.erase(0, name.find_first_not_of(' '));
    MilPort p;
    p.name = name;
    size_t def = text.find("> " + name + " = ");
    size_t scalar = text.find(" " + name + " = ");
    if (def != std::string::npos) {
      size_t start = text.rfind("tensor<", def);
      if (!parse_type(text.substr(start, def + 1 - start), &p)) return s;
    } else if (scalar != std::string::npos) {
      size_t ls = text.rfind('\n', scalar);
      std::string t = text.substr(ls + 1, scalar - ls - 1);
      t.erase(0, t.find_first_not_of(' '));
      if (!parse_type(t, &p)) return s;
    } else {
      return s;
    }
    s.outputs.push_back(p);
  }
  s.ok = true;
  return s;
}

// What the engine's MIL compiler refuses (docs/engine.md, "Integers and booleans"): an
// int32 or bool port, or an op other than const computing an int32 tensor. Returns the
// first such line, or "".
inline std::string integer_compute(const std::string& text) {
  std::stringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    bool port = line.find("func main<") != std::string::npos;
    bool computed = line.find("tensor<int32") != std::string::npos && line.find(" = const()") == std::string::npos;
    if ((port && (line.find("tensor<int32") != std::string::npos || line.find("tensor<bool") != std::string::npos)) ||
        (!port && computed))
      return line.substr(line.find_first_not_of(' '));
  }
  return "";
}

// The computation a double runs at execute: set by the test (the mil backend from Python,
// the simulator from C++). Ports in the order given; returns 0 on success.
typedef int (*ComputeFn)(const char* mil_text, const void* weights, uint64_t weights_len, int n_in,
                         const char* const* in_names, const void* const* in_ptrs, const uint64_t* in_bytes,
                         int n_out, const char* const* out_names, void* const* out_ptrs, const uint64_t* out_bytes);

}  // namespace dbl
