// The call path of a compiled net: NumPy in, program run on a backend, NumPy out.
// Kept tight: this is the per-call floor users measure.
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <set>

#include "convert.h"
#include "aneforge/mil.h"

using namespace nb::literals;

namespace afpy {

namespace {

enum class OutMode { single, list, dict, tuple };

struct Capsule {
  static nb::capsule owner(float* p) {
    return nb::capsule(p, [](void* q) noexcept { delete[] static_cast<float*>(q); });
  }
};

class PyExecutable {
 public:
  PyExecutable(std::shared_ptr<af::Program> prog, const std::string& backend, int mode)
      : prog_(std::move(prog)), mode_(static_cast<OutMode>(mode)) {
    exe_ = af::backend(backend).load(prog_);
    for (int v : prog_->inputs) {
      in_names_.push_back(prog_->values[v].name);
      in_types_.push_back(prog_->values[v].type);
    }
    for (size_t j = 0; j < prog_->outputs.size(); ++j) {
      out_types_.push_back(prog_->values[prog_->outputs[j]].type);
      out_keys_.push_back(nb::str(prog_->output_names[j].c_str()));
    }
    tmp_.resize(in_types_.size());
    in_ptrs_.resize(in_types_.size());
    out_ptrs_.resize(out_types_.size());
    out_tmp_.resize(out_types_.size());
  }

  nb::object call(nb::args args, nb::kwargs kwargs) {
    std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
    if (!lock.owns_lock()) {  // another thread is running this net: wait without the GIL
      nb::gil_scoped_release nogil;
      lock.lock();
    }
    size_t n = in_types_.size();
    if (args.size() > n)
      throw af::ValueError("net expects " + std::to_string(n) + " input(s) (" + names() + "), got " +
                           std::to_string(args.size()) + " positional arguments");
    std::vector<nb::handle> given(n);
    for (size_t i = 0; i < args.size(); ++i) given[i] = args[i];
    for (auto [k, v] : kwargs) {
      std::string key = nb::cast<std::string>(k);
      size_t i = 0;
      while (i < n && in_names_[i] != key) ++i;
      if (i == n) throw af::ValueError("net got an unexpected input '" + key + "'; its inputs are: " + names());
      if (given[i].ptr()) throw af::ValueError("net got input '" + key + "' twice (by position and by name)");
      given[i] = v;
    }
    std::vector<nb::object> keep(n);  // converted arrays stay alive during the run
    for (size_t i = 0; i < n; ++i) {
      if (!given[i].ptr() && resident_.count(i)) {  // the value the last run left
        in_ptrs_[i] = nullptr;
        continue;
      }
      if (!given[i].ptr())
        throw af::ValueError("net is missing input '" + in_names_[i] + "' with shape " +
                             af::shape_str(in_types_[i].shape) + "; its inputs are: " + names());
      in_ptrs_[i] = prepare(i, given[i], keep[i]);
    }
    nb::list outs;
    for (size_t j = 0; j < out_types_.size(); ++j) {
      size_t cnt = static_cast<size_t>(std::max<int64_t>(1, af::numel(out_types_[j].shape)));
      if (af::is_float(out_types_[j].dtype)) {
        float* buf = new float[cnt];
        out_ptrs_[j] = buf;
        outs.append(make_array(buf, out_types_[j].shape));
      } else {
        out_tmp_[j].resize(cnt);
        out_ptrs_[j] = out_tmp_[j].data();
      }
    }
    {
      nb::gil_scoped_release nogil;
      exe_->run(in_ptrs_.data(), out_ptrs_.data());
    }
    for (size_t j = 0; j < out_types_.size(); ++j)  // fill in non-float outputs, in order
      if (!af::is_float(out_types_[j].dtype)) outs.insert(static_cast<Py_ssize_t>(j), int_array(j));
    if (mode_ == OutMode::single) return outs[0];
    if (mode_ == OutMode::list) return outs;
    if (mode_ == OutMode::tuple) return nb::tuple(outs);
    nb::dict d;
    for (size_t j = 0; j < out_keys_.size(); ++j) d[out_keys_[j]] = outs[j];
    return d;
  }

  const af::Program& program() const { return *prog_; }

  // Output `out` stays on the backend as input `in` of the next call (resident state).
  void alias(int out, int in) {
    std::lock_guard<std::mutex> lock(mu_);
    exe_->alias(out, in);
    resident_.insert(static_cast<size_t>(in));
  }

  // Input `in` keeps its value on the backend (zeros at first); write_rows updates it in place.
  void hold(int in) {
    std::lock_guard<std::mutex> lock(mu_);
    exe_->hold(in);
    resident_.insert(static_cast<size_t>(in));
  }

  // Input `in` becomes held input `src_in` of `src`: one buffer for both programs.
  void share_input(int in, PyExecutable& src, int src_in) {
    if (&src == this) throw af::ValueError("share_input: a net cannot share an input with itself");
    std::scoped_lock lock(mu_, src.mu_);
    exe_->share_input(in, *src.exe_, src_in);
    resident_.insert(static_cast<size_t>(in));
    src.resident_.insert(static_cast<size_t>(src_in));
  }

  void write_rows(int in, int dim, int64_t start, nb::ndarray<const float, nb::c_contig, nb::device::cpu> rows) {
    std::lock_guard<std::mutex> lock(mu_);
    if (in < 0 || static_cast<size_t>(in) >= in_types_.size()) throw af::ValueError("write_rows: no input " + std::to_string(in));
    const af::Shape& s = in_types_[in].shape;
    const int rank = static_cast<int>(s.size());
    const int d = dim < 0 ? dim + rank : dim;
    if (d < 0 || d >= rank || static_cast<int>(rows.ndim()) != rank)
      throw af::ValueError("write_rows: the rows of input '" + in_names_[in] + "' " + af::shape_str(s) +
                           " have its rank and the dim to write along");
    for (int k = 0; k < rank; ++k)
      if (k != d && static_cast<int64_t>(rows.shape(k)) != s[k])
        throw af::ValueError("write_rows: rows for input '" + in_names_[in] + "' " + af::shape_str(s) +
                             " must match it on every dim but " + std::to_string(d));
    const int64_t count = static_cast<int64_t>(rows.shape(d));
    nb::gil_scoped_release nogil;
    exe_->write_rows(in, d, start, count, rows.data());
  }

 private:
  std::string names() const {
    std::string r;
    for (size_t i = 0; i < in_names_.size(); ++i)
      r += (i ? ", " : "") + in_names_[i] + " " + af::shape_str(in_types_[i].shape);
    return r.empty() ? "none" : r;
  }

  nb::object numpy() {  // imported once per executable, off the float32 fast path
    if (!np_.is_valid()) np_ = nb::module_::import_("numpy");
    return np_;
  }

  nb::object make_array(float* buf, const af::Shape& s) {
    std::vector<size_t> shp(s.begin(), s.end());
    return nb::cast(nb::ndarray<nb::numpy, float>(buf, shp.size(), shp.data(), Capsule::owner(buf)));
  }

  nb::object int_array(size_t j) {
    const auto& t = out_types_[j];
    nb::object arr = numpy().attr("empty")(shape_tuple(t.shape),
                                      t.dtype == af::DType::boolean ? "bool" : (t.dtype == af::DType::int32 ? "int32" : (t.dtype == af::DType::uint8 ? "uint8" : "int8")));
    auto view = nb::cast<nb::ndarray<nb::c_contig, nb::device::cpu>>(arr);
    size_t cnt = view.size();
    const float* src = out_tmp_[j].data();
    switch (t.dtype) {
      case af::DType::boolean: { auto* d = static_cast<bool*>(view.data()); for (size_t i = 0; i < cnt; ++i) d[i] = src[i] != 0; break; }
      case af::DType::int32: { auto* d = static_cast<int32_t*>(view.data()); for (size_t i = 0; i < cnt; ++i) d[i] = static_cast<int32_t>(af::mil::int_value(src[i], af::DType::int32)); break; }  // the engine's fp16: inf saturates, NaN is 0
      case af::DType::uint8: { auto* d = static_cast<uint8_t*>(view.data()); for (size_t i = 0; i < cnt; ++i) d[i] = static_cast<uint8_t>(src[i]); break; }
      default: { auto* d = static_cast<int8_t*>(view.data()); for (size_t i = 0; i < cnt; ++i) d[i] = static_cast<int8_t>(src[i]); }
    }
    return arr;
  }

  const float* prepare(size_t i, nb::handle obj, nb::object& keep) {
    const af::TensorType& t = in_types_[i];
    nb::ndarray<nb::ro, nb::device::cpu> a;
    if (!nb::try_cast(obj, a, false)) {
      try {
        keep = numpy().attr("ascontiguousarray")(obj);
      } catch (const nb::python_error&) {
        throw af::TypeError("input '" + in_names_[i] + "' must be a NumPy array, got " +
                             nb::cast<std::string>(nb::str(obj.type().attr("__name__"))));
      }
      if (!nb::try_cast(keep, a, false))
        throw af::TypeError("input '" + in_names_[i] + "' must be a NumPy array of numbers, got " +
                             nb::cast<std::string>(nb::repr(obj)).substr(0, 80));
    }
    bool shape_ok = a.ndim() == t.shape.size();
    for (size_t d = 0; shape_ok && d < a.ndim(); ++d) shape_ok = static_cast<int64_t>(a.shape(d)) == t.shape[d];
    if (!shape_ok) {
      af::Shape got;
      for (size_t d = 0; d < a.ndim(); ++d) got.push_back(static_cast<int64_t>(a.shape(d)));
      throw af::ValueError("input '" + in_names_[i] + "' expects shape " + af::shape_str(t.shape) + ", got " +
                           af::shape_str(got));
    }
    bool contiguous = true;
    int64_t expect = 1;
    for (int d = static_cast<int>(a.ndim()) - 1; d >= 0; --d) {
      if (a.shape(d) != 1 && a.stride(d) != expect) contiguous = false;
      expect *= static_cast<int64_t>(a.shape(d));
    }
    if (!contiguous) {
      keep = numpy().attr("ascontiguousarray")(obj);
      nb::try_cast(keep, a, false);
    }
    auto dt = a.dtype();
    size_t cnt = a.size();
    bool want_float = af::is_float(t.dtype);
    if (dt == nb::dtype<float>()) {
      if (!want_float) bad_dtype(i, "float32");
      return static_cast<const float*>(a.data());
    }
    auto& buf = tmp_[i];
    buf.resize(std::max<size_t>(1, cnt));
    if (dt.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Float) && dt.bits == 16) {
      if (!want_float) bad_dtype(i, "float16");
      af::halves_to_floats(static_cast<const uint16_t*>(a.data()), buf.data(), cnt);
    } else if (dt == nb::dtype<double>()) {
      if (!want_float) bad_dtype(i, "float64");
      const double* s = static_cast<const double*>(a.data());
      constexpr double fmax = 3.4028234663852886e38;  // past it, IEEE rounding gives +-inf (no UB cast)
      for (size_t k = 0; k < cnt; ++k)
        buf[k] = s[k] > fmax ? INFINITY : s[k] < -fmax ? -INFINITY : static_cast<float>(s[k]);
    } else if (dt.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Int) ||
               dt.code == static_cast<uint8_t>(nb::dlpack::dtype_code::UInt) ||
               dt.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Bool)) {
      convert_int(i, a.data(), dt, buf.data(), cnt);
    } else {
      bad_dtype(i, dtype_label(dt));
    }
    return buf.data();
  }

  static std::string dtype_label(nb::dlpack::dtype dt) {
    const char* k = dt.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Int) ? "int"
                    : dt.code == static_cast<uint8_t>(nb::dlpack::dtype_code::UInt) ? "uint"
                    : dt.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Bool) ? "bool"
                    : dt.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Float) ? "float" : "complex";
    return std::string(k) + (dt.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Bool) ? "" : std::to_string(dt.bits));
  }

  // Integer (and bool) arrays convert when every value is exact in the input's dtype: the
  // simulator holds values in float32 (exact to 2^24), fp16 inputs exact to 2048 and
  // beyond only on the fp16 grid. Anything else is refused rather than rounded.
  void convert_int(size_t i, const void* p, nb::dlpack::dtype dt, float* out, size_t n) const {
    bool is_signed = dt.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Int);
    const af::TensorType& t = in_types_[i];
    double lo = af::dtype_min(t.dtype), hi = af::dtype_max(t.dtype);
    for (size_t k = 0; k < n; ++k) {
      double v = 0;
      switch (dt.bits) {
        case 8: v = is_signed ? double(static_cast<const int8_t*>(p)[k]) : double(static_cast<const uint8_t*>(p)[k]); break;
        case 16: v = is_signed ? double(static_cast<const int16_t*>(p)[k]) : double(static_cast<const uint16_t*>(p)[k]); break;
        case 32: v = is_signed ? double(static_cast<const int32_t*>(p)[k]) : double(static_cast<const uint32_t*>(p)[k]); break;
        default: v = is_signed ? static_cast<double>(static_cast<const int64_t*>(p)[k])
                               : static_cast<double>(static_cast<const uint64_t*>(p)[k]);
      }
      bool exact = std::fabs(v) <= 16777216.0 && v >= lo && v <= hi;
      if (exact && t.dtype == af::DType::fp16) exact = af::half_to_float(af::float_to_half(static_cast<float>(v))) == static_cast<float>(v);
      if (!exact)
        throw af::ValueError("input '" + in_names_[i] + "' (" + std::string(af::dtype_name(t.dtype)) + "): the value " +
                             std::to_string(static_cast<long long>(v)) + " at flat index " + std::to_string(k) +
                             " is not exactly representable" +
                             (t.dtype == af::DType::fp16 ? " in fp16" : " (integers are exact up to 2^24 and within the dtype's range)"));
      out[k] = static_cast<float>(v);
    }
  }


  [[noreturn]] void bad_dtype(size_t i, const std::string& got) const {
    std::string want = af::is_float(in_types_[i].dtype) ? "float32, float16 or float64"
                                                        : "an integer or bool array";
    throw af::ValueError("input '" + in_names_[i] + "' (" + std::string(af::dtype_name(in_types_[i].dtype)) +
                         ") expects " + want + " data, got " + got);
  }

  std::shared_ptr<af::Program> prog_;
  std::unique_ptr<af::Executable> exe_;
  OutMode mode_;
  std::vector<std::string> in_names_;
  std::vector<af::TensorType> in_types_, out_types_;
  std::vector<nb::str> out_keys_;
  std::vector<std::vector<float>> tmp_, out_tmp_;
  std::vector<const float*> in_ptrs_;
  std::vector<float*> out_ptrs_;
  std::mutex mu_;
  nb::object np_;
  std::set<size_t> resident_;
};

}  // namespace

void bind_run(nb::module_& m) {
  nb::class_<PyExecutable>(m, "Executable")
      .def(nb::init<std::shared_ptr<af::Program>, const std::string&, int>(), "program"_a, "backend"_a, "mode"_a)
      .def("__call__", &PyExecutable::call)
      .def("alias", &PyExecutable::alias, "out"_a, "in"_a)
      .def("hold", &PyExecutable::hold, "in"_a)
      .def("share_input", &PyExecutable::share_input, "in"_a, "src"_a, "src_in"_a)
      .def("write_rows", &PyExecutable::write_rows, "in"_a, "dim"_a, "start"_a, "rows"_a);
}

}  // namespace afpy
