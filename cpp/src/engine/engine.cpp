// The engine backend: a compiled Program as MIL + weights in a content-keyed directory, loaded
// by the e5rt path (or the in-memory path where e5rt is missing), with the per-process limits
// the engine imposes: a cap on loaded programs (least recently used unloaded, with a
// warning), and no use after fork().
#include "aneforge/engine.h"

#include <pthread.h>
#include <sys/utsname.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __APPLE__
#include <sys/sysctl.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <cerrno>
#include <cstring>
#include <list>
#include <map>
#include <set>
#include <mutex>
#include <cctype>

#include "aneforge/aneforge.h"
#include "aneforge/durable.h"
#include "aneforge/error.h"
#include "aneforge/fp16.h"
#include "aneforge/mil.h"
#include "aneforge/runtime.h"
#include "aneforge/target.h"
#include "engine/dylib.h"
#include "io/content_hash.h"
#include "engine/loaded.h"

namespace af::engine {

uint64_t element_bytes(DType t) {
  switch (t) {
    case DType::fp16: return 2;
    case DType::fp32: return 4;
    default: throw UnsupportedError("engine: inputs and outputs of dtype " + std::string(dtype_name(t)) +
                                    " are not supported (fp16 and fp32 are; int32 and bool travel as fp16)");
  }
}

Port make_port(const std::string& name, DType dtype, const Shape& shape) {
  Port p{name, dtype, shape, 0, 0};
  p.bytes = static_cast<uint64_t>(std::max<int64_t>(1, numel(shape))) * element_bytes(dtype);
  p.alloc_bytes = std::max<uint64_t>(64, (p.bytes + 63) / 64 * 64);
  return p;
}

uint64_t surface_bytes(const std::vector<Port>& ports) {
  uint64_t n = kMinSurfaceBytes;
  for (const auto& p : ports) n = std::max(n, p.alloc_bytes);
  return (n + 16383) / 16384 * 16384;  // whole 16 KiB pages
}

std::vector<size_t> alphabetical_order(const std::vector<Port>& ports) {
  std::vector<size_t> idx(ports.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return ports[a].name < ports[b].name; });
  return idx;
}

namespace {

std::mutex g_mu;
std::function<void(const std::string&)> g_warn;
std::atomic<bool> g_forked{false};
std::once_flag g_atfork;

void warn(const std::string& msg) {
  std::function<void(const std::string&)> h;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    h = g_warn;
  }
  if (h) h(msg);
  else std::cerr << "aneforge: warning: " << msg << "\n";
}

void check_not_forked() {
  if (g_forked)
    throw EngineError("the engine cannot be used in a process forked after a program was loaded (Espresso and "
                      "libdispatch are not fork-safe): start workers with posix_spawn, or multiprocessing's "
                      "'spawn' start method");
}

std::string chip_name() {
#ifdef __APPLE__
  char buf[256] = {0};
  size_t n = sizeof(buf) - 1;
  if (sysctlbyname("machdep.cpu.brand_string", buf, &n, nullptr, 0) == 0) return buf;
#endif
  return "";
}

}  // namespace

std::string target_for_chip(const std::string& chip, std::string* note) {
  // "Apple M4 Pro" -> "M4 Pro", then "M4".
  size_t at = chip.find("Apple M");
  if (at == std::string::npos) return "";
  size_t end = at + 7;
  while (end < chip.size() && std::isdigit(static_cast<unsigned char>(chip[end]))) ++end;
  if (end == at + 7) return "";
  std::string base = chip.substr(at + 6, end - at - 6), full = base;
  for (const char* tier : {" Pro", " Max", " Ultra"})
    if (chip.compare(end, std::strlen(tier), tier) == 0) full += tier;
  for (const std::string& name : {full, base}) {
    try {
      return find_target(name).name;
    } catch (const Error&) {
    }
  }
  *note = "chip '" + chip + "' is not in the target table; set ANEFORGE_TARGET";
  return "";
}

namespace {

// The compiler target for this machine: ANEFORGE_TARGET, else the chip's row of the target
// table, else "" (unknown).
std::string detect_target(const std::string& chip, std::string* note) {
  std::string forced = env("ANEFORGE_TARGET");
  if (!forced.empty()) return find_target(forced).name;  // throws for names outside the table
  return target_for_chip(chip, note);
}

void make_dirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i)
    if (i == path.size() || path[i] == '/') {
      std::string p = path.substr(0, i);
      if (mkdir(p.c_str(), 0755) != 0 && errno != EEXIST)
        throw IOError("engine cache: cannot create " + p + ": " + std::strerror(errno));
    }
}

// A cache file holds exactly `bytes` afterwards; an equal file is left alone (no write).
void write_unless_equal(const std::string& path, const std::string& bytes) {
  if (io::existing(path) == io::Existing::file) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == bytes.size() &&
        io::read_file(path, bytes.size()) == bytes)
      return;
  }
  io::write_file(path, bytes, [](const std::string&) { return true; });  // ours to replace: the key's own file
}

std::string chosen_path(bool* e5rt_ok, bool* inmem_ok, std::string* lib, std::string* why) {
  std::string force = env("ANEFORGE_ENGINE_PATH");
  if (!force.empty() && force != "e5rt" && force != "inmemory")
    throw ValueError("ANEFORGE_ENGINE_PATH must be 'e5rt' or 'inmemory', got '" + force + "'");
  std::string why_e5, why_im, lib_e5, lib_im;
  *e5rt_ok = force != "inmemory" && e5rt_present(&lib_e5, &why_e5);
  *inmem_ok = !*e5rt_ok && force != "e5rt" && inmemory_present(&lib_im, &why_im);
  if (*e5rt_ok) {
    *lib = lib_e5;
    return "e5rt";
  }
  if (*inmem_ok) {
    *lib = lib_im;
    if (force != "inmemory") *why = "e5rt unavailable (" + why_e5 + "); using the in-memory path";
    return "inmemory";
  }
  *why = force == "inmemory" ? why_im : force == "e5rt" ? why_e5 : why_e5 + "; " + why_im;
  return "";
}

}  // namespace

namespace {
std::mutex g_report_mu;
std::vector<std::string> g_port_report;
}  // namespace

void record_port_report(std::vector<std::string> lines) {
  std::lock_guard<std::mutex> lock(g_report_mu);
  g_port_report = std::move(lines);
}

std::vector<std::string> last_port_report() {
  std::lock_guard<std::mutex> lock(g_report_mu);
  return g_port_report;
}

void set_warning_handler(std::function<void(const std::string&)> handler) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_warn = std::move(handler);
}

int max_loaded_programs() {
  std::string v = env("ANEFORGE_ENGINE_MAX_LOADED");
  if (v.empty()) return 100;
  try {
    int n = std::stoi(v);
    if (n >= 1) return n;
  } catch (...) {
  }
  throw ValueError("ANEFORGE_ENGINE_MAX_LOADED must be an integer >= 1, got '" + v + "'");
}

std::string cache_dir() {
  std::string c = env("ANEFORGE_CACHE");
  if (!c.empty()) return c;
  std::string home = env("HOME");
#ifdef __APPLE__
  return (home.empty() ? "/tmp" : home + "/Library/Caches") + "/aneforge";
#else
  std::string xdg = env("XDG_CACHE_HOME");
  return (xdg.empty() ? (home.empty() ? "/tmp" : home + "/.cache") : xdg) + "/aneforge";
#endif
}

DeviceInfo probe() {
  DeviceInfo d;
  d.chip = chip_name();
  std::string note;
  d.target = detect_target(d.chip, &note);
  bool e5, im;
  d.path = chosen_path(&e5, &im, &d.library, &d.reason);
  if (d.path.empty()) {
#ifdef __APPLE__
    d.reason = "no engine path works on this Mac: " + d.reason;
#else
    struct utsname u;
    std::string os = uname(&u) == 0 ? std::string(u.sysname) + " " + u.machine : "not macOS";
    d.reason = "no Apple Neural Engine here: this is " + os + ", and the engine backend runs on Apple Silicon "
               "Macs (use backend='sim' or 'mil'). Details: " + d.reason;
#endif
    return d;
  }
  if (d.target.empty()) {
    d.reason = note.empty() ? "cannot tell which engine this is; set ANEFORGE_TARGET (e.g. h16g)" : note;
    d.path.clear();
    return d;
  }
  d.available = true;
  return d;
}

// ---- loaded-program registry: the per-process cap, least recently used first ----

namespace {

class EngineExecutable;
struct Registry {
  std::mutex mu;
  std::list<EngineExecutable*> lru;  // front: least recently used; only loaded programs
};
Registry& registry() {
  static Registry* r = new Registry;  // outlives every executable
  return *r;
}

class EngineExecutable final : public Executable {
 public:
  EngineExecutable(std::shared_ptr<const Program> p, DeviceInfo dev) : prog_(std::move(p)), dev_(std::move(dev)) {
    int opset = env("ANEFORGE_ENGINE_OPSET") == "17" ? 17 : 18;
    mil::Program m = mil::build(*prog_, opset);
    files_.mil_text = mil::to_text(m);
    files_.weights = m.weights.bytes;
    files_.target = dev_.target;
    for (size_t i = 0; i < prog_->inputs.size(); ++i) {
      const Value& v = prog_->values[prog_->inputs[i]];
      (void)v;  // the port as emitted: int32 and bool as fp16, an index input with a row per chunk
      files_.inputs.push_back(make_port(m.main.inputs.at(i).first, m.main.inputs.at(i).second.dtype, m.main.inputs.at(i).second.shape));
      input_rows_.push_back(index_port_rows(*prog_, i));
    }
    for (size_t j = 0; j < prog_->outputs.size(); ++j) {
      const Value& v = prog_->values[prog_->outputs[j]];
      DType emitted = v.type.dtype == DType::int32 || v.type.dtype == DType::boolean ? DType::fp16 : v.type.dtype;
      files_.outputs.push_back(make_port(m.main.outputs.at(j), emitted, v.type.shape));
    }
    std::string key = io::content_hash({files_.mil_text, files_.weights, dev_.target, kVersion, dev_.path});
    files_.dir = cache_dir() + "/programs/" + key;
    files_.mil_path = files_.dir + "/model.mil";
    make_dirs(files_.dir + "/weights");
    // The key names the content, but a file on disk is not trusted to still hold it (a
    // disk error, a hand edit): what the engine compiles is compared and rewritten if it differs.
    write_unless_equal(files_.mil_path, files_.mil_text);
    if (!files_.weights.empty()) write_unless_equal(files_.dir + "/weights/weight.bin", files_.weights);
    ensure_loaded();  // compile and load now: errors at the user's compile line
  }

  ~EngineExecutable() override {
    GroupLock lock(mu_);
    unload_locked();
    for (auto& entry : borrowed_) {  // stop reading the sources' buffers
      auto& lent = entry.second.src->lent_;
      lent.erase(std::remove(lent.begin(), lent.end(), std::make_pair(this, entry.first)), lent.end());
    }
    // Programs reading this one's buffers keep the value as their own.
    for (auto [borrower, in] : std::vector<std::pair<EngineExecutable*, size_t>>(lent_)) {
      auto it = borrower->borrowed_.find(in);
      if (it == borrower->borrowed_.end() || it->second.src != this) continue;
      auto saved = saved_.find(it->second.src_in);
      if (saved != saved_.end()) borrower->saved_[in] = saved->second;
      borrower->borrowed_.erase(it);
    }
  }

  const Program& program() const override { return *prog_; }

  void alias(int out, int in) override {
    GroupLock lock(mu_);
    check_alias(*prog_, out, in);
    if (loaded_) loaded_->alias(out, in);
    if (held_.count(static_cast<size_t>(in)))
      throw ValueError("alias: input '" + prog_->values[prog_->inputs[in]].name + "' is held (hold_input)");
    aliases_.push_back({static_cast<size_t>(out), static_cast<size_t>(in)});
  }

  // A held input keeps its bytes in the engine's input buffer; write_rows converts only the
  // new rows and writes them there.
  void hold(int in) override {
    GroupLock lock(mu_);
    hold_locked(in);
  }

  // The other program's buffer bound to this program's port (e5rt: one buffer object on two
  // ports; in-memory: one IOSurface in two requests where the surfaces agree, else a copy
  // per program kept equal by every write). The source owns the buffer: it unloads the
  // programs reading it before it lets the buffer go.
  void share_input(int in, Executable& src_exe, int src_in) override {
    auto* src = dynamic_cast<EngineExecutable*>(&src_exe);
    if (!src) throw ValueError("share_input: both programs must run on the same backend");
    auto mine = mu_, theirs = src->mu_;
    std::unique_lock<std::recursive_mutex> a(*mine, std::defer_lock), b(*theirs, std::defer_lock);
    if (mine == theirs) a.lock();
    else std::lock(a, b);
    row_runs(*prog_, in, 0, 0, 0);  // checks the indices
    row_runs(*src->prog_, src_in, 0, 0, 0);
    size_t i = static_cast<size_t>(in), j = static_cast<size_t>(src_in);
    if (src->borrowed_.count(j)) {  // the buffer's owner
      Borrow root = src->borrowed_.at(j);
      src = root.src, j = root.src_in;
    }
    const std::string name = prog_->values[prog_->inputs[in]].name;
    if (src == this) throw ValueError("share_input: a program cannot share an input with itself");
    const Port &mine_port = files_.inputs[i], &their_port = src->files_.inputs[j];
    if (mine_port.dtype != their_port.dtype || mine_port.bytes != their_port.bytes)
      throw ValueError("share_input: input '" + name + "' and input '" + their_port.name + "' differ in type or size");
    if (std::any_of(aliases_.begin(), aliases_.end(), [&](auto x) { return x.second == i; }))
      throw ValueError("share_input: input '" + name + "' is resident (make_resident)");
    if (borrowed_.count(i) || std::any_of(lent_.begin(), lent_.end(), [&](auto x) { return x.second == i; }))
      throw ValueError("share_input: input '" + name + "' is already shared");
    if (mine != theirs && (!lent_.empty() || !borrowed_.empty()))
      throw ValueError("share_input: this program already shares inputs with others; share from one program to all");
    src->hold_locked(static_cast<int>(j));
    held_.insert(i);
    saved_.erase(i);
    borrowed_[i] = Borrow{src, j, false};
    src->lent_.push_back({this, i});
    if (mine != theirs) {
      std::lock_guard<std::mutex> reg(registry().mu);
      mu_ = theirs;  // one lock for every program that reads the buffer
      group_ = theirs.get();
    }
    if (!loaded_) return;
    if (ran_) unload_locked();  // bound again when it next loads: binds come before the first run
    else bind_borrowed(i);
  }

  void write_rows(int in, int dim, int64_t start, int64_t count, const float* src) override {
    GroupLock lock(mu_);
    RowRuns r = row_runs(*prog_, in, dim, start, count);
    const size_t i = static_cast<size_t>(in);
    if (!held_.count(i))
      throw ValueError("write_rows: input '" + prog_->values[prog_->inputs[in]].name + "' is not held (hold_input)");
    check_not_forked();
    ensure_loaded_locked();
    const Port& port = files_.inputs[i];
    const size_t elem = element_bytes(port.dtype);
    std::vector<char> packed(static_cast<size_t>(r.run) * elem);
    for (int64_t o = 0; o < r.outer; ++o) {
      const float* from = src + o * r.run;
      if (port.dtype == DType::fp16)
        floats_to_halves(from, reinterpret_cast<uint16_t*>(packed.data()), static_cast<size_t>(r.run),
                         prog_->options.numerics.fp16);
      else
        std::memcpy(packed.data(), from, packed.size());
      const size_t offset = static_cast<size_t>(r.first + o * r.stride) * elem;
      each_copy(i, [&](Loaded& l, size_t k) { l.write_input_range(k, offset, packed.data(), packed.size()); });
    }
  }

  void run(const float* const* inputs, float* const* outputs) override {
    GroupLock lock(mu_);
    check_not_forked();
    ensure_loaded_locked();
    const Fp16Mode mode = prog_->options.numerics.fp16;
    check_int_inputs(*prog_, inputs);
    for (size_t i = 0; i < files_.inputs.size(); ++i) {
      const Port& p = files_.inputs[i];
      if (!inputs[i]) {  // resident: the value the last run left in the shared buffer
        if (held_.count(i)) continue;
        bool resident = std::any_of(aliases_.begin(), aliases_.end(), [&](auto a) { return a.second == i; });
        if (!resident || !ran_)
          throw ValueError("input '" + prog_->values[prog_->inputs[i]].name +
                           "' has no value: give it (a resident input needs one on the first run)");
        continue;
      }
      size_t n = static_cast<size_t>(p.bytes / element_bytes(p.dtype));
      const float* src = inputs[i];
      std::vector<float> rows;
      if (input_rows_[i] > 1) {  // ids offset per 2048-row chunk, exact here on the host
        rows.resize(n);
        encode_index_rows(src, n / input_rows_[i], input_rows_[i], rows.data());
        src = rows.data();
      }
      each_copy(i, [&](Loaded& l, size_t k) {
        l.write_input(k, [&](void* dst) {
          if (p.dtype == DType::fp16) floats_to_halves(src, static_cast<uint16_t*>(dst), n, mode);
          else std::memcpy(dst, src, n * 4);
        });
      });
    }
    loaded_->execute();
    ran_ = true;
    for (size_t j = 0; j < files_.outputs.size(); ++j) {
      const Port& p = files_.outputs[j];
      size_t n = static_cast<size_t>(p.bytes / element_bytes(p.dtype));
      loaded_->read_output(j, [&](const void* src) {
        if (p.dtype == DType::fp16) halves_to_floats(static_cast<const uint16_t*>(src), outputs[j], n);
        else std::memcpy(outputs[j], src, n * 4);
      });
    }
  }

  // Called by the registry (another program needs the slot): drop the engine objects; the
  // next run loads again.
  void evict() {
    GroupLock lock(mu_);
    unload_locked();
  }

  const std::string& name() const { return files_.dir; }
  const void* group() const { return group_; }  // read under the registry's lock

 private:
  // Programs sharing buffers share one recursive lock (a source loads and unloads the
  // programs reading its buffers); the lock object is kept alive while held.
  struct GroupLock {
    std::shared_ptr<std::recursive_mutex> m;
    std::lock_guard<std::recursive_mutex> l;
    explicit GroupLock(std::shared_ptr<std::recursive_mutex> mu) : m(std::move(mu)), l(*m) {}
  };
  // An input that reads another program's held input.
  struct Borrow {
    EngineExecutable* src;
    size_t src_in;
    bool bound;  // one buffer with the source's; false: a copy kept equal by every write
  };

  void ensure_loaded() {
    GroupLock lock(mu_);
    ensure_loaded_locked();
  }

  void hold_locked(int in) {
    row_runs(*prog_, in, 0, 0, 0);  // checks the index
    const Value& v = prog_->values[prog_->inputs[in]];
    if (v.type.dtype != DType::fp16 && v.type.dtype != DType::fp32)
      throw ValueError("hold: input '" + v.name + "' is " + std::string(dtype_name(v.type.dtype)) +
                       "; held inputs are float");
    const size_t i = static_cast<size_t>(in);
    if (std::any_of(aliases_.begin(), aliases_.end(), [&](auto a) { return a.second == i; }))
      throw ValueError("hold: input '" + v.name + "' is already resident (make_resident)");
    if (!held_.insert(i).second) return;
    check_not_forked();
    ensure_loaded_locked();
    loaded_->write_input(i, [&](void* dst) { std::memset(dst, 0, files_.inputs[i].bytes); });
  }

  // Input i borrowed from another program, on the loaded program: the source loaded, then
  // its buffer bound here, or its bytes copied where the path cannot bind one buffer twice.
  void bind_borrowed(size_t i) {
    Borrow& b = borrowed_.at(i);
    b.src->ensure_loaded_locked();  // never unloads this one: make_room spares the group
    b.bound = loaded_->share_input(i, *b.src->loaded_, b.src_in);
    if (b.bound) return;
    b.src->loaded_->read_input(b.src_in, [&](const void* bytes) {
      loaded_->write_input(i, [&](void* dst) { std::memcpy(dst, bytes, files_.inputs[i].bytes); });
    });
  }

  // Calls write(loaded, input) on every loaded copy of input i: its owner's, and each copy a
  // program reading it keeps where the path could not bind the owner's buffer.
  void each_copy(size_t i, const std::function<void(Loaded&, size_t)>& write) {
    EngineExecutable* owner = this;
    size_t k = i;
    if (borrowed_.count(i)) {
      owner = borrowed_.at(i).src, k = borrowed_.at(i).src_in;
      owner->ensure_loaded_locked();
    }
    write(*owner->loaded_, k);
    for (auto [reader, in] : owner->lent_) {
      const Borrow& b = reader->borrowed_.at(in);
      if (b.src_in == k && !b.bound && reader->loaded_) write(*reader->loaded_, in);
    }
  }

  void ensure_loaded_locked() {
    if (loaded_) {
      touch();
      return;
    }
    check_not_forked();
    make_room();
    std::string why;
    loaded_ = dev_.path == "e5rt" ? load_e5rt(files_, &why) : load_inmemory(files_, &why);
    if (!loaded_) throw EngineError("engine: the " + dev_.path + " path is no longer available: " + why);
    for (auto [out, in] : aliases_) loaded_->alias(out, in);
    for (const auto& entry : saved_) {  // resident state kept across an unload
      const std::string& bytes = entry.second;
      loaded_->write_input(entry.first, [&](void* dst) { std::memcpy(dst, bytes.data(), bytes.size()); });
    }
    saved_.clear();
    std::call_once(g_atfork, [] { pthread_atfork(nullptr, nullptr, [] { g_forked = true; }); });
    {
      auto& r = registry();
      std::lock_guard<std::mutex> lock(r.mu);
      r.lru.push_back(this);
    }
    for (auto& entry : borrowed_) bind_borrowed(entry.first);
  }

  // Unloads least recently used programs until one more fits under the cap.
  void make_room() {
    const int cap = max_loaded_programs();
    for (;;) {
      EngineExecutable* victim = nullptr;
      size_t count;
      {
        auto& r = registry();
        std::lock_guard<std::mutex> lock(r.mu);
        count = r.lru.size();
        if (static_cast<int>(count) < cap) return;
        // The least recently used program outside this one's group: a program being bound to
        // a buffer of its group must find the buffer's owner loaded.
        auto it = std::find_if(r.lru.begin(), r.lru.end(), [&](EngineExecutable* e) { return e->group() != group_; });
        if (it == r.lru.end()) return;  // the whole group stays, over the cap
        victim = *it;
        r.lru.erase(it);
      }
      warn(std::to_string(count) + " engine programs are loaded (limit " + std::to_string(cap) +
           ", ANEFORGE_ENGINE_MAX_LOADED; the engine allows about 128 per process): unloading the least "
           "recently used one, which loads again on its next call");
      victim->evict();
    }
  }

  void touch() {
    auto& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = std::find(r.lru.begin(), r.lru.end(), this);
    if (it != r.lru.end()) r.lru.splice(r.lru.end(), r.lru, it);
  }

  void unload_locked() {
    for (auto [reader, in] : lent_) reader->unload_locked();  // they bind this one's buffers
    {
      auto& r = registry();
      std::lock_guard<std::mutex> lock(r.mu);
      r.lru.remove(this);
    }
    if (loaded_ && ran_)
      for (const auto& pair : aliases_) {
        const size_t out = pair.first, in = pair.second;  // clang 14 cannot capture bindings
        loaded_->read_output(out, [&](const void* src) {
          const char* b = static_cast<const char*>(src);
          saved_[in].assign(b, b + files_.outputs[out].bytes);
        });
      }
    if (loaded_)
      for (size_t in : held_)
        if (!borrowed_.count(in))  // the owner keeps a borrowed value
          loaded_->read_input(in, [&](const void* src) {
          const char* b = static_cast<const char*>(src);
          saved_[in].assign(b, b + files_.inputs[in].bytes);
        });
    loaded_.reset();
  }

  std::shared_ptr<const Program> prog_;
  DeviceInfo dev_;
  ProgramFiles files_;
  std::vector<int> input_rows_;  // per input: 1, or the chunk rows of an index input
  std::unique_ptr<Loaded> loaded_;
  std::vector<std::pair<size_t, size_t>> aliases_;
  std::map<size_t, std::string> saved_;  // input -> resident bytes while unloaded
  std::set<size_t> held_;                // held inputs (hold): their value lives in the input buffer
  std::map<size_t, Borrow> borrowed_;    // input -> the held input of another program it reads
  std::vector<std::pair<EngineExecutable*, size_t>> lent_;  // (program, its input) reading a held input here
  bool ran_ = false;
  std::shared_ptr<std::recursive_mutex> mu_ = std::make_shared<std::recursive_mutex>();
  const void* group_ = mu_.get();        // the lock's identity, for make_room
};

}  // namespace

int loaded_programs() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  return static_cast<int>(r.lru.size());
}

std::unique_ptr<Executable> load_program(std::shared_ptr<const Program> p) {
  check_not_forked();
  DeviceInfo d = probe();
  if (!d.available) throw EngineError("backend 'engine' is unavailable: " + d.reason);
  // The program was gated for its target; the engine compiles it for its own, which must
  // run everything that target runs.
  const Target& gated = find_target(p->options.target.empty() ? "h16g" : p->options.target);
  const Target& here = find_target(d.target);
  if (here.family < gated.family)
    throw EngineError("the program was checked against target " + gated.name + " but this engine is " + here.name +
                      ", an older family: compile with target='" + here.name + "'");
  return std::make_unique<EngineExecutable>(std::move(p), std::move(d));
}

}  // namespace af::engine
