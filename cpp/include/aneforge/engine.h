// The engine backend: runs a compiled Program on the Apple Neural Engine through Apple's
// private stack, without CoreML (docs/engine.md). Two paths, chosen at load:
//   e5rt      Espresso's e5rt_* C API (dlopen): compile the emitted MIL file, one
//             precompiled op with named ports, CPU buffers, execute_sync.
//   inmemory  AppleNeuralEngine.framework's _ANEInMemoryModel, through the Objective-C
//             runtime's C API: MIL text and weights in memory, IOSurfaces, evaluate.
// Both are reached only through dlopen/dlsym, so this compiles (and is tested against
// doubles of those APIs) on any system.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "aneforge/dtype.h"
#include "aneforge/shape.h"

namespace af::engine {

// What this process can use. Overrides (for the test doubles and for bug reports):
//   ANEFORGE_ENGINE_E5RT  path of the library that provides e5rt_* (default: Espresso)
//   ANEFORGE_ENGINE_OBJC  path of one library that provides the Objective-C runtime,
//                         Foundation, CoreFoundation, IOSurface and the _ANE* classes
//   ANEFORGE_ENGINE_PATH  "e5rt" or "inmemory": use only that path
//   ANEFORGE_TARGET       the target to compile for (default: detected from the chip)
struct DeviceInfo {
  bool available = false;
  std::string path;     // "e5rt" or "inmemory" (the one loads use), "" when unavailable
  std::string target;   // detected or overridden compiler target, e.g. "h16g"
  std::string chip;     // e.g. "Apple M4", "" when unknown
  std::string library;  // the library the path is loaded from
  std::string reason;   // why the engine is unavailable, or which path was skipped and why
};
DeviceInfo probe();
// The target-table row of a CPU brand string ("Apple M4 Pro" -> "h16g"); "" and a note when
// the chip is not in the table.
std::string target_for_chip(const std::string& chip, std::string* note);

// One input or output of a program as the engine sees it: packed, channels-first, in the
// MIL dtype (fp16 for activations).
struct Port {
  std::string name;  // the MIL variable name (ports are bound by name)
  DType dtype = DType::fp16;
  Shape shape;
  uint64_t bytes = 0;        // packed size
  uint64_t alloc_bytes = 0;  // what is allocated: rounded up to 64 bytes, at least 64
};
uint64_t element_bytes(DType t);
Port make_port(const std::string& name, DType dtype, const Shape& shape);

// The in-memory path's surface rules: every input surface the same size, every output
// surface the same size, each at least kMinSurfaceBytes; ports bound in alphabetical order
// of their MIL names.
constexpr uint64_t kMinSurfaceBytes = 49152;
uint64_t surface_bytes(const std::vector<Port>& ports);
std::vector<size_t> alphabetical_order(const std::vector<Port>& ports);

// Per-process limits and the compiled-program cache.
int max_loaded_programs();         // ANEFORGE_ENGINE_MAX_LOADED, default 100 (the engine's cap is ~128)
int loaded_programs();             // programs loaded now (for tests and af.devices())
// What the engine reported about the ports of the most recent load, one line per port (the
// in-memory path's surface layout, e5rt's port descriptor): for the Mac verification report.
std::vector<std::string> last_port_report();
std::string cache_dir();           // ANEFORGE_CACHE or ~/Library/Caches/aneforge (XDG on Linux)
// Warnings (a program unloaded to stay under the cap): stderr unless a handler is set.
void set_warning_handler(std::function<void(const std::string&)> handler);

}  // namespace af::engine

namespace af {
class Executable;
struct Program;
namespace engine {
// Loads a program on the engine (af::backend("engine").load): EngineError when no path is
// available or the engine refuses it.
std::unique_ptr<Executable> load_program(std::shared_ptr<const Program> p);
}  // namespace engine
}  // namespace af

namespace af::engine {

}  // namespace af::engine
