// The in-memory path: AppleNeuralEngine.framework's _ANEInMemoryModel, driven through the
// Objective-C runtime's C API (objc_getClass, sel_registerName, objc_msgSend cast to each
// method's exact prototype), so it is plain C++ that builds and is tested on any system.
// Sequence and rules (MIL text as NSData, weights dict never nil, QoS 21, one reusable
// request over IOSurfaces bound in alphabetical order of MIL names, equal surface sizes)
// follow the public record cited in docs/engine.md.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "aneforge/durable.h"
#include "aneforge/error.h"
#include "engine/dylib.h"
#include "engine/loaded.h"

#if defined(__clang__)
#define AF_NO_SANITIZE_FUNCTION __attribute__((no_sanitize("function")))
#else
#define AF_NO_SANITIZE_FUNCTION
#endif

namespace af::engine {
namespace {

using Id = void*;
using Sel = void*;
using Bool = signed char;  // BOOL: its low byte is the value on every Apple ABI
constexpr unsigned kQoS = 21;  // the default lane, what working projects use
constexpr uint32_t kLockReadOnly = 1;

struct ObjcApi {
  std::vector<Library> libs;
  Id (*get_class)(const char*) = nullptr;
  Sel (*sel)(const char*) = nullptr;
  void* msg_send = nullptr;
  void* (*pool_push)() = nullptr;
  void (*pool_pop)(void*) = nullptr;
  Id (*retain)(Id) = nullptr;
  void (*release)(Id) = nullptr;
  Id (*temp_dir)() = nullptr;  // NSTemporaryDirectory
  void (*cf_release)(const void*) = nullptr;
  const void* (*cf_retain)(const void*) = nullptr;
  Id (*surface_create)(Id) = nullptr;
  int (*surface_lock)(Id, uint32_t, uint32_t*) = nullptr;
  int (*surface_unlock)(Id, uint32_t, uint32_t*) = nullptr;
  void* (*surface_base)(Id) = nullptr;
  Id k_width = nullptr, k_height = nullptr, k_bpe = nullptr, k_bpr = nullptr, k_alloc = nullptr, k_format = nullptr;
  std::string missing, library;

  template <class Fn>
  void need(Fn& fn, const char* name) {
    for (auto& l : libs)
      if (l.bind(fn, name)) return;
    if (missing.empty()) missing = name;
  }
  void need_key(Id& key, const char* name) {  // a CFStringRef constant
    Id* p = nullptr;
    need(p, name);
    if (p) key = *p;
  }
  // objc_msgSend is called through a pointer cast to each method's own type, as Apple's
  // <objc/message.h> prescribes; clang's -fsanitize=function would flag every such call.
  template <class R, class... A>
  AF_NO_SANITIZE_FUNCTION R call(Id recv, const char* selector, A... args) const {
    return reinterpret_cast<R (*)(Id, Sel, A...)>(msg_send)(recv, sel(selector), args...);
  }
  Id cls(const char* name) const {
    Id c = get_class(name);
    if (!c) throw EngineError(std::string("Objective-C class ") + name + " is missing");
    return c;
  }
  // Foundation objects (autoreleased).
  Id data(const void* p, size_t n) const { return call<Id>(cls("NSData"), "dataWithBytes:length:", p, n); }
  Id str(const std::string& s) const { return call<Id>(cls("NSString"), "stringWithUTF8String:", s.c_str()); }
  Id num(unsigned v) const { return call<Id>(cls("NSNumber"), "numberWithUnsignedInt:", v); }
  Id dict(const std::vector<Id>& keys, const std::vector<Id>& vals) const {
    return call<Id>(cls("NSDictionary"), "dictionaryWithObjects:forKeys:count:", vals.data(), keys.data(),
                    static_cast<unsigned long>(keys.size()));
  }
  Id array(const std::vector<Id>& items) const {
    return call<Id>(cls("NSArray"), "arrayWithObjects:count:", items.data(), static_cast<unsigned long>(items.size()));
  }
  std::string utf8(Id nsstring) const {
    if (!nsstring) return "";
    const char* s = call<const char*>(nsstring, "UTF8String");
    return s ? s : "";
  }
};

std::vector<std::string> library_paths() {
  std::string one = env("ANEFORGE_ENGINE_OBJC");
  if (!one.empty()) return {one};
  return {"/usr/lib/libobjc.A.dylib", "/System/Library/Frameworks/Foundation.framework/Foundation",
          "/System/Library/Frameworks/CoreFoundation.framework/CoreFoundation",
          "/System/Library/Frameworks/IOSurface.framework/IOSurface",
          "/System/Library/PrivateFrameworks/AppleNeuralEngine.framework/AppleNeuralEngine"};
}

std::shared_ptr<ObjcApi> open_api(std::string* why) {
  static std::mutex mu;
  static std::vector<std::shared_ptr<ObjcApi>> opened;
  std::lock_guard<std::mutex> lock(mu);
  auto paths = library_paths();
  for (auto& a : opened)
    if (a->library == paths.back()) {
      if (!a->missing.empty()) *why = a->missing;
      return a->missing.empty() ? a : nullptr;
    }
  auto a = std::make_shared<ObjcApi>();
  a->library = paths.back();
  opened.push_back(a);
  for (const auto& p : paths) {
    Library l(p);
    if (!l.loaded()) {
      a->missing = "cannot open " + p + " (" + l.error() + ")";
      *why = a->missing;
      return nullptr;
    }
    a->libs.push_back(std::move(l));
  }
  a->need(a->get_class, "objc_getClass");
  a->need(a->sel, "sel_registerName");
  a->need(a->msg_send, "objc_msgSend");
  a->need(a->pool_push, "objc_autoreleasePoolPush");
  a->need(a->pool_pop, "objc_autoreleasePoolPop");
  a->need(a->retain, "objc_retain");
  a->need(a->release, "objc_release");
  a->need(a->temp_dir, "NSTemporaryDirectory");
  a->need(a->cf_release, "CFRelease");
  a->need(a->cf_retain, "CFRetain");
  a->need(a->surface_create, "IOSurfaceCreate");
  a->need(a->surface_lock, "IOSurfaceLock");
  a->need(a->surface_unlock, "IOSurfaceUnlock");
  a->need(a->surface_base, "IOSurfaceGetBaseAddress");
  a->need_key(a->k_width, "kIOSurfaceWidth");
  a->need_key(a->k_height, "kIOSurfaceHeight");
  a->need_key(a->k_bpe, "kIOSurfaceBytesPerElement");
  a->need_key(a->k_bpr, "kIOSurfaceBytesPerRow");
  a->need_key(a->k_alloc, "kIOSurfaceAllocSize");
  a->need_key(a->k_format, "kIOSurfacePixelFormat");
  if (a->missing.empty())
    for (const char* c : {"_ANEInMemoryModelDescriptor", "_ANEInMemoryModel", "_ANERequest", "_ANEIOSurfaceObject"})
      if (!a->get_class(c)) {
        a->missing = std::string("class ") + c + " is missing";
        break;
      }
  if (!a->missing.empty()) {
    *why = a->library + ": " + a->missing;
    return nullptr;
  }
  return a;
}

// Where a port's elements sit in its surface, as the loaded model reports it
// (modelAttributes -> NetworkStatusList[0] -> LiveInputList / LiveOutputList, the way
// electricapp/ane-bridge-rs c/src/ane_bridge.m and sbryngelson/ANEForge
// aneforge/_invokers/layer_invoker.mm read it): NCHW (NCDHW) with byte strides; rows are
// padded (to 64 bytes on the machines reported), so a packed copy would be wrong.
struct SurfaceLayout {
  uint64_t n = 1, c = 1, d = 1, h = 1, w = 1, elem = 2;
  uint64_t row = 0, depth = 0, plane = 0, batch = 0;
  uint64_t bytes() const { return n * batch; }
  bool operator==(const SurfaceLayout&) const = default;
  template <class F>
  void rows(F&& f) const {  // f(packed offset, surface offset) for each row of w elements
    for (uint64_t in = 0; in < n; ++in)
      for (uint64_t ic = 0; ic < c; ++ic)
        for (uint64_t id = 0; id < d; ++id)
          for (uint64_t ih = 0; ih < h; ++ih)
            f(static_cast<size_t>((((in * c + ic) * d + id) * h + ih) * w * elem),
              static_cast<size_t>(in * batch + ic * plane + id * depth + ih * row));
  }
};

// An autorelease pool for the scope.
struct Pool {
  const ObjcApi& a;
  void* p;
  explicit Pool(const ObjcApi& api) : a(api), p(api.pool_push()) {}
  ~Pool() { a.pool_pop(p); }
};

class InMemoryProgram final : public Loaded {
 public:
  InMemoryProgram(std::shared_ptr<ObjcApi> api, const ProgramFiles& f) : a_(std::move(api)), f_(f) {
    try {
      load();
    } catch (...) {
      release_all();
      throw;
    }
  }
  ~InMemoryProgram() override { release_all(); }

  // Packed data in `stage_`, copied row by row into the surface at the reported strides.
  void write_input(size_t i, const std::function<void(void*)>& fill) override {
    const SurfaceLayout& l = in_layout_.at(i);
    stage_.assign(f_.inputs[i].bytes, 0);
    fill(stage_.data());
    Id s = in_surf_[i];
    if (a_->surface_lock(s, 0, nullptr) != 0) throw EngineError("IOSurfaceLock failed for input '" + f_.inputs[i].name + "'");
    char* base = static_cast<char*>(a_->surface_base(s));
    l.rows([&](size_t packed, size_t at) { std::memcpy(base + at, stage_.data() + packed, l.w * l.elem); });
    a_->surface_unlock(s, 0, nullptr);
  }

  void read_output(size_t j, const std::function<void(const void*)>& read) override {
    read_surface(out_surf_[j], out_layout_.at(j), f_.outputs[j], "output", read);
  }

  // Only the surface rows the range touches are written.
  void write_input_range(size_t i, size_t offset, const void* src, size_t n) override {
    const SurfaceLayout& l = in_layout_.at(i);
    Id s = in_surf_[i];
    if (a_->surface_lock(s, 0, nullptr) != 0) throw EngineError("IOSurfaceLock failed for input '" + f_.inputs[i].name + "'");
    char* base = static_cast<char*>(a_->surface_base(s));
    const size_t row = l.w * l.elem, end = offset + n;
    l.rows([&](size_t packed, size_t at) {
      size_t lo = std::max(packed, offset), hi = std::min(packed + row, end);
      if (lo < hi) std::memcpy(base + at + (lo - packed), static_cast<const char*>(src) + (lo - offset), hi - lo);
    });
    a_->surface_unlock(s, 0, nullptr);
  }

  void read_input(size_t i, const std::function<void(const void*)>& read) override {
    read_surface(in_surf_[i], in_layout_.at(i), f_.inputs[i], "input", read);
  }

  // A port's surface copied row by row (at its strides) into packed `stage_`, then read.
  void read_surface(Id s, const SurfaceLayout& l, const Port& port, const char* what,
                    const std::function<void(const void*)>& read) {
    stage_.assign(port.bytes, 0);
    if (a_->surface_lock(s, kLockReadOnly, nullptr) != 0)
      throw EngineError(std::string("IOSurfaceLock failed for ") + what + " '" + port.name + "'");
    const char* base = static_cast<const char*>(a_->surface_base(s));
    l.rows([&](size_t packed, size_t at) { std::memcpy(stage_.data() + packed, base + at, l.w * l.elem); });
    a_->surface_unlock(s, kLockReadOnly, nullptr);
    read(stage_.data());
  }

  void alias(size_t out, size_t in) override {
    if (ran_) throw EngineError("alias: resident state must be set up before the first run");
    if (f_.outputs.at(out).alloc_bytes != f_.inputs.at(in).alloc_bytes || f_.outputs[out].dtype != f_.inputs[in].dtype ||
        !(out_layout_.at(out) == in_layout_.at(in)))
      throw ValueError("alias: output '" + f_.outputs[out].name + "' and input '" + f_.inputs[in].name +
                       "' differ in type, size or engine layout");
    Pool pool(*a_);
    // The input's surface goes; the output's serves both ports.
    a_->release(in_obj_[in]);
    a_->cf_release(in_surf_[in]);
    in_surf_[in] = out_surf_[out];
    in_obj_[in] = a_->retain(out_obj_[out]);
    a_->cf_retain(in_surf_[in]);  // one reference per slot, released per slot
    build_request();
  }

  // One IOSurface in both requests, where the two programs' surfaces have one size (a
  // request's surfaces must all be the size, mechramc/Orion docs/ane_constraints.md) and the
  // engine lays the two ports out alike; else false (a copy per program).
  bool share_input(size_t i, Loaded& src_loaded, size_t src_i) override {
    auto* src = dynamic_cast<InMemoryProgram*>(&src_loaded);
    if (!src || surface_size_ != src->surface_size_ || !(in_layout_.at(i) == src->in_layout_.at(src_i)) ||
        f_.inputs[i].dtype != src->f_.inputs[src_i].dtype)
      return false;
    if (ran_) throw EngineError("share_input: shared inputs must be set up before the first run");
    Pool pool(*a_);
    a_->release(in_obj_[i]);
    a_->cf_release(in_surf_[i]);
    in_surf_[i] = src->in_surf_[src_i];
    in_obj_[i] = a_->retain(src->in_obj_[src_i]);
    a_->cf_retain(in_surf_[i]);  // one reference per slot, released per slot
    build_request();
    return true;
  }

  void execute() override {
    Pool pool(*a_);
    Id err = nullptr;
    Bool ok = a_->call<Bool>(model_, "evaluateWithQoS:options:request:error:", kQoS, a_->dict({}, {}), request_, &err);
    if (!ok) fail("evaluate", err);
    ran_ = true;
  }

 private:
  [[noreturn]] void fail(const std::string& what, Id err) {
    std::string detail = "no NSError";
    if (err) {
      long code = a_->call<long>(err, "code");
      detail = "code " + std::to_string(code) + ": " + a_->utf8(a_->call<Id>(err, "localizedDescription"));
    }
    throw EngineError("_ANEInMemoryModel " + what + " failed (" + detail + ") [program " + f_.mil_path + ", target " +
                      f_.target + "]");
  }

  void load() {
    Pool pool(*a_);
    Id text = a_->data(f_.mil_text.data(), f_.mil_text.size());
    Id weights = f_.weights.empty()
                     ? a_->dict({}, {})  // never nil: a nil weights dict gives a nil descriptor
                     : a_->dict({a_->str("@model_path/weights/weight.bin")},
                                {a_->dict({a_->str("offset"), a_->str("data")},
                                          {a_->num(0), a_->data(f_.weights.data(), f_.weights.size())})});
    Id desc = a_->call<Id>(a_->cls("_ANEInMemoryModelDescriptor"), "modelWithMILText:weights:optionsPlist:", text,
                           weights, static_cast<Id>(nullptr));
    if (!desc) throw EngineError("_ANEInMemoryModelDescriptor refused the MIL text [program " + f_.mil_path + "]");
    model_ = a_->call<Id>(a_->cls("_ANEInMemoryModel"), "inMemoryModelWithDescriptor:", desc);
    if (!model_) throw EngineError("_ANEInMemoryModel refused the descriptor [program " + f_.mil_path + "]");
    a_->retain(model_);
    write_model_directory();
    Id err = nullptr;
    if (!a_->call<Bool>(model_, "compiledModelExists") &&
        !a_->call<Bool>(model_, "compileWithQoS:options:error:", kQoS, a_->dict({}, {}), &err))
      fail("compile", err);
    err = nullptr;
    if (!a_->call<Bool>(model_, "loadWithQoS:options:error:", kQoS, a_->dict({}, {}), &err)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // one retry, as working projects do
      err = nullptr;
      if (!a_->call<Bool>(model_, "loadWithQoS:options:error:", kQoS, a_->dict({}, {}), &err)) fail("load", err);
    }
    loaded_ = true;
    read_layouts();
    std::vector<Port> all = f_.inputs;
    all.insert(all.end(), f_.outputs.begin(), f_.outputs.end());
    uint64_t need = 0;
    for (const auto* ls : {&in_layout_, &out_layout_})
      for (const auto& l : *ls) need = std::max(need, l.bytes());
    surface_size_ = std::max(surface_bytes(all), (need + 16383) / 16384 * 16384);  // one size for every surface
    for (size_t i = 0; i < f_.inputs.size(); ++i) add_surface(in_surf_, in_obj_);
    for (size_t j = 0; j < f_.outputs.size(); ++j) add_surface(out_surf_, out_obj_);
    build_request();
  }

  // Each port's layout from the loaded model, checked against the program before any run.
  void read_layouts() {
    Pool pool(*a_);
    auto key = [&](Id dict, const char* k) { return a_->call<Id>(dict, "objectForKey:", a_->str(k)); };
    auto number = [&](Id dict, const char* k, bool required) -> uint64_t {
      Id v = key(dict, k);
      if (!v && required) throw EngineError(std::string("_ANEInMemoryModel's port layout lacks ") + k + " [program " + f_.mil_path + "]");
      return v ? a_->call<unsigned long long>(v, "unsignedLongLongValue") : 1;
    };
    Id attrs = a_->call<Id>(model_, "modelAttributes");
    Id list = attrs ? key(attrs, "NetworkStatusList") : nullptr;
    Id status = list && a_->call<unsigned long>(list, "count") > 0 ? a_->call<Id>(list, "objectAtIndex:", 0ul) : nullptr;
    if (!status)
      throw EngineError("_ANEInMemoryModel reports no NetworkStatusList after load: the surface layout is unknown [program " +
                        f_.mil_path + "]");
    auto read = [&](const std::vector<Port>& ports, const char* which, std::vector<SurfaceLayout>& out) {
      Id live = key(status, which);
      unsigned long count = live ? a_->call<unsigned long>(live, "count") : 0;
      out.assign(ports.size(), {});
      std::vector<bool> found(ports.size(), false);
      for (unsigned long k = 0; k < count; ++k) {
        Id e = a_->call<Id>(live, "objectAtIndex:", k);
        std::string name = a_->utf8(key(e, "Name"));
        if (name.size() > 7 && name.compare(name.size() - 7, 7, "@output") == 0) name.resize(name.size() - 7);
        for (size_t i = 0; i < ports.size(); ++i) {
          if (ports[i].name != name) continue;
          SurfaceLayout l;
          l.elem = element_bytes(ports[i].dtype);
          l.n = number(e, "Batches", true), l.c = number(e, "Channels", true), l.d = number(e, "Depth", false);
          l.h = number(e, "Height", true), l.w = number(e, "Width", true);
          l.row = number(e, "RowStride", true), l.plane = number(e, "PlaneStride", true);
          l.batch = number(e, "BatchStride", true);
          l.depth = l.d > 1 ? number(e, "DepthStride", true) : l.h * l.row;
          uint64_t count_here = 1;
          bool overflow = false;
          for (uint64_t dim : {l.n, l.c, l.d, l.h, l.w}) overflow |= __builtin_mul_overflow(count_here, dim, &count_here);
          for (uint64_t stride : {l.row, l.depth, l.plane, l.batch}) overflow |= stride > (1ull << 32);  // so each product below fits in 64 bits
          // Padding at most 64x the data (a one-element fp16 row padded to 64 bytes is 32x) and
          // a surface size IOSurface takes: what the engine reports is checked before use.
          if (overflow || count_here * l.elem != ports[i].bytes || l.row < l.w * l.elem || l.depth < l.h * l.row ||
              l.plane < l.d * l.depth || l.batch < l.c * l.plane || l.n > (1u << 20) ||
              l.batch > 64 * ports[i].bytes + (1u << 20) || l.bytes() > 0x7fffffffu)
            throw EngineError("port '" + name + "': the engine's layout (" + std::to_string(l.n) + "x" + std::to_string(l.c) +
                              "x" + std::to_string(l.d) + "x" + std::to_string(l.h) + "x" + std::to_string(l.w) +
                              ", row " + std::to_string(l.row) + " B) does not hold the program's " +
                              std::to_string(ports[i].bytes) + " bytes [program " + f_.mil_path + "]");
          out[i] = l;
          found[i] = true;
        }
      }
      for (size_t i = 0; i < ports.size(); ++i)
        if (!found[i])
          throw EngineError(std::string("_ANEInMemoryModel reports no layout for port '") + ports[i].name + "' in " + which +
                            " [program " + f_.mil_path + "]");
    };
    read(f_.inputs, "LiveInputList", in_layout_);
    read(f_.outputs, "LiveOutputList", out_layout_);
    std::vector<std::string> lines;
    auto describe = [&](const std::vector<Port>& ports, const std::vector<SurfaceLayout>& ls, const char* kind) {
      for (size_t i = 0; i < ports.size(); ++i) {
        const SurfaceLayout& l = ls[i];
        lines.push_back(std::string(kind) + " " + ports[i].name + ": " + std::to_string(l.n) + "x" + std::to_string(l.c) +
                        "x" + std::to_string(l.d) + "x" + std::to_string(l.h) + "x" + std::to_string(l.w) +
                        " row " + std::to_string(l.row) + " plane " + std::to_string(l.plane) + " batch " +
                        std::to_string(l.batch) + " bytes");
      }
    };
    describe(f_.inputs, in_layout_, "input");
    describe(f_.outputs, out_layout_, "output");
    record_port_report(std::move(lines));
  }

  // The framework compiles from NSTemporaryDirectory()/<hexStringIdentifier>: model.mil and
  // the weights there, as every working project prepares it.
  void write_model_directory() {
    std::string dir = a_->utf8(a_->temp_dir());
    std::string hex = a_->utf8(a_->call<Id>(model_, "hexStringIdentifier"));
    if (dir.empty() || hex.empty() || hex.find('/') != std::string::npos)
      throw EngineError("_ANEInMemoryModel gave no usable identifier or temporary directory");
    if (dir.back() != '/') dir += '/';
    std::string td = dir + hex;
    for (const std::string& d : {td, td + "/weights"})
      if (mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) throw IOError("cannot create " + d);
    auto same = [](const std::string&) { return true; };
    io::write_file(td + "/model.mil", f_.mil_text, same);
    if (!f_.weights.empty()) io::write_file(td + "/weights/weight.bin", f_.weights, same);
  }

  void add_surface(std::vector<Id>& surfs, std::vector<Id>& objs) {
    unsigned n = static_cast<unsigned>(surface_size_);
    Id props = a_->dict({a_->k_width, a_->k_height, a_->k_bpe, a_->k_bpr, a_->k_alloc, a_->k_format},
                        {a_->num(n), a_->num(1), a_->num(1), a_->num(n), a_->num(n), a_->num(0)});
    Id s = a_->surface_create(props);
    if (!s) throw EngineError("IOSurfaceCreate failed for " + std::to_string(n) + " bytes");
    surfs.push_back(s);
    Id o = a_->call<Id>(a_->cls("_ANEIOSurfaceObject"), "objectWithIOSurface:", s);
    if (!o) throw EngineError("_ANEIOSurfaceObject refused a surface");
    objs.push_back(a_->retain(o));
    a_->surface_lock(s, 0, nullptr);
    std::memset(a_->surface_base(s), 0, surface_size_);
    a_->surface_unlock(s, 0, nullptr);
  }

  // Surfaces bind to the MIL inputs and outputs in alphabetical order of their names.
  void build_request() {
    Pool pool(*a_);
    auto ordered = [&](const std::vector<Port>& ports, const std::vector<Id>& objs, std::vector<Id>& items,
                       std::vector<Id>& idx) {
      auto order = alphabetical_order(ports);
      for (size_t k = 0; k < order.size(); ++k) {
        items.push_back(objs[order[k]]);
        idx.push_back(a_->num(static_cast<unsigned>(k)));
      }
    };
    std::vector<Id> ins, in_idx, outs, out_idx;
    ordered(f_.inputs, in_obj_, ins, in_idx);
    ordered(f_.outputs, out_obj_, outs, out_idx);
    Id req = a_->call<Id>(a_->cls("_ANERequest"),
                          "requestWithInputs:inputIndices:outputs:outputIndices:weightsBuffer:perfStats:procedureIndex:",
                          a_->array(ins), a_->array(in_idx), a_->array(outs), a_->array(out_idx), static_cast<Id>(nullptr),
                          static_cast<Id>(nullptr), a_->num(0));
    if (!req) throw EngineError("_ANERequest refused the surfaces");
    if (request_) a_->release(request_);
    request_ = a_->retain(req);
  }

  // Unload first, then the request and the surfaces, then the model: the order of maderix/ANE
  // training/ane_runtime.h and mechramc/Orion core/ane_runtime.m.
  void release_all() {
    Pool pool(*a_);
    if (model_ && loaded_) {
      Id err = nullptr;
      a_->call<Bool>(model_, "unloadWithQoS:error:", kQoS, &err);  // always, or resources leak
      loaded_ = false;
    }
    if (request_) a_->release(request_);
    request_ = nullptr;
    for (Id o : in_obj_) a_->release(o);
    for (Id o : out_obj_) a_->release(o);
    for (Id s : in_surf_) a_->cf_release(s);
    for (Id s : out_surf_) a_->cf_release(s);
    in_obj_.clear(), out_obj_.clear(), in_surf_.clear(), out_surf_.clear();
    if (model_) a_->release(model_);
    model_ = nullptr;
  }

  std::shared_ptr<ObjcApi> a_;
  ProgramFiles f_;
  Id model_ = nullptr, request_ = nullptr;
  std::vector<Id> in_surf_, out_surf_, in_obj_, out_obj_;
  uint64_t surface_size_ = 0;
  std::vector<SurfaceLayout> in_layout_, out_layout_;
  std::vector<char> stage_;  // one port's packed bytes on their way in or out
  bool loaded_ = false, ran_ = false;
};

}  // namespace

bool inmemory_present(std::string* library, std::string* why) {
  *library = library_paths().back();
  return open_api(why) != nullptr;
}

std::unique_ptr<Loaded> load_inmemory(const ProgramFiles& f, std::string* why) {
  auto api = open_api(why);
  if (!api) return nullptr;
  return std::make_unique<InMemoryProgram>(std::move(api), f);
}

}  // namespace af::engine
