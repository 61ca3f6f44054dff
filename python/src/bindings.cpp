// The Python extension module aneforge._core: graph building, the op table, compile.
#include <algorithm>
#include <cstring>
#include <optional>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "convert.h"
#include "aneforge/durable.h"
#include "aneforge/autodiff.h"
#include "aneforge/engine.h"
#include "aneforge/mil.h"
#include "aneforge/target.h"
#include "runtime/blas.h"

using namespace nb::literals;

namespace afpy {

af::AttrValue to_attr(nb::handle v, const std::string& key) {
  if (v.is_none()) return std::monostate{};
  if (nb::isinstance<nb::bool_>(v)) return nb::cast<bool>(v);
  if (nb::isinstance<nb::int_>(v)) return nb::cast<int64_t>(v);
  if (nb::isinstance<nb::float_>(v)) return nb::cast<double>(v);
  if (nb::isinstance<nb::str>(v)) return nb::cast<std::string>(v);
  if (nb::isinstance<nb::tuple>(v) || nb::isinstance<nb::list>(v)) {
    std::vector<int64_t> ints;
    std::vector<double> floats;
    bool all_int = true;
    for (nb::handle e : v) {
      if (nb::isinstance<nb::bool_>(e) || !(nb::isinstance<nb::int_>(e) || nb::isinstance<nb::float_>(e)))
        throw af::TypeError("attribute '" + key + "' must hold numbers, got " +
                            nb::cast<std::string>(nb::repr(v)));
      if (nb::isinstance<nb::int_>(e)) {
        ints.push_back(nb::cast<int64_t>(e));
        floats.push_back(static_cast<double>(ints.back()));
      } else {
        all_int = false;
        floats.push_back(nb::cast<double>(e));
      }
    }
    if (all_int) return ints;
    return floats;
  }
  // NumPy scalars and other number-likes.
  if (nb::hasattr(v, "__index__")) return nb::cast<int64_t>(v.attr("__index__")());
  if (nb::hasattr(v, "__float__")) return nb::cast<double>(v.attr("__float__")());
  throw af::TypeError("attribute '" + key + "' has unsupported type " +
                      nb::cast<std::string>(nb::str(v.type().attr("__name__"))));
}

nb::object from_attr(const af::AttrValue& v) {
  struct V {
    nb::object operator()(std::monostate) const { return nb::none(); }
    nb::object operator()(bool b) const { return nb::bool_(b); }
    nb::object operator()(int64_t x) const { return nb::int_(x); }
    nb::object operator()(double x) const { return nb::float_(x); }
    nb::object operator()(const std::string& s) const { return nb::str(s.c_str()); }
    nb::object operator()(const std::vector<int64_t>& xs) const {
      nb::list l;
      for (auto x : xs) l.append(nb::int_(x));
      return nb::tuple(l);
    }
    nb::object operator()(const std::vector<double>& xs) const {
      nb::list l;
      for (auto x : xs) l.append(nb::float_(x));
      return nb::tuple(l);
    }
  };
  return std::visit(V{}, v);
}

af::Shape to_shape(nb::handle v, const char* what) {
  af::Shape s;
  if (nb::isinstance<nb::int_>(v)) return {nb::cast<int64_t>(v)};
  try {
    for (nb::handle e : v) {
      if (!nb::hasattr(e, "__index__")) throw af::TypeError("");
      s.push_back(nb::cast<int64_t>(e.attr("__index__")()));
    }
  } catch (const std::exception&) {
    throw af::TypeError(std::string(what) + ": shape must be a tuple of ints, got " +
                        nb::cast<std::string>(nb::repr(v)));
  }
  return s;
}

nb::tuple shape_tuple(const af::Shape& s) {
  nb::list l;
  for (auto d : s) l.append(nb::int_(d));
  return nb::tuple(l);
}

static const char* kind_name(af::ParamKind k) {
  switch (k) {
    case af::ParamKind::tensor: return "tensor";
    case af::ParamKind::opt_tensor: return "tensor?";
    case af::ParamKind::tensors: return "tensors";
    case af::ParamKind::int_: return "int";
    case af::ParamKind::ints: return "ints";
    case af::ParamKind::float_: return "float";
    case af::ParamKind::bool_: return "bool";
    case af::ParamKind::str: return "str";
    case af::ParamKind::axes: return "axes";
    case af::ParamKind::any: return "any";
  }
  return "any";
}

}  // namespace afpy

using namespace afpy;

NB_MODULE(_core, m) {
  m.doc() = "ANEForge core: lazy graph, op table, compiler and simulator.";
  nb::exception<af::TargetError>(m, "TargetError", PyExc_ValueError);
  static nb::object engine_error = nb::steal(PyErr_NewExceptionWithDoc(
      "aneforge.EngineError", "The Neural Engine is unavailable here or refused a program; the message says why.",
      PyExc_RuntimeError, nullptr));
  m.attr("EngineError") = engine_error;
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const af::TargetError&) {
      throw;  // handled by the registered TargetError type
    } catch (const af::Error& e) {
      switch (e.status()) {
        case af::Status::invalid_value: PyErr_SetString(PyExc_ValueError, e.what()); break;
        case af::Status::invalid_type: PyErr_SetString(PyExc_TypeError, e.what()); break;
        case af::Status::index_out_of_range: PyErr_SetString(PyExc_IndexError, e.what()); break;
        case af::Status::floating_point: PyErr_SetString(PyExc_FloatingPointError, e.what()); break;
        case af::Status::unsupported: PyErr_SetString(PyExc_NotImplementedError, e.what()); break;
        case af::Status::io_error: PyErr_SetString(PyExc_OSError, e.what()); break;
        case af::Status::engine: PyErr_SetObject(engine_error.ptr(), nb::str(e.what()).ptr()); break;
        default: PyErr_SetString(PyExc_RuntimeError, e.what());
      }
    }
  });

  nb::class_<af::Tensor>(m, "Tensor")
      .def_prop_ro("shape", [](const af::Tensor& t) { return shape_tuple(t.shape()); })
      .def_prop_ro("dtype", [](const af::Tensor& t) { return std::string(af::dtype_name(t.dtype())); })
      .def_prop_ro("name", &af::Tensor::name)
      .def_prop_ro("op", [](const af::Tensor& t) { return t.op_name(); })
      .def_prop_ro("node_id", [](const af::Tensor& t) { return t.node()->id; })
      .def_prop_ro("inputs", [](const af::Tensor& t) { return t.node()->inputs; })
      .def_prop_ro("attrs", [](const af::Tensor& t) {
        nb::dict d;
        for (const auto& [k, v] : t.node()->attrs.items()) d[k.c_str()] = from_attr(v);
        return d;
      })
      // Names the node (model loaders give layers their checkpoint names: "layer1.0.conv1").
      .def("set_name", [](af::Tensor& t, const std::string& n) { t.node()->name = n, t.node()->auto_name = false; })
      .def("same_node", [](const af::Tensor& a, const af::Tensor& b) { return a.node() == b.node() && a.index() == b.index(); })
      .def("__repr__", &af::Tensor::str);

  m.def("input", [](nb::handle shape, const std::string& dtype, const std::string& name) {
    return af::input(to_shape(shape, "input"), af::dtype_from_name(dtype), name);
  }, "shape"_a, "dtype"_a = "fp16", "name"_a = "");

  // borrow=True: the constant reads the array in place and keeps it alive (importers hand over
  // a model's weights without a copy; compile gives the program its own). The caller must not
  // write the array afterwards.
  m.def("constant", [](nb::ndarray<const float, nb::c_contig, nb::device::cpu> a, const std::string& dtype, bool borrow) {
    af::Shape s;
    for (size_t i = 0; i < a.ndim(); ++i) s.push_back(static_cast<int64_t>(a.shape(i)));
    if (borrow) {
      auto owner = std::make_shared<nb::ndarray<const float, nb::c_contig, nb::device::cpu>>(a);  // releases under the GIL
      return af::constant(af::ConstValues::borrow(a.data(), a.size(), owner), s, af::dtype_from_name(dtype));
    }
    std::vector<float> v(a.data(), a.data() + a.size());
    return af::constant(std::move(v), s, af::dtype_from_name(dtype));
  }, "values"_a, "dtype"_a = "fp16", "borrow"_a = false);
  // An fp16 constant from its bits, read in place (the array stays alive with the graph).
  // all_finite: the caller saw no inf/NaN in the bits as it made them (the sim skips its scan).
  m.def("constant_fp16_bits", [](nb::ndarray<const uint16_t, nb::c_contig, nb::device::cpu> a, bool all_finite) {
    af::Shape s;
    for (size_t i = 0; i < a.ndim(); ++i) s.push_back(static_cast<int64_t>(a.shape(i)));
    auto owner = std::make_shared<nb::ndarray<const uint16_t, nb::c_contig, nb::device::cpu>>(a);
    af::Tensor t = af::constant(af::ConstValues::borrow_halves(a.data(), a.size(), owner), s, af::DType::fp16);
    if (all_finite) t.node()->data->finite.store(1, std::memory_order_relaxed);
    return t;
  }, "bits"_a, "all_finite"_a = false);
  // dst[:, row0:row0 + rows] = src (rows, cols) transposed, 2-byte elements (GPT-2's Conv1D
  // weights as linear weights, a band of rows at a time as they are read; NumPy's strided
  // copy is several times slower).
  m.def("transpose_u16", [](nb::ndarray<const uint16_t, nb::ndim<2>, nb::c_contig, nb::device::cpu> src,
                            nb::ndarray<uint16_t, nb::ndim<2>, nb::c_contig, nb::device::cpu> dst, size_t row0) {
    const size_t R = src.shape(0), C = src.shape(1);
    if (dst.shape(0) != C || row0 > dst.shape(1) || dst.shape(1) - row0 < R)
      throw af::ValueError("transpose_u16: dst must be (cols, >= row0 + rows) of src");
    const uint16_t* s = src.data();
    uint16_t* d = dst.data() + row0;
    const size_t ld = dst.shape(1);
    nb::gil_scoped_release nogil;
    af::transpose_u16(s, d, R, C, ld);
  }, "src"_a, "dst"_a, "row0"_a = 0);
  // bfloat16 bits (float32's upper half) rounded to fp16 bits as round_to_fp16_bits does;
  // returns whether every result is finite.
  m.def("bf16_to_fp16_bits", [](nb::ndarray<const uint16_t, nb::c_contig, nb::device::cpu> src,
                                nb::ndarray<uint16_t, nb::c_contig, nb::device::cpu> dst) {
    if (src.size() != dst.size()) throw af::ValueError("bf16_to_fp16_bits: src and dst differ in size");
    const uint16_t* s = src.data();
    uint16_t* d = dst.data();
    nb::gil_scoped_release nogil;
    return af::bf16_to_halves(s, d, src.size());
  }, "src"_a, "dst"_a);
  // float32 values rounded to fp16 bits as a default program rounds its constants (nearest
  // even, subnormals flushed), into dst.
  m.def("round_to_fp16_bits", [](nb::ndarray<const float, nb::c_contig, nb::device::cpu> src,
                                 nb::ndarray<uint16_t, nb::c_contig, nb::device::cpu> dst) {
    if (src.size() != dst.size()) throw af::ValueError("round_to_fp16_bits: src and dst differ in size");
    nb::gil_scoped_release nogil;
    af::floats_to_halves(src.data(), dst.data(), src.size(), af::Fp16Mode{});
  }, "src"_a, "dst"_a);

  m.def("make", [](const std::string& op, const std::vector<af::Tensor>& inputs, nb::dict attrs) {
    af::Attrs at;
    for (auto [k, v] : attrs) {
      std::string key = nb::cast<std::string>(k);
      at.set(key, to_attr(v, key));
    }
    return af::call(op, inputs, at);
  }, "op"_a, "inputs"_a, "attrs"_a);

  m.def("engine_probe", [] {
    af::engine::DeviceInfo d = af::engine::probe();
    nb::dict r;
    r["available"] = d.available;
    r["path"] = d.path;
    r["target"] = d.target;
    r["chip"] = d.chip;
    r["library"] = d.library;
    r["reason"] = d.reason;
    r["loaded_programs"] = af::engine::loaded_programs();
    r["max_loaded_programs"] = af::engine::max_loaded_programs();
    r["cache"] = af::engine::cache_dir();
    return r;
  });
  m.def("engine_port_report", [] { return af::engine::last_port_report(); });
  // Engine warnings (a program unloaded under the per-process cap) become Python warnings.
  af::engine::set_warning_handler([](const std::string& msg) {
    nb::gil_scoped_acquire gil;
    if (PyErr_WarnEx(PyExc_RuntimeWarning, msg.c_str(), 1) != 0) PyErr_Clear();  // warnings as errors: still a warning
  });

  m.def("grad", [](const af::Tensor& loss, const std::vector<af::Tensor>& wrt) { return af::grad(loss, wrt); },
        "loss"_a, "wrt"_a);

  m.def("op_table", [] {
    nb::list out;
    for (const af::OpDef* d : af::all_ops()) {
      nb::dict e;
      e["name"] = d->name;
      e["category"] = d->category;
      e["doc"] = d->doc;
      e["method"] = d->method;
      e["bridge"] = d->bridge;
      e["composite"] = d->is_composite();
      e["mil_op"] = d->mil_op;
      e["min_family"] = d->min_family;
      e["has_kernel"] = static_cast<bool>(d->kernel);
      e["exact_output"] = d->exact_output;
      e["num_outputs"] = d->num_outputs;
      e["differentiable"] = static_cast<bool>(d->grad) || d->is_composite();
      e["gradient"] = d->no_grad ? "none" : d->grad ? "yes" : d->is_composite() ? "built ops" : "not yet";
      e["aliases"] = d->aliases;
      nb::list ps;
      for (const auto& p : d->params) ps.append(nb::make_tuple(p.name, kind_name(p.kind), p.dflt));
      e["params"] = ps;
      nb::list pys;
      for (const auto& p : d->params) pys.append(af::python_name(p));
      e["python_names"] = pys;
      out.append(e);
    }
    return out;
  });

  m.def("round_fp16", [](nb::ndarray<float, nb::c_contig, nb::device::cpu> a, bool ties_away, bool ftz) {
    af::round_to_fp16(a.data(), a.size(), {ties_away ? af::RoundMode::nearest_away : af::RoundMode::nearest_even, ftz});
  }, "values"_a, "ties_away"_a = false, "flush_subnormals"_a = true,
  "Round a float32 array in place to fp16 values as the simulator stores them.");

  m.def("set_num_threads", [](int n) {
    af::set_num_threads(n);
    af::blas::set_threads(n);
  }, "n"_a);
  m.def("num_threads", &af::num_threads);
  m.def("set_sim_weight_cache", &af::set_sim_weight_cache, "max_bytes"_a);
  m.def("sim_weight_cache", &af::sim_weight_cache);
  m.def("sim_weight_cache_bytes", &af::sim_weight_cache_bytes);
  m.def("blas_name", &af::blas::name);

  nb::class_<af::Program>(m, "Program")
      .def("summary", &af::Program::summary)
      .def("text", &af::Program::text)
      .def_prop_ro("pass_log", [](const af::Program& p) { return p.pass_log; })
      .def_prop_ro("weight_bytes", &af::Program::weight_bytes)
      .def_prop_ro("target", [](const af::Program& p) { return p.options.target; })
      .def_prop_ro("compress", [](const af::Program& p) { return p.options.compress; })
      .def_prop_ro("compress_layers", [](const af::Program& p) { return p.options.compress_layers; })
      // conv/linear layers with a constant weight: (layer, op, weight shape, encoding, bytes held,
      // fp16 bytes, relative L2 error of the stored weight against the pruned one or -1 when
      // unknown, and the relative L2 norm of what pruning removed)
      .def_prop_ro("weight_layers", [](const af::Program& p) {
        nb::list l;
        for (const auto& s : p.steps) {
          const std::string& op = s.node->op->name;
          if ((op != "conv" && op != "linear" && op != "embedding") || s.in.size() < 2) continue;
          const af::Value& w = p.values[s.in[1]];
          if (!w.data) continue;
          int64_t n = af::numel(w.type.shape);
          int64_t held = w.data->packed ? w.data->packed->stored_bytes() : 2 * n;
          double err = w.data->packed ? w.data->packed->rel_error : 0.0;
          double pruned = w.data->packed ? w.data->packed->prune_error : 0.0;
          l.append(nb::make_tuple(s.node->name, op, shape_tuple(w.type.shape), w.encoding.empty() ? std::string("fp16") : w.encoding,
                                  held, 2 * n, err, pruned));
        }
        return l;
      })
      .def_prop_ro("precision", [](const af::Program& p) {
        return std::string(p.options.numerics.precision == af::Precision::fp32 ? "fp32" : "fp16");
      })
      .def_prop_ro("peak_activation_bytes", &af::Program::peak_activation_bytes)
      .def_prop_ro("num_layers", [](const af::Program& p) { return p.steps.size(); })
      .def_prop_ro("ties_away", [](const af::Program& p) { return p.options.numerics.fp16.round == af::RoundMode::nearest_away; })
      .def_prop_ro("flush_subnormals", [](const af::Program& p) { return p.options.numerics.fp16.flush_subnormals; })
      .def_prop_ro("layers", [](const af::Program& p) {
        nb::list l;
        for (const auto& s : p.steps)
          l.append(nb::make_tuple(s.node->name, af::layer_label(s), shape_tuple(p.values[s.out[0]].type.shape)));
        return l;
      })
      .def_prop_ro("inputs", [](const af::Program& p) {
        nb::list l;
        for (int v : p.inputs)
          l.append(nb::make_tuple(p.values[v].name, shape_tuple(p.values[v].type.shape),
                                  std::string(af::dtype_name(p.values[v].type.dtype))));
        return l;
      })
      .def_prop_ro("outputs", [](const af::Program& p) {
        nb::list l;
        for (size_t j = 0; j < p.outputs.size(); ++j) {
          const auto& v = p.values[p.outputs[j]];
          l.append(nb::make_tuple(p.output_names[j], shape_tuple(v.type.shape),
                                  std::string(af::dtype_name(v.type.dtype))));
        }
        return l;
      });

  m.def("compile", [](const std::vector<af::Tensor>& outputs, const std::vector<std::string>& names,
                      const std::vector<af::Tensor>& inputs, const std::string& precision,
                      const std::string& rounding, bool flush_subnormals, const std::string& target,
                      const std::string& compress, bool dump, const std::map<std::string, std::string>& layers,
                      const std::map<std::string, std::shared_ptr<af::PackedWeights>>& packed,
                      const std::map<std::string, double>& act_scales, bool check_finite, bool fold) {
    af::CompileOptions o;
    o.act_scales = act_scales;
    o.check_finite = check_finite;
    o.fold_constants = fold;
    for (const auto& [k, v] : packed) o.packed_layers[k] = v;
    o.compress = compress;
    o.compress_layers = layers;
    o.dump_passes = dump;
    o.output_names = names;
    o.inputs = inputs;
    o.target = target;
    if (precision == "fp32") o.numerics.precision = af::Precision::fp32;
    else if (precision != "fp16") throw af::ValueError("compile: precision must be 'fp16' or 'fp32', got '" + precision + "'");
    if (rounding == "nearest_away") o.numerics.fp16.round = af::RoundMode::nearest_away;
    else if (rounding != "nearest_even")
      throw af::ValueError("compile: rounding must be 'nearest_even' or 'nearest_away', got '" + rounding + "'");
    o.numerics.fp16.flush_subnormals = flush_subnormals;
    return std::shared_ptr<af::Program>(af::compile(outputs, o));
  }, "outputs"_a, "names"_a, "inputs"_a, "precision"_a, "rounding"_a, "flush_subnormals"_a, "target"_a, "compress"_a, "dump"_a = false,
     "compress_layers"_a = std::map<std::string, std::string>{},
     "packed_layers"_a = std::map<std::string, std::shared_ptr<af::PackedWeights>>{},
     "act_scales"_a = std::map<std::string, double>{}, "check_finite"_a = false, "fold_constants"_a = true);

  auto target_dict = [](const af::Target& t) {
    nb::dict d;
    d["name"] = t.name;
    d["family"] = af::family_name(t.family);
    d["mil"] = t.mil;
    d["chips"] = t.chips;
    d["chips_evidence"] = t.chips_evidence;
    d["spatial_max"] = t.spatial_max;
    d["channel_max"] = t.channel_max;
    d["kernel_width_max"] = t.kernel_w_max;
    d["max_rank"] = t.max_rank;
    d["tile_bytes"] = t.tile_bytes;
    d["streams"] = t.streams;
    d["fp16_tflops"] = t.fp16_tflops;
    d["bandwidth_gbs"] = t.bandwidth_gbs;
    d["dispatch_us"] = t.dispatch_us;
    d["layer_us"] = t.layer_us;
    d["rounding"] = t.rounding;
    d["sources"] = t.sources;
    return d;
  };
  m.def("targets", [target_dict] {
    nb::list l;
    for (const auto& t : af::targets()) l.append(target_dict(t));
    return l;
  });
  m.def("find_target", [target_dict](const std::string& n) { return target_dict(af::find_target(n)); }, "name"_a);
  m.def("estimate", [](const af::Program& p, const std::string& target) {
    const af::Target& t = target.empty() ? af::find_target(p.options.target) : af::find_target(target);
    af::Estimate e = af::estimate(p, t);
    nb::dict d;
    d["target"] = e.target;
    d["total_us"] = e.total_us;
    d["dispatch_us"] = e.dispatch_us;
    nb::list layers;
    for (const auto& c : e.layers) {
      nb::dict l;
      l["layer"] = c.layer;
      l["flops"] = c.flops;
      l["bytes"] = c.bytes;
      l["us"] = c.us;
      l["bound"] = c.compute_bound ? "compute" : "memory";
      layers.append(l);
    }
    d["layers"] = layers;
    return d;
  }, "program"_a, "target"_a = "");
  m.def("save_program", [](const af::Program& p, const std::string& path, int mode, bool overwrite) {
    af::Program copy = p;
    copy.metadata["output_mode"] = std::to_string(mode);
    af::save_program(copy, path, overwrite);
  }, "program"_a, "path"_a, "mode"_a, "overwrite"_a = false);
  m.def("load_program", [](const std::string& path) {
    auto p = af::load_program(path);
    int mode = p->metadata.count("output_mode") ? std::stoi(p->metadata["output_mode"]) : 1;
    return std::make_pair(p, mode);
  }, "path"_a);
  m.def("index_port_rows", [](const af::Program& p, size_t i) {
    if (i >= p.inputs.size()) throw af::ValueError("index_port_rows: no input " + std::to_string(i));
    return af::index_port_rows(p, i);
  }, "program"_a, "input"_a, "Rows of an input's engine port: 1, or one per 2048-row chunk of an index input.");
  m.def("index_limits", [](const af::Program& p) {
    std::vector<int64_t> out;
    for (const auto& r : af::int_input_rules(p)) out.push_back(r.index_limit);
    return out;
  }, "program"_a, "Per input: the size of the table it indexes (0 when it indexes none).");
  m.def("check_int_inputs", [](const af::Program& p, std::vector<std::optional<nb::ndarray<const float, nb::c_contig, nb::device::cpu>>> xs) {
    if (xs.size() != p.inputs.size()) throw af::ValueError("check_int_inputs: wrong number of inputs");
    std::vector<const float*> ptrs;
    for (size_t i = 0; i < xs.size(); ++i) {
      if (xs[i] && static_cast<int64_t>(xs[i]->size()) != af::numel(p.values[p.inputs[i]].type.shape))
        throw af::ValueError("check_int_inputs: input " + std::to_string(i) + " has the wrong size");
      ptrs.push_back(xs[i] ? xs[i]->data() : nullptr);
    }
    af::check_int_inputs(p, ptrs.data());
  }, "program"_a, "inputs"_a, "IndexError / ValueError for integer inputs the engine cannot take (as every backend checks).");
  m.def("mil_text", [](const af::Program& p, int opset) { return af::mil::to_text(af::mil::build(p, opset)); },
        "program"_a, "opset"_a);
  m.def("mil_blob", [](const af::Program& p, int opset) {
    auto b = af::mil::build(p, opset).weights.bytes;
    return nb::bytes(b.data(), b.size());
  }, "program"_a, "opset"_a);
  m.def("export_mlpackage", [](const af::Program& p, const std::string& path, int opset, bool overwrite) {
    af::mil::write_mlpackage(af::mil::build(p, opset), path, overwrite);
  }, "program"_a, "path"_a, "opset"_a, "overwrite"_a = false);
  m.def("write_file", [](const std::string& path, nb::bytes data, bool overwrite) {
    af::io::write_file(path, std::string(data.c_str(), data.size()), [overwrite](const std::string&) { return overwrite; });
  }, "path"_a, "data"_a, "overwrite"_a = false, "Durable write of a new file; an existing file only with overwrite.");
  m.def("check_target", [](const af::Program& p, const std::string& target) { af::check_target(p, af::find_target(target)); },
        "program"_a, "target"_a);

  bind_run(m);
  bind_packed(m);
}
