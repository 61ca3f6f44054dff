// af::compile: graph -> one Program, through the passes in order.
#include <algorithm>
#include <set>
#include <unordered_map>

#include "aneforge/error.h"
#include "aneforge/op.h"
#include "aneforge/runtime.h"
#include "aneforge/target.h"
#include "passes/passes.h"

namespace af {

namespace {

std::shared_ptr<Program> build_program(const std::vector<Tensor>& outputs, const CompileOptions& opts,
                                       bool allow_bridges = false) {
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
        throw ValueError("compile: the outputs depend on input '" + n->name + "', which is missing from inputs=");
    graph_inputs = ordered;
  }
  std::set<std::string> names;
  for (auto& n : graph_inputs)
    if (!names.insert(n->name).second)
      throw ValueError("compile: two graph inputs are named '" + n->name + "'; give them distinct names");

  auto prog = std::make_shared<Program>();
  prog->options = opts;
  std::unordered_map<const Node*, int> first_value;
  auto add_values = [&](const std::shared_ptr<Node>& n, int producer) {
    first_value[n.get()] = static_cast<int>(prog->values.size());
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      Value v;
      v.type = n->outputs[i];
      v.name = i == 0 ? n->name : n->name + ":" + std::to_string(i);
      v.auto_name = n->auto_name;
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
    if (n->is_input()) continue;
    if (n->is_const()) {
      add_values(n, -1);
      prog->values.back().data = n->data;
      continue;
    }
    if (!n->op->kernel && !(allow_bridges && n->op->bridge)) throw UnsupportedError("compile: op '" + n->op->name + "' has no simulator kernel yet");
    Step s;
    s.node = n;
    for (const auto& t : n->inputs) s.in.push_back(value_of(t));
    add_values(n, static_cast<int>(prog->steps.size()));
    for (size_t i = 0; i < n->outputs.size(); ++i) s.out.push_back(first_value[n.get()] + static_cast<int>(i));
    prog->steps.push_back(std::move(s));
  }
  for (const auto& t : outputs) prog->outputs.push_back(value_of(t));
  return prog;
}

}  // namespace

namespace {

// A layer keeps its op and attributes, not the graph it came from: its node's inputs become
// type-only leaves, as in a loaded program. Otherwise the program would hold every graph
// constant (an imported model's float32 weights) alive through its nodes.
std::shared_ptr<Node> detached(const Node& n) {
  auto copy = std::make_shared<Node>(n);
  for (auto& t : copy->inputs) {
    auto leaf = std::make_shared<Node>();
    leaf->op = &op_def("input");
    leaf->outputs = {t.type()};
    t = Tensor(leaf, 0);
  }
  return copy;
}

void detach_from_graph(Program& p) {
  for (auto& s : p.steps) {
    s.node = detached(*s.node);
    for (auto& e : s.epilogue) e = detached(*e);
  }
}

}  // namespace

std::shared_ptr<Program> compile(const std::vector<Tensor>& user_outputs, const CompileOptions& opts) {
  if (user_outputs.empty()) throw ValueError("compile: no outputs given");
  for (size_t i = 0; i < user_outputs.size(); ++i)
    if (!user_outputs[i].valid()) throw ValueError("compile: output " + std::to_string(i) + " is empty");
  std::vector<std::string> names;
  if (!opts.output_names.empty()) {
    if (opts.output_names.size() != user_outputs.size())
      throw ValueError("compile: " + std::to_string(opts.output_names.size()) + " output names for " +
                       std::to_string(user_outputs.size()) + " outputs");
    names = opts.output_names;
  } else {
    for (const auto& t : user_outputs) names.push_back(t.name());
  }
  const Target& target = opts.target.empty() ? default_target() : find_target(opts.target);
  CompileOptions o = opts;
  o.target = target.name;
  std::string log;
  if (opts.dump_passes) log += "== graph ==\n" + build_program(user_outputs, o, true)->text();
  // Index ops over large tables become chunks exact in fp16; then bridge ops become native
  // sequences and ops the target family lacks are decomposed.
  std::map<std::string, IntInputRule> rules;
  auto split = split_index_ranges(quantize_activations(user_outputs, opts.act_scales), &rules);
  split = patchify_wide_convs(split, target.kernel_w_max);
  auto prog = build_program(lower_bridges(split, std::min(16, static_cast<int>(target.family))), o);
  prog->output_names = names;
  if (!rules.empty()) {
    std::vector<IntInputRule> per_input;
    for (int v : prog->inputs) per_input.push_back(rules.count(prog->values[v].name) ? rules[prog->values[v].name] : IntInputRule{});
    set_int_input_rules(*prog, per_input);
  }
  if (opts.dump_passes) log += "== lower_bridges ==\n" + prog->text();
  static const PassInfo pipeline[] = {
      {"fold_constants", fold_constants},
      {"eliminate_common_subexpressions", eliminate_common_subexpressions},
      {"fold_batch_norm", fold_batch_norm},
      {"matmul_as_linear", matmul_as_linear},
      {"fold_matmul_transposes", fold_matmul_transposes},
      {"fuse_bias", fuse_bias},
      {"fuse_activations", fuse_activations},
      {"linear_as_conv", linear_as_conv},
      {"eliminate_dead_code", eliminate_dead_code},
  };
  for (const auto& pass : pipeline) {
    if (!opts.fold_constants && pass.run == fold_constants) continue;
    pass.run(*prog);
    if (opts.dump_passes) log += "== " + std::string(pass.name) + " ==\n" + prog->text();
  }
  compress_weights(*prog, opts);
  if (opts.dump_passes && !opts.compress.empty()) log += "== compress_weights(" + opts.compress + ") ==\n" + prog->text();
  for (const PassInfo& pass : {PassInfo{"cast_constants", cast_constants}, PassInfo{"assign_layout", assign_layout},
                               PassInfo{"plan_memory", plan_memory}}) {
    pass.run(*prog);
    if (opts.dump_passes) log += "== " + std::string(pass.name) + " ==\n" + prog->text();
  }
  // An output named after a generated node (a process-wide id) stays generated when lowering
  // replaced its producer, so the MIL names it by position (the same graph, the same MIL).
  for (size_t j = 0; j < prog->outputs.size() && opts.output_names.empty(); ++j) {
    Value& v = prog->values[prog->outputs[j]];
    if (user_outputs[j].node()->auto_name && v.auto_name && v.producer >= 0) v.name = names[j];
  }
  check_target(*prog, target);  // nothing reaches a lower layer that the target cannot run
  detach_from_graph(*prog);
  prog->pass_log = std::move(log);
  return prog;
}

}  // namespace af
