// Integer inputs on the host (aneforge/program.h): the rules kept with a program, the
// checks every backend makes before a run, and the per-chunk rows of an index input's port.
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "aneforge/error.h"
#include "aneforge/fp16.h"
#include "aneforge/op.h"
#include "aneforge/program.h"

namespace af {

namespace {
constexpr const char* kRulesKey = "aneforge.int_inputs";
}

std::vector<IntInputRule> int_input_rules(const Program& p) {
  std::vector<IntInputRule> rules(p.inputs.size());
  auto it = p.metadata.find(kRulesKey);
  if (it == p.metadata.end()) return rules;
  std::stringstream ss(it->second);
  std::string item;
  size_t i = 0;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    long long limit = std::strtoll(item.c_str(), &end, 10);
    if (i >= rules.size() || end == item.c_str() || *end != ':' || (end[1] != '0' && end[1] != '1') || end[2] != '\0' ||
        limit < 0 || limit > (1LL << 24))
      throw ValueError(std::string("program metadata '") + kRulesKey + "' is malformed: '" + it->second + "'");
    rules[i++] = IntInputRule{limit, end[1] == '1'};
  }
  if (i != rules.size())
    throw ValueError(std::string("program metadata '") + kRulesKey + "' has " + std::to_string(i) + " entries for " +
                     std::to_string(rules.size()) + " inputs");
  return rules;
}

void set_int_input_rules(Program& p, const std::vector<IntInputRule>& rules) {
  std::string v;
  for (const auto& r : rules) {
    if (!v.empty()) v.push_back(',');
    v.append(std::to_string(r.index_limit));
    v.append(r.plain_use ? ":1" : ":0");
  }
  p.metadata[kRulesKey] = v;
}

int index_port_rows(const Program& p, size_t input) {
  int rows = 1;
  for (const auto& s : p.steps)
    if (s.node->op->name == "index_offset" && s.in[0] == p.inputs.at(input))
      rows = std::max(rows, static_cast<int>(s.node->attrs.i("offset") / kIndexChunk) + 1);
  return rows;
}

void check_int_inputs(const Program& p, const float* const* inputs) {
  std::vector<IntInputRule> rules;
  for (size_t i = 0; i < p.inputs.size(); ++i) {
    const Value& v = p.values[p.inputs[i]];
    if (v.type.dtype != DType::int32 || !inputs[i]) continue;
    if (rules.empty()) rules = int_input_rules(p);
    const IntInputRule& r = rules[i];
    const float* x = inputs[i];
    for (int64_t k = 0, n = numel(v.type.shape); k < n; ++k) {
      if (r.index_limit > 0 && !(x[k] >= 0 && x[k] < static_cast<float>(r.index_limit)))
        throw IndexError("input '" + v.name + "': index " + std::to_string(static_cast<int64_t>(x[k])) + " at flat position " +
                         std::to_string(k) + " is out of range for a table of " + std::to_string(r.index_limit) +
                         " rows (valid: 0.." + std::to_string(r.index_limit - 1) + ")");
      if (r.plain_use && half_to_float(float_to_half(x[k])) != x[k])
        throw ValueError("input '" + v.name + "': " + std::to_string(static_cast<int64_t>(x[k])) + " at flat position " +
                         std::to_string(k) +
                         " is not exact in fp16, how the engine holds integers (exact to 2048); ids used only to "
                         "index tables are exact at any size");
    }
  }
}

void encode_index_rows(const float* x, size_t n, int rows, float* out) {
  for (int k = 0; k < rows; ++k)
    for (size_t i = 0; i < n; ++i) out[k * n + i] = x[i] - static_cast<float>(k * kIndexChunk);
}

}  // namespace af
