// Key routing over the whole range of every key type, through the real proxy on three shards.
// Per type (smallint, integer, bigint, text, uuid) a seeded generator (the seed is printed; set
// SHARDLINE_SEED to replay) makes keys at and around the extremes, just past the int2/int4
// ranges, negative, zero, empty and non-ASCII text, uuids in every spelling uuid_in accepts.
// Every key is written through one of the client's paths (multi-row and single-row VALUES
// literals in many spellings, ON CONFLICT, text and binary binds, SET and comment hints, COPY
// text and CSV), then:
//  - each shard says, with its own satisfies_hash_partition, whether every row it holds belongs
//    to one of the logical shards the directory gives it (0 mismatches),
//  - every key is read back through WHERE =, IN, ANY and binds; single-key reads must be
//    answered by the shard holding the key (0 wrong answers, 0 refusals),
//  - out-of-range values give the SQLSTATE a plain PostgreSQL server gives (22003, 22P02...).

#include <arpa/inet.h>
#include <libpq-fe.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"

namespace {

using shardline::testing::free_port;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using shardline::testing::ShardedTableSpec;
using Rng = std::mt19937_64;

constexpr int kLogicalShards = 1024;
constexpr int kShards = 3;
constexpr int kKeysPerType = 240;

shardline::control::LocalCluster& cluster() { return shardline::testing::test_cluster({.shards = kShards}); }

std::uint64_t seed() {
  static const std::uint64_t s = [] {
    if (const char* e = std::getenv("SHARDLINE_SEED")) return std::uint64_t(std::strtoull(e, nullptr, 10));
    return std::uint64_t(std::random_device{}()) << 32 | std::random_device{}();
  }();
  return s;
}

std::string quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

/// E'...' with backslash escapes, non-ASCII bytes as \xHH.
std::string e_quote(std::string_view s) {
  std::string out = "E'";
  for (unsigned char c : s) {
    if (c == '\\' || c == '\'') out += std::string("\\") + char(c);
    else if (c >= 0x80 || c < 0x20) out += fmt::format("\\x{:02X}", c);
    else out += char(c);
  }
  return out + "'";
}

/// One key type: its table, generated keys (canonical text, as the server prints them) and the
/// ways a client spells a key.
struct TypeCase {
  std::string name;      ///< SQL type
  std::string table;
  std::uint32_t oid = 0;
  std::vector<std::string> keys;
  /// A SQL expression for the key; `plain` asks for one that types like the key (no quotes).
  std::function<std::string(const std::string&, Rng&, bool plain)> literal;
  /// The key as text: a bind value, COPY field, or hint (any spelling the input function accepts).
  std::function<std::string(const std::string&, Rng&)> text;
  /// The key in binary format, with the type OID to declare.
  std::function<std::pair<std::uint32_t, std::string>(const std::string&, Rng&)> binary;
};

std::int64_t as_int(const std::string& s) { return std::stoll(s); }

std::string magnitude(std::int64_t v) {
  return std::to_string(v < 0 ? std::uint64_t(0) - std::uint64_t(v) : std::uint64_t(v));
}

std::string big_endian(std::int64_t v, int width) {
  std::string out;
  for (int i = width - 1; i >= 0; --i) out += char((std::uint64_t(v) >> (8 * i)) & 0xFF);
  return out;
}

TypeCase integer_case(std::string name, std::string table, std::uint32_t oid, int width, std::int64_t lo,
                      std::int64_t hi, Rng& rng) {
  TypeCase c{name, table, oid, {}, {}, {}, {}};
  std::set<std::int64_t> ks = {lo, lo + 1, hi, hi - 1, 0, 1, -1, 2, -2, 42, -42};
  for (std::int64_t edge : {std::int64_t{32767}, std::int64_t{32768}, std::int64_t{2147483647},
                            std::int64_t{2147483648}, std::int64_t{2147483649}})
    for (std::int64_t v : {edge, -edge, -edge - 1})
      if (v >= lo && v <= hi) ks.insert(v);
  std::uniform_int_distribution<std::int64_t> any(lo, hi), small(-1000, 1000);
  while (int(ks.size()) < kKeysPerType) ks.insert(ks.size() % 2 ? any(rng) : small(rng));
  for (auto v : ks) c.keys.push_back(std::to_string(v));
  c.literal = [name](const std::string& k, Rng& r, bool plain) {
    const std::int64_t v = as_int(k);
    const std::string m = magnitude(v);
    switch (plain ? r() % 2 : r() % 11) {
      case 0: return k;                                          // -5 (folded by the grammar)
      case 1: return v < 0 ? "- " + m : "+" + k;                 // - 5, +5
      case 2: return v < 0 ? "-(" + m + ")" : "(" + k + ")";     // -(5)
      case 3: return quote(k);                                   // '5': the key type's input
      case 4: return quote(" " + k + " ");
      case 5: return quote(k) + "::" + name;
      case 6: return k + ".0";                                   // numeric
      case 7: return k + "e0";                                   // numeric
      case 8: return "(" + k + ")::bigint";
      case 9: return v < 0 ? "-" + m + ".4" : k + ".4";          // numeric; equal only on INSERT
      default: return "(" + k + ")::numeric";
    }
  };
  c.text = [](const std::string& k, Rng& r) {
    switch (r() % 3) {
      case 0: return k;
      case 1: return as_int(k) >= 0 ? "+" + k : k;
      default: return "  " + k + " ";
    }
  };
  c.binary = [oid, width](const std::string& k, Rng& r) {
    if (r() % 2) return std::make_pair(std::uint32_t(20), big_endian(as_int(k), 8));  // declared bigint
    return std::make_pair(oid, big_endian(as_int(k), width));
  };
  return c;
}

TypeCase text_case(Rng& rng) {
  TypeCase c{"text", "kr_text", 25, {}, {}, {}, {}};
  static const std::vector<std::string> kPieces = {
      "a", "Z", "0", "7", " ", "'", "\\", "\t", ",", "\"", "\n", "é", "ß", "日本", "😀", "Ω", "-", "{", "}", "*/", "x"};
  std::set<std::string> ks = {"", " ", "0", "42", "-1", "é", "日本語", "😀", "a'b", "back\\slash", "tab\tbed",
                              "line\nbreak", "comma,quote\"", "NULL", "\\N", std::string(300, 'k')};
  std::uniform_int_distribution<int> len(1, 12);
  while (int(ks.size()) < kKeysPerType) {
    std::string s;
    for (int i = len(rng); i > 0; --i) s += kPieces[rng() % kPieces.size()];
    ks.insert(s);
  }
  c.keys.assign(ks.begin(), ks.end());
  c.literal = [](const std::string& k, Rng& r, bool plain) {
    switch (plain ? 0 : r() % 5) {
      case 0: return quote(k);
      case 1: return e_quote(k);
      case 2: return quote(k) + "::text";
      case 3: return quote(k) + "::varchar";
      default: return "(" + quote(k) + ")";
    }
  };
  c.text = [](const std::string& k, Rng&) { return k; };
  c.binary = [](const std::string& k, Rng&) { return std::make_pair(std::uint32_t(25), k); };
  return c;
}

std::string uuid_spelling(const std::string& canonical, Rng& r) {
  std::string hex;
  for (char ch : canonical)
    if (ch != '-') hex += ch;
  switch (r() % 5) {
    case 0: return canonical;
    case 1: {
      std::string up = canonical;
      for (auto& ch : up) ch = char(std::toupper(static_cast<unsigned char>(ch)));
      return up;
    }
    case 2: return "{" + canonical + "}";
    case 3: return hex;
    default: {
      std::string out;
      for (std::size_t i = 0; i < hex.size(); i += 4) out += (i ? "-" : "") + hex.substr(i, 4);
      return out;
    }
  }
}

TypeCase uuid_case(Rng& rng) {
  TypeCase c{"uuid", "kr_uuid", 2950, {}, {}, {}, {}};
  std::set<std::string> ks = {"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"};
  while (int(ks.size()) < kKeysPerType) {
    std::string s;
    for (int i = 0; i < 16; ++i) {
      if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
      s += fmt::format("{:02x}", unsigned(rng() & 0xFF));
    }
    ks.insert(s);
  }
  c.keys.assign(ks.begin(), ks.end());
  c.literal = [](const std::string& k, Rng& r, bool plain) {
    switch (plain ? 1 : r() % 3) {
      case 0: return quote(uuid_spelling(k, r));
      case 1: return quote(uuid_spelling(k, r)) + "::uuid";
      default: return "(" + quote(uuid_spelling(k, r)) + ")";
    }
  };
  c.text = uuid_spelling;
  c.binary = [](const std::string& k, Rng&) {
    std::string bytes;
    for (std::size_t i = 0; i < k.size();)
      if (k[i] == '-') ++i;
      else bytes += char(std::stoi(k.substr(i, 2), nullptr, 16)), i += 2;
    return std::make_pair(std::uint32_t(2950), bytes);
  };
  return c;
}

/// A COPY text field. A non-ASCII character is sent raw or with all its bytes escaped (octal or
/// hex): the server checks the raw line's encoding before it reads escapes.
std::string copy_text_field(const std::string& s, Rng& r) {
  std::string out;
  int escape = 0;  // for the bytes of the current character: 0 raw, 1 octal, 2 hex
  for (unsigned char c : s) {
    if (c >= 0xC0) escape = int(r() % 3);
    if (c == '\\') out += "\\\\";
    else if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c >= 0x80 && escape == 1) out += fmt::format("\\{:03o}", c);
    else if (c >= 0x80 && escape == 2) out += fmt::format("\\x{:02X}", c);
    else out += char(c);
  }
  return out;
}

std::string copy_csv_field(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

/// A statement through the proxy that was refused or failed although PostgreSQL accepts it.
struct Figures {
  int rows_written = 0;
  int statements = 0;
  int refusals = 0;
  int mismatches = 0;       ///< rows on a shard whose logical shards do not include the row's
  int wrong_answers = 0;    ///< reads answered by the wrong shard or with the wrong count
  int reads = 0;
  int sqlstate_checks = 0;
  int sqlstate_differences = 0;
  std::vector<std::string> problems;
  void problem(std::string p) {
    if (problems.size() < 20) problems.push_back(std::move(p));
  }
};

class KeyRange : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::cout << "key_range_test seed=" << seed() << " (SHARDLINE_SEED to replay)" << std::endl;
    ProxyConfig config(cluster(), free_port());
    for (const auto& [table, type] : kTables) config.sharded_table(ShardedTableSpec{table, "", type});
    proxy_ = new ProxyProcess(config.yaml());
  }
  static void TearDownTestSuite() {
    delete proxy_;
    proxy_ = nullptr;
  }

  static PgConnection connect(const std::string& conninfo) {
    PgConnection c(conninfo + " sslmode=disable gssencmode=disable connect_timeout=5");
    if (!c.ok()) throw std::runtime_error("cannot connect: " + c.error());
    return c;
  }
  static PgConnection via_proxy() { return connect(proxy_->conninfo()); }
  static PgConnection shard(int i) { return connect(cluster().conninfo(i)); }
  static std::pair<int, int> logical_range(int shard) {
    return {shard * kLogicalShards / kShards, (shard + 1) * kLogicalShards / kShards - 1};
  }

  static inline const std::vector<std::pair<std::string, std::string>> kTables = {
      {"kr_int2", "smallint"}, {"kr_int4", "integer"}, {"kr_int8", "bigint"}, {"kr_text", "text"}, {"kr_uuid", "uuid"}};
  static inline ProxyProcess* proxy_ = nullptr;
};

/// Runs a statement through the proxy, counting a failure as a refusal.
bool run(const PgConnection& c, const std::string& sql, Figures& f) {
  ++f.statements;
  PgResult r = c.exec(sql);
  if (r.ok()) return true;
  ++f.refusals;
  f.problem(fmt::format("refused: {} -> {}", sql.substr(0, 200), r.describe()));
  return false;
}

PgResult exec_typed(const PgConnection& c, const std::string& sql, const std::vector<std::uint32_t>& types,
                    const std::vector<std::string>& values, const std::vector<int>& formats) {
  std::vector<Oid> oids(types.begin(), types.end());
  std::vector<const char*> ptrs;
  std::vector<int> lengths;
  for (const auto& v : values) {
    ptrs.push_back(v.data());
    lengths.push_back(int(v.size()));
  }
  return PgResult(PQexecParams(c.get(), sql.c_str(), int(values.size()), oids.data(), ptrs.data(), lengths.data(),
                               formats.data(), 0));
}

PgResult copy_in(const PgConnection& c, const std::string& sql, const std::string& data) {
  PgResult start(PQexec(c.get(), sql.c_str()));
  if (start.status() != PGRES_COPY_IN) return start;
  for (std::size_t pos = 0; pos < data.size(); pos += 1000)
    if (PQputCopyData(c.get(), data.data() + pos, int(std::min<std::size_t>(1000, data.size() - pos))) != 1)
      throw std::runtime_error(std::string("PQputCopyData: ") + PQerrorMessage(c.get()));
  if (PQputCopyEnd(c.get(), nullptr) != 1) throw std::runtime_error(std::string("PQputCopyEnd: ") + PQerrorMessage(c.get()));
  PgResult result(PQgetResult(c.get()));
  while (PGresult* extra = PQgetResult(c.get())) PQclear(extra);
  return result;
}

/// Writes every key of `tc` through one of the paths; returns the expected rows per key.
std::map<std::string, int> write_keys(const PgConnection& c, const TypeCase& tc, Rng& rng, Figures& f,
                                      std::map<std::string, int>& by_path) {
  std::map<std::string, int> rows;
  std::int64_t id = 0;
  std::vector<std::string> batch, copy_text, copy_csv;
  auto values = [&](const std::string& k, const std::string& via) {
    return fmt::format("({}, {}, '{}')", tc.literal(k, rng, false), ++id, via);
  };
  auto flush_batch = [&] {
    if (batch.empty()) return;
    std::string sql = "INSERT INTO " + tc.table + " (tenant_id, id, via) VALUES ";
    for (std::size_t i = 0; i < batch.size(); ++i) sql += (i ? ", " : "") + values(batch[i], "multi");
    if (run(c, sql, f))
      for (const auto& k : batch) ++rows[k], ++by_path["multi-row VALUES"];
    batch.clear();
  };
  const std::string cols = " (tenant_id, id, via) ";
  for (std::size_t i = 0; i < tc.keys.size(); ++i) {
    const std::string& k = tc.keys[i];
    bool ok = true;
    std::string path;
    switch (i % 10) {
      case 0:
      case 1:
        batch.push_back(k);
        if (batch.size() == 16) flush_batch();
        continue;
      case 2:
        path = "single-row VALUES";
        ok = run(c, "INSERT INTO " + tc.table + cols + "VALUES " + values(k, "single"), f);
        break;
      case 3: {
        path = "ON CONFLICT";
        const std::string sql = "INSERT INTO " + tc.table + cols + "VALUES " + values(k, "upsert") +
                                " ON CONFLICT (tenant_id, id) DO UPDATE SET via = 'upserted'";
        ok = run(c, sql, f) && run(c, sql, f);  // the second one updates the same row
        break;
      }
      case 4:
      case 5: {
        const bool binary = i % 10 == 5;
        path = binary ? "binary bind" : "text bind";
        ++f.statements;
        std::vector<std::uint32_t> types;
        std::vector<std::string> vals;
        if (binary) {
          auto [oid, bytes] = tc.binary(k, rng);
          types = {oid, 20};
          vals = {bytes, big_endian(++id, 8)};
        } else {
          types = {0, 0};  // unspecified: PostgreSQL infers the column types
          vals = {tc.text(k, rng), std::to_string(++id)};
        }
        const int fmt_ = binary ? 1 : 0;
        PgResult r = exec_typed(c, "INSERT INTO " + tc.table + cols + "VALUES ($1, $2, 'bind')", types, vals, {fmt_, fmt_});
        ok = r.ok();
        if (!ok) ++f.refusals, f.problem(fmt::format("{} {} refused: {}", path, tc.name, r.describe()));
        break;
      }
      case 6: {
        path = "SET shardline.tenant";
        // INSERT ... SELECT: only the hint can route it. A quoted literal would be text there.
        const std::string select = fmt::format("INSERT INTO {}{}SELECT {}, {}, 'hint'", tc.table, cols,
                                               tc.literal(k, rng, true), ++id);
        ok = run(c, "SET shardline.tenant = " + quote(tc.text(k, rng)), f) && run(c, select, f) &&
             run(c, "RESET shardline.tenant", f);
        break;
      }
      case 7: {
        const std::string hinted = tc.text(k, rng);
        const bool safe = hinted.find_first_of("'\" \t\n,*\\") == std::string::npos && !hinted.empty();
        if (!safe) {  // the comment hint's own syntax cannot carry this key: write it by COPY
          copy_text.push_back(k);
          continue;
        }
        path = "comment hint";
        ok = run(c, fmt::format("/* shardline: tenant={} */ INSERT INTO {}{}SELECT {}, {}, 'hint'", hinted, tc.table,
                                cols, tc.literal(k, rng, true), ++id),
                 f);
        break;
      }
      case 8: copy_text.push_back(k); continue;
      default: copy_csv.push_back(k); continue;
    }
    if (ok) ++rows[k], ++by_path[path];
  }
  flush_batch();
  std::string text_data, csv_data = "via,tenant_id,id\n";
  for (const auto& k : copy_text) text_data += copy_text_field(tc.text(k, rng), rng) + "\t" + std::to_string(++id) + "\tcopy\n";
  for (const auto& k : copy_csv) csv_data += "csv," + copy_csv_field(tc.text(k, rng)) + "," + std::to_string(++id) + "\n";
  for (auto [sql, data, keys, path] :
       {std::tuple{"COPY " + tc.table + " (tenant_id, id, via) FROM STDIN", text_data, &copy_text, "COPY text"},
        std::tuple{"COPY " + tc.table + " (via, tenant_id, id) FROM STDIN WITH (FORMAT csv, HEADER true)", csv_data,
                   &copy_csv, "COPY csv"}}) {
    ++f.statements;
    PgResult r = copy_in(c, sql, data);
    if (!r.ok()) {
      ++f.refusals;
      f.problem(fmt::format("{} of {} refused: {}", path, tc.name, r.describe()));
      continue;
    }
    for (const auto& k : *keys) ++rows[k], ++by_path[path];
  }
  for (auto& [k, n] : rows) f.rows_written += n;
  return rows;
}

TEST_F(KeyRange, EveryKeyOfEveryTypeLandsWherePostgreSQLPutsItAndReadsBack) {
  Rng rng(seed());
  Figures f;
  std::map<std::string, int> by_path;
  PgConnection c = via_proxy();
  std::vector<TypeCase> cases;
  cases.push_back(integer_case("smallint", "kr_int2", 21, 2, std::numeric_limits<std::int16_t>::min(),
                               std::numeric_limits<std::int16_t>::max(), rng));
  cases.push_back(integer_case("integer", "kr_int4", 23, 4, std::numeric_limits<std::int32_t>::min(),
                               std::numeric_limits<std::int32_t>::max(), rng));
  cases.push_back(integer_case("bigint", "kr_int8", 20, 8, std::numeric_limits<std::int64_t>::min(),
                               std::numeric_limits<std::int64_t>::max(), rng));
  cases.push_back(text_case(rng));
  cases.push_back(uuid_case(rng));

  for (const auto& tc : cases) {
    PgResult created = c.exec(fmt::format("CREATE TABLE {} (tenant_id {} NOT NULL, id bigint NOT NULL, via text, "
                                          "PRIMARY KEY (tenant_id, id))", tc.table, tc.name));
    ASSERT_TRUE(created.ok()) << created.describe();
    for (int s = 0; s < kShards; ++s) {  // the oracle: an empty table hash-partitioned by the same type
      PgResult oracle = shard(s).exec(fmt::format("CREATE TABLE {}_hash (k {}) PARTITION BY HASH (k)", tc.table, tc.name));
      ASSERT_TRUE(oracle.ok()) << oracle.describe();
    }
  }

  for (const auto& tc : cases) {
    const auto expected = write_keys(c, tc, rng, f, by_path);

    // Where every row is, by each shard's own hash partitioning.
    std::map<std::string, int> shard_of_key;
    std::map<std::string, int> found;
    for (int s = 0; s < kShards; ++s) {
      const auto [lo, hi] = logical_range(s);
      PgResult r = shard(s).exec(fmt::format(
          "SELECT tenant_id::text, EXISTS (SELECT 1 FROM generate_series({}, {}) r "
          "WHERE satisfies_hash_partition('{}_hash'::regclass, {}, r, t.tenant_id)) FROM {} t",
          lo, hi, tc.table, kLogicalShards, tc.table));
      ASSERT_TRUE(r.ok()) << r.describe();
      for (int i = 0; i < r.rows(); ++i) {
        const std::string k = r.value(i, 0);
        ++found[k];
        shard_of_key[k] = s;
        if (r.value(i, 1) != "t") {
          ++f.mismatches;
          f.problem(fmt::format("{} key {} is on shard s{}, outside its logical shards {}-{}", tc.name, k, s, lo, hi));
        }
      }
    }
    for (const auto& [k, n] : expected)
      if (found[k] != n) {
        ++f.mismatches;
        f.problem(fmt::format("{} key {}: {} rows written, {} found on the shards", tc.name, quote(k), n, found[k]));
      }

    // Read every key back through the proxy.
    auto expect_count = [&](const std::string& what, const PgResult& r, int want, std::optional<int> port) {
      ++f.reads;
      if (!r.ok()) {
        ++f.refusals;
        f.problem(fmt::format("{} {} refused: {}", tc.name, what, r.describe()));
        return;
      }
      const int got = r.rows() == 1 ? std::stoi(r.value(0, r.columns() - 1)) : -1;
      const bool right_server = !port || (r.columns() == 2 && r.rows() == 1 && std::stoi(r.value(0, 0)) == *port);
      if (got != want || !right_server) {
        ++f.wrong_answers;
        f.problem(fmt::format("{} {}: count {} (want {}), {} row(s){}", tc.name, what, got, want, r.rows(),
                              right_server ? "" : ", answered by the wrong shard"));
      }
    };
    std::vector<std::string> keys;
    for (const auto& [k, n] : expected) keys.push_back(k);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const std::string& k = keys[i];
      const int port = cluster().primary_port(shard_of_key[k]);
      const std::string lit = tc.literal(k, rng, false);
      // One key: the statement must go to the key's shard alone (the port says which answered).
      auto sql = fmt::format("SELECT inet_server_port(), (SELECT count(*) FROM {} WHERE tenant_id = {})", tc.table, lit);
      // `= k.4` compares as numeric and matches no integer: the read must still answer (0 rows).
      const bool fraction = lit.size() > 2 && lit.compare(lit.size() - 2, 2, ".4") == 0;
      expect_count("WHERE = " + lit, c.exec(sql), fraction ? 0 : expected.at(k), fraction ? std::nullopt : std::optional(port));
      const std::string& other = keys[(i * 7 + 3) % keys.size()];
      const int both = expected.at(k) + (other == k ? 0 : expected.at(other));
      const std::string a = tc.literal(k, rng, true), b = tc.literal(other, rng, true);
      expect_count("IN", c.exec(fmt::format("SELECT count(*) FROM {} WHERE tenant_id IN ({}, {})", tc.table, a, b)), both,
                   std::nullopt);
      const std::string array = tc.name == "uuid" || i % 2 ? fmt::format("ARRAY[{}, {}]::{}[]", a, b, tc.name)
                                                            : fmt::format("ARRAY[{}, {}]", a, b);
      expect_count("ANY", c.exec(fmt::format("SELECT count(*) FROM {} WHERE tenant_id = ANY({})", tc.table, array)), both,
                   std::nullopt);
      // Binds, text (type unspecified) and binary (declared).
      const std::string bind_sql =
          fmt::format("SELECT inet_server_port(), (SELECT count(*) FROM {} WHERE tenant_id = $1)", tc.table);
      expect_count("text bind", exec_typed(c, bind_sql, {0}, {tc.text(k, rng)}, {0}), expected.at(k), port);
      auto [oid, bytes] = tc.binary(k, rng);
      expect_count("binary bind", exec_typed(c, bind_sql, {oid}, {bytes}, {1}), expected.at(k), port);
    }
  }

  std::cout << fmt::format("key_range_test: {} rows written ({} statements) across {} key types;", f.rows_written,
                           f.statements, cases.size())
            << std::endl;
  for (const auto& [path, n] : by_path) std::cout << fmt::format("  {:<22} {} rows", path, n) << std::endl;
  std::cout << fmt::format("  {} reads; mismatched rows: {}, wrong answers: {}, refusals: {}", f.reads, f.mismatches,
                           f.wrong_answers, f.refusals)
            << std::endl;
  for (const auto& p : f.problems) std::cout << "  problem: " << p << std::endl;
  EXPECT_EQ(f.mismatches, 0);
  EXPECT_EQ(f.wrong_answers, 0);
  EXPECT_EQ(f.refusals, 0);
  EXPECT_GT(f.rows_written, 5 * kKeysPerType - 5);
}

// Out-of-range and malformed keys: the proxy answers with the SQLSTATE a plain server gives for
// the same statement (shard 0's primary, asked directly, is that plain server), and no row lands.
TEST_F(KeyRange, OutOfRangeValuesGetTheServersSqlstate) {
  PgConnection proxy = via_proxy();
  PgConnection direct = shard(0);
  for (const auto& [table, type] : kTables)
    proxy.exec(fmt::format("CREATE TABLE IF NOT EXISTS {} (tenant_id {} NOT NULL, id bigint NOT NULL, via text, "
                           "PRIMARY KEY (tenant_id, id))", table, type));
  auto rows_everywhere = [&] {
    int n = 0;
    for (int s = 0; s < kShards; ++s)
      for (const auto& [table, type] : kTables) n += std::stoi(shard(s).value("SELECT count(*) FROM " + table));
    return n;
  };
  const int before = rows_everywhere();
  const std::vector<std::string> statements = {
      "INSERT INTO kr_int2 (tenant_id, id) VALUES (32768, 1)",
      "INSERT INTO kr_int2 (tenant_id, id) VALUES (-32769, 1)",
      "INSERT INTO kr_int2 (tenant_id, id) VALUES ('32768', 1)",
      "INSERT INTO kr_int2 (tenant_id, id) VALUES (32767.5, 1)",
      "INSERT INTO kr_int2 (tenant_id, id) VALUES (1, 1), (2, 2), (3, 3), (32768, 4)",
      "INSERT INTO kr_int4 (tenant_id, id) VALUES (2147483648, 1)",
      "INSERT INTO kr_int4 (tenant_id, id) VALUES (-2147483649, 1)",
      "INSERT INTO kr_int4 (tenant_id, id) VALUES ('2147483648', 1)",
      "INSERT INTO kr_int4 (tenant_id, id) VALUES (2147483647.5, 1)",
      "INSERT INTO kr_int4 (tenant_id, id) VALUES (1, 1), (2, 2), (3, 3), (2147483648, 4), (5, 5)",
      "INSERT INTO kr_int4 (tenant_id, id) VALUES ('abc', 1)",
      "INSERT INTO kr_int4 (tenant_id, id) VALUES ('1.5', 1)",
      "INSERT INTO kr_int4 (tenant_id, id) VALUES (-'1', 1)",
      "INSERT INTO kr_int8 (tenant_id, id) VALUES (9223372036854775808, 1)",
      "INSERT INTO kr_int8 (tenant_id, id) VALUES (-9223372036854775809, 1)",
      "INSERT INTO kr_int8 (tenant_id, id) VALUES ('9223372036854775808', 1)",
      "INSERT INTO kr_int8 (tenant_id, id) VALUES (-9223372036854775808::bigint, 1)",
      "INSERT INTO kr_int8 (tenant_id, id) VALUES (1, 1), (-9223372036854775808, 2), (9223372036854775808, 3)",
      "INSERT INTO kr_uuid (tenant_id, id) VALUES ('not-a-uuid', 1)",
      "INSERT INTO kr_uuid (tenant_id, id) VALUES (42, 1)",
      "INSERT INTO kr_text (tenant_id, id) VALUES ('a'::uuid, 1)",
      "SELECT count(*) FROM kr_int4 WHERE tenant_id = 2147483648",
      "SELECT count(*) FROM kr_int4 WHERE tenant_id IN (2147483648, -2147483649, 1.5)",
      "SELECT count(*) FROM kr_int4 WHERE tenant_id = '2147483648'",
      "SELECT count(*) FROM kr_int4 WHERE tenant_id = 'abc'",
      "SELECT count(*) FROM kr_int2 WHERE tenant_id = 70000",
      "SELECT count(*) FROM kr_int2 WHERE tenant_id = '70000'",
      "SELECT count(*) FROM kr_int8 WHERE tenant_id = 9223372036854775808",
      "SELECT count(*) FROM kr_int8 WHERE tenant_id = ANY(ARRAY['1', '2'])",
      "SELECT count(*) FROM kr_text WHERE tenant_id = 42",
      "SELECT count(*) FROM kr_uuid WHERE tenant_id = 'zz'",
      "DELETE FROM kr_int4 WHERE tenant_id = 2147483648",
      "UPDATE kr_int4 SET via = 'x' WHERE tenant_id = '2147483648'",
  };
  int checks = 0, differences = 0;
  auto compare = [&](const std::string& what, const PgResult& p, const PgResult& d) {
    ++checks;
    const std::string ps = p.ok() ? "ok " + p.cmd_tuples() + (p.rows() ? " " + p.value(0, 0) : "") : p.sqlstate();
    const std::string ds = d.ok() ? "ok " + d.cmd_tuples() + (d.rows() ? " " + d.value(0, 0) : "") : d.sqlstate();
    if (ps != ds) ++differences;
    EXPECT_EQ(ps, ds) << what << "\n  proxy:  " << p.describe() << "\n  direct: " << d.describe();
    if (!p.ok() && !d.ok()) {
      EXPECT_EQ(p.message(), d.message()) << what;
    }
  };
  for (const auto& sql : statements) compare(sql, proxy.exec(sql), direct.exec(sql));
  // Binds: a text value the column's input function rejects.
  for (const auto& [sql, value] : std::vector<std::pair<std::string, std::string>>{
           {"INSERT INTO kr_int4 (tenant_id, id) VALUES ($1, 1)", "2147483648"},
           {"INSERT INTO kr_int2 (tenant_id, id) VALUES ($1, 1)", "-32769"},
           {"INSERT INTO kr_int8 (tenant_id, id) VALUES ($1, 1)", "9223372036854775808"},
           {"SELECT count(*) FROM kr_int4 WHERE tenant_id = $1", "2147483648"},
           {"SELECT count(*) FROM kr_uuid WHERE tenant_id = $1", "{0000}"}})
    compare(sql + " with $1 = " + value, exec_typed(proxy, sql, {0}, {value}, {0}), exec_typed(direct, sql, {0}, {value}, {0}));
  // COPY rows the key type's input function rejects (the proxy reads the key itself).
  for (const auto& [sql, data] : std::vector<std::pair<std::string, std::string>>{
           {"COPY kr_int4 (tenant_id, id) FROM STDIN", "1\t1\n2147483648\t2\n"},
           {"COPY kr_int2 (tenant_id, id) FROM STDIN WITH (FORMAT csv)", "5,1\n\"70000\",2\n"},
           {"COPY kr_int8 (id, tenant_id) FROM STDIN", "1\t-9223372036854775809\n"},
           {"COPY kr_uuid (tenant_id, id) FROM STDIN", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1}\t1\n"},
           {"COPY kr_int4 (tenant_id, id) FROM STDIN", "1e3\t1\n"}})
    compare(sql, copy_in(proxy, sql, data), copy_in(direct, sql, data));
  EXPECT_EQ(rows_everywhere(), before) << "a refused statement left rows behind";
  std::cout << fmt::format("key_range_test: {} out-of-range statements compared with a plain server, {} differences",
                           checks, differences)
            << std::endl;
}

}  // namespace
