// Program: its accounting, printing, and the helpers passes share.
#include <algorithm>
#include <set>
#include <cstdio>

#include "aneforge/op.h"
#include "aneforge/target.h"
#include "passes/passes.h"

namespace af {

int Program::add_constant(std::vector<float> vals, const Shape& shape, DType dtype) {
  Value v;
  v.type = {shape, dtype};
  v.name = "const_p" + std::to_string(values.size());
  auto d = std::make_shared<ConstData>();
  d->values = std::move(vals);
  v.data = std::move(d);
  values.push_back(std::move(v));
  return static_cast<int>(values.size()) - 1;
}

std::vector<int> use_counts(const Program& p) {
  std::vector<int> uses(p.values.size(), 0);
  for (const auto& s : p.steps)
    for (int v : s.in) ++uses[v];
  for (int v : p.outputs) uses[v] += 1000;
  return uses;
}

void remove_steps(Program& p, const std::vector<bool>& dead) {
  std::vector<Step> kept;
  for (size_t s = 0; s < p.steps.size(); ++s)
    if (!dead[s]) kept.push_back(std::move(p.steps[s]));
  p.steps = std::move(kept);
  for (auto& v : p.values) v.producer = -1;
  for (size_t s = 0; s < p.steps.size(); ++s)
    for (int v : p.steps[s].out) p.values[v].producer = static_cast<int>(s);
}

void redirect(Program& p, int from, int to) {
  for (auto& s : p.steps)
    for (int& v : s.in)
      if (v == from) v = to;
  for (int& v : p.outputs)
    if (v == from) v = to;
}

int64_t Program::weight_bytes() const {
  std::vector<bool> used(values.size(), false);
  for (const auto& s : steps)
    for (int v : s.in) used[v] = true;
  for (int v : outputs) used[v] = true;
  int64_t b = 0;
  std::set<std::pair<const void*, int64_t>> counted;  // one memory seen under two shapes counts once
  for (size_t i = 0; i < values.size(); ++i) {
    const auto& v = values[i];
    if (!v.data || !used[i]) continue;
    int64_t n = numel(v.type.shape);
    int64_t bytes = v.data->packed ? v.data->packed->stored_bytes() : (n * std::max(16, dtype_bits(v.type.dtype)) + 7) / 8;
    const void* at = v.data->packed ? static_cast<const void*>(v.data->packed.get())
                     : v.data->values.is_half() ? static_cast<const void*>(v.data->values.half_data())
                                                 : static_cast<const void*>(v.data->values.data());
    if (counted.insert({at, bytes}).second) b += bytes;
  }
  return b;
}

int64_t Program::peak_activation_bytes() const {
  int64_t b = 0;
  if (slot_bytes.size() == slot_elems.size())
    for (auto e : slot_bytes) b += e;
  else
    for (auto e : slot_elems) b += e * 2;
  return b;
}

static std::string human_bytes(int64_t b) {
  char buf[32];
  if (b < 1024) std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(b));
  else if (b < (1 << 20)) std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
  return buf;
}

std::string layer_label(const Step& s) {
  std::string r = s.node->op->name;
  for (const auto& e : s.epilogue) r += "+" + e->op->name;
  return r;
}

std::string Program::summary() const {
  std::string r = "Program: " + std::to_string(steps.size()) + " layers, " + std::to_string(inputs.size()) +
                  " input(s), " + std::to_string(outputs.size()) + " output(s)\n";
  char line[640];
  std::snprintf(line, sizeof line, "  %-4s %-22s %-18s %-22s %-6s %s\n", "#", "layer", "op", "output", "dtype", "attributes");
  r += line;
  for (int i : inputs) {
    const auto& v = values[i];
    std::snprintf(line, sizeof line, "  %-4s %-22s %-18s %-22s %-6s\n", "in", v.name.c_str(), "input",
                  shape_str(v.type.shape).c_str(), std::string(dtype_name(v.type.dtype)).c_str());
    r += line;
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto& n = *steps[i].node;
    const auto& v = values[steps[i].out[0]];
    std::string attrs = n.attrs.str();
    for (int in : steps[i].in)  // a compressed weight: its format and the bytes it takes
      if (values[in].data && values[in].data->packed)
        attrs = "weight=" + values[in].encoding + " " + human_bytes(values[in].data->packed->stored_bytes()) +
                (attrs.empty() ? "" : ", ") + attrs;
    std::snprintf(line, sizeof line, "  %-4zu %-22s %-18s %-22s %-6s %s\n", i, n.name.c_str(), layer_label(steps[i]).c_str(),
                  shape_str(v.type.shape).c_str(), std::string(dtype_name(v.type.dtype)).c_str(), attrs.c_str());
    r += line;
  }
  int packed = 0;
  for (const auto& v : values) packed += v.data && v.data->packed;
  r += "  weights: " + human_bytes(weight_bytes()) +
       (packed ? " (" + std::to_string(packed) + " compressed as marked, the rest fp16)" : " (fp16)") +
       ", peak activations: " + human_bytes(peak_activation_bytes()) + " (fp16, 64-byte rows, " +
       std::to_string(slot_elems.size()) + " buffers)\n";
  r += std::string("  precision: ") + (options.numerics.precision == Precision::fp16 ? "fp16" : "fp32") +
       ", target: " + (options.target.empty() ? "default" : options.target);
  if (!options.target.empty()) {
    Estimate e = estimate(*this, find_target(options.target));
    char buf[96];
    std::snprintf(buf, sizeof buf, ", estimated engine latency: %.1f us (%.0f us dispatch)", e.total_us, e.dispatch_us);
    r += buf;
  }
  return r + "\n";
}

std::string Program::text() const {
  std::string r;
  auto vname = [&](int v) {  // appended, not "%" + ...: gcc 12 warns falsely (-Wrestrict, GCC bug 105651)
    std::string n = "%";
    n += std::to_string(v);
    return n;
  };
  for (int v : inputs)
    r += "  " + vname(v) + " = input '" + values[v].name + "' : " + shape_str(values[v].type.shape) + " " +
         std::string(dtype_name(values[v].type.dtype)) + "\n";
  for (const auto& s : steps) {
    std::string outs, ins;
    for (int v : s.out) outs += (outs.empty() ? "" : ", ") + vname(v);
    for (int v : s.in) {
      ins += (ins.empty() ? "" : ", ") + vname(v);
      if (values[v].data && numel(values[v].type.shape) == 1) {
        ins += '=';
        ins += std::to_string(values[v].data->values[0]).substr(0, 8);
      } else if (values[v].data) {
        ins += "=const";
      }
    }
    std::string attrs = s.node->attrs.str();
    const auto& t = values[s.out[0]].type;
    r += "  " + outs + " = " + layer_label(s) + "(" + ins + ")" + (attrs.empty() ? "" : " {" + attrs + "}") + " : " +
         shape_str(t.shape) + " " + std::string(dtype_name(t.dtype)) +
         (values[s.out[0]].layout.empty() ? "" : " " + values[s.out[0]].layout) + "\n";
  }
  std::string outs;
  for (int v : outputs) outs += (outs.empty() ? "" : ", ") + vname(v);
  return r + "  return " + outs + "\n";
}

}  // namespace af
