// COPY ... FROM STDIN (FORMAT binary) into sharded tables through the proxy, with PostgreSQL as
// the oracle. The binary data is written by the server itself (COPY (SELECT ...) TO STDOUT
// (FORMAT binary) of seeded random rows), loaded through the proxy into tables sharded over two
// shards, cut into CopyData messages at random places, and loaded directly into identical tables
// of one plain server (schema bc_oracle on shard 0). The rows must be the same, each on the
// shard that PostgreSQL's own hash partitioning gives its key (satisfies_hash_partition), and
// malformed data must fail with the plain server's SQLSTATE and message, leaving no row anywhere.

#include <libpq-fe.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"

namespace {

using shardline::control::LocalCluster;
using shardline::testing::free_port;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using shardline::testing::ShardedTableSpec;

constexpr int kShards = 2;
constexpr int kRows = 2000;

/// Sharded table -> its definition (key tenant_id, type learned from the shards).
const std::vector<std::pair<std::string, std::string>> kTables = {
    {"bc_big", "(tenant_id bigint, id int, payload bytea, note text, amount numeric)"},
    {"bc_int", "(tenant_id integer, id int, payload bytea, note text, amount numeric)"},
    {"bc_small", "(tenant_id smallint, id int, payload bytea, note text, amount numeric)"},
    {"bc_text", "(tenant_id text, id int, payload bytea, note text, amount numeric)"},
    {"bc_uuid", "(tenant_id uuid, id int, payload bytea, note text, amount numeric)"},
    // COPY without a column list loads id, tenant_id, note: generated columns are skipped.
    {"bc_gen", "(id int, doubled int GENERATED ALWAYS AS (id * 2) STORED, tenant_id bigint, note text)"},
    {"bc_strict", "(tenant_id bigint NOT NULL, id int, payload bytea, note text, amount numeric)"},
};

std::mt19937_64& rng() {
  static std::mt19937_64 r = [] {
    const auto seed = std::random_device{}();
    std::cerr << "[binary_copy_test] seed " << seed << "\n";
    return std::mt19937_64(seed);
  }();
  return r;
}

LocalCluster& cluster() {
  shardline::testing::ClusterSpec spec;
  spec.shards = kShards;
  return shardline::testing::test_cluster(spec);
}

PgConnection connect_shard(int i) {
  PgConnection c(cluster().conninfo(i));
  if (!c.ok()) throw std::runtime_error(fmt::format("cannot connect to shard {}: {}", i, c.error()));
  return c;
}

using shardline::testing::must;

/// The tables on both shards and their plain twins (schema bc_oracle on shard 0), then a proxy.
std::string setup_and_config() {
  {
    for (int s = 0; s < kShards; ++s) {
      PgConnection c = connect_shard(s);
      for (const auto& [name, def] : kTables) {
        must(c, "DROP TABLE IF EXISTS " + name);
        must(c, fmt::format("CREATE TABLE {} {}", name, def));
      }
    }
    PgConnection c = connect_shard(0);
    must(c, "DROP SCHEMA IF EXISTS bc_oracle CASCADE");
    must(c, "CREATE SCHEMA bc_oracle");
    for (const auto& [name, def] : kTables) must(c, fmt::format("CREATE TABLE bc_oracle.{} {}", name, def));
  }
  ProxyConfig cfg(cluster(), free_port());
  for (const auto& [name, def] : kTables) cfg.sharded_table(ShardedTableSpec{name, "", ""});
  return cfg.yaml();
}

ProxyProcess& proxy() {
  static ProxyProcess p(setup_and_config());
  return p;
}

PgConnection connect_proxy() {
  PgConnection c(proxy().conninfo() + " sslmode=disable gssencmode=disable connect_timeout=5");
  if (!c.ok()) throw std::runtime_error("cannot connect to the proxy: " + c.error());
  return c;
}

/// `COPY (select) TO STDOUT (FORMAT binary)` on shard 0: the server's own binary encoding.
std::string binary_of(const std::string& select) {
  PgConnection c = connect_shard(0);
  PgResult start(PQexec(c.get(), fmt::format("COPY ({}) TO STDOUT (FORMAT binary)", select).c_str()));
  if (start.status() != PGRES_COPY_OUT) throw std::runtime_error("COPY TO failed: " + start.describe());
  std::string out;
  char* buf = nullptr;
  int n = 0;
  while ((n = PQgetCopyData(c.get(), &buf, 0)) > 0) {
    out.append(buf, std::size_t(n));
    PQfreemem(buf);
  }
  PgResult end(PQgetResult(c.get()));
  if (!end.ok()) throw std::runtime_error("COPY TO failed: " + end.describe());
  return out;
}

/// COPY FROM STDIN of `data` cut into CopyData messages at random places (1 byte to 64 KiB),
/// or ended with CopyFail(`fail_with`).
PgResult copy_in(const PgConnection& c, const std::string& sql, const std::string& data,
                 const char* fail_with = nullptr) {
  PgResult start(PQexec(c.get(), sql.c_str()));
  if (start.status() != PGRES_COPY_IN) return start;
  for (std::size_t pos = 0; pos < data.size();) {
    const std::size_t n = std::min<std::size_t>(1 + rng()() % (rng()() % 4 == 0 ? 16 : 65536), data.size() - pos);
    if (PQputCopyData(c.get(), data.data() + pos, int(n)) != 1)
      throw std::runtime_error(std::string("PQputCopyData: ") + PQerrorMessage(c.get()));
    pos += n;
  }
  if (PQputCopyEnd(c.get(), fail_with) != 1) throw std::runtime_error(std::string("PQputCopyEnd: ") + PQerrorMessage(c.get()));
  PgResult result(PQgetResult(c.get()));
  while (PGresult* extra = PQgetResult(c.get())) PQclear(extra);
  return result;
}

std::string field(const PgResult& r, int code) {
  const char* v = r ? PQresultErrorField(r.get(), code) : nullptr;
  return v ? v : "";
}

void truncate_everywhere(const std::string& table) {
  proxy();  // creates the tables on first use
  for (int s = 0; s < kShards; ++s) must(connect_shard(s), "TRUNCATE " + table);
  must(connect_shard(0), "TRUNCATE bc_oracle." + table);
}

/// A random key of `type` as an SQL literal (NULL now and then where `nulls`).
std::string random_key(const std::string& type, bool nulls) {
  auto& r = rng();
  if (nulls && r() % 50 == 0) return "NULL";
  if (type == "bigint") {
    switch (r() % 4) {
      case 0: return std::to_string(std::int64_t(r() % 100000));
      case 1: return std::to_string(-std::int64_t(r() % 100000));
      case 2: return r() % 2 ? "9223372036854775807" : "(-9223372036854775807 - 1)";
      default: return std::to_string(std::int64_t(r()));
    }
  }
  if (type == "integer") return std::to_string(std::int32_t(std::uint32_t(r())));
  if (type == "smallint") return std::to_string(std::int16_t(std::uint16_t(r())));
  if (type == "uuid") return fmt::format("'{:016x}{:016x}'::uuid", r(), r());
  static const char* const kPieces[] = {"a", "Z", "0", " ", "ü", "日本", "'", "\\", "-", "tenant"};
  std::string s;
  for (std::size_t i = 0, n = r() % 12; i < n; ++i) s += kPieces[r() % std::size(kPieces)];
  std::string quoted;
  for (char ch : s) quoted += ch == '\'' ? std::string("''") : std::string(1, ch);
  return "'" + quoted + "'";
}

/// Seeded random rows of `type` keys in a temp table on shard 0, as the server's binary COPY.
std::string random_rows(const std::string& type, int rows, bool nulls) {
  std::string values;
  for (int i = 1; i <= rows; ++i) {
    const std::size_t len = rng()() % 50 == 0 ? 70000 : rng()() % 300;
    values += fmt::format("{}({}::{}, {}, decode(repeat(to_hex({}), {}), 'hex'), {}, {}){}", i == 1 ? "" : ",",
                          random_key(type, nulls), type, i, 16 + rng()() % 200, len, i % 7 == 0 ? "NULL" : fmt::format("'note {}'", i),
                          i % 5 == 0 ? "NULL" : fmt::format("{}.{}", rng()() % 100000, rng()() % 100), "");
  }
  return values;
}

/// Rows of a table as text, ordered by id, from one connection (`table` may be schema-qualified).
std::vector<std::string> rows_of(const PgConnection& c, const std::string& table, const std::string& columns) {
  const PgResult r = c.exec(fmt::format("SELECT concat_ws('|', {}) FROM {} ORDER BY id", columns, table));
  if (!r.ok()) throw std::runtime_error(r.describe());
  std::vector<std::string> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.value(i, 0));
  return out;
}

/// Rows of shard `s` whose key PostgreSQL's hash partitioning puts outside the shard's logical
/// shards (s0: 0-511, s1: 512-1023, as ProxyConfig writes the directory).
std::string misplaced_on(int s, const std::string& table, const std::string& type) {
  PgConnection c = connect_shard(s);
  must(c, fmt::format("CREATE TEMP TABLE placement_oracle (k {}) PARTITION BY HASH (k)", type));
  return c.value(fmt::format(
      "SELECT count(*) FROM {} t WHERE NOT EXISTS (SELECT 1 FROM generate_series({}, {}) r WHERE "
      "satisfies_hash_partition('placement_oracle'::regclass, 1024, r, t.tenant_id))",
      table, s * 512, s * 512 + 511));
}

TEST(BinaryCopy, RowsOfEveryKeyTypeLandOnTheirShardsAsOnOneServer) {
  const std::string columns = "tenant_id, id, md5(payload), length(payload), note, amount";
  for (const auto& [table, type] : std::vector<std::pair<std::string, std::string>>{
           {"bc_big", "bigint"}, {"bc_int", "integer"}, {"bc_small", "smallint"}, {"bc_text", "text"},
           {"bc_uuid", "uuid"}}) {
    SCOPED_TRACE(table);
    truncate_everywhere(table);
    const std::string data = binary_of(
        fmt::format("SELECT * FROM (VALUES {}) v(tenant_id, id, payload, note, amount)", random_rows(type, kRows, true)));
    const std::string copy = fmt::format("COPY {} (tenant_id, id, payload, note, amount) FROM STDIN (FORMAT binary)", table);
    PgConnection plain = connect_shard(0);
    const PgResult direct = copy_in(plain, fmt::format("COPY bc_oracle.{} (tenant_id, id, payload, note, amount) FROM STDIN (FORMAT binary)", table), data);
    ASSERT_TRUE(direct.ok()) << direct.describe();
    PgConnection c = connect_proxy();
    const PgResult r = copy_in(c, copy, data);
    ASSERT_TRUE(r.ok()) << r.describe() << " " << field(r, PG_DIAG_MESSAGE_DETAIL);
    EXPECT_STREQ(PQcmdStatus(r.get()), fmt::format("COPY {}", kRows).c_str());

    std::vector<std::string> sharded;
    for (int s = 0; s < kShards; ++s) {
      auto part = rows_of(connect_shard(s), table, columns);
      EXPECT_GT(part.size(), 0u) << "shard " << s << " got no rows";
      sharded.insert(sharded.end(), part.begin(), part.end());
      EXPECT_EQ(misplaced_on(s, table, type), "0") << "rows on the wrong shard s" << s;
    }
    auto expected = rows_of(plain, "bc_oracle." + table, columns);
    ASSERT_EQ(sharded.size(), expected.size());
    std::sort(sharded.begin(), sharded.end());
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(sharded, expected) << "the shards together hold other rows than one server loading the same data";
    // And the proxy reads them back by key, as one database would.
    EXPECT_EQ(c.value(fmt::format("SELECT count(*) FROM {}", table)), std::to_string(kRows));
  }
}

TEST(BinaryCopy, NoColumnListSkipsGeneratedColumnsAndFindsTheKey) {
  truncate_everywhere("bc_gen");
  std::string values;
  for (int i = 1; i <= 500; ++i)
    values += fmt::format("{}({}, {}::bigint, 'n{}')", i == 1 ? "" : ",", i, random_key("bigint", false), i);
  const std::string data = binary_of(fmt::format("SELECT * FROM (VALUES {}) v(id, tenant_id, note)", values));
  PgConnection c = connect_proxy();
  const PgResult r = copy_in(c, "COPY bc_gen FROM STDIN (FORMAT binary)", data);
  ASSERT_TRUE(r.ok()) << r.describe() << " " << field(r, PG_DIAG_MESSAGE_DETAIL);
  EXPECT_STREQ(PQcmdStatus(r.get()), "COPY 500");
  std::int64_t total = 0;
  for (int s = 0; s < kShards; ++s) {
    EXPECT_EQ(misplaced_on(s, "bc_gen", "bigint"), "0") << "shard " << s;
    EXPECT_EQ(connect_shard(s).value("SELECT count(*) FROM bc_gen WHERE doubled <> id * 2"), "0");
    total += std::stoll(connect_shard(s).value("SELECT count(*) FROM bc_gen"));
  }
  EXPECT_EQ(total, 500);
}

TEST(BinaryCopy, HeaderExtensionsAndEndsPostgresAcceptsAreAcceptedAlike) {
  const std::string good = binary_of(fmt::format("SELECT * FROM (VALUES {}) v(tenant_id, id, payload, note, amount)",
                                                 random_rows("bigint", 40, true)));
  const std::string tuples = good.substr(19, good.size() - 19 - 2);
  std::string with_extension = good.substr(0, 15) + std::string("\0\0\0\x05", 4) + "12345" + tuples + "\xff\xff";
  with_extension[14] = '\x01';  // a non-critical flag bit
  const std::vector<std::pair<std::string, std::string>> variants = {
      {"a header extension and a non-critical flag", with_extension},
      {"no trailer", good.substr(0, good.size() - 2)},
      {"no trailer, one stray byte", good.substr(0, good.size() - 2) + "\x07"},
      {"header and trailer only", good.substr(0, 19) + "\xff\xff"},
  };
  for (const auto& [name, data] : variants) {
    SCOPED_TRACE(name);
    truncate_everywhere("bc_big");
    PgConnection plain = connect_shard(0);
    const PgResult want = copy_in(plain, "COPY bc_oracle.bc_big FROM STDIN (FORMAT binary)", data);
    ASSERT_TRUE(want.ok()) << want.describe();
    PgConnection c = connect_proxy();
    const PgResult got = copy_in(c, "COPY bc_big FROM STDIN (FORMAT binary)", data);
    ASSERT_TRUE(got.ok()) << got.describe() << " " << field(got, PG_DIAG_MESSAGE_DETAIL);
    EXPECT_STREQ(PQcmdStatus(got.get()), PQcmdStatus(want.get()));
    std::int64_t total = 0;
    for (int s = 0; s < kShards; ++s) {
      EXPECT_EQ(misplaced_on(s, "bc_big", "bigint"), "0") << "shard " << s;
      total += std::stoll(connect_shard(s).value("SELECT count(*) FROM bc_big"));
    }
    EXPECT_EQ(std::to_string(total), plain.value("SELECT count(*) FROM bc_oracle.bc_big"));
  }
}

struct BadCase {
  std::string name;
  std::string table;
  std::string columns;  ///< COPY's column list
  std::string data;
  bool proxy_raises = true;  ///< the proxy finds the error itself (and gives the context as detail)
  const char* copy_fail = nullptr;
};

TEST(BinaryCopy, MalformedDataFailsAsOnOneServerAndLeavesNoRow) {
  const std::string cols5 = "tenant_id, id, payload, note, amount";
  const std::string select5 = "SELECT * FROM (VALUES {}) v(tenant_id, id, payload, note, amount)";
  const std::string good = binary_of(fmt::format(fmt::runtime(select5), random_rows("bigint", 3, false)));
  const std::size_t header = 19;
  // The first tuple's length: field count, then 5 length-prefixed fields.
  std::size_t first = header + 2;
  for (int f = 0; f < 5; ++f) {
    const auto* p = reinterpret_cast<const unsigned char*>(good.data() + first);
    const std::int32_t len = std::int32_t(std::uint32_t(p[0]) << 24 | p[1] << 16 | p[2] << 8 | p[3]);
    first += 4 + (len > 0 ? std::size_t(len) : 0);
  }
  std::string oids = good, critical = good;
  oids[12] = '\x01';
  critical[12] = '\x02';
  const std::string body = good.substr(header, good.size() - header - 2);  // the tuples
  const std::string bad_size = good.substr(0, first) + std::string("\x00\x05\x00\x00\x00\x01\x01\xff\xff\xff\xfe", 11);
  const auto keyed = [&](const std::string& key_cast, int rows, bool nulls = false) {
    return binary_of(fmt::format("SELECT {}, id, payload, note, amount FROM ({}) s", key_cast,
                                 fmt::format(fmt::runtime(select5), random_rows("bigint", rows, nulls))));
  };
  std::vector<BadCase> cases = {
      {"text data", "bc_big", cols5, "1\t2\tx\ty\t3\n"},
      {"no data", "bc_big", cols5, ""},
      {"cut in the signature", "bc_big", cols5, good.substr(0, 9)},
      {"cut in the flags", "bc_big", cols5, good.substr(0, 13)},
      {"cut in the extension length", "bc_big", cols5, good.substr(0, 17)},
      {"WITH OIDS flag", "bc_big", cols5, oids},
      {"unknown critical flag", "bc_big", cols5, critical},
      {"cut in a field length", "bc_big", cols5, good.substr(0, first + 3)},
      {"cut in a field", "bc_big", cols5, good.substr(0, first + 2 + 4 + 5)},
      {"invalid field size", "bc_big", cols5, bad_size},
      {"data after the trailer", "bc_big", cols5, good + "x"},
      {"more fields than columns", "bc_big", "tenant_id, id, payload, note", good},
      {"a 4-byte key for a bigint column", "bc_big", cols5, keyed("(tenant_id % 1000)::int4", 5)},
      {"an 8-byte key for an integer column", "bc_int", cols5, keyed("(tenant_id % 1000)::int8", 5)},
      {"a 2-byte key for a uuid column", "bc_uuid", cols5, keyed("(tenant_id % 1000)::int2", 5)},
      {"a zero byte in a text key", "bc_text", cols5,
       good.substr(0, header) + std::string("\x00\x05" "\x00\x00\x00\x03" "a\x00" "b" "\x00\x00\x00\x04\x00\x00\x00\x07", 17) +
           std::string(12, '\xff') + std::string(2, '\xff')},
      {"a NULL key into a NOT NULL column (the shard says so)", "bc_strict", cols5, keyed("NULL::bigint", 3), false},
      {"a bad numeric field (the shard says so)", "bc_big", cols5,
       binary_of(fmt::format("SELECT tenant_id, id, payload, note, 'x'::bytea FROM ({}) s", fmt::format(fmt::runtime(select5), random_rows("bigint", 4, false)))),
       false},
      {"CopyFail from the client", "bc_big", cols5, good, false, "the client gave up"},
  };
  for (const auto& bc : cases) {
    SCOPED_TRACE(bc.name);
    truncate_everywhere(bc.table);
    PgConnection plain = connect_shard(0);
    const PgResult want = copy_in(plain, fmt::format("COPY bc_oracle.{} ({}) FROM STDIN (FORMAT binary)", bc.table, bc.columns),
                                  bc.data, bc.copy_fail);
    ASSERT_FALSE(want.ok()) << "the plain server accepted it";
    PgConnection c = connect_proxy();
    const PgResult got = copy_in(c, fmt::format("COPY {} ({}) FROM STDIN (FORMAT binary)", bc.table, bc.columns), bc.data,
                                 bc.copy_fail);
    EXPECT_EQ(got.sqlstate(), want.sqlstate()) << got.describe() << " / server: " << want.describe();
    EXPECT_EQ(got.message(), want.message());
    if (bc.proxy_raises) {
      EXPECT_EQ(field(got, PG_DIAG_MESSAGE_DETAIL), field(want, PG_DIAG_CONTEXT));
    }
    for (int s = 0; s < kShards; ++s)
      EXPECT_EQ(connect_shard(s).value("SELECT count(*) FROM " + bc.table), "0") << "rows remained on shard " << s;
    // The session goes on.
    EXPECT_EQ(c.value("SELECT 1"), "1");
  }
}

}  // namespace
