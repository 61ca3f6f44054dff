// Static checks of a program against a target: op support and shape limits.
#include "aneforge/error.h"
#include "aneforge/op.h"
#include "aneforge/target.h"
#include "passes/passes.h"

namespace af {

namespace {

Family family_of(const std::string& f) {
  if (f == "h14") return Family::h14;
  if (f == "h15") return Family::h15;
  if (f == "h16") return Family::h16;
  return Family::h13;
}

std::string targets_from(Family f) {
  std::string r;
  for (const auto& t : targets())
    if (t.mil && t.family >= f) r += (r.empty() ? "" : ", ") + t.name;
  return r;
}

std::string target_label(const Target& t) {
  return "target " + t.name + (t.chips.empty() ? "" : " (" + t.chips[0] + ")");
}

void check_value(const Program& p, int v, const Node& n, const Target& t) {
  const Shape& s = p.values[v].type.shape;
  Shape e = engine_shape(s);
  auto fail = [&](const std::string& what, int64_t got, int64_t lim) {
    throw TargetError(n.op->name + " '" + n.name + "': " + what + " " + std::to_string(got) + " of " + shape_str(s) +
                      " exceeds " + target_label(t) + "'s limit of " + std::to_string(lim) +
                      (lim < 65536 ? " (65536 from h16: " + targets_from(Family::h16) + ")" : ""));
  };
  if (e[3] > t.spatial_max) fail("width (last axis)", e[3], t.spatial_max);
  if (e[2] > t.spatial_max) fail("height", e[2], t.spatial_max);
  if (e[1] > t.channel_max) fail("channels", e[1], t.channel_max);
  if (e[0] > t.channel_max) fail("batch", e[0], t.channel_max);
}

void check_node(const Program& p, const Step& st, const Node& n, const Target& t) {
  Family need = family_of(n.op->min_family);
  if (need > t.family)
    throw TargetError(n.op->name + " '" + n.name + "' " + shape_str(p.values[st.out[0]].type.shape) + " cannot run on " +
                      target_label(t) + ": native from " + n.op->min_family + " (" + targets_from(need) +
                      ") and it has no decomposition");
  const std::string& op = n.op->name;
  if ((op == "conv" || op == "dynamic_conv" || op == "conv_transpose") && st.in.size() > 1) {
    const Shape& w = p.values[st.in[1]].type.shape;
    if (w.back() > t.kernel_w_max)
      throw TargetError(op + " '" + n.name + "': kernel width " + std::to_string(w.back()) + " of weight " + shape_str(w) +
                        " exceeds " + target_label(t) + "'s limit of " + std::to_string(t.kernel_w_max) +
                        (t.kernel_w_max < 15 ? " (15 from h16: " + targets_from(Family::h16) + ")" : "") +
                        "; split the kernel or use space_to_depth");
  }
  if (op == "matmul" || op == "linear") {
    const Shape& x = p.values[st.in[0]].type.shape;
    if (!x.empty() && x.back() > t.spatial_max)
      throw TargetError(op + " '" + n.name + "': inner dimension K = " + std::to_string(x.back()) + " of " + shape_str(x) +
                        " exceeds " + target_label(t) + "'s limit of " + std::to_string(t.spatial_max));
  }
}

}  // namespace

void check_target(const Program& p, const Target& t) {
  if (t.family == Family::reference)
    throw TargetError("target " + t.name + " is a reference target, not silicon; compile for one of: " +
                      targets_from(Family::h13));
  if (!t.mil)
    throw TargetError(target_label(t) + " cannot compile MIL programs (MIL needs h13 or later: " +
                      targets_from(Family::h13) + ")");
  for (int v : p.inputs) {
    const Shape& s = p.values[v].type.shape;
    Shape e = engine_shape(s);
    if (e[3] > t.spatial_max || e[2] > t.spatial_max || e[1] > t.channel_max)
      throw TargetError("input '" + p.values[v].name + "' " + shape_str(s) + " exceeds " + target_label(t) +
                        "'s limits (width/height " + std::to_string(t.spatial_max) + ", channels " +
                        std::to_string(t.channel_max) + ")");
  }
  for (const auto& st : p.steps) {
    check_node(p, st, *st.node, t);
    for (const auto& e : st.epilogue) check_node(p, st, *e, t);
    for (int v : st.in)
      if (!p.values[v].data) check_value(p, v, *st.node, t);
    for (int v : st.out) check_value(p, v, *st.node, t);
  }
}

}  // namespace af
