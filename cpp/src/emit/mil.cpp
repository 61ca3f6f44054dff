// Program -> MIL IR, and the MIL text writer (iOS17 program(1.0) / iOS18 program(1.3)).
#include "aneforge/mil.h"

#include <algorithm>
#include <map>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

#include "aneforge/error.h"
#include "aneforge/fp16.h"
#include "aneforge/op.h"
#include "aneforge/aneforge.h"
#include "io/content_hash.h"

namespace af::mil {

std::string type_name(DType t) {
  switch (t) {
    case DType::fp16: return "fp16";
    case DType::fp32: return "fp32";
    case DType::int8: return "int8";
    case DType::uint8: return "uint8";
    case DType::int32: return "int32";
    case DType::boolean: return "bool";
    case DType::int4: return "int4";
    case DType::uint4: return "uint4";
    case DType::uint1: return "uint1";
  }
  return "fp16";
}

namespace {

std::string sanitize(const std::string& s) {
  std::string r;
  for (char c : s) r += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
  if (r.empty() || std::isdigit(static_cast<unsigned char>(r[0]))) r = "v_" + r;
  return r;
}

// MILBlob v2: 64-byte header, then per blob a 64-byte metadata record and the data, each
// record starting 64-aligned. Returns the metadata offset (what the MIL references).
int64_t blob_append(Blob& b, const std::string& data, uint32_t dtype_code) {
  if (b.bytes.empty()) {
    b.bytes.assign(64, '\0');
    uint32_t version = 2;
    std::memcpy(&b.bytes[4], &version, 4);
  }
  b.bytes.resize((b.bytes.size() + 63) / 64 * 64, '\0');
  int64_t meta = static_cast<int64_t>(b.bytes.size());
  std::string md(64, '\0');
  uint32_t sentinel = 0xDEADBEEFu;
  uint64_t size = data.size(), offset = static_cast<uint64_t>(meta) + 64;
  std::memcpy(&md[0], &sentinel, 4);
  std::memcpy(&md[4], &dtype_code, 4);
  std::memcpy(&md[8], &size, 8);
  std::memcpy(&md[16], &offset, 8);
  b.bytes += md;
  b.bytes += data;
  uint32_t count;
  std::memcpy(&count, &b.bytes[0], 4);
  ++count;
  std::memcpy(&b.bytes[0], &count, 4);
  return meta;
}

uint32_t blob_dtype_code(DType t) {
  switch (t) {
    case DType::fp16: return 1;
    case DType::fp32: return 2;
    case DType::uint8: return 3;
    case DType::int8: return 4;
    case DType::int32: return 14;
    case DType::uint4: return 11;
    case DType::uint1: return 9;
    default: throw UnsupportedError("weight blob: no storage for dtype " + type_name(t));
  }
}

}  // namespace

int64_t int_value(double x, DType t) {
  double lo = dtype_min(t), hi = dtype_max(t);
  double r = std::isnan(x) ? 0.0 : std::nearbyint(x);
  return static_cast<int64_t>(std::min(hi, std::max(lo, r)));  // in range: no undefined cast
}

namespace {

std::string pack(const std::vector<double>& v, DType t) {
  std::string out;
  if (t == DType::uint1) {  // eight per byte, the first in the lowest bit
    out.assign((v.size() + 7) / 8, '\0');
    for (size_t i = 0; i < v.size(); ++i)
      if (v[i] != 0) out[i / 8] = static_cast<char>(static_cast<unsigned char>(out[i / 8]) | (1u << (i % 8)));
    return out;
  }
  if (t == DType::uint4) {  // two per byte, the first in the low nibble (MILBlob's sub-byte order)
    out.assign((v.size() + 1) / 2, '\0');
    for (size_t i = 0; i < v.size(); ++i)
      out[i / 2] = static_cast<char>(static_cast<unsigned char>(out[i / 2]) |
                                     ((static_cast<unsigned>(int_value(v[i], DType::uint4)) & 0xFu) << (i % 2 ? 4 : 0)));
    return out;
  }
  for (double x : v) {
    switch (t) {
      case DType::fp16: {
        uint16_t h = float_to_half(static_cast<float>(x), {RoundMode::nearest_even, false});
        out.append(reinterpret_cast<const char*>(&h), 2);
        break;
      }
      case DType::fp32: {
        float f = static_cast<float>(x);
        out.append(reinterpret_cast<const char*>(&f), 4);
        break;
      }
      case DType::int32: {
        int32_t i = static_cast<int32_t>(int_value(x, t));
        out.append(reinterpret_cast<const char*>(&i), 4);
        break;
      }
      default: {  // int8 or uint8: one byte of the saturated value (uint8 is not packed through int8)
        unsigned char byte = static_cast<unsigned char>(int_value(x, t) & 0xFF);
        out.append(reinterpret_cast<const char*>(&byte), 1);
      }
    }
  }
  return out;
}

Type type_of(const TensorType& t) { return Type{t.dtype, t.shape, t.shape.empty(), false}; }
// What the engine holds a value in: int32 and bool as fp16 (exact integers to 2048, 0/1).
DType emitted_dtype(DType t) { return t == DType::int32 || t == DType::boolean ? DType::fp16 : t; }
Type emitted_type(const TensorType& t) { return Type{emitted_dtype(t.dtype), t.shape, t.shape.empty(), false}; }

}  // namespace

std::string Builder::fresh(const std::string& base) {
  std::string b = sanitize(base);
  int& n = counters_[b];
  std::string r = n == 0 ? b : b + "_" + std::to_string(n);
  ++n;
  while (types_.count(r)) r = b + "_" + std::to_string(n++);
  return r;
}

std::string Builder::add_const(Literal lit, const std::string& hint) {
  Op op;
  op.type = "const";
  op.name = fresh(hint);
  op.outputs = {{op.name, lit.type}};
  types_[op.name] = lit.type;
  consts_[op.name] = true;
  op.value = std::move(lit);
  m_.main.ops.push_back(std::move(op));
  return m_.main.ops.back().name;
}

namespace {

// A literal built field by field (aggregate initialisation with omitted members trips gcc's
// -Wmaybe-uninitialized at -O3).
Literal literal(DType dtype, Shape shape, std::vector<double> numbers, bool is_string = false, bool is_uint32 = false) {
  Literal l;
  l.type.dtype = dtype;
  l.type.scalar = shape.empty();
  l.type.shape = std::move(shape);
  l.type.is_string = is_string;
  l.type.is_uint32 = is_uint32;
  l.numbers = std::move(numbers);
  return l;
}

}  // namespace

std::string Builder::ints(const std::vector<int64_t>& v, const std::string& hint) {
  return add_const(literal(DType::int32, {static_cast<int64_t>(v.size())}, {v.begin(), v.end()}), hint);
}
std::string Builder::int_scalar(int64_t v, const std::string& hint) {
  return add_const(literal(DType::int32, {}, {static_cast<double>(v)}), hint);
}
std::string Builder::uint_scalar(uint32_t v, const std::string& hint) {
  return add_const(literal(DType::int32, {}, {static_cast<double>(v)}, false, true), hint);
}
std::string Builder::float_scalar(double v, DType t, const std::string& hint) {
  return add_const(literal(t, {}, {v}), hint);
}
std::string Builder::floats(const std::vector<double>& v, DType t, const std::string& hint) {
  return add_const(literal(t, {static_cast<int64_t>(v.size())}, v), hint);
}
std::string Builder::bool_scalar(bool v, const std::string& hint) {
  return add_const(literal(DType::boolean, {}, {v ? 1.0 : 0.0}), hint);
}
std::string Builder::string_scalar(const std::string& v, const std::string& hint) {
  Literal l = literal(DType::fp16, {}, {}, true);
  l.text = v;
  return add_const(std::move(l), hint);
}
std::string Builder::tensor(const std::vector<float>& v, const Shape& shape, DType t, const std::string& hint) {
  Literal l;
  l.type = {t, shape, shape.empty(), false};
  l.numbers.assign(v.begin(), v.end());
  l.to_blob = v.size() >= 10 && (t == DType::fp16 || t == DType::fp32 || t == DType::int8 || t == DType::uint8 ||
                                  t == DType::uint4 || t == DType::uint1);
  l.blob_dtype = t;
  return add_const(std::move(l), hint);
}

Literal Builder::literal_of(const std::vector<double>& v, const Shape& shape, DType t) {
  Literal l;
  l.type = {t, shape, shape.empty(), false};
  l.numbers = v;
  l.to_blob = v.size() >= 10 && (t == DType::fp16 || t == DType::fp32 || t == DType::int8 || t == DType::uint8);
  l.blob_dtype = t;
  return l;
}

std::string Builder::attr_op(const std::string& type, std::vector<std::pair<std::string, Literal>> attrs, const Type& out,
                             const std::string& hint) {
  Op op;
  op.type = type;
  op.name = fresh(hint);
  op.outputs = {{op.name, out}};
  op.attrs = std::move(attrs);
  types_[op.name] = out;
  m_.main.ops.push_back(std::move(op));
  return m_.main.ops.back().name;
}

std::string Builder::as_fp32(const std::string& var) {
  if (!consts_.count(var) || types_.at(var).dtype == DType::fp32) return var;
  for (const auto& o : m_.main.ops)
    if (o.type == "const" && o.name == var) {
      Literal l = o.value;
      l.type.dtype = DType::fp32;
      l.blob_dtype = DType::fp32;
      return add_const(std::move(l), var + "_fp32");
    }
  return var;
}

void Builder::finish() {
  std::set<std::string> used(m_.main.outputs.begin(), m_.main.outputs.end());
  for (const auto& o : m_.main.ops)
    for (const auto& in : o.inputs) used.insert(in.second.begin(), in.second.end());
  std::vector<Op> kept;
  // Equal bytes of one dtype are written once: a tied embedding and its language-model head
  // (a (V, D) table and a (V, D, 1, 1) conv weight) read the same blob entry.
  std::map<std::pair<size_t, uint32_t>, std::vector<int64_t>> written;  // (hash, dtype) -> entries
  auto append = [&](const Literal& l) {
    std::string data = pack(l.numbers, l.blob_dtype);
    uint32_t code = blob_dtype_code(l.blob_dtype);
    auto& same_hash = written[{std::hash<std::string>{}(data), code}];
    for (int64_t at : same_hash) {  // an entry: 64 bytes of metadata (size at +8), then the data
      uint64_t size;
      std::memcpy(&size, &m_.weights.bytes[static_cast<size_t>(at) + 8], 8);
      if (size == data.size() && m_.weights.bytes.compare(static_cast<size_t>(at) + 64, data.size(), data) == 0) return at;
    }
    int64_t at = blob_append(m_.weights, data, code);
    same_hash.push_back(at);
    return at;
  };
  for (auto& o : m_.main.ops) {
    if (o.type == "const" && !used.count(o.name)) continue;
    if (o.type == "const" && o.value.to_blob) o.value.blob_offset = append(o.value);
    for (auto& [_, lit] : o.attrs)
      if (lit.to_blob) lit.blob_offset = append(lit);
    kept.push_back(std::move(o));
  }
  m_.main.ops = std::move(kept);
}

std::string Builder::compare(const std::string& type, const std::string& x, const std::string& y, const Type& out,
                             const std::string& out_name) {
  Type bt = out;
  bt.dtype = DType::boolean;
  std::string c = op(type, {{"x", {x}}, {"y", {y}}}, bt);
  std::string r = select01(c, out, out_name);
  conditions_[r] = c;
  return r;
}

// select(c, 1, 0) typed like `out`. Select's type is that of a and b broadcast (coremltools
// infers it so), so a is ones of the full shape (a fill, one per shape).
std::string Builder::select01(const std::string& c, const Type& out, const std::string& out_name, bool inverted) {
  std::string one = float_scalar(1.0, out.dtype, "one"), zero = float_scalar(0.0, out.dtype, "zero");
  if (!out.shape.empty()) {
    std::string key = type_name(out.dtype) + shape_str(out.shape);
    auto it = ones_.find(key);
    if (it == ones_.end())
      it = ones_.emplace(key, op("fill", {{"shape", {ints(std::vector<int64_t>(out.shape.begin(), out.shape.end()), "shape")}},
                                          {"value", {one}}}, out, fresh("ones"))).first;
    one = it->second;
  }
  return op("select", {{"cond", {c}}, {"a", {inverted ? zero : one}}, {"b", {inverted ? one : zero}}}, out, out_name);
}

// Row k of a multi-row port: slice_by_size then reshape to the input's own shape.
std::string Builder::port_row(const std::string& var, int64_t k, const std::string& out_name) {
  auto it = port_rows_.find(var);
  if (it == port_rows_.end() || k >= it->second.second) return "";
  const Type& pt = type_of(it->second.first);
  std::vector<int64_t> begin(pt.shape.size(), 0), size(pt.shape.begin(), pt.shape.end());
  begin[0] = k;
  size[0] = 1;
  Shape one(size.begin(), size.end()), own(pt.shape.begin() + 1, pt.shape.end());
  std::string row = op("slice_by_size", {{"x", {it->second.first}}, {"begin", {ints(begin, "begin")}}, {"size", {ints(size, "size")}}},
                       Type{pt.dtype, one, false, false});
  return op("reshape", {{"x", {row}}, {"shape", {ints(std::vector<int64_t>(own.begin(), own.end()), "shape")}}},
            Type{pt.dtype, own, own.empty(), false}, out_name);
}

std::string Builder::condition(const std::string& var) {
  if (auto it = conditions_.find(var); it != conditions_.end()) return it->second;
  Type t = type_of(var);
  if (t.dtype == DType::boolean) return var;  // a bool constant
  Type bt = t;
  bt.dtype = DType::boolean;
  std::string c = op("not_equal", {{"x", {var}}, {"y", {float_scalar(0.0, t.dtype, "zero")}}}, bt);
  conditions_[var] = c;
  return c;
}

std::string Builder::op(const std::string& type, std::vector<std::pair<std::string, std::vector<std::string>>> inputs,
                        const Type& out, const std::string& out_name) {
  return op_multi(type, std::move(inputs), {out}, {out_name})[0];
}

std::vector<std::string> Builder::op_multi(const std::string& type,
                                           std::vector<std::pair<std::string, std::vector<std::string>>> inputs,
                                           const std::vector<Type>& outs, const std::vector<std::string>& names) {
  Op o;
  o.type = type;
  std::sort(inputs.begin(), inputs.end());
  o.inputs = std::move(inputs);
  std::vector<std::string> vars;
  for (size_t i = 0; i < outs.size(); ++i) {
    std::string n = i < names.size() && !names[i].empty() ? names[i] : fresh(type);
    types_[n] = outs[i];
    o.outputs.push_back({n, outs[i]});
    vars.push_back(n);
  }
  o.name = vars[0];
  m_.main.ops.push_back(std::move(o));
  return vars;
}

namespace {

void default_emit(Builder& b, const StepView& s) {
  const std::string& mil_op = s.node.op->mil_op;
  if (mil_op.empty() || mil_op.find_first_of(" (/+") != std::string::npos || s.in.size() > 2 || s.out.size() != 1)
    throw UnsupportedError("MIL emission: op '" + s.node.op->name + "' has no MIL emitter yet");
  std::vector<std::pair<std::string, std::vector<std::string>>> args{{"x", {s.in[0]}}};
  if (s.in.size() == 2) args.push_back({"y", {s.in[1]}});
  b.op(mil_op, args, s.out_types[0], s.out[0]);
}

}  // namespace

// A compressed weight as the op that dequantizes it when the program loads: iOS17
// constexpr_affine_dequantize (per-channel int8, attributes), iOS18
// constexpr_blockwise_shift_scale (per channel or per block, inputs).
std::string lut_weight(Builder& b, const PackedWeights& pk, const Type& out, int opset) {
  std::vector<double> lut;
  for (uint16_t h : pk.lut) lut.push_back(half_to_float(h));
  const Shape& ws = pk.shape;
  if (opset < 18) {  // iOS17: one LUT, the indices as packed bytes, the shape as an attribute
    if (pk.group_rows > 0) throw UnsupportedError("MIL: grouped LUTs need the ios18 opset (constexpr_lut_to_dense)");
    std::vector<double> bytes(pk.q4.begin(), pk.q4.end()), shape(ws.begin(), ws.end());
    Literal sl = Builder::literal_of(shape, {static_cast<int64_t>(ws.size())}, DType::int32);
    sl.type.is_uint32 = true;
    return b.attr_op("constexpr_lut_to_dense",
                     {{"indices", Builder::literal_of(bytes, {static_cast<int64_t>(bytes.size())}, DType::uint8)},
                      {"lut", Builder::literal_of(lut, {16}, DType::fp16)}, {"shape", sl}},
                     out, "w");
  }
  // iOS18: uint4 indices of the weight's shape; lut [groups, 1, ..., 16, 1].
  std::vector<float> idx(static_cast<size_t>(numel(ws)));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<float>((pk.q4[i / 2] >> (i % 2 ? 4 : 0)) & 0xF);
  Shape ls(ws.size(), 1);
  ls[0] = pk.groups();
  ls.push_back(16);
  ls.push_back(1);
  std::string indices = b.tensor(idx, ws, DType::uint4, "w_idx");
  std::string table = b.tensor(std::vector<float>(lut.begin(), lut.end()), ls, DType::fp16, "w_lut");
  return b.op("constexpr_lut_to_dense", {{"indices", {indices}}, {"lut", {table}}}, out, "");
}

// The iOS18 scale shape of an int8 weight: one entry per (row, block); a block spans whole
// kernels of a conv weight.
Shape scale_shape(const PackedWeights& pk) {
  const Shape& ws = pk.shape;
  Shape ss(ws.size(), 1);
  ss[0] = pk.rows();
  if (pk.block > 0) {
    int64_t spatial = 1;
    for (size_t i = 2; i < ws.size(); ++i) spatial *= ws[i];
    if (pk.block % spatial) throw UnsupportedError("MIL: an int8 block must cover whole conv kernels");
    ss[1] = ws[1] / (pk.block / spatial);
  }
  return ss;
}

// Sparse weights: iOS17 constexpr_sparse_to_dense (fp16 non-zeros, a byte mask and the
// shape as attributes); iOS18 a uint1 mask of the weight's shape, the non-zeros dequantized by
// constexpr_sparse_blockwise_shift_scale or constexpr_lut_to_sparse, then
// constexpr_sparse_to_dense.
std::string sparse_weight(Builder& b, const PackedWeights& pk, const Type& out, int opset) {
  const Shape& ws = pk.shape;
  const int64_t count = pk.stored_count();
  const std::string vf = pk.value_format();
  if (opset < 18) {
    if (vf != "fp16")
      throw UnsupportedError("MIL: sparse weights with " + vf + " values need the ios18 opset (constexpr_sparse_to_dense)");
    std::vector<double> nz, bytes(pk.mask.begin(), pk.mask.end()), shape(ws.begin(), ws.end());
    for (uint16_t h : pk.nz16) nz.push_back(half_to_float(h));
    Literal sl = Builder::literal_of(shape, {static_cast<int64_t>(ws.size())}, DType::int32);
    sl.type.is_uint32 = true;
    return b.attr_op("constexpr_sparse_to_dense",
                     {{"mask", Builder::literal_of(bytes, {static_cast<int64_t>(bytes.size())}, DType::uint8)},
                      {"nonzero_data", Builder::literal_of(nz, {count}, DType::fp16)}, {"shape", sl}},
                     out, "w");
  }
  std::vector<float> bits(static_cast<size_t>(numel(ws)));
  for (size_t i = 0; i < bits.size(); ++i) bits[i] = pk.stored_at(static_cast<int64_t>(i)) ? 1.0f : 0.0f;
  std::string mask = b.tensor(bits, ws, DType::uint1, "w_mask");
  const Type mask_type{DType::uint1, ws, false, false};
  const Type values_type{DType::fp16, {count}, false, false};
  std::string values;
  if (vf == "fp16") {
    std::vector<float> nz;
    for (uint16_t h : pk.nz16) nz.push_back(half_to_float(h));
    values = b.tensor(nz, {count}, DType::fp16, "w_nz");
  } else if (vf == "int8") {
    std::vector<float> sc;
    for (uint16_t h : pk.scales) sc.push_back(half_to_float(h));
    const Shape ss = scale_shape(pk);
    std::string q = b.tensor(std::vector<float>(pk.q8.begin(), pk.q8.end()), {count}, DType::int8, "w_q");
    std::string scale = b.tensor(sc, ss, DType::fp16, "w_scale");
    auto r = b.op_multi("constexpr_sparse_blockwise_shift_scale", {{"data_mask", {mask}}, {"nonzero_data", {q}}, {"scale", {scale}}},
                        {mask_type, values_type}, {});
    mask = r[0];
    values = r[1];
  } else {
    std::vector<float> idx(static_cast<size_t>(count)), lut;
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<float>((pk.q4[i / 2] >> (i % 2 ? 4 : 0)) & 0xF);
    for (uint16_t h : pk.lut) lut.push_back(half_to_float(h));
    Shape ls(ws.size(), 1);
    ls[0] = pk.groups();
    ls.push_back(16);
    ls.push_back(1);
    std::string indices = b.tensor(idx, {count}, DType::uint4, "w_idx");
    std::string table = b.tensor(lut, ls, DType::fp16, "w_lut");
    auto r = b.op_multi("constexpr_lut_to_sparse", {{"indices_mask", {mask}}, {"indices_nonzero_data", {indices}}, {"lut", {table}}},
                        {mask_type, values_type}, {});
    mask = r[0];
    values = r[1];
  }
  return b.op("constexpr_sparse_to_dense", {{"mask", {mask}}, {"nonzero_data", {values}}}, out, "");
}

std::string packed_weight(Builder& b, const PackedWeights& pk, const Type& out, int opset) {
  if (pk.sparse()) return sparse_weight(b, pk, out, opset);
  if (pk.format == "int4") return lut_weight(b, pk, out, opset);
  std::vector<double> q(pk.q8.begin(), pk.q8.end()), s;
  for (uint16_t h : pk.scales) s.push_back(half_to_float(h));
  const Shape& ws = pk.shape;
  if (opset < 18) {
    if (pk.block > 0)
      throw UnsupportedError("MIL: blockwise int8 weights need the ios18 opset (constexpr_blockwise_shift_scale)");
    return b.attr_op("constexpr_affine_dequantize",
                     {{"axis", Builder::literal_of({0}, {}, DType::int32)},
                      {"quantized_data", Builder::literal_of(q, ws, DType::int8)},
                      {"scale", Builder::literal_of(s, {pk.rows()}, DType::fp16)},
                      {"zero_point", Builder::literal_of({0}, {}, DType::int8)}},
                     out, "w");
  }
  const Shape ss = scale_shape(pk);
  std::string data = b.tensor(std::vector<float>(pk.q8.begin(), pk.q8.end()), ws, DType::int8, "w_q");
  std::string scale = b.tensor(std::vector<float>(s.begin(), s.end()), ss, DType::fp16, "w_scale");
  return b.op("constexpr_blockwise_shift_scale", {{"data", {data}}, {"scale", {scale}}}, out, "");
}

namespace {

// Ops whose results nothing reads (e.g. a comparison's fp16 form when only select used it).
void drop_unused_ops(Function& f) {
  for (bool changed = true; changed;) {
    changed = false;
    std::set<std::string> used(f.outputs.begin(), f.outputs.end());
    for (const auto& o : f.ops)
      for (const auto& in : o.inputs) used.insert(in.second.begin(), in.second.end());
    std::vector<Op> kept;
    for (auto& o : f.ops) {
      bool live = o.type == "const";
      for (const auto& out : o.outputs) live = live || used.count(out.first);
      if (live) kept.push_back(std::move(o));
      else changed = true;
    }
    f.ops = std::move(kept);
  }
}

// What a program for the engine may hold (docs/engine.md, "Integers and booleans"): no int32
// or bool port, no op computing an int32 tensor, and bool only from a comparison into
// select's cond. Constants (shapes, axes, flags) are parameters, not compute.
void check_engine_dtypes(const Function& f) {
  auto bad = [](const std::string& what) {
    throw Error(Status::internal, "MIL: " + what + " (the engine computes neither int32 nor bool; this is a bug)");
  };
  for (const auto& [n, t] : f.inputs)
    if (t.dtype == DType::int32 || t.dtype == DType::boolean) bad("input '" + n + "' is " + type_name(t.dtype));
  static const std::set<std::string> comparisons = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"};
  std::map<std::string, DType> computed;
  for (const auto& o : f.ops) {
    if (o.type == "const") continue;
    for (const auto& [param, vars] : o.inputs)
      for (const auto& v : vars)
        if (computed.count(v) && computed[v] == DType::boolean && !(o.type == "select" && param == "cond"))
          bad("the bool '" + v + "' feeds " + o.type + "." + param);
    for (const auto& [n, t] : o.outputs) {
      if (t.dtype == DType::int32) bad(o.type + " computes the int32 '" + n + "'");
      if (t.dtype == DType::boolean && !comparisons.count(o.type)) bad(o.type + " computes the bool '" + n + "'");
      computed[n] = t.dtype;
    }
  }
  for (const auto& n : f.outputs)
    if (computed.count(n) && (computed[n] == DType::int32 || computed[n] == DType::boolean)) bad("output '" + n + "' is not fp16");
}

}  // namespace

Program build(const af::Program& p, int opset) {
  if (opset != 17 && opset != 18) throw ValueError("MIL: opset must be 17 (iOS17) or 18 (iOS18), got " + std::to_string(opset));
  Program m;
  m.opset = opset;
  Builder b(m);
  std::vector<std::string> var(p.values.size());
  std::vector<std::pair<int, std::string>> row0_of;  // multi-row inputs: (value, port var)
  std::vector<std::string> reserved;
  // Generated names carry a process-wide id; the MIL names those by position instead, so one
  // graph gives the same MIL (and engine cache key) whatever the process built before.
  for (int v : p.inputs) {
    const Value& val = p.values[v];
    std::string n = b.fresh(val.auto_name ? "input_" + std::to_string(m.main.inputs.size()) : val.name);
    Type t = emitted_type(p.values[v].type);
    int rows = index_port_rows(p, m.main.inputs.size());
    if (rows > 1) {  // ids offset per 2048-row chunk on the host, one row each
      Type port = t;
      port.shape.insert(port.shape.begin(), rows);
      port.scalar = false;
      b.declare(n, port);
      m.main.inputs.push_back({n, port});
      row0_of.push_back({v, n});
      continue;
    }
    b.declare(n, t);
    m.main.inputs.push_back({n, t});
    var[v] = n;
  }
  for (auto [v, port] : row0_of) {
    int rows = static_cast<int>(b.type_of(port).shape[0]);
    b.set_port_rows(port, port, rows);  // row 0 of the port is the input itself
    var[v] = b.port_row(port, 0, b.fresh(port + "_ids"));
    b.set_port_rows(var[v], port, rows);
  }
  auto var_of = [&](int v) -> const std::string& {
    if (var[v].empty()) {
      const Value& val = p.values[v];
      if (!val.data) throw Error(Status::internal, "MIL: value " + val.name + " used before it is produced");
      if (!val.data->packed && emitted_dtype(val.type.dtype) != val.type.dtype)
        for (float x : val.data->values)
          if (half_to_float(float_to_half(x)) != x)
            throw UnsupportedError("MIL: the " + std::string(dtype_name(val.type.dtype)) + " constant '" + val.name + "' holds " +
                                   std::to_string(static_cast<int64_t>(x)) +
                                   ", which fp16 cannot hold exactly (the engine computes integers in fp16: exact to 2048)");
      var[v] = val.data->packed ? packed_weight(b, *val.data->packed, type_of(val.type), m.opset)
                                : b.tensor(val.data->values.to_vector(), val.type.shape, emitted_dtype(val.type.dtype), "const");
    }
    return var[v];
  };
  // Layers that produce a graph output are named after it (no extra identity op).
  // An output name the compile took from a generated node name counts as generated too.
  auto given_name = [&](size_t j) -> std::string {
    const Value& out = p.values[p.outputs[j]];
    std::string n = j < p.output_names.size() ? p.output_names[j] : out.name;
    return out.auto_name && n == out.name ? "" : n;
  };
  std::map<int, std::string> output_name;
  for (size_t j = 0; j < p.outputs.size(); ++j) {
    if (output_name.count(p.outputs[j])) continue;
    if (std::string n = given_name(j); !n.empty()) output_name[p.outputs[j]] = n;
  }
  for (const auto& st : p.steps) {
    StepView view{*st.node, {}, {}, {}, {}, {}, {}};
    for (int v : st.in) {
      view.in.push_back(var_of(v));
      view.in_types.push_back(emitted_type(p.values[v].type));
      view.in_dtypes.push_back(p.values[v].type.dtype);
    }
    for (size_t o = 0; o < st.out.size(); ++o) {
      std::string internal = st.node->op->name + "_" + std::to_string(&st - p.steps.data());
      std::string name = st.epilogue.empty() ? (output_name.count(st.out[o]) ? output_name[st.out[o]] : internal) : internal + "_pre";
      view.out.push_back(b.fresh(name));
      view.out_types.push_back(emitted_type(p.values[st.out[o]].type));
      view.out_dtypes.push_back(p.values[st.out[o]].type.dtype);
    }
    const OpDef& op = *st.node->op;
    if (op.emit_mil) op.emit_mil(b, view);
    else default_emit(b, view);
    std::string cur = view.out[0];
    for (size_t e = 0; e < st.epilogue.size(); ++e) {
      const Node& en = *st.epilogue[e];
      std::string internal = st.node->op->name + "_" + std::to_string(&st - p.steps.data());
      std::string name = e + 1 == st.epilogue.size()
                             ? b.fresh(output_name.count(st.out[0]) ? output_name[st.out[0]] : internal)
                             : b.fresh(internal + "_" + en.op->name);
      StepView ev{en, {cur}, {view.out_types[0]}, {name}, {emitted_type(en.outputs[0])},
                  {view.out_dtypes[0]}, {en.outputs[0].dtype}};
      if (en.op->emit_mil) en.op->emit_mil(b, ev);
      else default_emit(b, ev);
      cur = name;
    }
    var[st.out[0]] = cur;
    for (size_t o = 1; o < st.out.size(); ++o) var[st.out[o]] = view.out[o];
  }
  std::set<std::string> used_outputs;
  for (size_t j = 0; j < p.outputs.size(); ++j) {
    int v = p.outputs[j];
    std::string src = var_of(v);
    bool produced = p.values[v].producer >= 0 && !p.values[v].data;
    // A layer already named for this output, or one whose generated name the output keeps.
    bool as_is = output_name.count(v) || given_name(j).empty();
    if (produced && as_is && used_outputs.insert(src).second) {
      m.main.outputs.push_back(src);
      continue;
    }
    Type t = emitted_type(p.values[v].type);
    std::string given = given_name(j);
    std::string name = b.fresh(given.empty() ? "output_" + std::to_string(j) : given);
    src = b.op("identity", {{"x", {src}}}, t, name);
    m.main.outputs.push_back(src);
  }
  drop_unused_ops(m.main);
  b.finish();
  check_engine_dtypes(m.main);
  return m;
}

// ---- text --------------------------------------------------------------------------

namespace {

std::string num(double x, DType t) {
  char buf[64];
  if (t == DType::fp16 || t == DType::fp32) {
    if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
    if (x == 0) return std::signbit(x) ? "-0x0p+0" : "0x0p+0";
    std::snprintf(buf, sizeof buf, "%a", x);
  } else if (t == DType::boolean) {
    return x != 0 ? "true" : "false";
  } else {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(x));
  }
  return buf;
}

std::string quoted(const std::string& s) {
  std::string r = "\"";
  for (char c : s) r += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
  return r + "\"";
}

struct TextWriter {
  bool v13;  // program(1.3): bare scalar types
  std::string type(const Type& t) const {
    std::string dt = t.is_string ? "string" : t.is_uint32 ? "uint32" : type_name(t.dtype);
    if (t.scalar && v13) return dt;
    std::string dims;
    for (size_t i = 0; i < t.shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(t.shape[i]);
    return "tensor<" + dt + ", [" + dims + "]>";
  }
  std::string str(const std::string& s) const { return (v13 ? "string(" : "tensor<string, []>(") + quoted(s) + ")"; }
  std::string u64(uint64_t v) const { return (v13 ? "uint64(" : "tensor<uint64, []>(") + std::to_string(v) + ")"; }
  std::string literal(const Literal& l) const {
    if (l.type.is_string) return str(l.text);
    if (l.blob_offset >= 0)
      return type(l.type) + "(BLOBFILE(path = " + str("@model_path/weights/weight.bin") + ", offset = " +
             u64(static_cast<uint64_t>(l.blob_offset)) + "))";
    if (l.type.scalar) return type(l.type) + "(" + num(l.numbers.at(0), l.type.dtype) + ")";
    std::string body;
    for (size_t i = 0; i < l.numbers.size(); ++i) body += (i ? ", " : "") + num(l.numbers[i], l.type.dtype);
    return type(l.type) + "([" + body + "])";
  }
};

}  // namespace

// The header: buildInfo with the keys every working example carries (coremlc's, as in maderix/ANE
// training/ane_mil_gen.h) and a key of the program's content, weights included: the engine's
// compile cache is keyed on the MIL text (electricapp/ane-bridge-rs rust/ane-bridge-mil/src/
// program.rs, mechramc/Orion docs/ane_constraints.md), so two programs with equal text and
// other weights would otherwise share one compiled model.
static std::string header(const TextWriter& w, const std::string& body, const std::string& weights) {
  const std::pair<const char*, std::string> info[] = {
      {"coremlc-component-MIL", "3510.2.1"},
      {"coremlc-version", "3505.4.1"},
      {"aneforge-version", kVersion},
      {"aneforge-program", io::content_hash({body, weights})}};
  std::string dict;
  for (const auto& [k, v] : info) dict += std::string(dict.empty() ? "" : ", ") + "{\"" + k + "\", \"" + v + "\"}";
  return std::string(w.v13 ? "program(1.3)\n[buildInfo = dict<string, string>({"
                           : "program(1.0)\n[buildInfo = dict<tensor<string, []>, tensor<string, []>>({") +
         dict + "})]\n";
}

std::string to_text(const Program& m) {
  TextWriter w{m.opset >= 18};
  std::string r = "{\n    func main<ios" + std::to_string(m.opset) + ">(";
  for (size_t i = 0; i < m.main.inputs.size(); ++i)
    r += (i ? ", " : "") + w.type(m.main.inputs[i].second) + " " + m.main.inputs[i].first;
  r += ") {\n";
  for (const auto& op : m.main.ops) {
    std::string lhs;
    for (size_t i = 0; i < op.outputs.size(); ++i) lhs += (i ? ", " : "") + w.type(op.outputs[i].second) + " " + op.outputs[i].first;
    if (op.type == "const") {
      r += "        " + lhs + " = const()[name = " + w.str(op.name) + ", val = " + w.literal(op.value) + "];\n";
      continue;
    }
    std::string args, attrs;
    for (const auto& [k, lit] : op.attrs) attrs += k + " = " + w.literal(lit) + ", ";
    for (const auto& [k, vs] : op.inputs) {
      args += (args.empty() ? "" : ", ") + k + " = ";
      if (vs.size() == 1 && op.type != "concat") args += vs[0];
      else {
        args += "(";
        for (size_t i = 0; i < vs.size(); ++i) args += (i ? ", " : "") + vs[i];
        args += ")";
      }
    }
    r += "        " + lhs + " = " + op.type + "(" + args + ")[" + attrs + "name = " + w.str(op.name) + "];\n";
  }
  r += "    } -> (";
  for (size_t i = 0; i < m.main.outputs.size(); ++i) r += (i ? ", " : "") + m.main.outputs[i];
  r += ");\n}\n";
  return header(w, r, m.weights.bytes) + r;
}

}  // namespace af::mil
