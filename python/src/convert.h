// Conversions between Python values and core types, shared by the binding files.
#pragma once
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include "aneforge/aneforge.h"

namespace nb = nanobind;

namespace afpy {

af::AttrValue to_attr(nb::handle v, const std::string& key);
nb::object from_attr(const af::AttrValue& v);
af::Shape to_shape(nb::handle v, const char* what);
nb::tuple shape_tuple(const af::Shape& s);
void bind_run(nb::module_& m);
void bind_packed(nb::module_& m);

}  // namespace afpy
