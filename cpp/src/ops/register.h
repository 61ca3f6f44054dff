// Registration entry points of the op families (called once, from registry.cpp).
#pragma once
#include "aneforge/op.h"

namespace af {
void register_leaf_ops();
void register_elementwise_ops();
void register_linalg_ops();
void register_reduction_ops();
void register_shape_ops();
void register_pool_ops();
void register_norm_ops();
void register_bridge_ops();
void register_indexing_ops();
void register_quant_ops();
// Each family's MIL emitters, defined beside its ops.
void attach_elementwise_mil();
void attach_linalg_mil();
void attach_reduction_mil();
void attach_norm_mil();
void attach_shape_mil();
void attach_pool_mil();
// Each family's gradients (OpDef::grad), written in other ops, beside its ops.
void attach_elementwise_grad();
void attach_linalg_grad();
void attach_reduction_grad();
void attach_shape_grad();
void attach_layout_grad();
void attach_slicing_grad();
void attach_conv_grad();
void attach_pool_grad();
void attach_norm_grad();
void attach_indexing_grad();
OpDef& mutable_op(const std::string& name);

// An int-or-pair attribute (stride, dilation, kernel_size, ...), each entry >= lo.
std::vector<int64_t> int_pair(InferContext& c, const char* key, std::vector<int64_t> dflt, int64_t lo);

// Shorthands for op definitions.
// A bridge op: lowered by the compiler into native ops of the same program.
inline OpDef bridge_def(const char* name, const char* cat, const char* doc, const char* lowered, std::vector<Param> params) {
  OpDef d;
  d.name = name;
  d.category = cat;
  d.doc = doc;
  d.bridge = true;
  d.mil_op = std::string("(bridge) ") + lowered;
  d.params = std::move(params);
  return d;
}
// The op's outputs are its inputs' elements or a comparison's 0/1 (OpDef::exact_output).
inline OpDef exact(OpDef d) {
  d.exact_output = true;
  return d;
}

inline OpDef aliased(OpDef d, std::vector<std::string> names) {
  d.aliases = std::move(names);
  return d;
}
inline Param P(std::string name, ParamKind kind, std::string dflt = "") {
  return Param{std::move(name), kind, std::move(dflt)};
}
}  // namespace af
