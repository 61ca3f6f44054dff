#include "engine/dylib.h"

#include <dlfcn.h>

#include <cstdlib>
#include <string>
#include <utility>

namespace af::engine {

Library::Library(const std::string& path) : path_(path) {
  handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle_) {
    const char* e = dlerror();
    error_ = e ? e : "dlopen failed";
  }
}

// Never dlclose'd: Apple's frameworks register process-wide state, and programs loaded
// from a library may outlive the object that opened it.
Library::~Library() = default;

Library::Library(Library&& o) noexcept
    : handle_(std::exchange(o.handle_, nullptr)), path_(std::move(o.path_)), error_(std::move(o.error_)) {}

Library& Library::operator=(Library&& o) noexcept {
  if (this != &o) {
    this->~Library();
    handle_ = std::exchange(o.handle_, nullptr);
    path_ = std::move(o.path_);
    error_ = std::move(o.error_);
  }
  return *this;
}

void* Library::symbol(const char* name) const {
  if (!handle_) return nullptr;
  if (void* p = dlsym(handle_, name)) return p;
  std::string underscored = "_";
  underscored.append(name);
  return dlsym(handle_, underscored.c_str());
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace af::engine
