// The Model protobuf for an ML Program, written with a small wire encoder from the field
// numbers of Apple's Model.proto / MIL.proto (apple/coremltools mlmodel/format) (no .proto files, no protobuf library),
// and the .mlpackage directory around it.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "aneforge/durable.h"
#include "aneforge/error.h"
#include "aneforge/mil.h"

namespace af::mil {

namespace {

struct Msg {
  std::string b;
  void varint(uint64_t v) {
    while (v >= 0x80) {
      b += static_cast<char>((v & 0x7F) | 0x80);
      v >>= 7;
    }
    b += static_cast<char>(v);
  }
  void key(int field, int wire) { varint((static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire)); }
  void u64(int field, uint64_t v) {
    key(field, 0);
    varint(v);
  }
  void bytes(int field, const std::string& s) {
    key(field, 2);
    varint(s.size());
    b += s;
  }
  void msg(int field, const Msg& m) { bytes(field, m.b); }
};

// MIL DataType enum (MIL.proto).
int data_type(const Type& t) {
  if (t.is_string) return 2;
  if (t.is_uint32) return 33;
  switch (t.dtype) {
    case DType::boolean: return 1;
    case DType::fp16: return 10;
    case DType::fp32: return 11;
    case DType::int8: return 21;
    case DType::int32: return 23;
    case DType::uint8: return 31;
    case DType::int4: return 25;
    case DType::uint4: return 35;
    case DType::uint1: return 37;
  }
  return 10;
}

Msg value_type(const Type& t) {
  Msg tt;
  tt.u64(1, static_cast<uint64_t>(data_type(t)));
  tt.u64(2, t.shape.size());
  for (auto d : t.shape) {
    Msg dim, c;
    c.u64(1, static_cast<uint64_t>(d));
    dim.msg(1, c);
    tt.msg(3, dim);
  }
  Msg vt;
  vt.msg(1, tt);
  return vt;
}

Msg named_value_type(const std::string& name, const Type& t) {
  Msg m;
  m.bytes(1, name);
  m.msg(2, value_type(t));
  return m;
}

Msg tensor_value(const Literal& l) {
  Msg tv, rep;
  const Type& t = l.type;
  if (t.is_string) {
    rep.bytes(1, l.text);
    tv.msg(4, rep);
    return tv;
  }
  switch (t.dtype) {
    case DType::fp32: {
      std::string packed;
      for (double x : l.numbers) {
        float f = static_cast<float>(x);
        packed.append(reinterpret_cast<const char*>(&f), 4);
      }
      rep.bytes(1, packed);
      tv.msg(1, rep);
      break;
    }
    case DType::int32: {
      if (t.is_uint32) {  // uint32 immediates are raw bytes
        std::string raw;
        for (double x : l.numbers) {
          uint32_t u = static_cast<uint32_t>(x);
          raw.append(reinterpret_cast<const char*>(&u), 4);
        }
        rep.bytes(1, raw);
        tv.msg(7, rep);
        break;
      }
      Msg packed;
      for (double x : l.numbers) packed.varint(static_cast<uint64_t>(static_cast<int64_t>(x)));
      rep.bytes(1, packed.b);
      tv.msg(2, rep);
      break;
    }
    case DType::boolean: {
      Msg packed;
      for (double x : l.numbers) packed.varint(x != 0);
      rep.bytes(1, packed.b);
      tv.msg(3, rep);
      break;
    }
    default: {  // fp16, int8, uint8: raw little-endian bytes
      std::string raw;
      for (double x : l.numbers) {
        if (t.dtype == DType::fp16) {
          uint16_t h = float_to_half(static_cast<float>(x), {RoundMode::nearest_even, false});
          raw.append(reinterpret_cast<const char*>(&h), 2);
        } else {
          raw += static_cast<char>(static_cast<unsigned char>(int_value(x, t.dtype) & 0xFF));
        }
      }
      rep.bytes(1, raw);
      tv.msg(7, rep);
    }
  }
  return tv;
}

Msg value(const Literal& l) {
  Msg v;
  v.msg(2, value_type(l.type));
  if (l.blob_offset >= 0) {
    Msg bf;
    bf.bytes(1, "@model_path/weights/weight.bin");
    bf.u64(2, static_cast<uint64_t>(l.blob_offset));
    v.msg(5, bf);
  } else {
    Msg imm;
    imm.msg(1, tensor_value(l));
    v.msg(3, imm);
  }
  return v;
}

Msg string_value(const std::string& s) {
  Literal l;
  l.type = {DType::fp16, {}, true, true};
  l.text = s;
  return value(l);
}

constexpr const char* kMarker = "com.github.aneforge.version";

void map_entry_str(Msg& parent, int field, const std::string& key, const std::string& val) {
  Msg e;
  e.bytes(1, key);
  e.bytes(2, val);
  parent.msg(field, e);
}

void map_entry(Msg& parent, int field, const std::string& key, const Msg& val) {
  Msg e;
  e.bytes(1, key);
  e.msg(2, val);
  parent.msg(field, e);
}

Msg operation(const Op& op) {
  Msg m;
  m.bytes(1, op.type);
  for (const auto& [param, vars] : op.inputs) {
    Msg arg;
    for (const auto& v : vars) {
      Msg binding;
      binding.bytes(1, v);
      arg.msg(1, binding);
    }
    map_entry(m, 2, param, arg);
  }
  for (const auto& [n, t] : op.outputs) m.msg(3, named_value_type(n, t));
  map_entry(m, 5, "name", string_value(op.name));
  if (op.type == "const") map_entry(m, 5, "val", value(op.value));
  for (const auto& [k, lit] : op.attrs) map_entry(m, 5, k, value(lit));
  return m;
}

Msg feature(const std::string& name, const Type& t) {
  Msg arr;
  for (auto d : t.shape) arr.u64(1, static_cast<uint64_t>(d));  // repeated int64 shape (unpacked is valid)
  int code = t.dtype == DType::fp16 ? 65552 : t.dtype == DType::int32 ? 131104 : 65568;
  arr.u64(2, static_cast<uint64_t>(code));
  Msg ft;
  ft.msg(5, arr);
  Msg fd;
  fd.bytes(1, name);
  fd.msg(3, ft);
  return fd;
}

std::string uuid4() {
  std::random_device rd;
  std::mt19937_64 g(rd());
  const char* hex = "0123456789ABCDEF";
  std::string s;
  for (int i = 0; i < 32; ++i) {
    int v = static_cast<int>(g() & 15);
    if (i == 12) v = 4;
    if (i == 16) v = 8 | (v & 3);
    s += hex[v];
    if (i == 7 || i == 11 || i == 15 || i == 19) s += '-';
  }
  return s;
}


}  // namespace

std::string to_model_proto(const Program& m) {
  std::string opset = m.opset >= 18 ? "CoreML8" : "CoreML7";
  Msg block;
  for (const auto& o : m.main.outputs) block.bytes(2, o);
  for (const auto& op : m.main.ops) block.msg(3, operation(op));
  Msg fn;
  for (const auto& [n, t] : m.main.inputs) fn.msg(1, named_value_type(n, t));
  fn.bytes(2, opset);
  map_entry(fn, 3, opset, block);
  Msg prog;
  prog.u64(1, 1);
  map_entry(prog, 2, "main", fn);
  Msg desc;
  for (const auto& [n, t] : m.main.inputs) desc.msg(1, feature(n, t));
  for (const auto& o : m.main.outputs) {
    Type t;
    for (const auto& op : m.main.ops)
      for (const auto& [n, ot] : op.outputs)
        if (n == o) t = ot;
    desc.msg(10, feature(o, t));
  }
  Msg meta;  // Metadata.userDefined (field 100): marks packages this library wrote
  map_entry_str(meta, 100, kMarker, "0.1.0");
  desc.msg(100, meta);
  Msg model;
  model.u64(1, m.opset >= 18 ? 9 : 8);
  model.msg(2, desc);
  model.msg(502, prog);
  return model.b;
}

// Files an exported package holds (relative paths); a directory holding anything else was
// not written by this library and is never replaced.
const char* const kPackageFiles[] = {"Manifest.json", "Data", "Data/com.apple.CoreML", "Data/com.apple.CoreML/model.mlmodel",
                                     "Data/com.apple.CoreML/weights", "Data/com.apple.CoreML/weights/weight.bin"};
bool is_our_package(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  size_t n = 0;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::string rel = fs::relative(it->path(), dir, ec).generic_string();
    if (it->is_symlink() || std::find(std::begin(kPackageFiles), std::end(kPackageFiles), rel) == std::end(kPackageFiles)) return false;
    ++n;
  }
  if (ec || n == 0) return false;
  try {
    return io::read_file(dir + "/Data/com.apple.CoreML/model.mlmodel", 1u << 30).find(kMarker) != std::string::npos;
  } catch (const IOError&) {
    return false;
  }
}

void write_mlpackage(const Program& m, const std::string& dir, bool overwrite) {
  std::string model = to_model_proto(m);
  std::string weights = m.weights.bytes.empty() ? std::string(64, '\0').replace(4, 1, "\x02") : m.weights.bytes;
  io::write_directory(dir, [&](const std::string& tmp) {
    namespace fs = std::filesystem;
    fs::path root(tmp);
    std::error_code ec;
    fs::create_directories(root / "Data" / "com.apple.CoreML" / "weights", ec);
    if (ec) throw IOError("cannot create '" + tmp + "': " + ec.message());
    io::write_new_file((root / "Data" / "com.apple.CoreML" / "model.mlmodel").string(), model);
    io::write_new_file((root / "Data" / "com.apple.CoreML" / "weights" / "weight.bin").string(), weights);
    std::string model_id = uuid4(), weights_id = uuid4();
    std::string manifest = "{\n  \"fileFormatVersion\": \"1.0.0\",\n  \"itemInfoEntries\": {\n    \"" + model_id +
                           "\": {\n      \"author\": \"com.apple.CoreML\",\n      \"description\": \"CoreML Model Specification\",\n"
                           "      \"name\": \"model.mlmodel\",\n      \"path\": \"com.apple.CoreML/model.mlmodel\"\n    },\n    \"" +
                           weights_id +
                           "\": {\n      \"author\": \"com.apple.CoreML\",\n      \"description\": \"CoreML Model Weights\",\n"
                           "      \"name\": \"weights\",\n      \"path\": \"com.apple.CoreML/weights\"\n    }\n  },\n"
                           "  \"rootModelIdentifier\": \"" + model_id + "\"\n}\n";
    io::write_new_file((root / "Manifest.json").string(), manifest);
  }, is_our_package, overwrite);
}

}  // namespace af::mil
