#pragma once
// Session settings a client made with SET (or its startup packet), kept so that in transaction
// pooling they can be re-applied on whichever server the client is given next. A server keeps
// the same structure for what has been applied on it; equal fingerprints mean nothing to do,
// which is the common case and costs one integer comparison.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace shardline::proxy::backend {

class SessionVars {
 public:
  using Map = std::map<std::string, std::string>;

  /// `sql` is a statement that establishes the value (the client's own SET text, or one we built).
  void set(const std::string& name, std::string sql) {
    mutable_vars()[name] = std::move(sql);
    rehash();
  }
  void reset(const std::string& name) {
    if (vars().count(name)) {
      mutable_vars().erase(name);
      rehash();
    }
  }
  void reset_all() {
    vars_.reset();
    fingerprint_ = 0;
  }
  std::uint64_t fingerprint() const { return fingerprint_; }
  /// Copies share the map until one of them changes (clients, their startup state and the
  /// servers they used mostly hold equal settings).
  const Map& vars() const {
    static const Map kEmpty;
    return vars_ ? *vars_ : kEmpty;
  }
  bool empty() const { return vars().empty(); }

  /// SQL that turns a server with `from` into one with *this: RESETs and SETs, ';'-separated.
  std::string diff_from(const SessionVars& from) const {
    std::string sql;
    for (const auto& [name, text] : from.vars())
      if (!vars().count(name)) sql += "RESET " + quote_ident(name) + ";";
    for (const auto& [name, text] : vars()) {
      auto it = from.vars().find(name);
      if (it == from.vars().end() || it->second != text) sql += text + ";";
    }
    return sql;
  }

  /// SET statement for a value given as plain text (startup parameters).
  static std::string set_sql(const std::string& name, const std::string& value) {
    std::string lit = "'";
    for (char c : value) {
      if (c == '\'') lit += '\'';
      lit += c;
    }
    lit += '\'';
    return "SET " + quote_ident(name) + " = " + lit;
  }
  static std::string quote_ident(const std::string& name) {
    bool plain = !name.empty();
    for (char c : name)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.')) plain = false;
    if (plain) return name;
    std::string q = "\"";
    for (char c : name) {
      if (c == '"') q += '"';
      q += c;
    }
    return q + "\"";
  }

 private:
  Map& mutable_vars() {
    if (!vars_) vars_ = std::make_shared<Map>();
    else if (vars_.use_count() > 1) vars_ = std::make_shared<Map>(*vars_);
    return *vars_;
  }
  void rehash() {
    std::uint64_t h = 0x9E3779B97F4A7C15ull;
    for (const auto& [name, text] : vars()) {
      h ^= std::hash<std::string>{}(name) + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
      h ^= std::hash<std::string>{}(text) + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    }
    fingerprint_ = vars().empty() ? 0 : (h | 1);
  }
  std::shared_ptr<Map> vars_;
  std::uint64_t fingerprint_ = 0;
};

}  // namespace shardline::proxy::backend
