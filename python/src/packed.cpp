// Compressed weights from and to NumPy: Program.packed(layer) shows what a layer holds, and
// PackedWeights(...) builds one (data-aware rounding computes its values in Python; compile
// checks every size before it is used).
#include <nanobind/ndarray.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "convert.h"
#include "aneforge/fp16.h"
#include "aneforge/program.h"
#include "passes/passes.h"

using namespace nb::literals;

namespace afpy {

namespace {

template <typename T>
nb::ndarray<nb::numpy, T> to_numpy(const std::vector<T>& v) {
  auto* copy = new std::vector<T>(v);
  nb::capsule owner(copy, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return nb::ndarray<nb::numpy, T>(copy->data(), {copy->size()}, owner);
}

template <typename T>
std::vector<T> from_numpy(nb::ndarray<const T, nb::ndim<1>, nb::c_contig, nb::device::cpu> a) {
  return std::vector<T>(a.data(), a.data() + a.shape(0));
}

}  // namespace

void bind_packed(nb::module_& m) {
  nb::class_<af::PackedWeights>(m, "PackedWeights")
      .def("__init__",
           [](af::PackedWeights* self, const std::string& format, nb::handle shape, int64_t block, int64_t group_rows,
              nb::ndarray<const int8_t, nb::ndim<1>, nb::c_contig, nb::device::cpu> q8,
              nb::ndarray<const uint16_t, nb::ndim<1>, nb::c_contig, nb::device::cpu> scales,
              nb::ndarray<const uint8_t, nb::ndim<1>, nb::c_contig, nb::device::cpu> q4,
              nb::ndarray<const uint16_t, nb::ndim<1>, nb::c_contig, nb::device::cpu> lut,
              nb::ndarray<const uint8_t, nb::ndim<1>, nb::c_contig, nb::device::cpu> mask,
              nb::ndarray<const uint16_t, nb::ndim<1>, nb::c_contig, nb::device::cpu> nz16) {
             af::PackedWeights p;
             p.format = format;
             p.shape = to_shape(shape, "PackedWeights shape");
             p.block = block;
             p.group_rows = group_rows;
             p.q8 = from_numpy(q8);
             p.scales = from_numpy(scales);
             p.q4 = from_numpy(q4);
             p.lut = from_numpy(lut);
             p.mask = from_numpy(mask);
             p.nz16 = from_numpy(nz16);
             std::string bad = p.check();
             if (!bad.empty()) throw af::ValueError("PackedWeights: " + bad);
             new (self) af::PackedWeights(std::move(p));
           },
           "format"_a, "shape"_a, "block"_a, "group_rows"_a, "q8"_a, "scales"_a, "q4"_a, "lut"_a, "mask"_a, "nz16"_a)
      .def_ro("format", &af::PackedWeights::format)
      .def_prop_ro("shape", [](const af::PackedWeights& p) { return shape_tuple(p.shape); })
      .def_ro("block", &af::PackedWeights::block)
      .def_ro("group_rows", &af::PackedWeights::group_rows)
      .def_prop_ro("q8", [](const af::PackedWeights& p) { return nb::cast(to_numpy(p.q8)); })
      .def_prop_ro("scales", [](const af::PackedWeights& p) { return nb::cast(to_numpy(p.scales)); })  // fp16 bits
      .def_prop_ro("q4", [](const af::PackedWeights& p) { return nb::cast(to_numpy(p.q4)); })
      .def_prop_ro("lut", [](const af::PackedWeights& p) { return nb::cast(to_numpy(p.lut)); })  // fp16 bits
      .def_prop_ro("mask", [](const af::PackedWeights& p) { return nb::cast(to_numpy(p.mask)); })
      .def_prop_ro("nz16", [](const af::PackedWeights& p) { return nb::cast(to_numpy(p.nz16)); })
      .def_prop_ro("stored_bytes", &af::PackedWeights::stored_bytes)
      .def_prop_ro("stored_count", &af::PackedWeights::stored_count)
      .def("dequantize", [](const af::PackedWeights& p) {
        std::vector<float> out(static_cast<size_t>(af::numel(p.shape)));
        p.dequantize(out.data());
        return to_numpy(out);
      });

  // ValueError naming the layer when `format` is not a compression format.
  m.def("check_compress_format", [](const std::string& format, const std::string& layer) {
    af::parse_compress_format(format, layer);
  }, "format"_a, "layer"_a);

  // The packed weight a layer of a compiled program holds (None when it is dense).
  m.def("packed_weight", [](const af::Program& p, const std::string& layer) -> std::shared_ptr<af::PackedWeights> {
    for (const auto& s : p.steps)
      if (s.node->name == layer && s.in.size() >= 2) {
        const af::Value& w = p.values[s.in[1]];
        return w.data ? std::const_pointer_cast<af::PackedWeights>(w.data->packed) : nullptr;
      }
    throw af::ValueError("packed_weight: the program has no layer '" + layer + "' with a weight");
  }, "program"_a, "layer"_a);
  // The dense weight of a layer, as the program holds it after its passes (batch norm folded).
  m.def("dense_weight", [](const af::Program& p, const std::string& layer) {
    for (const auto& s : p.steps)
      if (s.node->name == layer && s.in.size() >= 2) {
        const af::Value& w = p.values[s.in[1]];
        if (!w.data || w.data->packed) throw af::ValueError("dense_weight: layer '" + layer + "' has no dense constant weight");
        return to_numpy(w.data->values.to_vector());
      }
    throw af::ValueError("dense_weight: the program has no layer '" + layer + "' with a weight");
  }, "program"_a, "layer"_a);
}

}  // namespace afpy
