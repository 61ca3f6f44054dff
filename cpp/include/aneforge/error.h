// Error types of the core. Each maps to one Python exception in the bindings.
#pragma once
#include <stdexcept>
#include <string>

namespace af {

enum class Status {
  ok = 0,
  invalid_value,       // wrong shape, dtype, rank or attribute (Python ValueError)
  invalid_type,        // wrong kind of argument (Python TypeError)
  index_out_of_range,  // an index input outside its table (Python IndexError)
  floating_point,      // check_finite: a layer overflowed (Python FloatingPointError)
  unsupported_target,  // the target cannot run this op or shape
  unsupported,         // not implemented yet (Python NotImplementedError)
  io_error,            // file missing, truncated or corrupt
  engine,              // the Neural Engine is unavailable or refused a program (Python af.EngineError)
  internal,            // a bug in ANEForge
};

class Error : public std::runtime_error {
 public:
  Error(Status status, const std::string& msg) : std::runtime_error(msg), status_(status) {}
  Status status() const { return status_; }

 private:
  Status status_;
};

struct ValueError : Error {
  explicit ValueError(const std::string& m) : Error(Status::invalid_value, m) {}
};
struct TypeError : Error {
  explicit TypeError(const std::string& m) : Error(Status::invalid_type, m) {}
};
struct IndexError : Error {
  explicit IndexError(const std::string& m) : Error(Status::index_out_of_range, m) {}
};
struct FloatingPointError : Error {
  explicit FloatingPointError(const std::string& m) : Error(Status::floating_point, m) {}
};
struct TargetError : Error {
  explicit TargetError(const std::string& m) : Error(Status::unsupported_target, m) {}
};
struct UnsupportedError : Error {
  explicit UnsupportedError(const std::string& m) : Error(Status::unsupported, m) {}
};
struct IOError : Error {
  explicit IOError(const std::string& m) : Error(Status::io_error, m) {}
};
struct EngineError : Error {
  explicit EngineError(const std::string& m) : Error(Status::engine, m) {}
};

}  // namespace af
