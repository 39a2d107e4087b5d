// The SQL of an isolate and of a move around pinned tenants, as text (the integration tests
// run it against PostgreSQL: reshard_test and reshard_isolate_test).

#include "proxy/control/reshard_sql.hpp"

#include <gtest/gtest.h>

namespace shardline::control {
namespace {

const ReshardTable kItems{"public", "items", "tenant_id", "bigint"};
const ReshardTable kNotes{"public", "notes", "account", "text"};
const ReshardTable kDevices{"public", "devices", "owner", "uuid"};

TEST(ReshardSql, TenantFilterIsFalseForTablesWhoseKeyCannotHoldTheTenant) {
  EXPECT_EQ(tenant_filter_sql(kItems, "42"), "(\"tenant_id\" = '42'::bigint)");
  EXPECT_EQ(tenant_filter_sql(kNotes, "O'Brien"), "(\"account\" = 'O''Brien'::text)");
  EXPECT_EQ(tenant_filter_sql(kItems, "abc"), "(false)");
  EXPECT_EQ(tenant_filter_sql(kItems, "042"), "(false)") << "not canonical: the pin would never match it";
  EXPECT_EQ(tenant_filter_sql(kDevices, "42"), "(false)");
}

TEST(ReshardSql, TenantsOfTypeKeepCanonicalValuesOnly) {
  EXPECT_EQ(tenants_of_type(kItems, {"42", "-9223372036854775808", "abc", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}),
            (std::vector<std::string>{"42", "-9223372036854775808"}));
  EXPECT_EQ(tenants_of_type(kDevices, {"42", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}),
            (std::vector<std::string>{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}));
}

TEST(ReshardSql, MoveFilterLeavesPinnedTenantsOut) {
  const std::string plain = logical_filter_sql(kItems, 1024, 7);
  EXPECT_EQ(move_filter_sql(kItems, 1024, 7, {}), plain);
  EXPECT_EQ(move_filter_sql(kItems, 1024, 7, {"abc"}), plain);
  EXPECT_EQ(move_filter_sql(kItems, 1024, 7, {"42", "-1"}),
            "(" + plain + " AND NOT (\"tenant_id\" = ANY ('{\"42\",\"-1\"}'::bigint[])))");
  EXPECT_EQ(move_filter_sql(kNotes, 1024, 7, {"a\"b\\c"}),
            "(" + logical_filter_sql(kNotes, 1024, 7) + " AND NOT (\"account\" = ANY ('{\"a\\\"b\\\\c\"}'::text[])))");
}

TEST(ReshardSql, FenceCheckDrainsAndFencesTenants) {
  const std::string sql = fence_check_sql({}, {"42"});
  EXPECT_NE(sql.find("k = ANY (ARRAY['42']::text[])"), std::string::npos) << sql;
  EXPECT_NE(sql.find("shardline.tenant_fence"), std::string::npos) << sql;
  EXPECT_NE(fence_check_sql({3}).find("'{3}'::int[]"), std::string::npos);
  EXPECT_NE(fence_function_sql(kItems, 1024).find("(NEW.\"tenant_id\")::text"), std::string::npos);
}

}  // namespace
}  // namespace shardline::control
