// The e5rt path: Espresso's C API, reached through dlopen/dlsym. Call order, argument order
// (constructors take the out-pointer first, retain_/get_ and compile take it last), release
// through a pointer to the handle, and return codes tested on their low 32 bits follow the
// public reverse-engineering record (docs/engine.md cites it).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "aneforge/error.h"
#include "engine/dylib.h"
#include "engine/loaded.h"

namespace af::engine {
namespace {

using H = void*;
using Rc = int64_t;

struct E5rt {
  Library lib;
  Rc (*config_create)(H*) = nullptr;
  Rc (*config_set_cache)(H, const char*) = nullptr;
  Rc (*compiler_create)(H*, H) = nullptr;
  Rc (*options_create)(H*) = nullptr;
  Rc (*options_set_mask)(H, uint64_t) = nullptr;
  Rc (*options_set_force)(H, int) = nullptr;
  Rc (*options_set_segmenter)(H, const char*) = nullptr;
  Rc (*compile)(H, const char*, H, H*) = nullptr;
  Rc (*retain_function)(H, const char*, H*) = nullptr;
  Rc (*opopts_create)(H*, H) = nullptr;
  Rc (*opopts_set_name)(H, const char*) = nullptr;
  Rc (*opopts_set_alloc)(H, int) = nullptr;
  Rc (*op_create)(H*, H) = nullptr;
  Rc (*retain_input_port)(H, const char*, H*) = nullptr;
  Rc (*retain_output_port)(H, const char*, H*) = nullptr;
  Rc (*buffer_alloc)(H*, uint64_t, uint32_t) = nullptr;
  Rc (*buffer_data)(H, void**) = nullptr;
  Rc (*bind_buffer)(H, H) = nullptr;
  Rc (*event_create)(H*, const char*, uint32_t) = nullptr;
  Rc (*bind_event)(H, H) = nullptr;
  Rc (*stream_create)(H*) = nullptr;
  Rc (*encode)(H, H) = nullptr;
  Rc (*execute_sync)(H) = nullptr;
  const char* (*last_error)() = nullptr;  // optional
  // Port descriptors (optional; checked at load when all are present). Apple's own clients call
  // retain_tensor_desc, get_shape/get_strides and the dtype's element size; their C signatures
  // are not published: shape and strides come back as a count and a pointer to the values,
  // in an order the public decompiles do not settle (see check_descriptor).
  Rc (*port_retain_desc)(H, H*) = nullptr;
  Rc (*desc_get_shape)(H, uint64_t*, uint64_t*) = nullptr;
  Rc (*desc_get_strides)(H, uint64_t*, uint64_t*) = nullptr;
  Rc (*desc_retain_dtype)(H, H*) = nullptr;
  Rc (*dtype_element_size)(H, uint64_t*) = nullptr;
  Rc (*dtype_release)(H*) = nullptr;
  Rc (*desc_release)(H*) = nullptr;
  bool has_descriptors() const {
    return port_retain_desc && desc_get_shape && desc_get_strides && desc_retain_dtype && dtype_element_size &&
           dtype_release && desc_release;
  }
  Rc (*release_config)(H*) = nullptr;
  Rc (*release_compiler)(H*) = nullptr;
  Rc (*release_options)(H*) = nullptr;
  Rc (*release_library)(H*) = nullptr;
  Rc (*release_function)(H*) = nullptr;
  Rc (*release_opopts)(H*) = nullptr;
  Rc (*release_op)(H*) = nullptr;
  Rc (*release_port)(H*) = nullptr;
  Rc (*release_buffer)(H*) = nullptr;
  Rc (*release_event)(H*) = nullptr;
  Rc (*release_stream)(H*) = nullptr;
  std::string missing;  // the first required symbol not found

  template <class Fn>
  void need(Fn& fn, const char* name) {
    if (!lib.bind(fn, name) && missing.empty()) missing = name;
  }
};

std::string library_path() {
  std::string p = env("ANEFORGE_ENGINE_E5RT");
  return p.empty() ? "/System/Library/PrivateFrameworks/Espresso.framework/Espresso" : p;
}

// One API table per library path, for the life of the process.
std::shared_ptr<E5rt> open_api(std::string* why) {
  static std::mutex mu;
  static std::vector<std::shared_ptr<E5rt>> opened;
  std::lock_guard<std::mutex> lock(mu);
  std::string path = library_path();
  for (auto& a : opened)
    if (a->lib.path() == path) {
      if (!a->missing.empty()) *why = path + " lacks " + a->missing;
      return a->missing.empty() ? a : nullptr;
    }
  auto a = std::make_shared<E5rt>();
  a->lib = Library(path);
  if (!a->lib.loaded()) {
    *why = "cannot open " + path + " (" + a->lib.error() + ")";
    return nullptr;
  }
  a->need(a->config_create, "e5rt_e5_compiler_config_options_create");
  a->need(a->config_set_cache, "e5rt_e5_compiler_config_options_set_cache_bundle_location");
  a->need(a->compiler_create, "e5rt_e5_compiler_create_with_config");
  a->need(a->options_create, "e5rt_e5_compiler_options_create");
  a->need(a->options_set_mask, "e5rt_e5_compiler_options_set_compute_device_types_mask");
  a->need(a->options_set_force, "e5rt_e5_compiler_options_set_force_recompilation");
  a->need(a->options_set_segmenter, "e5rt_e5_compiler_options_set_segmenter");
  a->need(a->compile, "e5rt_e5_compiler_compile");
  a->need(a->retain_function, "e5rt_program_library_retain_program_function");
  a->need(a->opopts_create, "e5rt_precompiled_compute_op_create_options_create_with_program_function");
  a->need(a->opopts_set_name, "e5rt_precompiled_compute_op_create_options_set_operation_name");
  a->need(a->opopts_set_alloc, "e5rt_precompiled_compute_op_create_options_set_allocate_intermediate_buffers");
  a->need(a->op_create, "e5rt_execution_stream_operation_create_precompiled_compute_operation_with_options");
  a->need(a->retain_input_port, "e5rt_execution_stream_operation_retain_input_port");
  a->need(a->retain_output_port, "e5rt_execution_stream_operation_retain_output_port");
  a->need(a->buffer_alloc, "e5rt_buffer_object_alloc");
  a->need(a->buffer_data, "e5rt_buffer_object_get_data_ptr");
  a->need(a->bind_buffer, "e5rt_io_port_bind_buffer_object");
  a->need(a->event_create, "e5rt_async_event_create");
  a->need(a->bind_event, "e5rt_execution_stream_operation_bind_completion_event");
  a->need(a->stream_create, "e5rt_execution_stream_create");
  a->need(a->encode, "e5rt_execution_stream_encode_operation");
  a->need(a->execute_sync, "e5rt_execution_stream_execute_sync");
  a->lib.bind(a->last_error, "e5rt_get_last_error_message");
  a->lib.bind(a->port_retain_desc, "e5rt_io_port_retain_tensor_desc");
  a->lib.bind(a->desc_get_shape, "e5rt_tensor_desc_get_shape");
  a->lib.bind(a->desc_get_strides, "e5rt_tensor_desc_get_strides");
  a->lib.bind(a->desc_retain_dtype, "e5rt_tensor_desc_retain_dtype");
  a->lib.bind(a->dtype_element_size, "e5rt_tensor_desc_dtype_get_element_size");
  a->lib.bind(a->dtype_release, "e5rt_tensor_desc_dtype_release");
  a->lib.bind(a->desc_release, "e5rt_tensor_desc_release");
  a->need(a->release_config, "e5rt_e5_compiler_config_options_release");
  a->need(a->release_compiler, "e5rt_e5_compiler_release");
  a->need(a->release_options, "e5rt_e5_compiler_options_release");
  a->need(a->release_library, "e5rt_program_library_release");
  a->need(a->release_function, "e5rt_program_function_release");
  a->need(a->release_opopts, "e5rt_precompiled_compute_op_create_options_release");
  a->need(a->release_op, "e5rt_execution_stream_operation_release");
  a->need(a->release_port, "e5rt_io_port_release");
  a->need(a->release_buffer, "e5rt_buffer_object_release");
  a->need(a->release_event, "e5rt_async_event_release");
  a->need(a->release_stream, "e5rt_execution_stream_release");
  opened.push_back(a);
  if (!a->missing.empty()) {
    *why = path + " lacks " + a->missing;
    return nullptr;
  }
  return a;
}

constexpr uint64_t kAneMask = 0x4;   // compute device: the Neural Engine only (no CPU fallback)
constexpr uint32_t kCpuBuffer = 0;   // buffer type 0: CPU memory the engine maps

class E5rtProgram final : public Loaded {
 public:
  E5rtProgram(std::shared_ptr<E5rt> api, const ProgramFiles& f) : a_(std::move(api)), f_(f) {
    try {
      load();
    } catch (...) {
      release_all();
      throw;
    }
  }
  ~E5rtProgram() override { release_all(); }

  void write_input(size_t i, const std::function<void(void*)>& fill) override { fill(in_data_.at(i)); }
  void read_output(size_t j, const std::function<void(const void*)>& read) override { read(out_data_.at(j)); }
  void write_input_range(size_t i, size_t offset, const void* src, size_t n) override {
    std::memcpy(static_cast<char*>(in_data_.at(i)) + offset, src, n);  // packed: checked at load
  }
  void read_input(size_t i, const std::function<void(const void*)>& read) override { read(in_data_.at(i)); }

  void alias(size_t out, size_t in) override {
    if (encoded_) throw EngineError("alias: resident state must be set up before the first run");
    if (out >= out_buf_.size() || in >= in_buf_.size()) throw ValueError("alias: no such input or output");
    if (f_.outputs[out].alloc_bytes != f_.inputs[in].alloc_bytes || f_.outputs[out].dtype != f_.inputs[in].dtype)
      throw ValueError("alias: output '" + f_.outputs[out].name + "' and input '" + f_.inputs[in].name +
                       "' differ in type or size");
    check(a_->bind_buffer(in_port_[in], out_buf_[out]), "bind the output buffer to the input port");
    // Only once the bind succeeded: the input's own buffer goes, the output's is shared.
    if (in_owned_[in]) a_->release_buffer(&in_buf_[in]);
    in_owned_[in] = false;
    in_buf_[in] = out_buf_[out];
    in_data_[in] = out_data_[out];
  }

  // One program's buffer bound to another's port, as sbryngelson/ANEForge's
  // ane_e5rt_program_share_buffer binds one op's buffer onto another op's input port: bind
  // first, and only then let go of this port's own buffer; the source keeps ownership.
  bool share_input(size_t i, Loaded& src_loaded, size_t src_i) override {
    auto* src = dynamic_cast<E5rtProgram*>(&src_loaded);
    if (!src) return false;
    if (encoded_) throw EngineError("share_input: shared inputs must be set up before the first run");
    if (i >= in_buf_.size() || src_i >= src->in_buf_.size()) throw ValueError("share_input: no such input");
    if (f_.inputs[i].alloc_bytes != src->f_.inputs[src_i].alloc_bytes || f_.inputs[i].dtype != src->f_.inputs[src_i].dtype)
      throw ValueError("share_input: input '" + f_.inputs[i].name + "' and input '" + src->f_.inputs[src_i].name +
                       "' differ in type or size");
    check(a_->bind_buffer(in_port_[i], src->in_buf_[src_i]), "bind another program's buffer to an input port");
    if (in_owned_[i]) a_->release_buffer(&in_buf_[i]);
    in_owned_[i] = false;
    in_buf_[i] = src->in_buf_[src_i];
    in_data_[i] = src->in_data_[src_i];
    return true;
  }

  void execute() override {
    if (!encoded_) {  // encoded once, after every bind
      check(a_->encode(stream_, op_), "encode the operation");
      encoded_ = true;
    }
    check(a_->execute_sync(stream_), "execute");
  }

 private:
  void check(Rc rc, const char* what) {
    if (static_cast<int32_t>(rc) == 0) return;
    const char* msg = a_->last_error ? a_->last_error() : nullptr;
    throw EngineError(std::string("e5rt: ") + what + " failed (code " + std::to_string(static_cast<int32_t>(rc)) +
                      (msg && *msg ? "): " + std::string(msg) : "; the engine gave no message)") +
                      " [program " + f_.mil_path + ", target " + f_.target + "]");
  }

  void load() {
    // Compile for the host engine, as sbryngelson/ANEForge's compile_and_build_op does
    // (aneforge/_lib/ane_e5rt_dispatch.mm): no TargetArchitecture (a library compiled for
    // another target fails to load here; the target table gates and cross-compiles only),
    // force_recompilation 1 (a bundle compiled by another process fails to load: "Must
    // re-compile the E5 bundle"), into a bundle folder this load creates and removes.
    H cfg = nullptr, compiler = nullptr, opts = nullptr;
    struct Guard {
      E5rt* a; H* cfg; H* compiler; H* opts;
      ~Guard() {
        if (*opts) a->release_options(opts);
        if (*compiler) a->release_compiler(compiler);
        if (*cfg) a->release_config(cfg);
      }
    } guard{a_.get(), &cfg, &compiler, &opts};
    static std::atomic<uint64_t> loads{0};  // two loads of one program never share a folder
    bundle_dir_ = f_.dir + "/e5bundle/" + std::to_string(::getpid()) + "-" + std::to_string(++loads);
    std::error_code ec;
    std::filesystem::create_directories(bundle_dir_, ec);
    if (ec) throw EngineError("e5rt: cannot create the bundle folder " + bundle_dir_ + ": " + ec.message());
    check(a_->config_create(&cfg), "create the compiler configuration");
    a_->config_set_cache(cfg, bundle_dir_.c_str());  // a cache hint; its code is not fatal
    check(a_->compiler_create(&compiler, cfg), "create the compiler");
    check(a_->options_create(&opts), "create the compile options");
    check(a_->options_set_mask(opts, kAneMask), "select the Neural Engine");
    check(a_->options_set_force(opts, 1), "set recompilation");
    check(a_->options_set_segmenter(opts, "graph"), "set the segmenter");
    Rc rc = a_->compile(compiler, f_.mil_path.c_str(), opts, &lib_);
    if (static_cast<int32_t>(rc) != 0 || !lib_) {
      const char* msg = a_->last_error ? a_->last_error() : nullptr;
      throw EngineError("the engine compiler refused the program (code " + std::to_string(static_cast<int32_t>(rc)) +
                        "): " + (msg && *msg ? std::string(msg) : "no message") + ". Compiled: " + f_.mil_path +
                        " (gated for target " + f_.target + "); that directory holds the MIL and weights for a bug report");
    }
    check(a_->retain_function(lib_, "main", &fn_), "retain function 'main'");
    check(a_->opopts_create(&opopts_, fn_), "create the operation options");
    check(a_->opopts_set_name(opopts_, "main"), "name the operation");
    check(a_->opopts_set_alloc(opopts_, 1), "allocate intermediate buffers");
    check(a_->op_create(&op_, opopts_), "create the operation");
    auto bind_ports = [&](const std::vector<Port>& ports, bool input, std::vector<H>& port_h, std::vector<H>& buf,
                          std::vector<void*>& data) {
      port_h.assign(ports.size(), nullptr);
      buf.assign(ports.size(), nullptr);
      data.assign(ports.size(), nullptr);
      for (size_t i = 0; i < ports.size(); ++i) {
        const Port& p = ports[i];
        check((input ? a_->retain_input_port : a_->retain_output_port)(op_, p.name.c_str(), &port_h[i]),
              input ? "retain an input port" : "retain an output port");
        if (a_->has_descriptors()) check_descriptor(port_h[i], p, input);
        check(a_->buffer_alloc(&buf[i], p.alloc_bytes, kCpuBuffer), "allocate a buffer");
        check(a_->buffer_data(buf[i], &data[i]), "map a buffer");
        if (!data[i]) throw EngineError("e5rt: a buffer has no data pointer");
        std::memset(data[i], 0, p.alloc_bytes);
        check(a_->bind_buffer(port_h[i], buf[i]), "bind a buffer");
      }
    };
    bind_ports(f_.inputs, true, in_port_, in_buf_, in_data_);
    in_owned_.assign(f_.inputs.size(), true);
    bind_ports(f_.outputs, false, out_port_, out_buf_, out_data_);
    if (!a_->has_descriptors()) port_report_ = {"e5rt: no port descriptor functions in this library"};
    record_port_report(port_report_);
    check(a_->event_create(&event_, "aneforge.done", 0), "create the completion event");
    check(a_->bind_event(op_, event_), "bind the completion event");
    check(a_->stream_create(&stream_), "create the execution stream");
  }

  // The port as the engine describes it must be the port we fill: its element count, element
  // size and a packed layout (we copy packed data, as sbryngelson/ANEForge's
  // port_alloc_and_bind does). A mismatch is refused here, before any run, naming the port.
  void check_descriptor(H port, const Port& p, bool input) {
    const std::string what = std::string(input ? "input" : "output") + " port '" + p.name + "'";
    H desc = nullptr, dtype = nullptr;
    check(a_->port_retain_desc(port, &desc), "read a port's tensor descriptor");
    struct Guard {
      E5rt* a; H* desc; H* dtype;
      ~Guard() {
        if (*dtype) a->dtype_release(dtype);
        if (*desc) a->desc_release(desc);
      }
    } guard{a_.get(), &desc, &dtype};
    // A count and a pointer to the values, in either order: the count is the small one.
    auto values = [&](Rc (*get)(H, uint64_t*, uint64_t*), const char* name) {
      uint64_t x = 0, y = 0;
      check(get(desc, &x, &y), name);
      uint64_t count = std::min(x, y), ptr = std::max(x, y);
      if (count > 8 || (count > 0 && ptr == 0)) throw EngineError("e5rt: " + what + ": unreadable " + name);
      const uint64_t* v = reinterpret_cast<const uint64_t*>(static_cast<uintptr_t>(ptr));
      return std::vector<uint64_t>(v, v + count);
    };
    std::vector<uint64_t> shape = values(a_->desc_get_shape, "shape"), strides = values(a_->desc_get_strides, "strides");
    check(a_->desc_retain_dtype(desc, &dtype), "read a port's dtype");
    uint64_t elem = 0;
    check(a_->dtype_element_size(dtype, &elem), "read a port's element size");
    uint64_t count = 1;
    std::string dims;
    for (uint64_t d : shape) count *= d, dims += (dims.empty() ? "" : ", ") + std::to_string(d);
    const uint64_t want = p.bytes / element_bytes(p.dtype);
    if (count != want || elem != element_bytes(p.dtype))
      throw EngineError("e5rt: " + what + ": the engine expects [" + dims + "] of " + std::to_string(elem) +
                        "-byte elements, the program gives " + std::to_string(want) + " elements of " +
                        std::to_string(element_bytes(p.dtype)) + " bytes [program " + f_.mil_path + "]");
    // Packed: innermost stride one element (counted in elements or bytes), each outer one the
    // product of the sizes inside it.
    bool packed = strides.size() == shape.size();
    for (size_t k = shape.size(); packed && k-- > 0;) {
      uint64_t inner = k + 1 < shape.size() ? strides[k + 1] * shape[k + 1] : 0;
      packed = k + 1 == shape.size() ? (strides[k] == 1 || strides[k] == elem) : (shape[k] == 1 || strides[k] == inner);
    }
    std::string st;
    for (uint64_t s : strides) st += (st.empty() ? "" : ", ") + std::to_string(s);
    port_report_.push_back(what + ": [" + dims + "] strides [" + st + "] element " + std::to_string(elem) + " bytes");
    if (!packed)
      throw EngineError("e5rt: " + what + ": the engine lays it out with strides other than packed, which this "
                        "runtime does not copy [program " + f_.mil_path + "]");
  }

  void release_all() {
    // Stream first, then ports and buffers, event, op, its options, function, library.
    if (stream_) a_->release_stream(&stream_);
    for (auto& p : in_port_) if (p) a_->release_port(&p);
    for (auto& p : out_port_) if (p) a_->release_port(&p);
    for (size_t i = 0; i < in_buf_.size(); ++i)
      if (in_buf_[i] && in_owned_.size() > i && in_owned_[i]) a_->release_buffer(&in_buf_[i]);
    for (auto& b : out_buf_) if (b) a_->release_buffer(&b);
    in_buf_.clear();
    out_buf_.clear();
    if (event_) a_->release_event(&event_);
    if (op_) a_->release_op(&op_);
    if (opopts_) a_->release_opopts(&opopts_);
    if (fn_) a_->release_function(&fn_);
    if (lib_) a_->release_library(&lib_);
    std::error_code ec;
    if (!bundle_dir_.empty()) std::filesystem::remove_all(bundle_dir_, ec);  // ours: created in load()
  }

  std::shared_ptr<E5rt> a_;
  ProgramFiles f_;
  std::string bundle_dir_;  // <program dir>/e5bundle/<pid>-<load>
  std::vector<std::string> port_report_;
  H lib_ = nullptr, fn_ = nullptr, opopts_ = nullptr, op_ = nullptr, event_ = nullptr, stream_ = nullptr;
  std::vector<H> in_port_, out_port_, in_buf_, out_buf_;
  std::vector<void*> in_data_, out_data_;
  std::vector<bool> in_owned_;
  bool encoded_ = false;
};

}  // namespace

bool e5rt_present(std::string* library, std::string* why) {
  *library = library_path();
  return open_api(why) != nullptr;
}

std::unique_ptr<Loaded> load_e5rt(const ProgramFiles& f, std::string* why) {
  auto api = open_api(why);
  if (!api) return nullptr;
  return std::make_unique<E5rtProgram>(std::move(api), f);
}

}  // namespace af::engine
