// The oracle test for shardline's sharding function (SPEC.md section 4): PostgreSQL itself
// decides where each key lives. For every key type and several moduli, thousands of keys are
// inserted into real `PARTITION BY HASH` tables and the partition each row landed in
// (tableoid) is compared with shardline's logical shard; satisfies_hash_partition() is asked
// about our remainders as well, and the server's binary encoding of each key is fed to the
// binary-format path. Invalid inputs must be refused by both sides with the same message.
//
// The test starts its own throwaway PostgreSQL (initdb into a temp directory, a free port,
// stopped and removed at the end) so it depends on nothing but the PostgreSQL binaries.

#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "router/sharding/key_type.hpp"
#include "router/sharding/pg_hash.hpp"
#include "router/sharding/shard_key.hpp"

namespace {

using shardline::router::KeyType;
using shardline::router::logical_shard_of_binary;
using shardline::router::logical_shard_of_int;
using shardline::router::logical_shard_of_null;
using shardline::router::logical_shard_of_text;

constexpr std::array<int, 5> kModuli{1024, 7, 1, 2, 1000};
constexpr std::size_t kRandomKeysPerType = 10000;
constexpr std::uint64_t kRandomSeed = 0x5AD11E;

// ---- throwaway server ------------------------------------------------------------------------

/// Runs argv (as the `postgres` OS user when we are root, since PostgreSQL refuses to run as
/// root), output appended to log_path. Returns the exit status, or -1 if it could not run.
int run_command(std::vector<std::string> argv, const std::string& log_path) {
  if (geteuid() == 0) argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    std::vector<char*> args;
    for (auto& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_file_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

/// Directory holding initdb/pg_ctl: $SHARDLINE_PG_BINDIR, else the newest
/// /usr/lib/postgresql/<major>/bin (Debian's layout), else whatever PATH finds.
std::string find_pg_bindir() {
  if (const char* env = std::getenv("SHARDLINE_PG_BINDIR"); env != nullptr && *env != '\0') {
    return env;
  }
  namespace fs = std::filesystem;
  int best_major = -1;
  std::string best;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() ||
        !std::all_of(name.begin(), name.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      continue;
    }
    if (!fs::exists(entry.path() / "bin" / "initdb")) continue;
    if (int major = std::stoi(name); major > best_major) {
      best_major = major;
      best = (entry.path() / "bin").string();
    }
  }
  return best;
}

/// A free TCP port on loopback, as the kernel hands one out for port 0.
int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

/// One PostgreSQL primary in a mkdtemp directory, for this test file only.
class ThrowawayPostgres {
 public:
  static std::unique_ptr<ThrowawayPostgres> start(std::string* error) {
    const std::string bindir = find_pg_bindir();
    std::string tmpl = (std::filesystem::temp_directory_path() / "shardline-pghash-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      *error = "mkdtemp failed";
      return nullptr;
    }
    auto server = std::unique_ptr<ThrowawayPostgres>(new ThrowawayPostgres(tmpl, bindir));
    if (geteuid() == 0) {
      const passwd* pw = getpwnam("postgres");
      if (pw == nullptr || chown(tmpl.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        *error = "running as root needs an OS user `postgres` to run the server as";
        return nullptr;
      }
    }
    if (run_command({server->tool("initdb"), "-D", server->data_dir(), "-U", "postgres", "-A",
                     "trust", "-E", "UTF8", "--locale=C", "--no-sync"},
                    server->log_path()) != 0) {
      *error = "initdb failed:\n" + read_file_text(server->log_path());
      return nullptr;
    }
    // A port found free can be taken before the server binds it; try a few.
    for (int attempt = 0; attempt < 5; ++attempt) {
      server->port_ = free_port();
      const std::string options = "-p " + std::to_string(server->port_) + " -k " + server->dir_ +
                                  " -c listen_addresses=127.0.0.1 -c fsync=off"
                                  " -c full_page_writes=off -c synchronous_commit=off"
                                  " -c max_locks_per_transaction=1024";
      if (run_command({server->tool("pg_ctl"), "-D", server->data_dir(), "-l",
                       server->dir_ + "/server.log", "-w", "-t", "60", "-o", options, "start"},
                      server->log_path()) == 0) {
        server->running_ = true;
        return server;
      }
    }
    *error = "pg_ctl start failed:\n" + read_file_text(server->log_path()) +
             read_file_text(server->dir_ + "/server.log");
    return nullptr;
  }

  ~ThrowawayPostgres() {
    // Also after a failed start: pg_ctl -w may give up on a server that did come up later.
    if (running_ || std::filesystem::exists(data_dir() + "/postmaster.pid")) {
      run_command({tool("pg_ctl"), "-D", data_dir(), "-m", "fast", "-w", "stop"}, log_path());
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  ThrowawayPostgres(const ThrowawayPostgres&) = delete;
  ThrowawayPostgres& operator=(const ThrowawayPostgres&) = delete;

  [[nodiscard]] std::string conninfo() const {
    return "host=127.0.0.1 port=" + std::to_string(port_) +
           " user=postgres dbname=postgres client_encoding=UTF8"
           " options='-c client_min_messages=warning'";
  }

 private:
  ThrowawayPostgres(std::string dir, std::string bindir)
      : dir_(std::move(dir)), bindir_(std::move(bindir)) {}

  [[nodiscard]] std::string tool(const std::string& name) const {
    return bindir_.empty() ? name : bindir_ + "/" + name;
  }
  [[nodiscard]] std::string data_dir() const { return dir_ + "/data"; }
  [[nodiscard]] std::string log_path() const { return dir_ + "/commands.log"; }

  std::string dir_;
  std::string bindir_;
  int port_ = -1;
  bool running_ = false;
};

// ---- libpq helpers (exceptions are fine here: gtest turns them into failures) ---------------

struct PgResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

PgResultPtr exec(PGconn* conn, const std::string& sql) {
  PgResultPtr result(PQexec(conn, sql.c_str()));
  const auto status = PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error(sql.substr(0, 200) + ": " + PQerrorMessage(conn));
  }
  return result;
}

/// COPY ... FROM STDIN in text format; `rows` are already escaped lines without newline.
void copy_in(PGconn* conn, const std::string& copy_sql, const std::vector<std::string>& rows) {
  PgResultPtr start(PQexec(conn, copy_sql.c_str()));
  if (PQresultStatus(start.get()) != PGRES_COPY_IN) {
    throw std::runtime_error(copy_sql + ": " + PQerrorMessage(conn));
  }
  std::string chunk;
  for (const auto& row : rows) {
    chunk += row;
    chunk += '\n';
    if (chunk.size() > (1 << 20)) {
      if (PQputCopyData(conn, chunk.data(), static_cast<int>(chunk.size())) != 1) {
        throw std::runtime_error(std::string("PQputCopyData: ") + PQerrorMessage(conn));
      }
      chunk.clear();
    }
  }
  if ((!chunk.empty() && PQputCopyData(conn, chunk.data(), static_cast<int>(chunk.size())) != 1) ||
      PQputCopyEnd(conn, nullptr) != 1) {
    throw std::runtime_error(std::string("COPY data: ") + PQerrorMessage(conn));
  }
  PgResultPtr done(PQgetResult(conn));
  if (PQresultStatus(done.get()) != PGRES_COMMAND_OK) {
    throw std::runtime_error(copy_sql + ": " + PQerrorMessage(conn));
  }
  while (PGresult* extra = PQgetResult(conn)) PQclear(extra);
}

std::string copy_escape(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char ch : value) {
    switch (ch) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += ch;
    }
  }
  return out;
}

std::string printable(const std::optional<std::string>& key) {
  if (!key) return "NULL";
  std::string shown = *key;
  if (shown.size() > 60) shown = shown.substr(0, 60) + "...(" + std::to_string(key->size()) + " bytes)";
  return "'" + shown + "'";
}

// ---- key sets --------------------------------------------------------------------------------

struct KeySet {
  KeyType type;
  std::string sql_type;
  std::vector<std::optional<std::string>> keys;  // PostgreSQL text input; nullopt is NULL
};

KeySet integer_keys(KeyType type, std::string sql_type, std::int64_t lo, std::int64_t hi) {
  KeySet set{type, std::move(sql_type), {}};
  auto add = [&set](std::int64_t v) { set.keys.emplace_back(std::to_string(v)); };
  for (std::int64_t v : {std::int64_t{0}, std::int64_t{1}, std::int64_t{-1}, std::int64_t{2},
                         std::int64_t{-2}, lo, hi, lo + 1, hi - 1}) {
    add(v);
  }
  for (int bit = 1; bit < 64; ++bit) {
    const auto p = static_cast<std::int64_t>(std::uint64_t{1} << bit);
    for (std::int64_t v : {p - 1, p, -p, -p + 1, p + 1}) {
      if (p > 0 && v >= lo && v <= hi) add(v);
    }
  }
  // Text forms the input functions accept besides plain decimal.
  for (const char* text : {" 42", "42 ", "+42", "-0", "+0", "007", "\t-17\n", " \r\v\f 5",
                           "000000000000000000000000000000001", "-000000000000000000000000000009"}) {
    set.keys.emplace_back(text);
  }
  set.keys.emplace_back("  " + std::to_string(lo) + "  ");
  set.keys.emplace_back("+" + std::to_string(hi));
  set.keys.emplace_back(std::nullopt);

  std::mt19937_64 rng(kRandomSeed ^ static_cast<std::uint64_t>(hi));
  std::uniform_int_distribution<std::int64_t> full(lo, hi);
  std::uniform_int_distribution<std::int64_t> small(std::max<std::int64_t>(lo, -100000),
                                                    std::min<std::int64_t>(hi, 100000));
  for (std::size_t i = 0; i < kRandomKeysPerType; ++i) add(i % 2 == 0 ? full(rng) : small(rng));
  return set;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

KeySet text_keys() {
  KeySet set{KeyType::Text, "text", {}};
  for (const char* text :
       {"", " ", "a", "A", "\\", "\\N", "\t", "\n", "tab\there", "line\nbreak", "é", "e\u0301",
        "日本語", "😀", "naïve café", "Ω≈ç√∫", "שלום", "Ünïcödé ✓", "0", "-1", "42", "NULL"}) {
    set.keys.emplace_back(text);
  }
  // Every length 1..64 exercises each tail case of lookup3 and several full 12-byte blocks.
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
  for (std::size_t len = 1; len <= alphabet.size(); ++len) set.keys.emplace_back(alphabet.substr(0, len));
  for (std::size_t len : {1000u, 4096u, 65537u, 200000u}) {
    std::string long_text;
    for (std::size_t i = 0; long_text.size() < len; ++i) long_text += alphabet[(i * 7) % alphabet.size()];
    set.keys.emplace_back(long_text);
  }
  set.keys.emplace_back(std::string(300, 'x') + "日本語");
  set.keys.emplace_back(std::nullopt);

  std::mt19937_64 rng(kRandomSeed);
  std::uniform_int_distribution<int> length(0, 48);
  std::uniform_int_distribution<int> plane(0, 99);
  for (std::size_t i = 0; i < kRandomKeysPerType; ++i) {
    std::string text;
    const int n = length(rng);
    for (int c = 0; c < n; ++c) {
      const int p = plane(rng);
      char32_t cp;
      if (p < 60) cp = std::uniform_int_distribution<char32_t>(0x20, 0x7E)(rng);
      else if (p < 75) cp = std::uniform_int_distribution<char32_t>(0xA0, 0x24F)(rng);
      else if (p < 90) cp = std::uniform_int_distribution<char32_t>(0x4E00, 0x9FFF)(rng);
      else if (p < 95) cp = std::uniform_int_distribution<char32_t>(0x1F300, 0x1FAFF)(rng);
      else cp = std::uniform_int_distribution<char32_t>(1, 0x1F)(rng);  // control characters
      append_utf8(text, cp);
    }
    set.keys.emplace_back(std::move(text));
  }
  return set;
}

KeySet uuid_keys() {
  KeySet set{KeyType::Uuid, "uuid", {}};
  for (const char* text : {"00000000-0000-0000-0000-000000000000",
                           "ffffffff-ffff-ffff-ffff-ffffffffffff",
                           "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
                           "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                           "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
                           "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
                           "a0eebc999c0b4ef8bb6d6bb9bd380a11",
                           "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
                           "{a0eebc999c0b4ef8bb6d6bb9bd380a11}",
                           "a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11",
                           "00000000-0000-0000-0000-000000000001",
                           "80000000-0000-0000-0000-000000000000"}) {
    set.keys.emplace_back(text);
  }
  set.keys.emplace_back(std::nullopt);
  std::mt19937_64 rng(kRandomSeed + 1);
  const char* lower = "0123456789abcdef";
  const char* upper = "0123456789ABCDEF";
  for (std::size_t i = 0; i < kRandomKeysPerType; ++i) {
    const std::uint64_t hi = rng();
    const std::uint64_t lo = rng();
    const char* digits = i % 7 == 0 ? upper : lower;
    const bool hyphens = i % 13 != 0;
    std::string text = i % 11 == 0 ? "{" : "";
    for (int nibble = 0; nibble < 32; ++nibble) {
      const std::uint64_t word = nibble < 16 ? hi : lo;
      text += digits[(word >> (60 - 4 * (nibble % 16))) & 0xF];
      if (hyphens && (nibble == 7 || nibble == 11 || nibble == 15 || nibble == 19)) text += '-';
    }
    if (i % 11 == 0) text += "}";
    set.keys.emplace_back(std::move(text));
  }
  return set;
}

// ---- the oracle ------------------------------------------------------------------------------

class PgHashOracle : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string error;
    server_ = ThrowawayPostgres::start(&error).release();
    if (server_ == nullptr) {
      start_error_ = new std::string(error);
      return;
    }
    conn_ = PQconnectdb(server_->conninfo().c_str());
    if (PQstatus(conn_) != CONNECTION_OK) {
      start_error_ = new std::string(std::string("connect: ") + PQerrorMessage(conn_));
    }
  }

  static void TearDownTestSuite() {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = nullptr;
    delete server_;
    server_ = nullptr;
    delete start_error_;
    start_error_ = nullptr;
  }

  void SetUp() override {
    if (start_error_ != nullptr) FAIL() << "throwaway PostgreSQL: " << *start_error_;
  }

  /// Routes every key through real hash-partitioned tables for each modulus and compares.
  static void check_key_set(const KeySet& set);

  /// Each input must be refused by the server's input function and by us, with one message.
  static void check_rejected_alike(const std::string& sql_type, KeyType type,
                                   const std::vector<std::string>& inputs);

  static ThrowawayPostgres* server_;
  static PGconn* conn_;
  static std::string* start_error_;
};

ThrowawayPostgres* PgHashOracle::server_ = nullptr;
PGconn* PgHashOracle::conn_ = nullptr;
std::string* PgHashOracle::start_error_ = nullptr;

void PgHashOracle::check_key_set(const KeySet& set) {
  const auto started = std::chrono::steady_clock::now();
  const std::string& t = set.sql_type;
  const std::string keys_table = "keys_" + t;
  const std::size_t n = set.keys.size();

  exec(conn_, "DROP TABLE IF EXISTS " + keys_table + ", ours_" + t);
  exec(conn_, "CREATE TABLE " + keys_table + " (id int PRIMARY KEY, k " + t + ")");
  std::vector<std::string> rows;
  rows.reserve(n);
  for (std::size_t id = 0; id < n; ++id) {
    rows.push_back(std::to_string(id) + "\t" +
                   (set.keys[id] ? copy_escape(*set.keys[id]) : std::string("\\N")));
  }
  // The server parses each key with the type's own input function here.
  copy_in(conn_, "COPY " + keys_table + " (id, k) FROM STDIN", rows);

  // Our remainders for every (key, modulus), from the same text.
  std::vector<std::array<int, kModuli.size()>> ours(n);
  for (std::size_t id = 0; id < n; ++id) {
    for (std::size_t mi = 0; mi < kModuli.size(); ++mi) {
      if (!set.keys[id]) {
        ours[id][mi] = logical_shard_of_null(kModuli[mi]);
        continue;
      }
      std::string error;
      std::optional<int> shard = logical_shard_of_text(set.type, *set.keys[id], kModuli[mi], &error);
      ASSERT_TRUE(shard.has_value()) << t << " key " << printable(set.keys[id])
                                     << " accepted by PostgreSQL, refused by us: " << error;
      ours[id][mi] = *shard;
    }
  }

  // 1. Where PostgreSQL's tuple routing puts each row.
  std::size_t routed_mismatches = 0;
  for (std::size_t mi = 0; mi < kModuli.size(); ++mi) {
    const int m = kModuli[mi];
    const std::string parent = "part_" + t + "_" + std::to_string(m);
    exec(conn_, "DROP TABLE IF EXISTS " + parent);
    exec(conn_, "CREATE TABLE " + parent + " (id int, k " + t + ") PARTITION BY HASH (k)");
    exec(conn_, "DO $$ BEGIN FOR r IN 0.." + std::to_string(m - 1) +
                    " LOOP EXECUTE format('CREATE TABLE " + parent +
                    "_%s PARTITION OF " + parent + " FOR VALUES WITH (MODULUS " +
                    std::to_string(m) + ", REMAINDER %s)', r, r); END LOOP; END $$");
    exec(conn_, "INSERT INTO " + parent + " SELECT id, k FROM " + keys_table);
    PgResultPtr placed = exec(conn_, "SELECT id, tableoid::regclass::text FROM " + parent);
    ASSERT_EQ(static_cast<std::size_t>(PQntuples(placed.get())), n);
    std::size_t mismatches_here = 0;
    for (int row = 0; row < PQntuples(placed.get()); ++row) {
      const auto id = static_cast<std::size_t>(std::stoul(PQgetvalue(placed.get(), row, 0)));
      const std::string partition = PQgetvalue(placed.get(), row, 1);
      const int server_remainder = std::stoi(partition.substr(partition.rfind('_') + 1));
      if (server_remainder != ours[id][mi]) {
        if (++mismatches_here <= 10) {
          ADD_FAILURE() << t << " key " << printable(set.keys[id]) << " modulus " << m
                        << ": PostgreSQL stored it in remainder " << server_remainder
                        << ", shardline says " << ours[id][mi];
        }
      }
    }
    routed_mismatches += mismatches_here;
  }
  EXPECT_EQ(routed_mismatches, 0u) << t << ": keys routed differently from PostgreSQL";

  // 2. satisfies_hash_partition() on our remainders: true for ours, false for the next one.
  std::vector<std::string> our_rows;
  our_rows.reserve(n * kModuli.size());
  for (std::size_t id = 0; id < n; ++id) {
    for (std::size_t mi = 0; mi < kModuli.size(); ++mi) {
      our_rows.push_back(std::to_string(id) + "\t" + std::to_string(kModuli[mi]) + "\t" +
                         std::to_string(ours[id][mi]));
    }
  }
  exec(conn_, "CREATE TABLE ours_" + t + " (id int, m int, r int)");
  copy_in(conn_, "COPY ours_" + t + " FROM STDIN", our_rows);
  const std::string any_parent = "'part_" + t + "_1024'::regclass";
  PgResultPtr verdict = exec(
      conn_, "SELECT count(*) FILTER (WHERE NOT satisfies_hash_partition(" + any_parent +
                 ", o.m, o.r, k.k)), count(*) FILTER (WHERE o.m > 1 AND satisfies_hash_partition(" +
                 any_parent + ", o.m, (o.r + 1) % o.m, k.k)), count(*) FROM ours_" + t +
                 " o JOIN " + keys_table + " k USING (id)");
  const long refused = std::stol(PQgetvalue(verdict.get(), 0, 0));
  const long wrongly_accepted = std::stol(PQgetvalue(verdict.get(), 0, 1));
  const long checked = std::stol(PQgetvalue(verdict.get(), 0, 2));
  EXPECT_EQ(refused, 0) << t << ": satisfies_hash_partition refused our remainder";
  EXPECT_EQ(wrongly_accepted, 0) << t << ": satisfies_hash_partition accepted remainder+1";
  EXPECT_EQ(checked, static_cast<long>(n * kModuli.size()));

  // 3. The binary-format path, fed with the server's own binary encoding of each key.
  const std::string select_binary = "SELECT id, k FROM " + keys_table;
  PgResultPtr binary(PQexecParams(conn_, select_binary.c_str(), 0, nullptr, nullptr, nullptr,
                                  nullptr, 1));
  ASSERT_EQ(PQresultStatus(binary.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn_);
  std::size_t binary_mismatches = 0;
  std::size_t int_mismatches = 0;
  for (int row = 0; row < PQntuples(binary.get()); ++row) {
    const auto* id_bytes = reinterpret_cast<const unsigned char*>(PQgetvalue(binary.get(), row, 0));
    const std::size_t id = (std::size_t{id_bytes[0]} << 24) | (std::size_t{id_bytes[1]} << 16) |
                           (std::size_t{id_bytes[2]} << 8) | std::size_t{id_bytes[3]};
    if (PQgetisnull(binary.get(), row, 1)) continue;
    const auto* data = reinterpret_cast<const std::byte*>(PQgetvalue(binary.get(), row, 1));
    const std::span<const std::byte> value(data, static_cast<std::size_t>(PQgetlength(binary.get(), row, 1)));
    for (std::size_t mi = 0; mi < kModuli.size(); ++mi) {
      std::string error;
      std::optional<int> shard = logical_shard_of_binary(set.type, value, kModuli[mi], &error);
      if (shard != ours[id][mi] && ++binary_mismatches <= 10) {
        ADD_FAILURE() << t << " key " << printable(set.keys[id]) << " modulus " << kModuli[mi]
                      << ": binary path gave " << (shard ? std::to_string(*shard) : error)
                      << ", expected " << ours[id][mi];
      }
      if (set.type != KeyType::Text && set.type != KeyType::Uuid) {
        std::int64_t number = 0;
        for (const std::byte b : value) number = static_cast<std::int64_t>(
            (static_cast<std::uint64_t>(number) << 8) | std::to_integer<std::uint64_t>(b));
        const unsigned shift = static_cast<unsigned>(64 - 8 * value.size());
        number = static_cast<std::int64_t>(static_cast<std::uint64_t>(number) << shift) >> shift;
        if (logical_shard_of_int(number, kModuli[mi]) != ours[id][mi]) ++int_mismatches;
      }
    }
  }
  EXPECT_EQ(binary_mismatches, 0u) << t << ": binary-format keys routed differently";
  EXPECT_EQ(int_mismatches, 0u) << t << ": logical_shard_of_int differs from the text path";

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "[pg_hash oracle] " << t << ": " << n << " keys x " << kModuli.size()
            << " moduli {1024,7,1,2,1000}: " << routed_mismatches << " routing mismatches, "
            << refused << "/" << checked << " refused by satisfies_hash_partition, "
            << binary_mismatches << " binary-path mismatches, in " << seconds << " s\n";
}

void PgHashOracle::check_rejected_alike(const std::string& sql_type, KeyType type,
                                        const std::vector<std::string>& inputs) {
  const std::string sql = "SELECT $1::" + sql_type;
  for (const std::string& input : inputs) {
    const char* values[] = {input.c_str()};
    PgResultPtr result(PQexecParams(conn_, sql.c_str(), 1, nullptr, values, nullptr, nullptr, 0));
    std::string ours_error;
    std::optional<int> ours = logical_shard_of_text(type, input, 7, &ours_error);
    if (PQresultStatus(result.get()) == PGRES_TUPLES_OK) {
      ADD_FAILURE() << sql_type << " '" << input << "' is accepted by PostgreSQL; test input is wrong";
      continue;
    }
    const char* primary = PQresultErrorField(result.get(), PG_DIAG_MESSAGE_PRIMARY);
    EXPECT_FALSE(ours.has_value()) << sql_type << " '" << input << "' refused by PostgreSQL ("
                                   << (primary ? primary : "?") << ") but routed by us";
    EXPECT_EQ(ours_error, primary ? primary : "") << sql_type << " '" << input << "'";
  }
  std::cout << "[pg_hash oracle] " << sql_type << ": " << inputs.size()
            << " invalid inputs refused alike\n";
}

TEST_F(PgHashOracle, SmallInt) {
  check_key_set(integer_keys(KeyType::SmallInt, "smallint", std::numeric_limits<std::int16_t>::min(),
                             std::numeric_limits<std::int16_t>::max()));
}

TEST_F(PgHashOracle, Integer) {
  check_key_set(integer_keys(KeyType::Integer, "integer", std::numeric_limits<std::int32_t>::min(),
                             std::numeric_limits<std::int32_t>::max()));
}

TEST_F(PgHashOracle, BigInt) {
  check_key_set(integer_keys(KeyType::BigInt, "bigint", std::numeric_limits<std::int64_t>::min(),
                             std::numeric_limits<std::int64_t>::max()));
}

TEST_F(PgHashOracle, Text) { check_key_set(text_keys()); }

TEST_F(PgHashOracle, Uuid) { check_key_set(uuid_keys()); }

TEST_F(PgHashOracle, NullKeyLandsInRemainderZero) {
  exec(conn_, "DROP TABLE IF EXISTS null_parent");
  exec(conn_, "CREATE TABLE null_parent (k bigint) PARTITION BY HASH (k)");
  exec(conn_, "DO $$ BEGIN FOR r IN 0..6 LOOP EXECUTE format('CREATE TABLE null_parent_%s "
              "PARTITION OF null_parent FOR VALUES WITH (MODULUS 7, REMAINDER %s)', r, r); "
              "END LOOP; END $$");
  PgResultPtr placed =
      exec(conn_, "INSERT INTO null_parent VALUES (NULL) RETURNING tableoid::regclass::text");
  EXPECT_EQ(std::string(PQgetvalue(placed.get(), 0, 0)), "null_parent_0");
  EXPECT_EQ(logical_shard_of_null(7), 0);
}

TEST_F(PgHashOracle, InvalidInputsAreRefusedAlike) {
  const std::vector<std::string> common = {"", " ", "abc", "1.5", "1e3", "0x10", "1_000", "--1",
                                           "+-1", "- 1", "1 2", "12a", "+", "-", "\xd9\xa1"};
  auto with = [&common](std::vector<std::string> more) {
    more.insert(more.end(), common.begin(), common.end());
    return more;
  };
  check_rejected_alike("smallint", KeyType::SmallInt,
                       with({"32768", "-32769", "99999a", "99999999999999999999999"}));
  check_rejected_alike("integer", KeyType::Integer,
                       with({"2147483648", "-2147483649", "4294967296", "99999999999x"}));
  check_rejected_alike("bigint", KeyType::BigInt,
                       with({"9223372036854775808", "-9223372036854775809",
                             "18446744073709551616", "99999999999999999999 "}));
  check_rejected_alike(
      "uuid", KeyType::Uuid,
      {"", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
       " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 ",
       "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
       "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g",
       "a0-eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
       "-a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "{{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}}",
       "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11{}", "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"});
}

}  // namespace
