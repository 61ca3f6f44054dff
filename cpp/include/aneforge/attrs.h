// Node attributes: a small, ordered, serialisable map.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace af {

using AttrValue = std::variant<std::monostate, bool, int64_t, double, std::string,
                               std::vector<int64_t>, std::vector<double>>;

class Attrs {
 public:
  Attrs() = default;
  Attrs(std::initializer_list<std::pair<const std::string, AttrValue>> init) : m_(init) {}

  bool has(const std::string& k) const;
  const AttrValue& get(const std::string& k) const;  // throws ValueError if missing
  void set(const std::string& k, AttrValue v) { m_[k] = std::move(v); }
  void erase(const std::string& k) { m_.erase(k); }

  int64_t i(const std::string& k) const;
  int64_t i(const std::string& k, int64_t dflt) const;
  double f(const std::string& k) const;
  double f(const std::string& k, double dflt) const;
  bool b(const std::string& k, bool dflt = false) const;
  const std::string& s(const std::string& k) const;
  std::string s(const std::string& k, const std::string& dflt) const;
  // Integer list; a scalar int is accepted and returned as a one-element list.
  std::vector<int64_t> ints(const std::string& k) const;
  std::vector<double> floats(const std::string& k) const;

  const std::map<std::string, AttrValue>& items() const { return m_; }
  bool operator==(const Attrs& o) const { return m_ == o.m_; }
  std::string str() const;  // "stride=(1, 1), pad=(1, 1, 1, 1)"

 private:
  std::map<std::string, AttrValue> m_;
};

std::string attr_str(const AttrValue& v);

}  // namespace af
