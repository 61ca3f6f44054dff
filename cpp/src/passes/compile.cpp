// Graph -> Program: input order, constants rounded to storage, steps, memory plan.
// The optimisation passes (fold, fuse, layout, bridge lowering) slot in before planning.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

#include "aneforge/error.h"
#include "aneforge/op.h"
#include "aneforge/program.h"
#include "aneforge/runtime.h"
#include "passes/compress.h"
#include "passes/fuse.h"
#include "passes/lower.h"
#include "passes/memory_plan.h"

namespace af {

namespace {

std::shared_ptr<const ConstData> stored_const(const std::shared_ptr<const ConstData>& data, DType dt,
                                              const Numerics& num) {
  bool round16 = dt == DType::fp16 && num.precision == Precision::fp16;
  if (!round16 && dt != DType::boolean && !is_integer(dt)) return data;
  auto d = std::make_shared<ConstData>(*data);
  SimContext ctx{num};
  ctx.store(d->values.data(), d->values.size(), dt);
  return d;
}

}  // namespace

std::shared_ptr<Program> compile(const std::vector<Tensor>& user_outputs, const CompileOptions& opts) {
  if (user_outputs.empty()) throw ValueError("compile: no outputs given");
  for (size_t i = 0; i < user_outputs.size(); ++i)
    if (!user_outputs[i].valid()) throw ValueError("compile: output " + std::to_string(i) + " is empty");
  std::vector<std::string> default_names;
  for (const auto& t : user_outputs) default_names.push_back(t.name());
  // Bridge ops become native sequences inside this same program.
  const std::vector<Tensor> outputs = lower_bridges(user_outputs);
  auto nodes = topo_sort(outputs);

  std::vector<std::shared_ptr<Node>> graph_inputs;
  for (auto& n : nodes)
    if (n->is_input()) graph_inputs.push_back(n);
  std::sort(graph_inputs.begin(), graph_inputs.end(), [](auto& a, auto& b) { return a->id < b->id; });
  if (!opts.inputs.empty()) {
    std::vector<std::shared_ptr<Node>> ordered;
    std::set<const Node*> given;
    for (const auto& t : opts.inputs) {
      if (!t.valid() || !t.node()->is_input())
        throw ValueError("compile: inputs= must list graph inputs made by af.input, got " + t.str());
      if (!given.insert(t.node().get()).second)
        throw ValueError("compile: input '" + t.node()->name + "' is listed twice in inputs=");
      ordered.push_back(t.node());
    }
    for (auto& n : graph_inputs)
      if (!given.count(n.get()))
        throw ValueError("compile: the outputs depend on input '" + n->name +
                         "', which is missing from inputs=");
    graph_inputs = ordered;
  }
  {
    std::set<std::string> names;
    for (auto& n : graph_inputs)
      if (!names.insert(n->name).second)
        throw ValueError("compile: two graph inputs are named '" + n->name + "'; give them distinct names");
  }

  auto prog = std::make_shared<Program>();
  prog->options = opts;
  std::unordered_map<const Node*, int> first_value;
  auto add_values = [&](const std::shared_ptr<Node>& n, int producer) {
    first_value[n.get()] = static_cast<int>(prog->values.size());
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      Value v;
      v.type = n->outputs[i];
      v.name = i == 0 ? n->name : n->name + ":" + std::to_string(i);
      v.producer = producer;
      prog->values.push_back(std::move(v));
    }
  };
  auto value_of = [&](const Tensor& t) { return first_value.at(t.node().get()) + t.index(); };

  for (auto& n : graph_inputs) {
    add_values(n, -1);
    prog->inputs.push_back(first_value[n.get()]);
  }
  for (auto& n : nodes) {
    if (n->is_input()) {
      if (!first_value.count(n.get())) add_values(n, -1);  // unused input given in inputs=
      continue;
    }
    if (n->is_const()) {
      add_values(n, -1);
      prog->values.back().data = n->data;
      continue;
    }
    if (!n->op->kernel)
      throw UnsupportedError("compile: op '" + n->op->name + "' has no simulator kernel yet");
    Step s;
    s.node = n;
    for (const auto& t : n->inputs) s.in.push_back(value_of(t));
    add_values(n, static_cast<int>(prog->steps.size()));
    for (size_t i = 0; i < n->outputs.size(); ++i) s.out.push_back(first_value[n.get()] + static_cast<int>(i));
    prog->steps.push_back(std::move(s));
  }
  for (const auto& t : outputs) prog->outputs.push_back(value_of(t));

  if (!opts.output_names.empty()) {
    if (opts.output_names.size() != outputs.size())
      throw ValueError("compile: " + std::to_string(opts.output_names.size()) + " output names for " +
                       std::to_string(outputs.size()) + " outputs");
    prog->output_names = opts.output_names;
  } else {
    prog->output_names = default_names;
  }
  fuse_activations(*prog);
  compress_weights(*prog, opts.compress);
  for (auto& v : prog->values)
    if (v.data) v.data = stored_const(v.data, v.type.dtype, opts.numerics);
  plan_memory(*prog);
  return prog;
}

int64_t Program::weight_bytes() const {
  int64_t b = 0;
  for (const auto& v : values) {
    if (!v.data) continue;
    int64_t n = numel(v.type.shape);
    if (v.encoding == "int8") b += n + v.type.shape[0] * 2;  // int8 values + fp16 scales
    else b += (n * std::max(16, dtype_bits(v.type.dtype)) + 7) / 8;
  }
  return b;
}

int64_t Program::peak_activation_bytes() const {
  int64_t b = 0;
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

std::string Program::summary() const {
  std::string r = "Program: " + std::to_string(steps.size()) + " layers, " +
                  std::to_string(inputs.size()) + " input(s), " + std::to_string(outputs.size()) +
                  " output(s)\n";
  char line[512];
  std::snprintf(line, sizeof line, "  %-4s %-22s %-10s %-22s %-6s %s\n", "#", "layer", "op", "output", "dtype",
                "attributes");
  r += line;
  for (int i : inputs) {
    const auto& v = values[i];
    std::snprintf(line, sizeof line, "  %-4s %-22s %-10s %-22s %-6s\n", "in", v.name.c_str(), "input",
                  shape_str(v.type.shape).c_str(), std::string(dtype_name(v.type.dtype)).c_str());
    r += line;
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto& n = *steps[i].node;
    const auto& v = values[steps[i].out[0]];
    std::snprintf(line, sizeof line, "  %-4zu %-22s %-10s %-22s %-6s %s\n", i, n.name.c_str(),
                  n.op->name.c_str(), shape_str(v.type.shape).c_str(),
                  std::string(dtype_name(v.type.dtype)).c_str(), n.attrs.str().c_str());
    r += line;
  }
  r += "  weights: " + human_bytes(weight_bytes()) + (options.compress.empty() ? " (fp16)" : " (" + options.compress + ")") + ", peak activations: " +
       human_bytes(peak_activation_bytes()) + " (fp16, " + std::to_string(slot_elems.size()) +
       " buffers)\n";
  r += std::string("  precision: ") + (options.numerics.precision == Precision::fp16 ? "fp16" : "fp32") +
       ", target: " + (options.target.empty() ? "default" : options.target) + "\n";
  return r;
}

}  // namespace af
