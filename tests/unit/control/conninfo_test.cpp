// Control-plane conninfo strings must survive any credential text and never leak the password
// into messages.

#include "proxy/control/conninfo.hpp"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <map>
#include <memory>
#include <string>

namespace {

using shardline::control::describe_conninfo;
using shardline::control::libpq_conninfo;

std::map<std::string, std::string> parsed(const std::string& conninfo) {
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> opts(PQconninfoParse(conninfo.c_str(), &err),
                                                                     &PQconninfoFree);
  if (err != nullptr) {
    std::string e = err;
    PQfreemem(err);
    ADD_FAILURE() << "libpq refused " << conninfo << ": " << e;
    return {};
  }
  std::map<std::string, std::string> out;
  for (const PQconninfoOption* o = opts.get(); o->keyword != nullptr; ++o)
    if (o->val != nullptr) out[o->keyword] = o->val;
  return out;
}

TEST(Conninfo, EveryFieldSurvivesLibpqParsing) {
  shardline::config::Backend b;
  b.user = "app user";
  b.password = R"(it's a \secret with spaces=)";
  b.database = "my'db";
  b.tls = shardline::config::BackendTlsMode::Require;
  b.connect_timeout_ms = 1500;
  shardline::config::Endpoint ep{"127.0.0.1", 15410};
  auto v = parsed(libpq_conninfo(b, ep, "shardline-control"));
  EXPECT_EQ(v["host"], "127.0.0.1");
  EXPECT_EQ(v["port"], "15410");
  EXPECT_EQ(v["user"], "app user");
  EXPECT_EQ(v["password"], R"(it's a \secret with spaces=)");
  EXPECT_EQ(v["dbname"], "my'db");
  EXPECT_EQ(v["sslmode"], "require");
  EXPECT_EQ(v["connect_timeout"], "2");  // whole seconds, rounded up
  EXPECT_EQ(v["application_name"], "shardline-control");
}

TEST(Conninfo, TimeoutIsAtLeastOneSecondAndTlsModesMap) {
  shardline::config::Backend b;
  b.connect_timeout_ms = 10;
  b.tls = shardline::config::BackendTlsMode::Disable;
  EXPECT_EQ(parsed(libpq_conninfo(b, {}, "x"))["connect_timeout"], "1");
  EXPECT_EQ(parsed(libpq_conninfo(b, {}, "x"))["sslmode"], "disable");
  b.tls = shardline::config::BackendTlsMode::Prefer;
  b.connect_timeout_ms = 5000;
  EXPECT_EQ(parsed(libpq_conninfo(b, {}, "x"))["sslmode"], "prefer");
  EXPECT_EQ(parsed(libpq_conninfo(b, {}, "x"))["connect_timeout"], "5");
}

TEST(Conninfo, DescriptionNamesTheServerButNotThePassword) {
  shardline::config::Backend b;
  b.user = "app";
  b.password = "hunter2";
  b.database = "app";
  const std::string d = describe_conninfo(libpq_conninfo(b, {"db.example", 6543}, "x"));
  EXPECT_EQ(d, "db.example:6543/app");
  EXPECT_EQ(describe_conninfo("host='unterminated password=hunter2"), "(unparsable conninfo)");
}

}  // namespace
