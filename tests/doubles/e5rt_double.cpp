// A test double of Espresso's e5rt_* C API, built as a shared library and loaded by the
// engine runtime through ANEFORGE_ENGINE_E5RT. It keeps the documented signatures (out-pointer
// first for constructors, last for retain_/get_/compile; release through a pointer to the
// handle, which it NULLs), checks the protocol the real library needs (handles of the right
// kind and alive, ports named by the MIL program, buffers large enough, every bind and the
// completion event before encode, each object released once), injects failures, and computes
// results through a callback the test sets. af_double_* is its control API.
#include <sys/stat.h>

#include <cstdarg>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "mil_signature.h"

namespace {

using Rc = int64_t;
enum Kind { kConfig, kCompiler, kOptions, kLibrary, kFunction, kOpOpts, kOp, kPort, kBuffer, kEvent, kStream,
            kDesc, kDtype };
const char* kKindNames[] = {"config", "compiler", "options", "library", "function", "opopts",
                            "op", "port", "buffer", "event", "stream", "tensor_desc", "dtype"};

struct Obj {
  Kind kind = kConfig;
  bool live = true;
  // library / function / opopts / op: the program
  std::string mil_text, weights;
  dbl::MilSignature sig;
  uint64_t mask = 0;
  int force = 0;            // options
  std::string bundle_dir;   // config, compiler
  std::string custom;       // options, library: custom ANE compiler options
  Obj* op = nullptr;        // port: its op; op: itself
  bool input = false;       // port
  std::string name;         // port
  Obj* bound = nullptr;     // port: bound buffer; op: completion event
  std::vector<char> data;   // buffer
  bool encoded = false;     // op
  std::vector<Obj*> ports;  // op
  std::vector<Obj*> ops;    // stream: encoded ops
  std::vector<uint64_t> shape, strides;  // tensor_desc (strides in elements, packed)
  uint64_t elem = 2;        // tensor_desc, dtype
};

struct Failure {
  int code;
  std::string message;
  int nth;
};

struct State {
  std::mutex mu;
  std::set<Obj*> objs;
  std::vector<std::string> violations, log;
  std::map<std::string, Failure> failures;
  std::map<std::string, int> calls;
  std::string last_error;
  int load_cap = 128;
  int live_ops = 0;
  uint64_t last_mask = 0;
  std::string last_custom;
  std::map<std::string, uint64_t> elem_override;  // port name -> element size its descriptor reports
  dbl::ComputeFn compute = nullptr;
  bool corrupt_weights = false;  // flip a byte of every weight blob taken (a mutation test)
  std::string report;
};
State& st() {
  static State* s = new State;
  return *s;
}

void violate(const std::string& v) { st().violations.push_back(v); }

// Records the call; an injected failure for its nth call returns that code.
bool injected(const char* fn, Rc* rc) {
  auto& s = st();
  s.log.push_back(fn);
  int n = ++s.calls[fn];
  auto it = s.failures.find(fn);
  if (it != s.failures.end() && (it->second.nth == 0 || it->second.nth == n)) {
    s.last_error = it->second.message;
    *rc = it->second.code;
    return true;
  }
  return false;
}

Obj* make(Kind k) {
  Obj* o = new Obj;
  o->kind = k;
  st().objs.insert(o);
  return o;
}

Obj* get(void* h, Kind k, const char* fn) {
  Obj* o = static_cast<Obj*>(h);
  if (!o || !st().objs.count(o)) {
    violate(std::string(fn) + ": unknown handle");
    return nullptr;
  }
  if (!o->live) {
    violate(std::string(fn) + ": handle used after release");
    return nullptr;
  }
  if (o->kind != k) {
    violate(std::string(fn) + ": expected a " + kKindNames[k] + " handle, got a " + kKindNames[o->kind]);
    return nullptr;
  }
  return o;
}

Rc fail(const std::string& msg, Rc code = 1) {
  st().last_error = msg;
  return code;
}

Rc create(const char* fn, void** out, Kind k, Obj** made = nullptr) {
  if (!out) {
    violate(std::string(fn) + ": null out-pointer (constructors take it first)");
    return 1;
  }
  Obj* o = make(k);
  *out = o;
  if (made) *made = o;
  return 0;
}

Rc release(const char* fn, void** h, Kind k) {
  std::lock_guard<std::mutex> lock(st().mu);
  Rc rc;
  if (injected(fn, &rc)) return rc;
  if (!h) {
    violate(std::string(fn) + ": null pointer (release takes a pointer to the handle)");
    return 1;
  }
  Obj* o = static_cast<Obj*>(*h);
  if (!o || !st().objs.count(o)) {
    violate(std::string(fn) + ": release of an unknown handle");
    return 1;
  }
  if (!o->live) {
    violate(std::string(fn) + ": released twice");
    return 1;
  }
  if (o->kind != k) violate(std::string(fn) + ": releases a " + kKindNames[o->kind]);
  o->live = false;
  if (k == kOp) --st().live_ops;
  *h = nullptr;
  return 0;
}

std::string read_all(const std::string& path, bool* ok) {
  std::ifstream f(path, std::ios::binary);
  *ok = static_cast<bool>(f);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

#define LOCK std::lock_guard<std::mutex> lock_(st().mu)
#define CALL(fn) LOCK; Rc rc_; if (injected(fn, &rc_)) return rc_
#define GET(var, h, k, fn) Obj* var = get(h, k, fn); if (!var) return 1

extern "C" {

// ---- control API ----
void af_double_reset() {
  LOCK;
  auto& s = st();
  for (Obj* o : s.objs) delete o;
  s.objs.clear();
  s.violations.clear();
  s.log.clear();
  s.failures.clear();
  s.calls.clear();
  s.corrupt_weights = false;
  s.last_error.clear();
  s.load_cap = 128;
  s.live_ops = 0;
  s.elem_override.clear();
}
// The descriptor of port `name` reports elements of `bytes` bytes (a program/engine mismatch).
void af_double_set_port_element_size(const char* name, uint64_t bytes) { LOCK; st().elem_override[name] = bytes; }
void af_double_fail(const char* fn, int code, const char* message, int nth) {
  LOCK;
  st().failures[fn] = Failure{code, message ? message : "", nth};
}
void af_double_set_load_cap(int n) { LOCK; st().load_cap = n; }
void af_double_set_compute(dbl::ComputeFn fn) { LOCK; st().compute = fn; }
void af_double_corrupt_weights(int on) { LOCK; st().corrupt_weights = on != 0; }
int af_double_live() {
  LOCK;
  int n = 0;
  for (Obj* o : st().objs) n += o->live;
  return n;
}
int af_double_calls(const char* fn) { LOCK; return st().calls[fn]; }
const char* af_double_violations() {
  LOCK;
  st().report.clear();
  for (auto& v : st().violations) st().report += v + "\n";
  return st().report.c_str();
}
const char* af_double_log() {
  LOCK;
  st().report.clear();
  for (auto& v : st().log) st().report += v + "\n";
  return st().report.c_str();
}
uint64_t af_double_last_mask() { LOCK; return st().last_mask; }
const char* af_double_last_custom_options() { LOCK; return st().last_custom.c_str(); }
// The bytes bound to a port of the most recent op: -1 when none.
int64_t af_double_bound_bytes(const char* port) {
  LOCK;
  Obj* last = nullptr;
  for (Obj* o : st().objs)
    if (o->kind == kPort && o->live && o->name == port && o->bound) last = o;
  return last ? static_cast<int64_t>(last->bound->data.size()) : -1;
}
// Whether an input port and an output port of one live op share one buffer (resident state).
int af_double_shared(const char* in_port, const char* out_port) {
  LOCK;
  for (Obj* a : st().objs)
    for (Obj* b : st().objs)
      if (a->kind == kPort && b->kind == kPort && a->live && b->live && a->op == b->op && a->input && !b->input &&
          a->name == in_port && b->name == out_port && a->bound && a->bound == b->bound)
        return 1;
  return 0;
}

// Buffers bound to input ports of two or more live ops (one buffer that several programs read).
int af_double_shared_input_buffers() {
  LOCK;
  std::map<Obj*, std::set<Obj*>> readers;
  for (Obj* p : st().objs)
    if (p->kind == kPort && p->live && p->input && p->bound && p->op->live) readers[p->bound].insert(p->op);
  int n = 0;
  for (auto& r : readers) n += r.second.size() >= 2;
  return n;
}

// ---- e5rt ----
const char* e5rt_get_last_error_message() { return st().last_error.c_str(); }

Rc e5rt_e5_compiler_config_options_create(void** out) { CALL(__func__); return create(__func__, out, kConfig); }
Rc e5rt_e5_compiler_config_options_set_cache_bundle_location(void* cfg, const char* dir) {
  CALL(__func__);
  GET(c, cfg, kConfig, __func__);
  if (!dir) violate("set_cache_bundle_location: null directory");
  else c->bundle_dir = dir;
  return 0;
}
Rc e5rt_e5_compiler_create_with_config(void** out, void* cfg) {
  CALL(__func__);
  GET(c, cfg, kConfig, __func__);
  Obj* compiler = nullptr;
  Rc rc = create(__func__, out, kCompiler, &compiler);
  if (compiler) compiler->bundle_dir = c->bundle_dir;
  return rc;
}
Rc e5rt_e5_compiler_options_create(void** out) { CALL(__func__); return create(__func__, out, kOptions); }
Rc e5rt_e5_compiler_options_set_compute_device_types_mask(void* opts, uint64_t mask) {
  CALL(__func__);
  GET(o, opts, kOptions, __func__);
  o->mask = mask;
  return 0;
}
Rc e5rt_e5_compiler_options_set_force_recompilation(void* opts, int force) {
  CALL(__func__);
  GET(o, opts, kOptions, __func__);
  o->force = force;
  return 0;
}
Rc e5rt_e5_compiler_options_set_segmenter(void* opts, const char* s) {
  CALL(__func__);
  GET(o, opts, kOptions, __func__);
  if (!s) violate("set_segmenter: null string");
  return 0;
}
Rc e5rt_e5_compiler_options_set_custom_ane_compiler_options(void* opts, const char* s) {
  CALL(__func__);
  GET(o, opts, kOptions, __func__);
  st().last_custom = s ? s : "";
  o->custom = st().last_custom;
  return 0;
}
Rc e5rt_e5_compiler_compile(void* compiler, const char* mil_path, void* opts, void** out_lib) {
  CALL(__func__);
  GET(c, compiler, kCompiler, __func__);
  GET(o, opts, kOptions, __func__);
  if (!out_lib) {
    violate("compile: null out-pointer (compile takes it last)");
    return 1;
  }
  // What public code that dispatches on Macs does (sbryngelson/ANEForge compile_and_build_op):
  // a bundle folder that exists, and forced recompilation (a bundle another process compiled
  // fails to load: "Must re-compile the E5 bundle").
  struct stat sb;
  if (c->bundle_dir.empty() || stat(c->bundle_dir.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode))
    violate("compile with a cache bundle location that does not exist: '" + c->bundle_dir + "'");
  if (o->force != 1)
    violate("compile without force_recompilation(1): a cached bundle from another process would fail to load");
  bool ok;
  std::string text = read_all(mil_path ? mil_path : "", &ok);
  if (!ok) return fail(std::string("Invalid E5 path specified. @ GetE5PathFromCompositeBundle: ") + (mil_path ? mil_path : "(null)"));
  dbl::MilSignature sig = dbl::parse_signature(text);
  if (!sig.ok) return fail("InvalidMILProgram");
  if (std::string bad = dbl::integer_compute(text); !bad.empty()) return fail("Unsupported MIL type int32 / bool: " + bad);
  std::string dir = std::string(mil_path).substr(0, std::string(mil_path).rfind('/'));
  bool has_w;
  std::string weights = read_all(dir + "/weights/weight.bin", &has_w);
  if (text.find("BLOBFILE") != std::string::npos && !has_w) return fail("weights file missing beside the MIL");
  st().last_mask = o->mask;
  Obj* lib;
  create(__func__, out_lib, kLibrary, &lib);
  lib->mil_text = text;
  lib->weights = weights;
  if (st().corrupt_weights && !lib->weights.empty()) lib->weights.back() ^= 0x40;
  lib->sig = sig;
  lib->custom = o->custom;
  return 0;
}
Rc e5rt_program_library_retain_program_function(void* lib, const char* name, void** out) {
  CALL(__func__);
  GET(l, lib, kLibrary, __func__);
  if (!name || std::string(name) != "main") return fail("no function named " + std::string(name ? name : "(null)"));
  Obj* f;
  Rc rc = create(__func__, out, kFunction, &f);
  if (f) f->mil_text = l->mil_text, f->weights = l->weights, f->sig = l->sig, f->custom = l->custom;
  return rc;
}
Rc e5rt_precompiled_compute_op_create_options_create_with_program_function(void** out, void* fn) {
  CALL(__func__);
  GET(f, fn, kFunction, __func__);
  if (!out) {
    violate(std::string(__func__) + ": null out-pointer (constructors take it first)");
    return 1;
  }
  Obj* o = make(kOpOpts);
  *out = o;
  o->mil_text = f->mil_text, o->weights = f->weights, o->sig = f->sig, o->custom = f->custom;
  return 0;
}
Rc e5rt_precompiled_compute_op_create_options_set_operation_name(void* oo, const char* n) {
  CALL(__func__);
  GET(o, oo, kOpOpts, __func__);
  if (!n) violate("set_operation_name: null");
  return 0;
}
Rc e5rt_precompiled_compute_op_create_options_set_allocate_intermediate_buffers(void* oo, int) {
  CALL(__func__);
  GET(o, oo, kOpOpts, __func__);
  return 0;
}
Rc e5rt_execution_stream_operation_create_precompiled_compute_operation_with_options(void** out, void* oo) {
  CALL(__func__);
  GET(o, oo, kOpOpts, __func__);
  if (st().live_ops >= st().load_cap) return fail("E5RT: failed to load the program (13)", 13);
  if (o->custom.find("TargetArchitecture") != std::string::npos) {
    // A library compiled for a named target: ANEForge uses that only to check that a
    // program compiles for another target; one for another target fails to load here.
    violate("an operation created from a library compiled with '" + o->custom + "' (dispatch compiles for the host)");
    return fail("E5RT: failed to load the program (13)", 13);
  }
  if (!out) {
    violate("create operation: null out-pointer");
    return 1;
  }
  Obj* op = make(kOp);
  op->mil_text = o->mil_text, op->weights = o->weights, op->sig = o->sig, op->op = op;
  *out = op;
  ++st().live_ops;
  return 0;
}
static Rc retain_port(const char* fn, void* op, const char* name, void** out, bool input) {
  CALL(fn);
  GET(o, op, kOp, fn);
  if (!out) {
    violate(std::string(fn) + ": null out-pointer (retain_ takes it last)");
    return 1;
  }
  bool known = false;
  for (auto& p : input ? o->sig.inputs : o->sig.outputs) known |= name && p.name == name;
  if (!known) return fail(std::string("no ") + (input ? "input" : "output") + " port named " + (name ? name : "(null)"));
  Obj* p = make(kPort);
  p->op = o, p->input = input, p->name = name;
  o->ports.push_back(p);
  *out = p;
  return 0;
}
Rc e5rt_execution_stream_operation_retain_input_port(void* op, const char* n, void** out) {
  return retain_port(__func__, op, n, out, true);
}
Rc e5rt_execution_stream_operation_retain_output_port(void* op, const char* n, void** out) {
  return retain_port(__func__, op, n, out, false);
}
Rc e5rt_buffer_object_alloc(void** out, uint64_t size, uint32_t type) {
  CALL(__func__);
  if (type >= 3) return fail("Invalid BufferType @ AllocMemory");
  Obj* b;
  Rc rc = create(__func__, out, kBuffer, &b);
  if (b) b->data.assign(size, 0x7f);  // not zeroed: whoever reads before writing sees noise
  return rc;
}
Rc e5rt_buffer_object_get_data_ptr(void* buf, void** out) {
  CALL(__func__);
  GET(b, buf, kBuffer, __func__);
  if (!out) {
    violate("get_data_ptr: null out-pointer");
    return 1;
  }
  *out = b->data.data();
  return 0;
}
Rc e5rt_io_port_bind_buffer_object(void* port, void* buf) {
  CALL(__func__);
  GET(p, port, kPort, __func__);
  GET(b, buf, kBuffer, __func__);
  if (p->op->encoded) violate("bind_buffer_object on port " + p->name + " after the first encode");
  for (auto& mp : p->input ? p->op->sig.inputs : p->op->sig.outputs)
    if (mp.name == p->name && b->data.size() < mp.bytes())
      violate("buffer of " + std::to_string(b->data.size()) + " bytes bound to port " + p->name + " of " +
              std::to_string(mp.bytes()) + " bytes");
  p->bound = b;
  return 0;
}
Rc e5rt_async_event_create(void** out, const char* name, uint32_t) {
  CALL(__func__);
  if (!name) return fail("eventName is NULL");
  return create(__func__, out, kEvent);
}
Rc e5rt_execution_stream_operation_bind_completion_event(void* op, void* ev) {
  CALL(__func__);
  GET(o, op, kOp, __func__);
  GET(e, ev, kEvent, __func__);
  if (o->encoded) violate("completion event bound after encode");
  o->bound = e;
  return 0;
}
Rc e5rt_execution_stream_create(void** out) { CALL(__func__); return create(__func__, out, kStream); }
Rc e5rt_execution_stream_encode_operation(void* stream, void* op) {
  CALL(__func__);
  GET(s, stream, kStream, __func__);
  GET(o, op, kOp, __func__);
  if (o->encoded) return fail("operation already encoded", 2);
  if (!o->bound || !o->bound->live) violate("encode before the completion event was bound");
  for (auto* list : {&o->sig.inputs, &o->sig.outputs})
    for (auto& mp : *list) {
      bool bound = false;
      for (Obj* p : o->ports) bound |= p->live && p->name == mp.name && p->bound && p->bound->live;
      if (!bound) violate("encode with port " + mp.name + " unbound");
    }
  o->encoded = true;
  s->ops.push_back(o);
  return 0;
}
Rc e5rt_execution_stream_execute_sync(void* stream) {
  CALL(__func__);
  GET(s, stream, kStream, __func__);
  if (s->ops.empty()) return fail("nothing encoded", 2);
  for (Obj* o : s->ops) {
    if (!o->live) {
      violate("execute with a released operation");
      return 1;
    }
    std::vector<const char*> in_names, out_names;
    std::vector<const void*> in_ptrs;
    std::vector<void*> out_ptrs;
    std::vector<uint64_t> in_bytes, out_bytes;
    auto port_buffer = [&](const std::string& n, bool input) -> Obj* {
      for (Obj* p : o->ports)
        if (p->live && p->input == input && p->name == n) {
          if (p->bound && !p->bound->live) violate("execute reads port " + n + " through a released buffer");
          return p->bound;
        }
      return nullptr;
    };
    for (auto& mp : o->sig.inputs) {
      Obj* b = port_buffer(mp.name, true);
      if (!b) return fail("unbound input " + mp.name);
      in_names.push_back(mp.name.c_str()), in_ptrs.push_back(b->data.data()), in_bytes.push_back(mp.bytes());
    }
    for (auto& mp : o->sig.outputs) {
      Obj* b = port_buffer(mp.name, false);
      if (!b) return fail("unbound output " + mp.name);
      out_names.push_back(mp.name.c_str()), out_ptrs.push_back(b->data.data()), out_bytes.push_back(mp.bytes());
    }
    if (!st().compute) return fail("the double has no compute function", 2);
    if (st().compute(o->mil_text.c_str(), o->weights.data(), o->weights.size(), static_cast<int>(in_names.size()),
                     in_names.data(), in_ptrs.data(), in_bytes.data(), static_cast<int>(out_names.size()),
                     out_names.data(), out_ptrs.data(), out_bytes.data()) != 0)
      return fail("compute failed", 2);
  }
  return 0;
}

// Port descriptors: shape and strides come back as (pointer to the values, count), the order
// Apple's VisionCore clients declare their locals in (sizes, then rank); the runtime under test
// must not depend on that order.
Rc e5rt_io_port_retain_tensor_desc(void* port, void** out) {
  CALL(__func__);
  GET(p, port, kPort, __func__);
  if (!out) {
    violate("retain_tensor_desc: null out-pointer");
    return 1;
  }
  for (auto& mp : p->input ? p->op->sig.inputs : p->op->sig.outputs)
    if (mp.name == p->name) {
      Obj* d;
      create(__func__, out, kDesc, &d);
      d->shape = mp.shape;
      d->strides.assign(mp.shape.size(), 1);
      for (size_t k = mp.shape.size(); k-- > 1;) d->strides[k - 1] = d->strides[k] * mp.shape[k];
      auto o = st().elem_override.find(p->name);
      d->elem = o != st().elem_override.end() ? o->second : mp.elem_bytes;
      return 0;
    }
  return fail("port has no descriptor");
}
static Rc values(void* desc, uint64_t* ptr, uint64_t* count, bool strides, const char* fn) {
  CALL(fn);
  GET(d, desc, kDesc, fn);
  if (!ptr || !count) {
    violate(std::string(fn) + ": null out-pointer");
    return 1;
  }
  const std::vector<uint64_t>& v = strides ? d->strides : d->shape;
  *ptr = reinterpret_cast<uint64_t>(v.data());
  *count = v.size();
  return 0;
}
Rc e5rt_tensor_desc_get_shape(void* desc, uint64_t* ptr, uint64_t* count) { return values(desc, ptr, count, false, __func__); }
Rc e5rt_tensor_desc_get_strides(void* desc, uint64_t* ptr, uint64_t* count) { return values(desc, ptr, count, true, __func__); }
Rc e5rt_tensor_desc_retain_dtype(void* desc, void** out) {
  CALL(__func__);
  GET(d, desc, kDesc, __func__);
  Obj* t;
  Rc rc = create(__func__, out, kDtype, &t);
  if (t) t->elem = d->elem;
  return rc;
}
Rc e5rt_tensor_desc_dtype_get_element_size(void* dtype, uint64_t* out) {
  CALL(__func__);
  GET(t, dtype, kDtype, __func__);
  if (!out) return violate("dtype_get_element_size: null out-pointer"), 1;
  *out = t->elem;
  return 0;
}

#define RELEASE(fn, kind) Rc fn(void** h) { return release(#fn, h, kind); }
RELEASE(e5rt_tensor_desc_release, kDesc)
RELEASE(e5rt_tensor_desc_dtype_release, kDtype)
RELEASE(e5rt_e5_compiler_config_options_release, kConfig)
RELEASE(e5rt_e5_compiler_release, kCompiler)
RELEASE(e5rt_e5_compiler_options_release, kOptions)
RELEASE(e5rt_program_library_release, kLibrary)
RELEASE(e5rt_program_function_release, kFunction)
RELEASE(e5rt_precompiled_compute_op_create_options_release, kOpOpts)
RELEASE(e5rt_execution_stream_operation_release, kOp)
RELEASE(e5rt_io_port_release, kPort)
RELEASE(e5rt_buffer_object_release, kBuffer)
RELEASE(e5rt_async_event_release, kEvent)
RELEASE(e5rt_execution_stream_release, kStream)

}  // extern "C"
