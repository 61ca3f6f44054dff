// einsum: a composite lowered to permute, reshape, sum and matmul (no node of its own).
#include <algorithm>
#include <map>

#include "ops/register.h"

namespace af {

namespace {

[[noreturn]] void fail(const std::string& m) { throw ValueError("einsum: " + m); }

Tensor permute_to(const Tensor& t, const std::string& have, const std::string& want) {
  if (have == want) return t;
  std::vector<int64_t> dims;
  for (char ch : want) dims.push_back(static_cast<int64_t>(have.find(ch)));
  return call1("permute", {t}, {{"dims", dims}});
}

// Sum out letters of `s` that are not in `keep`.
Tensor sum_out(const Tensor& t, std::string& s, const std::string& keep) {
  std::vector<int64_t> axes;
  std::string rest;
  for (size_t i = 0; i < s.size(); ++i) {
    if (keep.find(s[i]) == std::string::npos) axes.push_back(static_cast<int64_t>(i));
    else rest += s[i];
  }
  if (axes.empty()) return t;
  s = rest;
  return call1("sum", {t}, {{"axis", axes}});
}

Tensor reshape(const Tensor& t, Shape s) {
  if (s == t.shape()) return t;
  return call1("reshape", {t}, {{"shape", std::vector<int64_t>(s.begin(), s.end())}});
}

// Contract two operands, keeping the letters in `keep`.
Tensor contract(Tensor a, std::string sa, Tensor b, std::string sb, const std::string& keep, std::string& out) {
  std::string needed_a = keep + sb, needed_b = keep + sa;
  a = sum_out(a, sa, needed_a);
  b = sum_out(b, sb, needed_b);
  std::string batch, af_, bf, con;
  std::map<char, int64_t> size;
  for (size_t i = 0; i < sa.size(); ++i) size[sa[i]] = a.shape()[i];
  for (size_t i = 0; i < sb.size(); ++i) {
    char ch = sb[i];
    if (size.count(ch) && size[ch] != b.shape()[i])
      fail("letter '" + std::string(1, ch) + "' has size " + std::to_string(size[ch]) + " in one operand and " +
           std::to_string(b.shape()[i]) + " in the other");
    size[ch] = b.shape()[i];
  }
  for (char ch : sa) {
    bool in_b = sb.find(ch) != std::string::npos, kept = keep.find(ch) != std::string::npos;
    if (in_b && kept) batch += ch;
    else if (in_b) con += ch;
    else af_ += ch;
  }
  for (char ch : sb)
    if (sa.find(ch) == std::string::npos) bf += ch;
  auto prod = [&](const std::string& s) {
    int64_t p = 1;
    for (char ch : s) p *= size[ch];
    return p;
  };
  Tensor A = reshape(permute_to(a, sa, batch + af_ + con), {prod(batch), prod(af_), prod(con)});
  Tensor B = reshape(permute_to(b, sb, batch + con + bf), {prod(batch), prod(con), prod(bf)});
  Tensor C = call1("matmul", {A, B});
  Shape cs;
  for (char ch : batch + af_ + bf) cs.push_back(size[ch]);
  out = batch + af_ + bf;
  return reshape(C, cs);
}

std::vector<Tensor> einsum_build(const std::vector<Tensor>& ops, const Attrs& attrs) {
  std::string eq;
  for (char ch : attrs.s("equation"))
    if (ch != ' ') eq += ch;
  if (eq.find("...") != std::string::npos) fail("'...' (ellipsis) is not supported; name every axis");
  std::string lhs = eq, rhs;
  bool explicit_out = eq.find("->") != std::string::npos;
  if (explicit_out) {
    lhs = eq.substr(0, eq.find("->"));
    rhs = eq.substr(eq.find("->") + 2);
  }
  std::vector<std::string> terms;
  size_t start = 0;
  for (size_t i = 0; i <= lhs.size(); ++i)
    if (i == lhs.size() || lhs[i] == ',') {
      terms.push_back(lhs.substr(start, i - start));
      start = i + 1;
    }
  if (terms.size() != ops.size())
    fail("equation '" + eq + "' names " + std::to_string(terms.size()) + " operands, got " + std::to_string(ops.size()));
  std::map<char, int> count;
  for (size_t i = 0; i < terms.size(); ++i) {
    if (static_cast<int>(terms[i].size()) != ops[i].rank())
      fail("operand " + std::to_string(i) + " has shape " + shape_str(ops[i].shape()) + " but '" + terms[i] + "' names " +
           std::to_string(terms[i].size()) + " axes");
    for (char ch : terms[i]) {
      if (!std::isalpha(static_cast<unsigned char>(ch))) fail("invalid character '" + std::string(1, ch) + "'");
      if (std::count(terms[i].begin(), terms[i].end(), ch) > 1)
        fail("repeated letter '" + std::string(1, ch) + "' in one operand (diagonals) is not supported");
      ++count[ch];
    }
  }
  if (!explicit_out)
    for (auto [ch, n] : count)
      if (n == 1) rhs += ch;
  for (char ch : rhs)
    if (!count.count(ch)) fail("output letter '" + std::string(1, ch) + "' does not appear in the inputs");
  Tensor cur = ops[0];
  std::string cs = terms[0];
  for (size_t i = 1; i < ops.size(); ++i) {
    std::string keep = rhs;
    for (size_t j = i + 1; j < terms.size(); ++j) keep += terms[j];
    std::string out;
    cur = contract(cur, cs, ops[i], terms[i], keep, out);
    cs = out;
  }
  cur = sum_out(cur, cs, rhs);
  if (cur.rank() == 0 && rhs.empty()) return {cur};
  return {permute_to(cur, cs, rhs)};
}

}  // namespace

void register_einsum_op() {
  OpDef d;
  d.name = "einsum";
  d.category = "linalg";
  d.doc = "Einstein summation over named axes (torch.einsum), lowered to permute/reshape/matmul/sum.";
  d.params = {P("equation", ParamKind::str), P("operands", ParamKind::tensors, "*")};
  d.mil_op = "matmul/transpose/reshape/reduce_sum";
  d.build = einsum_build;
  register_op(std::move(d));
}

}  // namespace af
