// Tenant pins in the router's directory (RESHARD ISOLATE TENANT): a pinned tenant's key, in any
// form PostgreSQL reads as that value (literal, text or binary Bind, hint, IN list, INSERT row,
// COPY field), routes to the pin's shard; its canonical text is PostgreSQL's output form; every
// other tenant of the same logical shard still follows the hash.

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "config/loader.hpp"
#include "router/planner/key_resolver.hpp"
#include "router/planner/router.hpp"
#include "router/sharding/key_datum.hpp"
#include "router/sharding/shard_key.hpp"
#include "router/sharding/tenant_key.hpp"

namespace shardline::router {
namespace {

constexpr int kModulus = 1024;

std::optional<std::string> canonical(KeyType t, std::string_view text) {
  return canonical_key_of_text(t, text, nullptr, nullptr);
}

TEST(TenantKey, CanonicalTextIsPostgresOutputForm) {
  EXPECT_EQ(canonical(KeyType::BigInt, " +042 "), "42");
  EXPECT_EQ(canonical(KeyType::BigInt, "-9223372036854775808"), "-9223372036854775808");
  EXPECT_EQ(canonical(KeyType::BigInt, "9223372036854775807"), "9223372036854775807");
  EXPECT_EQ(canonical(KeyType::Integer, "-2147483648"), "-2147483648");
  EXPECT_EQ(canonical(KeyType::SmallInt, "-0"), "0");
  EXPECT_EQ(canonical(KeyType::Text, " Zürich 東京 "), " Zürich 東京 ");
  EXPECT_EQ(canonical(KeyType::Uuid, "{A0EEBC99-9C0B4EF8-BB6D6BB9-BD380A11}"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  std::string st, err;
  EXPECT_EQ(canonical_key_of_text(KeyType::SmallInt, "70000", &st, &err), std::nullopt);
  EXPECT_EQ(st, "22003");
  EXPECT_EQ(err, "value \"70000\" is out of range for type smallint");
  EXPECT_EQ(canonical_key_of_text(KeyType::Integer, "4x", &st, &err), std::nullopt);
  EXPECT_EQ(st, "22P02");
  EXPECT_EQ(canonical_key_of_text(KeyType::Uuid, "nope", &st, &err), std::nullopt);
  EXPECT_EQ(st, "22P02");
}

TEST(TenantKey, BinaryValuesHaveTheSameCanonicalText) {
  const std::array<std::byte, 2> minus_one2{std::byte{0xff}, std::byte{0xff}};
  const std::array<std::byte, 4> minus_two4{std::byte{0xff}, std::byte{0xff}, std::byte{0xff}, std::byte{0xfe}};
  std::array<std::byte, 8> min8{};
  min8[0] = std::byte{0x80};
  EXPECT_EQ(canonical_key_of_binary(KeyType::BigInt, minus_one2), "-1");
  EXPECT_EQ(canonical_key_of_binary(KeyType::Integer, minus_two4), "-2");
  EXPECT_EQ(canonical_key_of_binary(KeyType::BigInt, min8), "-9223372036854775808");
  EXPECT_EQ(canonical_key_of_binary(KeyType::BigInt, std::span<const std::byte>(min8.data(), 3)), std::nullopt);
  std::array<std::byte, 16> u{};
  for (std::size_t i = 0; i < 16; ++i) u[i] = std::byte(i * 17);
  EXPECT_EQ(canonical_key_of_binary(KeyType::Uuid, u), "00112233-4455-6677-8899-aabbccddeeff");
}

/// The key text an outcome carries is the canonical text of the value it hashed, whatever the
/// value's SQL type (a number compared with a bigint key, a numeric cast on assignment...).
TEST(TenantKey, OutcomesCarryTheCanonicalTextOfWhatTheyHashed) {
  auto key_of = [](const KeyDatum& d, KeyType k, KeyUse use) {
    const KeyOutcome o = d.outcome(k, use, kModulus, true);
    EXPECT_EQ(o.kind, KeyOutcome::Kind::Logical);
    return o.key.value_or("(none)");
  };
  EXPECT_EQ(key_of(KeyDatum::number_literal("42"), KeyType::BigInt, KeyUse::Compare), "42");
  EXPECT_EQ(key_of(KeyDatum::unknown_text(" 042"), KeyType::BigInt, KeyUse::Compare), "42");
  EXPECT_EQ(key_of(KeyDatum::parameter(SqlType::Numeric, "42.0", false), KeyType::BigInt, KeyUse::Compare), "42");
  EXPECT_EQ(key_of(KeyDatum::parameter(SqlType::Numeric, "41.5", false), KeyType::Integer, KeyUse::Assign), "42");
  EXPECT_EQ(key_of(KeyDatum::number_literal("-9223372036854775808"), KeyType::BigInt, KeyUse::Compare),
            "-9223372036854775808");
  EXPECT_EQ(key_of(KeyDatum::unknown_text("Zürich"), KeyType::Text, KeyUse::Compare), "Zürich");
  EXPECT_EQ(key_of(KeyDatum::number_literal("7"), KeyType::Text, KeyUse::Assign), "7");
  EXPECT_EQ(key_of(KeyDatum::unknown_text("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"), KeyType::Uuid, KeyUse::Compare),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  const std::array<char, 8> binary42{0, 0, 0, 0, 0, 0, 0, 42};
  EXPECT_EQ(key_of(KeyDatum::parameter(SqlType::Int8, std::string_view(binary42.data(), 8), true), KeyType::BigInt,
                   KeyUse::Compare),
            "42");
  // Not asked for: not computed (the hot path without pins allocates nothing for it).
  EXPECT_EQ(KeyDatum::number_literal("42").outcome(KeyType::BigInt, KeyUse::Compare, kModulus).key, std::nullopt);
  EXPECT_EQ(KeyDatum::null().outcome(KeyType::BigInt, KeyUse::Compare, kModulus, true).key, std::nullopt);
}

config::Config two_shards() {
  auto r = config::parse_config(R"(
users: [{name: app, password: secret, database: app}]
backend: {user: app, password: secret, database: app}
sharding: {tables: {orders: {type: bigint}, notes: {key: account, type: text}}}
directory: [{logical: 0-511, shard: s0}, {logical: 512-1023, shard: s1}]
shards: {s0: {primary: {host: 127.0.0.1, port: 1}}, s1: {primary: {host: 127.0.0.1, port: 2}},
         s2: {primary: {host: 127.0.0.1, port: 3}}}
)",
                                "test.yaml");
  EXPECT_TRUE(r.ok());
  for (const auto& p : r.problems) ADD_FAILURE() << p.str();
  return *r.config;
}

/// The bootstrap directory with `pins` (tenant -> shard index) and `held` tenants.
std::shared_ptr<const DirectorySnapshot> pinned(const config::Config& cfg, std::vector<TenantPlacement> pins) {
  const auto base = DirectorySnapshot::from_config(cfg);
  std::vector<int> owner;
  for (int l = 0; l < base->logical_shards(); ++l) owner.push_back(base->physical(l));
  return std::make_shared<const DirectorySnapshot>(5, base->shard_names(), std::move(owner), std::vector<bool>{},
                                                   std::move(pins));
}

class TenantPinRouting : public ::testing::Test {
 protected:
  TenantPinRouting()
      : cfg(two_shards()),
        schema(ShardingSchema::from_config(cfg)),
        dir(pinned(cfg, {{"42", 2, false, true}, {"Zürich", 2, false, true}, {"7", 0, true, false}})) {}

  Plan route_sql(const std::string& sql, const BindValues* bind = nullptr,
                 const std::optional<std::string>& session_tenant = std::nullopt) {
    auto t = build_route_template(sql, *schema);
    RouteContext ctx{*dir, *schema, session_tenant, bind, true};
    return route(*t, ctx);
  }
  /// A tenant other than 42 in 42's logical shard: it must stay on the hash's shard.
  static std::int64_t neighbour_of_42() {
    const int l = logical_shard_of_int(42, kModulus);
    for (std::int64_t t = 43;; ++t)
      if (logical_shard_of_int(t, kModulus) == l) return t;
  }
  config::Config cfg;
  std::shared_ptr<const ShardingSchema> schema;
  std::shared_ptr<const DirectorySnapshot> dir;
};

TEST_F(TenantPinRouting, LiteralsOfThePinnedTenantGoToThePin) {
  const int hashed = dir->physical(logical_shard_of_int(42, kModulus));
  ASSERT_NE(hashed, 2);
  for (const char* sql : {"SELECT * FROM orders WHERE tenant_id = 42", "SELECT * FROM orders WHERE tenant_id = '042'",
                          "SELECT * FROM orders WHERE tenant_id = 42.0", "UPDATE orders SET v = 1 WHERE tenant_id = 42",
                          "INSERT INTO orders (tenant_id, v) VALUES (42, 1)",
                          "SELECT * FROM orders WHERE tenant_id IN (42, '42')"}) {
    const Plan p = route_sql(sql);
    EXPECT_EQ(p.kind, RouteKind::Single) << sql;
    EXPECT_EQ(p.shards, std::vector<int>{2}) << sql;
    ASSERT_EQ(p.logical.size(), 1u) << sql;
    EXPECT_EQ(p.logical[0], *dir->tenant_id("42")) << sql;
  }
  const Plan n = route_sql("SELECT * FROM orders WHERE tenant_id = " + std::to_string(neighbour_of_42()));
  EXPECT_EQ(n.shards, std::vector<int>{hashed}) << "the rest of the logical shard follows the hash";
  const Plan text = route_sql("SELECT * FROM notes WHERE account = 'Zürich'");
  EXPECT_EQ(text.shards, std::vector<int>{2});
}

TEST_F(TenantPinRouting, BindsInTextAndBinaryFormatGoToThePin) {
  BindValues text;
  text.values = {std::string_view("42")};
  text.formats = {0};
  EXPECT_EQ(route_sql("SELECT * FROM orders WHERE tenant_id = $1", &text).shards, std::vector<int>{2});
  static const std::array<char, 8> b42{0, 0, 0, 0, 0, 0, 0, 42};
  BindValues binary;
  binary.values = {std::string_view(b42.data(), 8)};
  binary.formats = {1};
  binary.types = {20};  // int8
  EXPECT_EQ(route_sql("SELECT * FROM orders WHERE tenant_id = $1", &binary).shards, std::vector<int>{2});
  const Plan insert = route_sql("INSERT INTO orders (tenant_id, v) VALUES ($1, 1)", &binary);
  EXPECT_EQ(insert.shards, std::vector<int>{2});
}

TEST_F(TenantPinRouting, HintsGoToThePin) {
  EXPECT_EQ(route_sql("SELECT * FROM orders /* shardline: tenant=42 */").shards, std::vector<int>{2});
  EXPECT_EQ(route_sql("SELECT count(*) FROM orders", nullptr, std::string("42")).shards, std::vector<int>{2});
  EXPECT_EQ(route_sql("SELECT inet_server_port() /* shardline: tenant=42 */").shards, std::vector<int>{2});
  // A hint and a key that name the same pinned tenant agree.
  EXPECT_EQ(route_sql("SELECT * FROM orders WHERE tenant_id = 42 /* shardline: tenant=42 */").kind, RouteKind::Single);
}

TEST_F(TenantPinRouting, MultiRowInsertsSplitAroundThePin) {
  const std::int64_t n = neighbour_of_42();
  const Plan p = route_sql("INSERT INTO orders (tenant_id, v) VALUES (42, 1), (" + std::to_string(n) + ", 2)");
  ASSERT_EQ(p.kind, RouteKind::Split);
  EXPECT_EQ(p.shards, (std::vector<int>{dir->physical(logical_shard_of_int(n, kModulus)), 2}));
}

TEST_F(TenantPinRouting, HeldTenantsAreHeldOnTheirCurrentShard) {
  const Plan p = route_sql("SELECT * FROM orders WHERE tenant_id = 7");
  ASSERT_EQ(p.logical.size(), 1u);
  EXPECT_TRUE(dir->held(p.logical[0]));
  EXPECT_EQ(p.shards, std::vector<int>{0});
  EXPECT_FALSE(dir->held(logical_shard_of_int(7, kModulus))) << "only the tenant is held, not its logical shard";
  const Plan other = route_sql("SELECT * FROM orders WHERE tenant_id = 42");
  EXPECT_FALSE(dir->held(other.logical[0]));
}

TEST_F(TenantPinRouting, CopyFieldsArePlacedLikeKeys) {
  KeyOutcome o = resolve_text("042", KeyType::BigInt, KeyUse::Assign, *dir);
  EXPECT_EQ(dir->physical(o.logical), 2);
  o = resolve_text(std::to_string(neighbour_of_42()), KeyType::BigInt, KeyUse::Assign, *dir);
  EXPECT_LT(o.logical, kModulus);
}

TEST_F(TenantPinRouting, ShardsGainingRowsAreTheTargetsOfMovesAndPins) {
  const auto plain = DirectorySnapshot::from_config(cfg);
  EXPECT_EQ(plain->shards_gaining_from(*plain), std::vector<int>{});
  EXPECT_EQ(dir->shards_gaining_from(*plain), std::vector<int>{2}) << "42 and Zürich pinned to s2; 7 only held";
  EXPECT_EQ(dir->shards_gaining_from(*dir), std::vector<int>{});
  std::vector<int> owner;
  for (int l = 0; l < kModulus; ++l) owner.push_back(plain->physical(l));
  owner[3] = 1;
  const DirectorySnapshot moved(6, plain->shard_names(), owner);
  EXPECT_EQ(moved.shards_gaining_from(*plain), std::vector<int>{1});
  EXPECT_EQ(plain->shards_gaining_from(moved), std::vector<int>{0});
}

TEST_F(TenantPinRouting, WithoutPinsNothingChanges) {
  const auto plain = DirectorySnapshot::from_config(cfg);
  EXPECT_FALSE(plain->has_tenants());
  auto t = build_route_template("SELECT * FROM orders WHERE tenant_id = 42", *schema);
  std::optional<std::string> none;
  RouteContext ctx{*plain, *schema, none, nullptr, false};
  const Plan p = route(*t, ctx);
  EXPECT_EQ(p.logical, std::vector<int>{logical_shard_of_int(42, kModulus)});
}

}  // namespace
}  // namespace shardline::router
