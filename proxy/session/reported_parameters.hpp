#pragma once
// The ParameterStatus values a client has been told (server_version, client_encoding,
// application_name, ...). Most clients hold the same set, so it is shared copy-on-write:
// an idle client costs one pointer, and a value is copied out only when it changes.

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shardline::proxy::session {

class ReportedParameters {
 public:
  using List = std::vector<std::pair<std::string, std::string>>;

  void assign(std::shared_ptr<const List> list) { list_ = std::move(list); }
  const List& list() const {
    static const List kEmpty;
    return list_ ? *list_ : kEmpty;
  }
  const std::string* find(std::string_view name) const {
    for (const auto& [n, v] : list())
      if (n == name) return &v;
    return nullptr;
  }
  void set(std::string_view name, std::string_view value) {
    auto copy = std::make_shared<List>(list());
    for (auto& [n, v] : *copy)
      if (n == name) {
        v = std::string(value);
        list_ = std::move(copy);
        return;
      }
    copy->emplace_back(std::string(name), std::string(value));
    list_ = std::move(copy);
  }

 private:
  std::shared_ptr<const List> list_;
};

}  // namespace shardline::proxy::session
