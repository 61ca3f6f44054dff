// The program file: "AFPROGRM" magic, format version, a length-prefixed binary body
// (options, values with constant data, steps with attributes), then a CRC-32 of all
// bytes before it. Layout: docs/program-file.md.
#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "aneforge/durable.h"
#include "aneforge/error.h"
#include "aneforge/op.h"
#include "aneforge/program.h"

namespace af {

namespace {

constexpr char kMagic[8] = {'A', 'F', 'P', 'R', 'O', 'G', 'R', 'M'};

uint32_t crc32(const std::string& data) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

struct Writer {
  std::string buf;
  template <class T>
  void raw(const T& v) { buf.append(reinterpret_cast<const char*>(&v), sizeof(T)); }
  void u32(uint32_t v) { raw(v); }
  void i64(int64_t v) { raw(v); }
  void f64(double v) { raw(v); }
  void str(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    buf += s;
  }
  void shape(const Shape& s) {
    u32(static_cast<uint32_t>(s.size()));
    for (auto d : s) i64(d);
  }
  void attr(const AttrValue& v) {
    u32(static_cast<uint32_t>(v.index()));
    std::visit([this](const auto& x) {
      using T = std::decay_t<decltype(x)>;
      if constexpr (std::is_same_v<T, bool>) u32(x);
      else if constexpr (std::is_same_v<T, int64_t>) i64(x);
      else if constexpr (std::is_same_v<T, double>) f64(x);
      else if constexpr (std::is_same_v<T, std::string>) str(x);
      else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
        u32(static_cast<uint32_t>(x.size()));
        for (auto e : x) i64(e);
      } else if constexpr (std::is_same_v<T, std::vector<double>>) {
        u32(static_cast<uint32_t>(x.size()));
        for (auto e : x) f64(e);
      }
    }, v);
  }
  void node(const Node& n) {
    str(n.op->name);
    str(n.name);
    u32(static_cast<uint32_t>(n.attrs.items().size()));
    for (const auto& [k, v] : n.attrs.items()) {
      str(k);
      attr(v);
    }
    u32(static_cast<uint32_t>(n.outputs.size()));
    for (const auto& t : n.outputs) {
      shape(t.shape);
      u32(static_cast<uint32_t>(t.dtype));
    }
  }
};

struct Reader {
  const std::string& buf;
  size_t pos = 0;
  const std::string& path;
  void need(size_t n) {
    if (pos + n > buf.size()) throw IOError("program file '" + path + "' is truncated or corrupt");
  }
  template <class T>
  T raw() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, buf.data() + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  uint32_t u32() { return raw<uint32_t>(); }
  int64_t i64() { return raw<int64_t>(); }
  double f64() { return raw<double>(); }
  uint32_t count(uint32_t limit = 1u << 28) {
    uint32_t n = u32();
    if (n > limit) throw IOError("program file '" + path + "' is corrupt (a count of " + std::to_string(n) + ")");
    return n;
  }
  std::string str() {
    uint32_t n = count();
    need(n);
    std::string s = buf.substr(pos, n);
    pos += n;
    return s;
  }
  Shape shape() {
    uint32_t n = count(kMaxRank);
    Shape s(n);
    for (auto& d : s) {
      d = i64();
      if (d < 1) throw IOError("program file '" + path + "' is corrupt (a shape)");
    }
    return s;
  }
  AttrValue attr() {
    switch (u32()) {
      case 0: return std::monostate{};
      case 1: return u32() != 0;
      case 2: return i64();
      case 3: return f64();
      case 4: return str();
      case 5: {
        std::vector<int64_t> v(count());
        for (auto& e : v) e = i64();
        return v;
      }
      case 6: {
        std::vector<double> v(count());
        for (auto& e : v) e = f64();
        return v;
      }
      default: throw IOError("program file '" + path + "' is corrupt (an attribute)");
    }
  }
  DType dtype() {
    uint32_t d = u32();
    if (d > static_cast<uint32_t>(DType::uint4)) throw IOError("program file '" + path + "' is corrupt (a dtype)");
    return static_cast<DType>(d);
  }
  std::shared_ptr<Node> node() {
    auto n = std::make_shared<Node>();
    std::string op = str();
    n->op = find_op(op);
    if (!n->op) throw IOError("program file '" + path + "' uses op '" + op + "', unknown to this version of ANEForge");
    n->name = str();
    n->id = next_node_id();
    for (uint32_t i = 0, e = count(); i < e; ++i) {
      std::string k = str();
      n->attrs.set(k, attr());
    }
    for (uint32_t i = 0, e = count(); i < e; ++i) {
      TensorType t;
      t.shape = shape();
      t.dtype = dtype();
      n->outputs.push_back(t);
    }
    return n;
  }
};

std::string body_of(const Program& p) {
  Writer w;
  const auto& o = p.options;
  w.str(o.target);
  w.u32(static_cast<uint32_t>(o.numerics.precision));
  w.u32(static_cast<uint32_t>(o.numerics.fp16.round));
  w.u32(o.numerics.fp16.flush_subnormals);
  w.str(o.compress);
  w.u32(static_cast<uint32_t>(p.metadata.size()));
  for (const auto& [k, v] : p.metadata) {
    w.str(k);
    w.str(v);
  }
  w.u32(static_cast<uint32_t>(p.values.size()));
  for (const auto& v : p.values) {
    w.str(v.name);
    w.shape(v.type.shape);
    w.u32(static_cast<uint32_t>(v.type.dtype));
    w.i64(v.producer);
    w.i64(v.slot);
    w.str(v.encoding);
    w.str(v.layout);
    w.i64(v.engine_bytes);
    w.u32(v.data ? 1 : 0);
    if (v.data) {
      w.i64(static_cast<int64_t>(v.data->values.size()));
      w.buf.append(reinterpret_cast<const char*>(v.data->values.data()), v.data->values.size() * sizeof(float));
    }
  }
  auto ids = [&](const std::vector<int>& v) {
    w.u32(static_cast<uint32_t>(v.size()));
    for (int x : v) w.i64(x);
  };
  w.u32(static_cast<uint32_t>(p.steps.size()));
  for (const auto& s : p.steps) {
    w.node(*s.node);
    ids(s.in);
    ids(s.out);
    w.u32(static_cast<uint32_t>(s.epilogue.size()));
    for (const auto& e : s.epilogue) w.node(*e);
  }
  ids(p.inputs);
  ids(p.outputs);
  w.u32(static_cast<uint32_t>(p.output_names.size()));
  for (const auto& n : p.output_names) w.str(n);
  w.u32(static_cast<uint32_t>(p.slot_elems.size()));
  for (auto e : p.slot_elems) w.i64(e);
  w.u32(static_cast<uint32_t>(p.slot_bytes.size()));
  for (auto e : p.slot_bytes) w.i64(e);
  return w.buf;
}

}  // namespace

void save_program(const Program& p, const std::string& path, bool overwrite) {
  Writer w;
  w.buf.append(kMagic, 8);
  w.u32(kProgramFormatVersion);
  std::string body = body_of(p);
  w.i64(static_cast<int64_t>(body.size()));
  w.buf += body;
  w.u32(crc32(w.buf));
  io::write_file(path, w.buf, [overwrite](const std::string& old) {
    return overwrite || (old.size() >= 8 && std::memcmp(old.data(), kMagic, 8) == 0);  // a program file
  });
}

std::shared_ptr<Program> load_program(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IOError("cannot open program file '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string buf = ss.str();
  if (buf.size() < 8 || std::memcmp(buf.data(), kMagic, 8) != 0)
    throw IOError("'" + path + "' is not an ANEForge program file (bad magic)");
  Reader r{buf, 8, path};
  uint32_t version = r.u32();
  if (version > kProgramFormatVersion)
    throw IOError("program file '" + path + "' has format version " + std::to_string(version) +
                  ", newer than this ANEForge reads (" + std::to_string(kProgramFormatVersion) + "); upgrade aneforge");
  if (version == 0) throw IOError("program file '" + path + "' is corrupt (format version 0)");
  int64_t body_len = r.i64();
  if (body_len < 0 || static_cast<size_t>(body_len) + r.pos + 4 != buf.size())
    throw IOError("program file '" + path + "' is truncated or corrupt (size mismatch)");
  uint32_t stored;
  std::memcpy(&stored, buf.data() + buf.size() - 4, 4);
  if (crc32(buf.substr(0, buf.size() - 4)) != stored)
    throw IOError("program file '" + path + "' is corrupt (checksum mismatch)");

  auto p = std::make_shared<Program>();
  auto& o = p->options;
  o.target = r.str();
  o.numerics.precision = r.u32() ? Precision::fp32 : Precision::fp16;
  o.numerics.fp16.round = r.u32() ? RoundMode::nearest_away : RoundMode::nearest_even;
  o.numerics.fp16.flush_subnormals = r.u32() != 0;
  o.compress = r.str();
  for (uint32_t i = 0, n = r.count(); i < n; ++i) {
    std::string k = r.str();
    p->metadata[k] = r.str();
  }
  uint32_t nv = r.count();
  for (uint32_t i = 0; i < nv; ++i) {
    Value v;
    v.name = r.str();
    v.type.shape = r.shape();
    v.type.dtype = r.dtype();
    v.producer = static_cast<int>(r.i64());
    v.slot = static_cast<int>(r.i64());
    v.encoding = r.str();
    v.layout = r.str();
    v.engine_bytes = r.i64();
    if (r.u32()) {
      int64_t n = r.i64();
      if (n != std::max<int64_t>(1, numel(v.type.shape)) && n != numel(v.type.shape))
        throw IOError("program file '" + path + "' is corrupt (constant size)");
      r.need(static_cast<size_t>(n) * sizeof(float));
      auto d = std::make_shared<ConstData>();
      d->values.resize(static_cast<size_t>(n));
      std::memcpy(d->values.data(), buf.data() + r.pos, static_cast<size_t>(n) * sizeof(float));
      r.pos += static_cast<size_t>(n) * sizeof(float);
      v.data = std::move(d);
    }
    p->values.push_back(std::move(v));
  }
  auto ids = [&](std::vector<int>& out) {
    for (uint32_t i = 0, n = r.count(); i < n; ++i) {
      int64_t v = r.i64();
      if (v < 0 || v >= static_cast<int64_t>(nv)) throw IOError("program file '" + path + "' is corrupt (a value id)");
      out.push_back(static_cast<int>(v));
    }
  };
  for (uint32_t i = 0, n = r.count(); i < n; ++i) {
    Step s;
    s.node = r.node();
    ids(s.in);
    ids(s.out);
    for (uint32_t e = 0, m = r.count(); e < m; ++e) s.epilogue.push_back(r.node());
    if (s.out.size() != s.node->outputs.size()) throw IOError("program file '" + path + "' is corrupt (outputs)");
    p->steps.push_back(std::move(s));
  }
  ids(p->inputs);
  ids(p->outputs);
  for (uint32_t i = 0, n = r.count(); i < n; ++i) p->output_names.push_back(r.str());
  for (uint32_t i = 0, n = r.count(); i < n; ++i) p->slot_elems.push_back(r.i64());
  for (uint32_t i = 0, n = r.count(); i < n; ++i) p->slot_bytes.push_back(r.i64());
  for (const auto& v : p->values)
    if (!v.data && v.slot >= static_cast<int>(p->slot_elems.size()))
      throw IOError("program file '" + path + "' is corrupt (a buffer slot)");
  // Every layer must still pass its op's shape rule with the stored types and attributes.
  for (const auto& s : p->steps) {
    std::vector<Tensor> ins;
    for (int v : s.in) {
      const Value& val = p->values[v];
      if (!val.data && val.slot < 0) throw IOError("program file '" + path + "' is corrupt (an unplanned buffer)");
      auto leaf = std::make_shared<Node>();
      leaf->op = &op_def("input");
      leaf->outputs = {val.type};
      ins.emplace_back(leaf, 0);
    }
    std::vector<Tensor> outs;
    try {
      outs = call(s.node->op->name, ins, s.node->attrs);
    } catch (const Error& e) {
      throw IOError("program file '" + path + "' is corrupt (layer '" + s.node->name + "': " + e.what() + ")");
    }
    for (size_t i = 0; i < outs.size(); ++i)
      if (i >= s.out.size() || !(outs[i].type() == p->values[s.out[i]].type) || !(outs[i].type() == s.node->outputs[i]))
        throw IOError("program file '" + path + "' is corrupt (layer '" + s.node->name + "' types)");
    for (const auto& e : s.epilogue)
      if (!e->op->kernel || e->outputs.size() != 1 || !(e->outputs[0] == p->values[s.out[0]].type))
        throw IOError("program file '" + path + "' is corrupt (a fused layer)");
  }
  if (r.pos != buf.size() - 4) throw IOError("program file '" + path + "' is corrupt (trailing bytes)");
  return p;
}

}  // namespace af
