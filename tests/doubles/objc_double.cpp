// A test double of the Objective-C runtime (objc_getClass, sel_registerName, objc_msgSend,
// retain/release, autorelease pools), the few Foundation, CoreFoundation and IOSurface calls
// the in-memory path makes, and AppleNeuralEngine.framework's _ANEInMemoryModel classes. One
// shared library, loaded by the engine runtime through ANEFORGE_ENGINE_OBJC. It checks what
// the real framework needs (MIL text as NSData, a weights dictionary never nil, a compiled
// model before load, surfaces of equal size and at least the minimum, ports bound in
// alphabetical order of MIL names, locks balanced, unload before release, every object
// released once and none leaked), injects failures, and computes results through the same
// callback as the e5rt double. af_double_* is its control API.
#include <sys/stat.h>

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "mil_signature.h"

namespace {

struct Cls {
  const char* name;
};
Cls kNSData{"NSData"}, kNSString{"NSString"}, kNSNumber{"NSNumber"}, kNSArray{"NSArray"},
    kNSDictionary{"NSDictionary"}, kNSError{"NSError"}, kIOSurface{"IOSurface"}, kDesc{"_ANEInMemoryModelDescriptor"},
    kModel{"_ANEInMemoryModel"}, kIOObj{"_ANEIOSurfaceObject"}, kRequest{"_ANERequest"};
Cls* kClasses[] = {&kNSData, &kNSString, &kNSNumber, &kNSArray, &kNSDictionary, &kNSError,
                   &kIOSurface, &kDesc, &kModel, &kIOObj, &kRequest};

struct Obj {
  Cls* cls = nullptr;
  int refs = 1;
  std::string bytes;                // NSData, NSString, surface memory
  uint64_t number = 0;              // NSNumber; NSError code
  std::vector<Obj*> items, keys;    // NSArray; NSDictionary values and keys
  Obj* child = nullptr;             // IO object: its surface; model: its descriptor; error: description
  std::vector<Obj*> arrays;         // request: inputs, in_idx, outputs, out_idx
  int locks = 0;                    // surface
  bool compiled = false, loaded = false;  // model
  Obj* used_by = nullptr;           // request, IO object, surface: the model that evaluated it
  std::string mil_text, weights;    // descriptor, model
};

struct Failure {
  int code;
  std::string message;
  int nth;
};

struct State {
  std::recursive_mutex mu;
  std::set<Obj*> objs;  // every object ever made (freed ones stay, with refs 0)
  std::vector<Obj*> graveyard;  // objects from before a reset: kept reachable, never reused
  std::vector<std::vector<Obj*>> pools;
  std::vector<std::string> violations, log;
  std::map<std::string, Failure> failures;
  std::map<std::string, int> calls;
  std::map<std::string, std::string> compiled;  // identifier -> the weights compiled; persists like aned's cache
  std::map<std::string, std::string> sels;
  dbl::ComputeFn compute = nullptr;
  bool corrupt_weights = false;  // flip a byte of every weight blob taken (a mutation test)
  int load_cap = 128, loaded = 0;
  std::string report, tmpdir;
};
State& st() {
  static State* s = new State;
  return *s;
}
void violate(const std::string& v) { st().violations.push_back(v); }

Obj* alloc(Cls* c) {
  Obj* o = new Obj;
  o->cls = c;
  st().objs.insert(o);
  return o;
}
Obj* autoreleased(Obj* o) {
  if (st().pools.empty()) violate(std::string("a ") + o->cls->name + " was autoreleased with no pool in place");
  else st().pools.back().push_back(o);
  return o;
}
bool valid(Obj* o) { return o && st().objs.count(o) && o->refs > 0; }

void release(Obj* o, const char* who);
void free_obj(Obj* o) {
  for (Obj* c : o->items) release(c, "contents");
  for (Obj* c : o->keys) release(c, "contents");
  for (Obj* c : o->arrays) release(c, "contents");
  if (o->child) release(o->child, "contents");
  if (o->cls == &kModel && o->loaded) violate("a loaded _ANEInMemoryModel was released without unloadWithQoS:error:");
  // Public code unloads before it releases the request and the surfaces (maderix/ANE
  // training/ane_runtime.h, mechramc/Orion core/ane_runtime.m).
  if (o->used_by && valid(o->used_by) && o->used_by->loaded)
    violate(std::string("a ") + o->cls->name + " was released while the model that used it was still loaded");
  if (o->cls == &kIOSurface && o->locks) violate("a locked IOSurface was released");
}
void release(Obj* o, const char* who) {
  if (!o) return;
  if (!st().objs.count(o)) {
    violate(std::string(who) + ": release of an unknown object");
    return;
  }
  if (o->refs <= 0) {
    violate(std::string(who) + ": a " + o->cls->name + " released more times than retained");
    return;
  }
  if (--o->refs == 0) free_obj(o);
}

bool injected(const std::string& what, int* code, std::string* msg) {
  auto& s = st();
  s.log.push_back(what);
  int n = ++s.calls[what];
  auto it = s.failures.find(what);
  if (it != s.failures.end() && (it->second.nth == 0 || it->second.nth == n)) {
    *code = it->second.code;
    *msg = it->second.message;
    return true;
  }
  return false;
}

Obj* make_str(const std::string& s) {
  Obj* o = alloc(&kNSString);
  o->bytes = s;
  return o;
}
// The CFString constants the framework exports: alive for the process, not counted as live.
std::vector<Obj*>& immortals() {
  static std::vector<Obj*> v;
  return v;
}
Obj* immortal(const char* s) {
  Obj* o = make_str(s);
  immortals().push_back(o);
  return o;
}

Obj* make_error(int code, const std::string& msg) {
  Obj* e = autoreleased(alloc(&kNSError));
  e->number = static_cast<uint64_t>(code);
  e->child = make_str(msg);
  return e;
}
Obj* dict_get(Obj* d, const std::string& key) {
  if (!valid(d) || d->cls != &kNSDictionary) return nullptr;
  for (size_t i = 0; i < d->keys.size(); ++i)
    if (d->keys[i]->bytes == key) return d->items[i];
  return nullptr;
}

// modelAttributes of a loaded model: NetworkStatusList[0] -> LiveInputList / LiveOutputList, one
// dictionary per port with its dimensions and byte strides (keys as electricapp/ane-bridge-rs
// and sbryngelson/ANEForge's layer invoker read them; output names carry "@output"). Rows are
// padded to 64 bytes, so a packed copy lands in the wrong place.
Obj* owned_dict(const std::vector<std::pair<std::string, Obj*>>& kv) {
  Obj* d = alloc(&kNSDictionary);
  for (auto& [k, v] : kv) d->keys.push_back(make_str(k)), d->items.push_back(v);
  return d;
}
Obj* owned_num(uint64_t v) {
  Obj* o = alloc(&kNSNumber);
  o->number = v;
  return o;
}
Obj* model_attributes(const Obj* model) {
  dbl::MilSignature sig = dbl::parse_signature(model->mil_text);
  auto live = [&](const std::vector<dbl::MilPort>& ports, const char* suffix) {
    Obj* arr = alloc(&kNSArray);
    for (const auto& p : ports) {
      dbl::Layout l = dbl::engine_layout(p);
      arr->items.push_back(owned_dict({{"Name", make_str(p.name + suffix)}, {"Batches", owned_num(l.n)},
                                       {"Channels", owned_num(l.c)}, {"Depth", owned_num(l.d)},
                                       {"Height", owned_num(l.h)}, {"Width", owned_num(l.w)},
                                       {"RowStride", owned_num(l.row)}, {"DepthStride", owned_num(l.depth)},
                                       {"PlaneStride", owned_num(l.plane)}, {"BatchStride", owned_num(l.batch)}}));
    }
    return arr;
  };
  Obj* status = owned_dict({{"LiveInputList", live(sig.inputs, "")}, {"LiveOutputList", live(sig.outputs, "@output")}});
  Obj* list = alloc(&kNSArray);
  list->items.push_back(status);
  return autoreleased(owned_dict({{"NetworkStatusList", list}}));
}

// BOOL-returning method failing with an optional NSError (nil when the injected message is
// "<nil>": the framework's silent failures).
signed char fail_with(void** err, int code, const std::string& msg) {
  if (err) *err = msg == "<nil>" ? nullptr : make_error(code, msg);
  return 0;
}

// The identifier hashes the MIL text alone, as the framework's does (mechramc/Orion
// docs/ane_constraints.md: identifier = hash of the MIL text; electricapp/ane-bridge-rs:
// aned keys its compile cache on the MIL bytes). A model whose compiled form exists is
// not compiled again: it computes with the weights compiled first.
std::string hex_id(const Obj* model) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : model->mil_text) h = (h ^ c) * 1099511628211ull;
  char b[40];
  std::snprintf(b, sizeof(b), "%016llx_0_0", static_cast<unsigned long long>(h));
  return b;
}

signed char evaluate(Obj* model, Obj* req, void** err) {
  if (!model->loaded) return fail_with(err, 6, "program not loaded");
  if (!valid(req) || req->cls != &kRequest) {
    violate("evaluate without a valid _ANERequest");
    return fail_with(err, 10, "invalid request");
  }
  dbl::MilSignature sig = dbl::parse_signature(model->mil_text);
  Obj* ins = req->arrays[0];
  Obj* outs = req->arrays[2];
  if (ins->items.size() != sig.inputs.size() || outs->items.size() != sig.outputs.size())
    return fail_with(err, 8, "ANEProgramProcessRequestDirect() Failed with status=0x1d : statusType=0x9");
  auto check_sizes = [&](Obj* arr, const char* what) {
    size_t size0 = arr->items.empty() ? 0 : arr->items[0]->child->bytes.size();
    for (Obj* io : arr->items) {
      size_t n = io->child->bytes.size();
      if (n != size0) {
        violate(std::string(what) + " surfaces of different sizes in one request");
        return false;
      }
      if (n < 49152) {
        violate(std::string(what) + " surface smaller than the minimum (49152 bytes)");
        return false;
      }
      for (const auto& port : arr == ins ? sig.inputs : sig.outputs)
        if (n < dbl::engine_layout(port).bytes()) {
          violate(std::string(what) + " surface of " + std::to_string(n) + " bytes for port " + port.name + " laid out in " +
                  std::to_string(dbl::engine_layout(port).bytes()));
          return false;
        }
    }
    return true;
  };
  if (!check_sizes(ins, "input") || !check_sizes(outs, "output"))
    return fail_with(err, 8, "ANEProgramProcessRequestDirect() Failed with status=0x1d : statusType=0x9");
  // Surfaces bind to the MIL names in alphabetical order.
  auto sorted = [](std::vector<dbl::MilPort> v) {
    std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.name < b.name; });
    return v;
  };
  auto si = sorted(sig.inputs), so = sorted(sig.outputs);
  std::vector<const char*> in_names, out_names;
  std::vector<const void*> in_ptrs;
  std::vector<void*> out_ptrs;
  std::vector<uint64_t> in_bytes, out_bytes;
  // The surfaces hold the engine's strided layout; the computation takes packed tensors.
  std::vector<std::string> in_packed(si.size()), out_packed(so.size());
  for (size_t k = 0; k < si.size(); ++k) {
    in_packed[k].resize(si[k].bytes());
    dbl::gather(dbl::engine_layout(si[k]), ins->items[k]->child->bytes.data(), in_packed[k].data());
    in_names.push_back(si[k].name.c_str());
    in_ptrs.push_back(in_packed[k].data());
    in_bytes.push_back(si[k].bytes());
  }
  for (size_t k = 0; k < so.size(); ++k) {
    out_packed[k].assign(so[k].bytes(), '\0');
    out_names.push_back(so[k].name.c_str());
    out_ptrs.push_back(out_packed[k].data());
    out_bytes.push_back(so[k].bytes());
  }
  for (Obj* arr : {ins, outs})
    for (Obj* io : arr->items) {
      if (io->child->locks) violate("evaluate while a surface is locked");
      io->used_by = io->child->used_by = model;
    }
  req->used_by = model;
  if (!st().compute) return fail_with(err, 8, "the double has no compute function");
  const std::string& weights = st().compiled.at(hex_id(model));  // what was compiled, not what was handed last
  if (st().compute(model->mil_text.c_str(), weights.data(), weights.size(), static_cast<int>(si.size()),
                   in_names.data(), in_ptrs.data(), in_bytes.data(), static_cast<int>(so.size()), out_names.data(),
                   out_ptrs.data(), out_bytes.data()) != 0)
    return fail_with(err, 8, "compute failed");
  for (size_t k = 0; k < so.size(); ++k) dbl::scatter(dbl::engine_layout(so[k]), out_packed[k].data(), &outs->items[k]->child->bytes[0]);
  return 1;
}

void* dispatch(Obj* self, const std::string& sel, va_list ap) {
  auto& s = st();
  const bool is_class = std::find(std::begin(kClasses), std::end(kClasses), reinterpret_cast<Cls*>(self)) !=
                        std::end(kClasses);
  Cls* cls = is_class ? reinterpret_cast<Cls*>(self) : nullptr;
  if (!is_class && !valid(self)) {
    violate("message " + sel + " sent to a released or unknown object");
    return nullptr;
  }
  int code;
  std::string msg;
  if (cls == &kNSData && sel == "dataWithBytes:length:") {
    const char* p = va_arg(ap, const char*);
    unsigned long n = va_arg(ap, unsigned long);
    Obj* o = alloc(&kNSData);
    o->bytes.assign(p, n);
    return autoreleased(o);
  }
  if (cls == &kNSString && sel == "stringWithUTF8String:") return autoreleased(make_str(va_arg(ap, const char*)));
  if (cls == &kNSNumber && sel == "numberWithUnsignedInt:") {
    Obj* o = alloc(&kNSNumber);
    o->number = va_arg(ap, unsigned);
    return autoreleased(o);
  }
  if ((cls == &kNSDictionary && sel == "dictionaryWithObjects:forKeys:count:") ||
      (cls == &kNSArray && sel == "arrayWithObjects:count:")) {
    Obj** vals = va_arg(ap, Obj**);
    Obj** keys = cls == &kNSDictionary ? va_arg(ap, Obj**) : nullptr;
    unsigned long n = va_arg(ap, unsigned long);
    Obj* o = alloc(cls);
    for (unsigned long i = 0; i < n; ++i) {
      if (!valid(vals[i]) || (keys && !valid(keys[i]))) violate(std::string(cls->name) + " built with a nil or dead object");
      ++vals[i]->refs;
      o->items.push_back(vals[i]);
      if (keys) ++keys[i]->refs, o->keys.push_back(keys[i]);
    }
    return autoreleased(o);
  }
  if (cls == &kDesc && sel == "modelWithMILText:weights:optionsPlist:") {
    Obj* text = va_arg(ap, Obj*);
    Obj* weights = va_arg(ap, Obj*);
    if (injected(sel, &code, &msg)) return nullptr;
    if (valid(text) && text->cls == &kNSString) {
      violate("modelWithMILText: given an NSString (the framework crashes; it takes NSData)");
      return nullptr;
    }
    if (!valid(text) || text->cls != &kNSData || !weights) return nullptr;  // nil weights: nil descriptor
    Obj* d = alloc(&kDesc);
    d->mil_text = text->bytes;
    if (!weights->items.empty()) {
      Obj* entry = dict_get(weights, "@model_path/weights/weight.bin");
      Obj* data = entry ? dict_get(entry, "data") : nullptr;
      if (!entry || !data || !dict_get(entry, "offset")) {
        violate("weights dictionary without @model_path/weights/weight.bin -> {offset, data}");
        return nullptr;
      }
      d->weights = data->bytes;
      if (st().corrupt_weights && !d->weights.empty()) d->weights.back() ^= 0x40;
    }
    if (!dbl::parse_signature(d->mil_text).ok || !dbl::integer_compute(d->mil_text).empty()) return nullptr;  // nil descriptor
    return autoreleased(d);
  }
  if (cls == &kModel && sel == "inMemoryModelWithDescriptor:") {
    Obj* d = va_arg(ap, Obj*);
    if (!valid(d) || d->cls != &kDesc) return nullptr;
    Obj* m = alloc(&kModel);
    m->mil_text = d->mil_text, m->weights = d->weights;
    ++d->refs;
    m->child = d;
    return autoreleased(m);
  }
  if (cls == &kIOObj && sel == "objectWithIOSurface:") {
    Obj* surf = va_arg(ap, Obj*);
    if (!valid(surf) || surf->cls != &kIOSurface) return nullptr;
    Obj* o = alloc(&kIOObj);
    ++surf->refs;  // retains the surface, released in dealloc
    o->child = surf;
    return autoreleased(o);
  }
  if (cls == &kRequest && sel == "requestWithInputs:inputIndices:outputs:outputIndices:weightsBuffer:perfStats:procedureIndex:") {
    Obj* a[4];
    for (auto& x : a) x = va_arg(ap, Obj*);
    Obj* wb = va_arg(ap, Obj*);
    Obj* ps = va_arg(ap, Obj*);
    Obj* proc = va_arg(ap, Obj*);
    (void)wb, (void)ps;
    for (Obj* x : a)
      if (!valid(x) || x->cls != &kNSArray) return nullptr;
    if (a[0]->items.size() != a[1]->items.size() || a[2]->items.size() != a[3]->items.size() ||
        a[0]->items.size() > 255 || a[2]->items.size() > 255 || !valid(proc) || proc->number > 128)
      return nullptr;
    for (Obj* arr : {a[0], a[2]})
      for (Obj* io : arr->items)
        if (io->cls != &kIOObj) return nullptr;
    Obj* r = alloc(&kRequest);
    for (Obj* x : a) ++x->refs, r->arrays.push_back(x);
    return autoreleased(r);
  }
  // instance methods
  if (self->cls == &kNSString && sel == "UTF8String") return const_cast<char*>(self->bytes.c_str());
  if (self->cls == &kNSError && sel == "code") return reinterpret_cast<void*>(static_cast<intptr_t>(self->number));
  if (self->cls == &kNSError && sel == "localizedDescription") return self->child;
  if (self->cls == &kNSDictionary && sel == "objectForKey:") {
    Obj* key = va_arg(ap, Obj*);
    return valid(key) ? dict_get(self, key->bytes) : nullptr;
  }
  if (self->cls == &kNSArray && sel == "count") return reinterpret_cast<void*>(static_cast<uintptr_t>(self->items.size()));
  if (self->cls == &kNSArray && sel == "objectAtIndex:") {
    unsigned long k = va_arg(ap, unsigned long);
    if (k >= self->items.size()) return violate("objectAtIndex: past the end of an NSArray"), nullptr;
    return self->items[k];
  }
  if (self->cls == &kNSNumber && sel == "unsignedLongLongValue") return reinterpret_cast<void*>(static_cast<uintptr_t>(self->number));
  if (self->cls == &kModel) {
    if (sel == "hexStringIdentifier") return autoreleased(make_str(hex_id(self)));
    if (sel == "modelAttributes") return self->loaded ? model_attributes(self) : autoreleased(owned_dict({}));
    if (sel == "compiledModelExists") return reinterpret_cast<void*>(static_cast<intptr_t>(s.compiled.count(hex_id(self))));
    unsigned qos = va_arg(ap, unsigned);
    if (qos != 0 && qos != 9 && qos != 17 && qos != 21 && qos != 25 && qos != 33) violate("invalid QoS " + std::to_string(qos));
    if (sel == "compileWithQoS:options:error:" || sel == "loadWithQoS:options:error:") {
      Obj* opts = va_arg(ap, Obj*);
      void** err = va_arg(ap, void**);
      if (!valid(opts)) violate(sel + " without an options dictionary");
      if (injected(sel, &code, &msg)) return reinterpret_cast<void*>(static_cast<intptr_t>(fail_with(err, code, msg)));
      if (sel[0] == 'c') {
        std::string td = s.tmpdir + hex_id(self);
        struct stat sb;
        if (stat((td + "/model.mil").c_str(), &sb) != 0)
          violate("compile with no model.mil in NSTemporaryDirectory()/<hexStringIdentifier>");
        if (!self->weights.empty() && stat((td + "/weights/weight.bin").c_str(), &sb) != 0)
          violate("compile with no weights/weight.bin in the model directory");
        self->compiled = true;
        s.compiled[hex_id(self)] = self->weights;
        return reinterpret_cast<void*>(1);
      }
      if (!self->compiled && !s.compiled.count(hex_id(self)))
        return reinterpret_cast<void*>(static_cast<intptr_t>(fail_with(err, 23, "program not found")));
      if (s.loaded >= s.load_cap) return reinterpret_cast<void*>(static_cast<intptr_t>(fail_with(err, 6, "program load failure (0x1)")));
      self->loaded = true;
      ++s.loaded;
      return reinterpret_cast<void*>(1);
    }
    if (sel == "evaluateWithQoS:options:request:error:") {
      va_arg(ap, Obj*);
      Obj* req = va_arg(ap, Obj*);
      void** err = va_arg(ap, void**);
      if (injected(sel, &code, &msg)) return reinterpret_cast<void*>(static_cast<intptr_t>(fail_with(err, code, msg)));
      return reinterpret_cast<void*>(static_cast<intptr_t>(evaluate(self, req, err)));
    }
    if (sel == "unloadWithQoS:error:") {
      if (self->loaded) --s.loaded;
      self->loaded = false;
      return reinterpret_cast<void*>(1);
    }
  }
  violate("unexpected message " + sel + " to " + (cls ? cls->name : self->cls->name));
  return nullptr;
}

}  // namespace

extern "C" {

// ---- control API ----
void af_double_reset() {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  auto& s = st();
  s.graveyard.insert(s.graveyard.end(), s.objs.begin(), s.objs.end());  // tests may still hold pointers
  s.objs.clear();
  for (Obj* o : immortals()) s.objs.insert(o);
  s.pools.clear();
  s.violations.clear();
  s.corrupt_weights = false;
  s.log.clear();
  s.failures.clear();
  s.calls.clear();
  s.compiled.clear();
  s.load_cap = 128;
  s.loaded = 0;
}
void af_double_fail(const char* what, int code, const char* message, int nth) {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  st().failures[what] = Failure{code, message ? message : "", nth};
}
void af_double_set_load_cap(int n) { std::lock_guard<std::recursive_mutex> l(st().mu); st().load_cap = n; }
void af_double_set_compute(dbl::ComputeFn fn) { std::lock_guard<std::recursive_mutex> l(st().mu); st().compute = fn; }
void af_double_corrupt_weights(int on) { std::lock_guard<std::recursive_mutex> l(st().mu); st().corrupt_weights = on != 0; }
void af_double_set_tmpdir(const char* d) { std::lock_guard<std::recursive_mutex> l(st().mu); st().tmpdir = d; }
int af_double_live() {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  int n = 0;
  for (Obj* o : st().objs) n += o->refs > 0;
  return n - static_cast<int>(immortals().size());
}
// Surfaces that input objects of two or more live requests hold (one buffer several programs read).
int af_double_shared_input_buffers() {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  std::map<Obj*, std::set<Obj*>> readers;
  for (Obj* r : st().objs)
    if (r->cls == &kRequest && r->refs > 0 && !r->arrays.empty())
      for (Obj* io : r->arrays[0]->items) readers[io->child].insert(r);
  int n = 0;
  for (auto& e : readers) n += e.second.size() >= 2;
  return n;
}
int af_double_calls(const char* what) { std::lock_guard<std::recursive_mutex> l(st().mu); return st().calls[what]; }
const char* af_double_violations() {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  st().report.clear();
  for (auto& v : st().violations) st().report += v + "\n";
  return st().report.c_str();
}
const char* af_double_log() {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  st().report.clear();
  for (auto& v : st().log) st().report += v + "\n";
  return st().report.c_str();
}

// ---- Objective-C runtime ----
void* objc_getClass(const char* name) {
  for (Cls* c : kClasses)
    if (std::strcmp(c->name, name) == 0) return c;
  return nullptr;
}
void* sel_registerName(const char* name) {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  auto& m = st().sels;
  auto it = m.emplace(name, name).first;
  return const_cast<char*>(it->second.c_str());
}
void* objc_msgSend(void* self, void* sel, ...) {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  va_list ap;
  va_start(ap, sel);
  void* r = self ? dispatch(static_cast<Obj*>(self), static_cast<const char*>(sel), ap) : nullptr;
  va_end(ap);
  return r;
}
void* objc_autoreleasePoolPush() {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  st().pools.emplace_back();
  return reinterpret_cast<void*>(st().pools.size());
}
void objc_autoreleasePoolPop(void* token) {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  auto& pools = st().pools;
  if (reinterpret_cast<size_t>(token) != pools.size()) {
    violate("autorelease pools popped out of order");
    return;
  }
  std::vector<Obj*> objs = std::move(pools.back());
  pools.pop_back();
  for (Obj* o : objs) release(o, "autorelease pool");
}
void* objc_retain(void* o) {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  Obj* x = static_cast<Obj*>(o);
  if (!valid(x)) violate("objc_retain of a released or unknown object");
  else ++x->refs;
  return o;
}
void objc_release(void* o) {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  release(static_cast<Obj*>(o), "objc_release");
}

// ---- Foundation, CoreFoundation, IOSurface ----
void* NSTemporaryDirectory() {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  if (st().tmpdir.empty()) {
    const char* t = std::getenv("TMPDIR");
    st().tmpdir = std::string(t && *t ? t : "/tmp") + "/";
  }
  return autoreleased(make_str(st().tmpdir));
}
void CFRelease(const void* o) {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  release(static_cast<Obj*>(const_cast<void*>(o)), "CFRelease");
}
const void* CFRetain(const void* o) {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  Obj* x = static_cast<Obj*>(const_cast<void*>(o));
  if (!valid(x)) violate("CFRetain of a released or unknown object");
  else ++x->refs;
  return o;
}
void* kIOSurfaceWidth = immortal("IOSurfaceWidth");
void* kIOSurfaceHeight = immortal("IOSurfaceHeight");
void* kIOSurfaceBytesPerElement = immortal("IOSurfaceBytesPerElement");
void* kIOSurfaceBytesPerRow = immortal("IOSurfaceBytesPerRow");
void* kIOSurfaceAllocSize = immortal("IOSurfaceAllocSize");
void* kIOSurfacePixelFormat = immortal("IOSurfacePixelFormat");

void* IOSurfaceCreate(void* props) {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  Obj* d = static_cast<Obj*>(props);
  auto n = [&](const char* key) -> int64_t {
    Obj* v = dict_get(d, key);
    return v ? static_cast<int64_t>(v->number) : -1;
  };
  int64_t w = n("IOSurfaceWidth"), size = n("IOSurfaceAllocSize");
  if (w <= 0 || n("IOSurfaceHeight") != 1 || n("IOSurfaceBytesPerElement") != 1 || n("IOSurfaceBytesPerRow") != w ||
      size != w || n("IOSurfacePixelFormat") != 0) {
    violate("IOSurfaceCreate with properties other than width = row bytes = alloc size, height 1, 1 byte per "
            "element, pixel format 0");
    return nullptr;
  }
  Obj* s = alloc(&kIOSurface);
  s->bytes.assign(static_cast<size_t>(size), '\x7f');  // not zeroed
  return s;
}
int IOSurfaceLock(void* s, uint32_t, uint32_t*) {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  Obj* x = static_cast<Obj*>(s);
  if (!valid(x) || x->cls != &kIOSurface) return violate("IOSurfaceLock of a dead surface"), 1;
  ++x->locks;
  return 0;
}
int IOSurfaceUnlock(void* s, uint32_t, uint32_t*) {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  Obj* x = static_cast<Obj*>(s);
  if (!valid(x) || x->locks == 0) return violate("IOSurfaceUnlock without a lock"), 1;
  --x->locks;
  return 0;
}
void* IOSurfaceGetBaseAddress(void* s) {
  std::lock_guard<std::recursive_mutex> lock(st().mu);
  Obj* x = static_cast<Obj*>(s);
  if (!valid(x)) return violate("IOSurfaceGetBaseAddress of a dead surface"), nullptr;
  if (!x->locks) violate("IOSurfaceGetBaseAddress without a lock");
  return &x->bytes[0];
}

}  // extern "C"
