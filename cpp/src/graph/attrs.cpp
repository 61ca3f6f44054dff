#include "aneforge/attrs.h"

#include <cstdio>

#include "aneforge/error.h"

namespace af {

bool Attrs::has(const std::string& k) const {
  auto it = m_.find(k);
  return it != m_.end() && !std::holds_alternative<std::monostate>(it->second);
}

const AttrValue& Attrs::get(const std::string& k) const {
  auto it = m_.find(k);
  if (it == m_.end()) throw ValueError("missing attribute '" + k + "'");
  return it->second;
}

int64_t Attrs::i(const std::string& k) const {
  const auto& v = get(k);
  if (auto p = std::get_if<int64_t>(&v)) return *p;
  if (auto p = std::get_if<bool>(&v)) return *p;
  if (auto p = std::get_if<std::vector<int64_t>>(&v); p && p->size() == 1) return (*p)[0];
  throw ValueError("attribute '" + k + "' must be an int, got " + attr_str(v));
}
int64_t Attrs::i(const std::string& k, int64_t d) const { return has(k) ? i(k) : d; }

double Attrs::f(const std::string& k) const {
  const auto& v = get(k);
  if (auto p = std::get_if<double>(&v)) return *p;
  if (auto p = std::get_if<int64_t>(&v)) return static_cast<double>(*p);
  if (auto p = std::get_if<bool>(&v)) return *p;
  throw ValueError("attribute '" + k + "' must be a number, got " + attr_str(v));
}
double Attrs::f(const std::string& k, double d) const { return has(k) ? f(k) : d; }

bool Attrs::b(const std::string& k, bool d) const {
  if (!has(k)) return d;
  const auto& v = get(k);
  if (auto p = std::get_if<bool>(&v)) return *p;
  if (auto p = std::get_if<int64_t>(&v)) return *p != 0;
  throw ValueError("attribute '" + k + "' must be a bool, got " + attr_str(v));
}

const std::string& Attrs::s(const std::string& k) const {
  const auto& v = get(k);
  if (auto p = std::get_if<std::string>(&v)) return *p;
  throw ValueError("attribute '" + k + "' must be a string, got " + attr_str(v));
}
std::string Attrs::s(const std::string& k, const std::string& d) const { return has(k) ? s(k) : d; }

std::vector<int64_t> Attrs::ints(const std::string& k) const {
  const auto& v = get(k);
  if (auto p = std::get_if<std::vector<int64_t>>(&v)) return *p;
  if (auto p = std::get_if<int64_t>(&v)) return {*p};
  if (auto p = std::get_if<bool>(&v)) return {*p ? 1 : 0};
  if (auto p = std::get_if<std::vector<double>>(&v); p && p->empty()) return {};
  throw ValueError("attribute '" + k + "' must be an int or a tuple of ints, got " + attr_str(v));
}

std::vector<double> Attrs::floats(const std::string& k) const {
  const auto& v = get(k);
  if (auto p = std::get_if<std::vector<double>>(&v)) return *p;
  if (auto p = std::get_if<std::vector<int64_t>>(&v)) return {p->begin(), p->end()};
  return {f(k)};
}

std::string attr_str(const AttrValue& v) {
  struct V {
    std::string operator()(std::monostate) const { return "None"; }
    std::string operator()(bool b) const { return b ? "True" : "False"; }
    std::string operator()(int64_t x) const { return std::to_string(x); }
    std::string operator()(double x) const {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%g", x);
      return buf;
    }
    std::string operator()(const std::string& s) const { return "'" + s + "'"; }
    std::string operator()(const std::vector<int64_t>& xs) const {
      std::string r = "(";
      for (size_t i = 0; i < xs.size(); ++i) r += (i ? ", " : "") + std::to_string(xs[i]);
      return r + (xs.size() == 1 ? ",)" : ")");
    }
    std::string operator()(const std::vector<double>& xs) const {
      std::string r = "(";
      for (size_t i = 0; i < xs.size(); ++i) r += (i ? ", " : "") + (*this)(xs[i]);
      return r + (xs.size() == 1 ? ",)" : ")");
    }
  };
  return std::visit(V{}, v);
}

std::string Attrs::str() const {
  std::string r;
  for (const auto& [k, v] : m_) {
    if (std::holds_alternative<std::monostate>(v)) continue;
    r += (r.empty() ? "" : ", ") + k + "=" + attr_str(v);
  }
  return r;
}

}  // namespace af
