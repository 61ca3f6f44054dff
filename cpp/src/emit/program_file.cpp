// The program file: "AFPROGRM" magic, format version, a length-prefixed binary body
// (options, values with constant data, steps with attributes), then a CRC-32 of all
// bytes before it. Layout: docs/program-file.md.
#include <array>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "aneforge/durable.h"
#include "aneforge/error.h"
#include "passes/passes.h"
#include "aneforge/op.h"
#include "aneforge/program.h"
#include "aneforge/target.h"

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

bool valid_utf8(const char* s, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || i + len > n) return false;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += len;
  }
  return true;
}

struct Reader {
  const std::string& buf;
  size_t pos = 0;
  const std::string& path;
  uint32_t version = 0;
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
  [[noreturn]] void corrupt(const std::string& what) const {
    throw IOError("program file '" + path + "' is corrupt (" + what + ")");
  }
  // A count of items of at least `item_bytes` each: never more than the bytes left can hold,
  // so no allocation is sized by the file beyond its own size.
  uint32_t count(size_t item_bytes, uint32_t limit = 1u << 28) {
    uint32_t n = u32();
    size_t left = buf.size() - pos;
    if (n > limit || (item_bytes && n > left / item_bytes)) corrupt("a count of " + std::to_string(n));
    return n;
  }
  std::string str() {
    uint32_t n = count(1);
    need(n);
    if (!valid_utf8(buf.data() + pos, n)) corrupt("a string that is not UTF-8");
    std::string s = buf.substr(pos, n);
    pos += n;
    return s;
  }
  Shape shape() {
    uint32_t n = count(8, kMaxRank);
    Shape s(n);
    for (auto& d : s) d = i64();
    if (checked_numel(s) < 0) corrupt("a shape " + shape_str(s));
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
        std::vector<int64_t> v(count(8));
        for (auto& e : v) e = i64();
        return v;
      }
      case 6: {
        std::vector<double> v(count(8));
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
    n->auto_name = false;  // as stored
    n->id = next_node_id();
    for (uint32_t i = 0, e = count(8); i < e; ++i) {
      std::string k = str();
      n->attrs.set(k, attr());
    }
    for (uint32_t i = 0, e = count(8); i < e; ++i) {
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
  // Per-layer formats travel as one metadata entry, "layer=format" lines.
  auto meta = p.metadata;
  if (!o.compress_layers.empty()) {
    std::string lines;
    for (const auto& [k, v] : o.compress_layers) lines += k + "=" + v + "\n";
    meta["compress_layers"] = lines;
  }
  w.u32(static_cast<uint32_t>(meta.size()));
  for (const auto& [k, v] : meta) {
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
    w.i64(v.offset);  // since version 5
    w.str(v.encoding);
    w.str(v.layout);
    w.i64(v.engine_bytes);
    w.u32(!v.data ? 0 : v.data->packed ? 2 : 1);
    if (v.data && v.data->packed) {  // the packed arrays, as the program holds them
      const PackedWeights& pk = *v.data->packed;
      w.str(pk.format);
      w.i64(pk.block);
      w.i64(pk.group_rows);
      auto arr = [&](const void* data, size_t n, size_t elem) {
        w.i64(static_cast<int64_t>(n));
        w.buf.append(static_cast<const char*>(data), n * elem);
      };
      arr(pk.q8.data(), pk.q8.size(), 1);
      arr(pk.scales.data(), pk.scales.size(), 2);
      arr(pk.q4.data(), pk.q4.size(), 1);
      arr(pk.lut.data(), pk.lut.size(), 2);
      arr(pk.mask.data(), pk.mask.size(), 1);  // since version 3
      arr(pk.nz16.data(), pk.nz16.size(), 2);
    } else if (v.data) {
      // Since version 4: an fp16 constant whose values fp16 holds exactly (all of them, after
      // cast_constants) is stored as fp16 bits, as the engine gets it; anything else as float32.
      const auto& vals = v.data->values;
      if (vals.is_half()) {  // held as fp16 bits already
        w.i64(static_cast<int64_t>(vals.size()));
        w.u32(2);
        w.buf.append(reinterpret_cast<const char*>(vals.half_data()), vals.size() * 2);
        continue;
      }
      std::vector<uint16_t> halves(v.type.dtype == DType::fp16 ? vals.size() : 0);
      bool as_fp16 = v.type.dtype == DType::fp16;
      for (size_t i = 0; as_fp16 && i < vals.size(); ++i) {
        halves[i] = float_to_half(vals[i]);
        as_fp16 = half_to_float(halves[i]) == vals[i] || (vals[i] != vals[i]);
      }
      w.i64(static_cast<int64_t>(vals.size()));
      w.u32(as_fp16 ? 2 : 4);
      if (as_fp16) w.buf.append(reinterpret_cast<const char*>(halves.data()), halves.size() * 2);
      else w.buf.append(reinterpret_cast<const char*>(vals.data()), vals.size() * sizeof(float));
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

// The body as stored; every count bounded by the bytes left (Reader::count).
void read_body(Reader& r, Program& p) {
  auto& o = p.options;
  o.target = r.str();
  uint32_t prec = r.u32(), round = r.u32(), ftz = r.u32();
  if (prec > 1 || round > 1 || ftz > 1) r.corrupt("numerics options");
  o.numerics.precision = prec ? Precision::fp32 : Precision::fp16;
  o.numerics.fp16.round = round ? RoundMode::nearest_away : RoundMode::nearest_even;
  o.numerics.fp16.flush_subnormals = ftz != 0;
  o.compress = r.str();
  for (uint32_t i = 0, n = r.count(8); i < n; ++i) {
    std::string k = r.str();
    p.metadata[k] = r.str();
  }
  if (auto it = p.metadata.find("compress_layers"); it != p.metadata.end()) {
    std::string rest = it->second;
    for (size_t at = 0; at < rest.size();) {
      size_t nl = rest.find('\n', at), eq = rest.find('=', at);
      if (nl == std::string::npos || eq == std::string::npos || eq > nl || eq == at) r.corrupt("compress_layers");
      o.compress_layers[rest.substr(at, eq - at)] = rest.substr(eq + 1, nl - eq - 1);
      at = nl + 1;
    }
    p.metadata.erase(it);
  }
  uint32_t nv = r.count(40);
  for (uint32_t i = 0; i < nv; ++i) {
    Value v;
    v.name = r.str();
    v.type.shape = r.shape();
    v.type.dtype = r.dtype();
    int64_t producer = r.i64(), slot = r.i64();
    if (producer < -1 || producer > INT32_MAX || slot < -1 || slot > INT32_MAX) r.corrupt("value '" + v.name + "'");
    v.producer = static_cast<int>(producer);
    v.slot = static_cast<int>(slot);
    v.offset = r.version >= 5 ? r.i64() : 0;
    v.encoding = r.str();
    v.layout = r.str();
    v.engine_bytes = r.i64();
    uint32_t has_data = r.u32();
    if (has_data > 2) r.corrupt("value '" + v.name + "'");
    if (has_data == 2) {  // packed: every size checked against the shape before use
      auto pk = std::make_shared<PackedWeights>();
      pk->format = r.str();
      pk->shape = v.type.shape;
      pk->block = r.i64();
      pk->group_rows = r.i64();
      if (v.type.shape.empty() || v.type.shape[0] < 1 || checked_numel(v.type.shape) < 0)
        r.corrupt("packed constant '" + v.name + "' shape");
      const int64_t limit = numel(v.type.shape);  // no packed array is longer than the dense count
      auto arr = [&](auto& out, size_t elem, const char* what) {
        int64_t n = r.i64();
        if (n < 0 || n > limit) r.corrupt("packed constant '" + v.name + "' " + what);
        r.need(static_cast<size_t>(n) * elem);
        out.resize(static_cast<size_t>(n));
        if (n) std::memcpy(out.data(), r.buf.data() + r.pos, static_cast<size_t>(n) * elem);
        r.pos += static_cast<size_t>(n) * elem;
      };
      arr(pk->q8, 1, "values");
      arr(pk->scales, 2, "scales");
      arr(pk->q4, 1, "indices");
      arr(pk->lut, 2, "LUT");
      if (r.version >= 3) {
        arr(pk->mask, 1, "mask");
        arr(pk->nz16, 2, "stored values");
      }
      std::string bad = pk->check();
      if (!bad.empty()) r.corrupt("packed constant '" + v.name + "': " + bad);
      auto d = std::make_shared<ConstData>();
      d->packed = std::move(pk);
      v.data = std::move(d);
    } else if (has_data) {
      int64_t n = r.i64();
      if (n != numel(v.type.shape)) r.corrupt("constant '" + v.name + "' size");
      uint32_t elem = r.version >= 4 ? r.u32() : 4;
      if (elem != 4 && !(elem == 2 && v.type.dtype == DType::fp16)) r.corrupt("constant '" + v.name + "' element size");
      r.need(static_cast<size_t>(n) * elem);
      auto d = std::make_shared<ConstData>();
      if (elem == 2) {
        std::vector<uint16_t> halves(static_cast<size_t>(n));
        std::memcpy(halves.data(), r.buf.data() + r.pos, static_cast<size_t>(n) * 2);
        if (n >= kHalfConstMin) {
          d->values = ConstValues::halves(std::move(halves));
        } else {
          std::vector<float> f(halves.size());
          halves_to_floats(halves.data(), f.data(), halves.size());
          d->values = std::move(f);
        }
      } else {
        std::vector<float> f(static_cast<size_t>(n));
        std::memcpy(f.data(), r.buf.data() + r.pos, static_cast<size_t>(n) * sizeof(float));
        d->values = std::move(f);
      }
      r.pos += static_cast<size_t>(n) * elem;
      v.data = std::move(d);
    }
    p.values.push_back(std::move(v));
  }
  auto ids = [&](std::vector<int>& out) {
    for (uint32_t i = 0, n = r.count(8); i < n; ++i) {
      int64_t v = r.i64();
      if (v < 0 || v >= static_cast<int64_t>(nv)) r.corrupt("a value id");
      out.push_back(static_cast<int>(v));
    }
  };
  for (uint32_t i = 0, n = r.count(32); i < n; ++i) {
    Step s;
    s.node = r.node();
    ids(s.in);
    ids(s.out);
    for (uint32_t e = 0, m = r.count(32); e < m; ++e) s.epilogue.push_back(r.node());
    p.steps.push_back(std::move(s));
  }
  ids(p.inputs);
  ids(p.outputs);
  for (uint32_t i = 0, n = r.count(4); i < n; ++i) p.output_names.push_back(r.str());
  for (uint32_t i = 0, n = r.count(8); i < n; ++i) p.slot_elems.push_back(r.i64());
  for (uint32_t i = 0, n = r.count(8); i < n; ++i) p.slot_bytes.push_back(r.i64());
  if (r.pos != r.buf.size() - 4) r.corrupt("trailing bytes");
}

// Everything a backend relies on, checked against the file and the op table: value roles,
// dataflow order, buffer slots large enough for every type planned into them, and each
// layer (and fused epilogue) rebuilt through its op's shape rule, so kernels only ever see
// canonical attributes and the arity and types their op defines.
void validate(Program& p, Reader& r) {
  find_target(p.options.target.empty() ? "h16g" : p.options.target);  // throws for an unknown target
  if (p.options.compress != "" && p.options.compress != "int8") r.corrupt("compress option");
  if (p.metadata.count("output_mode")) {
    const std::string& m = p.metadata.at("output_mode");
    if (m != "0" && m != "1" && m != "2" && m != "3") r.corrupt("output mode");
  }
  int ns = static_cast<int>(p.slot_elems.size());
  if (p.slot_bytes.size() != p.slot_elems.size()) r.corrupt("buffer slot tables");
  int64_t total = 0;
  for (int i = 0; i < ns; ++i) {
    if (p.slot_elems[i] < 0 || p.slot_elems[i] > kMaxElements || p.slot_bytes[i] < 0) r.corrupt("buffer slot " + std::to_string(i));
    total += p.slot_elems[i];
    if (total > 2 * kMaxElements) r.corrupt("buffer slots larger than 2^32 elements in all");
  }
  int nsteps = static_cast<int>(p.steps.size());
  for (const Value& v : p.values) {
    bool packed_encoding = false;
    try {
      packed_encoding = !parse_compress_format(v.encoding, v.name).none();
    } catch (const ValueError&) {
    }
    if (v.encoding != "" && !packed_encoding) r.corrupt("value '" + v.name + "' encoding");
    if (v.data && v.data->packed && !packed_encoding) r.corrupt("value '" + v.name + "' is packed without an encoding");
    if (v.data) {
      if (v.producer != -1 || v.slot != -1 || v.offset != 0) r.corrupt("constant '" + v.name + "'");
      bool is_int = !is_float(v.type.dtype);
      for (float x : v.data->values)
        if (is_int && !(x == std::nearbyint(x) && x >= dtype_min(v.type.dtype) && x <= dtype_max(v.type.dtype)))
          r.corrupt("constant '" + v.name + "' holds a value outside its dtype");
    } else {
      if (v.producer >= nsteps || v.slot < 0 || v.slot >= ns) r.corrupt("value '" + v.name + "'");
      if (v.offset < 0 || v.offset > p.slot_elems[v.slot] || p.slot_elems[v.slot] - v.offset < numel(v.type.shape))
        r.corrupt("buffer slot of '" + v.name + "' is too small for its type at its offset");
    }
  }
  std::vector<bool> ready(p.values.size(), false), produced(p.values.size(), false);
  for (size_t i = 0; i < p.values.size(); ++i) ready[i] = p.values[i].data != nullptr;
  std::vector<bool> is_input(p.values.size(), false);
  for (int v : p.inputs) {
    const Value& val = p.values[v];
    if (val.data || val.producer != -1 || is_input[v]) r.corrupt("program input '" + val.name + "'");
    is_input[v] = ready[v] = true;
  }
  for (int s = 0; s < nsteps; ++s) {
    Step& st = p.steps[s];
    const std::string& op = st.node->op->name;
    if (op == "input" || op == "const" || !st.node->op->kernel || st.node->op->is_composite())
      r.corrupt("layer '" + st.node->name + "' is not a layer op");
    std::vector<Tensor> ins;
    for (int v : st.in) {
      if (!ready[v]) r.corrupt("layer '" + st.node->name + "' reads a value before it is computed");
      auto leaf = std::make_shared<Node>();
      leaf->op = &op_def("input");
      leaf->outputs = {p.values[v].type};
      ins.emplace_back(leaf, 0);
    }
    std::vector<Tensor> outs = call(op, ins, st.node->attrs);
    if (outs.size() != st.out.size()) r.corrupt("layer '" + st.node->name + "' outputs");
    for (size_t i = 0; i < outs.size(); ++i) {
      int v = st.out[i];
      if (produced[v] || is_input[v] || p.values[v].data || p.values[v].producer != s || !(outs[i].type() == p.values[v].type))
        r.corrupt("layer '" + st.node->name + "' types");
      produced[v] = ready[v] = true;
    }
    std::string name = st.node->name;
    st.node = outs[0].node();  // the rebuilt node: canonical attributes only
    st.node->name = name;
    st.node->auto_name = false;
    if (!st.epilogue.empty() && st.out.size() != 1) r.corrupt("layer '" + name + "': a fused epilogue needs one output");
    for (auto& e : st.epilogue) {
      const OpDef& eop = *e->op;
      if (!eop.kernel || eop.is_composite() || eop.params.empty() || eop.params[0].kind != ParamKind::tensor)
        r.corrupt("a fused layer of '" + name + "'");
      size_t tensors = 0;
      for (const auto& prm : eop.params) tensors += prm.kind == ParamKind::tensor || prm.kind == ParamKind::opt_tensor;
      if (tensors != 1) r.corrupt("a fused layer of '" + name + "' takes more than one tensor");
      auto leaf = std::make_shared<Node>();
      leaf->op = &op_def("input");
      leaf->outputs = {p.values[st.out[0]].type};
      auto eo = call(eop.name, {Tensor(leaf, 0)}, e->attrs);
      if (eo.size() != 1 || !(eo[0].type() == p.values[st.out[0]].type)) r.corrupt("a fused layer of '" + name + "'");
      e = eo[0].node();
    }
  }
  if (p.output_names.size() != p.outputs.size()) r.corrupt("output names");
  for (int v : p.outputs)
    if (!ready[v]) r.corrupt("an output that is never computed");
  try {
    int_input_rules(p);  // the integer-input rules in the metadata, checked now, not at the first run
  } catch (const ValueError& e) {
    r.corrupt(e.what());
  }
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
  std::string buf;
  try {
    buf = io::read_file(path, size_t(1) << 34);
  } catch (const IOError& e) {
    throw IOError("cannot open program file: " + std::string(e.what()));
  }
  return parse_program(buf, path);
}

std::shared_ptr<Program> parse_program(const std::string& buf, const std::string& path) {
  if (buf.size() < 8 || std::memcmp(buf.data(), kMagic, 8) != 0)
    throw IOError("'" + path + "' is not an ANEForge program file (bad magic)");
  Reader r{buf, 8, path};
  uint32_t version = r.u32();
  r.version = version;
  if (version > kProgramFormatVersion)
    throw IOError("program file '" + path + "' has format version " + std::to_string(version) +
                  ", newer than this ANEForge reads (" + std::to_string(kProgramFormatVersion) + "); upgrade aneforge");
  if (version == 0) throw IOError("program file '" + path + "' is corrupt (format version 0)");
  int64_t body_len = r.i64();
  if (body_len < 0 || static_cast<uint64_t>(body_len) > buf.size() || static_cast<size_t>(body_len) + r.pos + 4 != buf.size())
    throw IOError("program file '" + path + "' is truncated or corrupt (size mismatch)");
  uint32_t stored;
  std::memcpy(&stored, buf.data() + buf.size() - 4, 4);
  if (crc32(buf.substr(0, buf.size() - 4)) != stored)
    throw IOError("program file '" + path + "' is corrupt (checksum mismatch)");

  auto p = std::make_shared<Program>();
  try {
    read_body(r, *p);
    validate(*p, r);
  } catch (const IOError&) {
    throw;
  } catch (const std::exception& e) {  // a shape rule, an attribute of the wrong kind, an allocation
    r.corrupt(e.what());
  }
  return p;
}

}  // namespace af
