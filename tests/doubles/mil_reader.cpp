// The MIL reader of the C++ doubles (mil_reader.h): text -> ops -> an ANEForge graph.
#include "mil_reader.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>

namespace dbl {
namespace {

using af::DType;
using af::Shape;

[[noreturn]] void fail(const std::string& why) { throw MilReadError("mil reader: " + why); }

struct MilType {
  DType dtype = DType::fp16;
  Shape shape;
  bool is_string = false;
};

// A constant: numbers (or a string) with its type.
struct Const {
  MilType type;
  std::vector<double> numbers;
  std::string text;
};

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Splits at `sep` outside (), [], <> and string quotes.
std::vector<std::string> split_top(const std::string& s, char sep) {
  std::vector<std::string> parts;
  int depth = 0;
  bool quoted = false;
  std::string cur;
  for (char c : s) {
    if (c == '"') quoted = !quoted;
    if (!quoted && (c == '(' || c == '[' || c == '<')) ++depth;
    if (!quoted && (c == ')' || c == ']' || c == '>')) --depth;
    if (!quoted && depth == 0 && c == sep) {
      parts.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!trim(cur).empty()) parts.push_back(trim(cur));
  return parts;
}

DType dtype_of(const std::string& s) {
  static const std::map<std::string, DType> names = {{"fp16", DType::fp16}, {"fp32", DType::fp32}, {"int32", DType::int32},
                                                     {"bool", DType::boolean}, {"int8", DType::int8}, {"uint8", DType::uint8}};
  auto it = names.find(s);
  if (it == names.end()) fail("dtype '" + s + "' is not read");
  return it->second;
}

// "tensor<fp16, [1, 3]>", "fp16", "string" (also uint64 for BLOBFILE offsets).
MilType parse_type(const std::string& t) {
  MilType m;
  if (t == "string") {
    m.is_string = true;
    return m;
  }
  if (t.rfind("tensor<", 0) != 0) {
    m.dtype = dtype_of(t);
    return m;
  }
  size_t comma = t.find(','), lb = t.find('['), rb = t.find(']');
  if (comma == std::string::npos || lb == std::string::npos || rb == std::string::npos || rb < lb) fail("bad type " + t);
  m.dtype = dtype_of(trim(t.substr(7, comma - 7)));
  for (const auto& d : split_top(t.substr(lb + 1, rb - lb - 1), ',')) {
    char* end = nullptr;
    long long v = std::strtoll(d.c_str(), &end, 10);
    if (*end || v < 1 || v > (1LL << 31)) fail("bad dimension '" + d + "' in " + t);
    m.shape.push_back(v);
  }
  return m;
}

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

double parse_number(const std::string& s) {
  if (s == "true") return 1;
  if (s == "false") return 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end) fail("bad number '" + s + "'");
  return v;
}

template <class T>
T read_at(const std::string& blob, uint64_t at) {
  T v;
  std::memcpy(&v, blob.data() + at, sizeof v);
  return v;
}

// One BLOBFILE constant: its metadata record at `offset`, checked against the blob and type.
std::vector<double> read_blob(const std::string& blob, uint64_t offset, const MilType& type) {
  const uint64_t len = blob.size();
  if (len < 64 || offset < 64 || offset > len - 64) fail("blob offset " + std::to_string(offset) + " outside a blob of " + std::to_string(len) + " bytes");
  if (read_at<uint32_t>(blob, offset) != 0xDEADBEEFu) fail("blob record at " + std::to_string(offset) + " has no sentinel");
  uint32_t code = read_at<uint32_t>(blob, offset + 4);
  uint64_t size = read_at<uint64_t>(blob, offset + 8), data = read_at<uint64_t>(blob, offset + 16);
  uint64_t elem = code == 1 ? 2 : code == 2 ? 4 : 0;  // fp16, fp32
  if (!elem) fail("blob dtype code " + std::to_string(code) + " is not read");
  if ((code == 1) != (type.dtype == DType::fp16) || (code == 2) != (type.dtype == DType::fp32))
    fail("blob dtype code " + std::to_string(code) + " does not match the constant's type");
  const uint64_t n = static_cast<uint64_t>(numel(type.shape));
  if (size != n * elem) fail("blob record at " + std::to_string(offset) + " holds " + std::to_string(size) + " bytes, the type needs " + std::to_string(n * elem));
  if (data > len || size > len - data) fail("blob data [" + std::to_string(data) + ", +" + std::to_string(size) + ") outside the blob");
  std::vector<double> v(n);
  for (uint64_t i = 0; i < n; ++i) {
    if (code == 1) {
      uint16_t h = read_at<uint16_t>(blob, data + 2 * i);
      float f;
      af::halves_to_floats(&h, &f, 1);
      v[i] = f;
    } else {
      v[i] = read_at<float>(blob, data + 4 * i);
    }
  }
  return v;
}

// The value of a const op: "tensor<..>([..])", "tensor<..>(BLOBFILE(..))", "fp16(..)", "string(..)".
Const parse_const(const std::string& val, const MilType& type, const std::string& blob) {
  Const c;
  c.type = type;
  size_t open = val.find('(');
  if (open == std::string::npos || val.back() != ')') fail("bad constant " + val);
  std::string body = val.substr(open + 1, val.size() - open - 2);
  if (type.is_string) {
    if (body.size() < 2 || body.front() != '"' || body.back() != '"') fail("bad string " + val);
    c.text = body.substr(1, body.size() - 2);
    return c;
  }
  if (body.rfind("BLOBFILE(", 0) == 0) {
    size_t o = body.find("offset = uint64(");
    if (o == std::string::npos) fail("BLOBFILE without an offset: " + body);
    c.numbers = read_blob(blob, std::strtoull(body.c_str() + o + 16, nullptr, 10), type);
    return c;
  }
  if (!body.empty() && body.front() == '[') {
    if (body.back() != ']') fail("bad tensor literal " + val);
    for (const auto& x : split_top(body.substr(1, body.size() - 2), ',')) c.numbers.push_back(parse_number(x));
  } else {
    c.numbers.push_back(parse_number(body));
  }
  if (static_cast<int64_t>(c.numbers.size()) != numel(type.shape)) fail("constant of " + std::to_string(c.numbers.size()) + " values for its type: " + val);
  return c;
}

struct Reader {
  const std::string& blob;
  std::map<std::string, af::Tensor> tensors;
  std::map<std::string, Const> consts;

  const Const& param(const std::map<std::string, std::string>& args, const std::string& k) {
    auto a = args.find(k);
    if (a == args.end()) fail("parameter '" + k + "' missing");
    auto c = consts.find(a->second);
    if (c == consts.end()) fail("parameter '" + k + "' is not a constant");
    return c->second;
  }
  std::vector<int64_t> ints(const std::map<std::string, std::string>& args, const std::string& k) {
    std::vector<int64_t> v;
    for (double d : param(args, k).numbers) v.push_back(static_cast<int64_t>(d));
    return v;
  }
  af::Tensor tensor(const std::string& var) {
    if (auto t = tensors.find(var); t != tensors.end()) return t->second;
    auto c = consts.find(var);
    if (c == consts.end()) fail("'" + var + "' is used before it is defined");
    std::vector<float> v(c->second.numbers.begin(), c->second.numbers.end());
    af::Tensor t = c->second.type.shape.empty() ? af::scalar(v.at(0), c->second.type.dtype)
                                                : af::constant(std::move(v), c->second.type.shape, c->second.type.dtype);
    tensors[var] = t;
    return t;
  }
  af::Tensor arg(const std::map<std::string, std::string>& args, const std::string& k) {
    auto a = args.find(k);
    if (a == args.end()) fail("input '" + k + "' missing");
    return tensor(a->second);
  }

  af::Tensor run(const std::string& op, const std::map<std::string, std::string>& args) {
    static const std::map<std::string, std::string> unary = {{"relu", "relu"}, {"sigmoid", "sigmoid"}, {"tanh", "tanh"}};
    static const std::map<std::string, std::string> binary = {{"add", "add"}, {"sub", "sub"}, {"mul", "mul"},
                                                              {"real_div", "div"}, {"maximum", "maximum"}, {"minimum", "minimum"}};
    if (auto u = unary.find(op); u != unary.end()) return af::call1(u->second, {arg(args, "x")});
    if (auto b = binary.find(op); b != binary.end()) return af::call1(b->second, {arg(args, "x"), arg(args, "y")});
    if (op == "conv") {
      std::vector<af::Tensor> in = {arg(args, "x"), arg(args, "weight")};
      if (args.count("bias")) in.push_back(arg(args, "bias"));
      af::Attrs a;
      std::string pad_type = param(args, "pad_type").text;
      if (pad_type == "custom") a.set("pad", ints(args, "pad"));
      else if (pad_type == "valid" || pad_type == "same") a.set("pad", pad_type);
      else fail("conv pad_type '" + pad_type + "' is not read");
      a.set("stride", ints(args, "strides"));
      a.set("dilation", ints(args, "dilations"));
      a.set("groups", ints(args, "groups").at(0));
      return af::call1("conv", in, a);
    }
    fail("op '" + op + "' is not read");
  }
};

}  // namespace

MilGraph read_mil(const std::string& text, const std::string& blob) {
  size_t f = text.find("func main<");
  if (f == std::string::npos) fail("no function main");
  size_t open = text.find('(', f), close = text.find(") {", f);
  if (open == std::string::npos || close == std::string::npos || close < open) fail("bad function signature");
  Reader r{blob, {}, {}};
  MilGraph g;
  for (const auto& a : split_top(text.substr(open + 1, close - open - 1), ',')) {
    size_t sp = a.find_last_of(' ');
    if (sp == std::string::npos) fail("bad input '" + a + "'");
    MilType t = parse_type(trim(a.substr(0, sp)));
    std::string name = a.substr(sp + 1);
    af::Tensor x = af::input(t.shape, t.dtype, name);
    r.tensors[name] = x;
    g.inputs.emplace_back(name, x);
  }
  size_t body_end = text.find("} -> (", close);
  if (body_end == std::string::npos) fail("no function outputs");
  std::istringstream lines(text.substr(close + 3, body_end - close - 3));
  std::string line;
  while (std::getline(lines, line)) {
    line = trim(line);
    if (line.empty()) continue;
    // "<type> <name> = <op>(<args>)[name = string("..")];"
    size_t eq = line.find(" = ");
    size_t paren = line.find('(', eq);
    size_t attrs = line.rfind(")[name = ");
    if (eq == std::string::npos || paren == std::string::npos || attrs == std::string::npos || attrs < paren)
      fail("bad line: " + line);
    std::string lhs = line.substr(0, eq), op = line.substr(eq + 3, paren - eq - 3);
    size_t sp = lhs.find_last_of(' ');
    if (sp == std::string::npos || lhs.front() == '(') fail("one output per op is read: " + line);
    MilType type = parse_type(lhs.substr(0, sp));
    std::string var = lhs.substr(sp + 1);
    if (r.tensors.count(var) || r.consts.count(var)) fail("'" + var + "' is defined twice");
    if (op == "const") {
      size_t v = line.find("val = ", attrs);
      if (v == std::string::npos || line.size() < v + 8 || line.compare(line.size() - 2, 2, "];") != 0) fail("const without val: " + line);
      r.consts[var] = parse_const(line.substr(v + 6, line.size() - 2 - v - 6), type, blob);
      continue;
    }
    std::map<std::string, std::string> args;
    for (const auto& kv : split_top(line.substr(paren + 1, attrs - paren - 1), ',')) {
      size_t e = kv.find(" = ");
      if (e == std::string::npos) fail("bad argument '" + kv + "'");
      args[kv.substr(0, e)] = kv.substr(e + 3);
    }
    af::Tensor t = r.run(op, args);
    if (t.shape() != type.shape || t.dtype() != type.dtype) fail("'" + var + "': the op gives " + t.str() + ", the text declares another type");
    r.tensors[var] = t;
  }
  size_t end = text.find(')', body_end + 6);
  for (const auto& name : split_top(text.substr(body_end + 6, end - body_end - 6), ',')) g.outputs.emplace_back(name, r.tensor(name));
  return g;
}

}  // namespace dbl
