// dlopen/dlsym with the engine's conventions: a symbol is looked up under its plain name and
// then with a leading underscore; a missing library or symbol is reported, never fatal.
#pragma once
#include <string>

namespace af::engine {

class Library {
 public:
  Library() = default;
  explicit Library(const std::string& path);
  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
  Library(Library&& o) noexcept;
  Library& operator=(Library&& o) noexcept;

  bool loaded() const { return handle_ != nullptr; }
  const std::string& path() const { return path_; }
  const std::string& error() const { return error_; }  // dlerror() of a failed open
  void* symbol(const char* name) const;                 // nullptr when missing

  template <class Fn>
  bool bind(Fn& fn, const char* name) const {
    fn = reinterpret_cast<Fn>(symbol(name));
    return fn != nullptr;
  }

 private:
  void* handle_ = nullptr;
  std::string path_, error_;
};

std::string env(const char* name);  // "" when unset

}  // namespace af::engine
