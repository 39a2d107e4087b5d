// Cutting COPY FROM STDIN (FORMAT binary) data into its header and tuples and reading each
// tuple's key field, whatever the chunking, and PostgreSQL's errors for malformed data.

#include "proxy/exec/binary_copy_splitter.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <iostream>
#include <random>
#include <vector>

namespace shardline::proxy::exec {
namespace {

std::string be16(std::int16_t v) {
  const auto u = std::uint16_t(v);
  return {char(u >> 8), char(u & 0xFF)};
}

std::string be32(std::int32_t v) {
  const auto u = std::uint32_t(v);
  return {char(u >> 24), char((u >> 16) & 0xFF), char((u >> 8) & 0xFF), char(u & 0xFF)};
}

std::string header(std::int32_t flags = 0, const std::string& extension = "") {
  return std::string(BinaryCopySplitter::kSignature) + be32(flags) + be32(std::int32_t(extension.size())) + extension;
}

/// A tuple of fields; nullopt is NULL.
std::string tuple(const std::vector<std::optional<std::string>>& fields) {
  std::string t = be16(std::int16_t(fields.size()));
  for (const auto& f : fields) t += f ? be32(std::int32_t(f->size())) + *f : be32(-1);
  return t;
}

struct Part {
  std::string bytes;
  std::optional<std::string> key;
  bool header;
  bool operator==(const Part&) const = default;
};

struct Result {
  std::vector<Part> parts;
  std::optional<CopyDataError> error;
};

/// Feeds `data` cut at `cuts` (ascending offsets), then finishes. Keys route to their length
/// (NULL to -2); the key "bad" is one the key type rejects.
Result split(int fields, int key, const std::string& data, const std::vector<std::size_t>& cuts) {
  Result r;
  std::vector<std::optional<std::string>> keys;  // by target: the key read last for it
  BinaryCopySplitter s(fields, key, [&](std::optional<std::string_view> k) {
    if (k == "bad") return BinaryCopySplitter::KeyRoute{0, "22P03", "incorrect binary data format"};
    keys.push_back(k ? std::optional<std::string>(std::string(*k)) : std::nullopt);
    return BinaryCopySplitter::KeyRoute{int(keys.size()) - 1, {}, {}};
  });
  BinaryCopySplitter::Sink sink = [&](std::string_view bytes, int target, bool header) {
    r.parts.push_back({std::string(bytes), header ? std::nullopt : keys.at(std::size_t(target)), header});
  };
  std::size_t at = 0;
  for (std::size_t c : cuts) {
    (void)s.feed(std::string_view(data).substr(at, c - at), sink);
    at = c;
  }
  (void)s.feed(std::string_view(data).substr(at), sink);
  r.error = s.finish();
  return r;
}

Result split_by(int fields, int key, const std::string& data, std::size_t chunk) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = chunk; i < data.size(); i += chunk) cuts.push_back(i);
  return split(fields, key, data, cuts);
}

const std::string kBig(70000, 'x');

std::vector<std::vector<std::optional<std::string>>> sample_rows() {
  return {{std::string("\0\0\0\0\0\0\0\x2a", 8), std::string("one"), std::string("\x01\x02", 2)},
          {std::nullopt, std::string(""), std::nullopt},
          {std::string("\xff\xff\xff\xff\xff\xff\xff\xff", 8), kBig, std::string("z")}};
}

TEST(BinaryCopySplitter, HeaderTuplesAndKeysWhateverTheChunking) {
  const std::string hdr = header(0, "ext!");
  std::string data = hdr;
  std::vector<Part> expected{{hdr, std::nullopt, true}};
  for (const auto& row : sample_rows()) {
    data += tuple(row);
    expected.push_back({tuple(row), row[0], false});
  }
  data += std::string(BinaryCopySplitter::kTrailer);
  for (std::size_t chunk : {std::size_t(1), std::size_t(2), std::size_t(3), std::size_t(7), std::size_t(19),
                            std::size_t(4096), data.size()}) {
    const Result r = split_by(3, 0, data, chunk);
    EXPECT_FALSE(r.error) << "chunk " << chunk << ": " << r.error->message;
    EXPECT_EQ(r.parts, expected) << "chunk " << chunk;
  }
  // Random cuts (seeded; the seed is printed so a failure can be replayed).
  const auto seed = std::random_device{}();
  std::cout << "[binary_copy_splitter_test] seed " << seed << "\n";
  std::mt19937 rng(seed);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::size_t> cuts;
    for (std::size_t i = 0; i < data.size();) {
      i += 1 + rng() % (round % 2 ? 40 : 20000);
      if (i < data.size()) cuts.push_back(i);
    }
    const Result r = split(3, 0, data, cuts);
    EXPECT_FALSE(r.error) << "seed " << seed << " round " << round;
    EXPECT_EQ(r.parts, expected) << "seed " << seed << " round " << round;
  }
}

TEST(BinaryCopySplitter, KeyAtAnyPositionAndNullKeys) {
  const std::string data = header() + tuple({std::string("a"), std::nullopt, std::string("kk")}) +
                           tuple({std::string("b"), std::string("c"), std::nullopt});
  Result r = split_by(3, 2, data, 5);
  ASSERT_EQ(r.parts.size(), 3u);
  EXPECT_EQ(r.parts[1].key, "kk");
  EXPECT_EQ(r.parts[2].key, std::nullopt);
  r = split_by(3, 1, data, 5);
  EXPECT_EQ(r.parts[1].key, std::nullopt);
  EXPECT_EQ(r.parts[2].key, "c");
}

TEST(BinaryCopySplitter, TheTrailerIsOptionalAndALoneTrailingByteEndsTheData) {
  // PostgreSQL's CopyGetInt16 fails on less than two bytes and NextCopyFrom takes that for EOF.
  for (const std::string& tail : {std::string(), std::string("\x00", 1), std::string("\xff")}) {
    const Result r = split_by(1, 0, header() + tuple({std::string("1")}) + tail, 3);
    EXPECT_FALSE(r.error) << r.error->message;
    EXPECT_EQ(r.parts.size(), 2u);
  }
  const Result empty = split_by(1, 0, header() + std::string(BinaryCopySplitter::kTrailer), 1);
  EXPECT_FALSE(empty.error);
  EXPECT_EQ(empty.parts.size(), 1u);
}

void expect_error(const Result& r, const std::string& sqlstate, const std::string& message, std::int64_t line,
                  int field = -1) {
  ASSERT_TRUE(r.error) << "no error; expected " << message;
  EXPECT_EQ(r.error->sqlstate, sqlstate);
  EXPECT_EQ(r.error->message, message);
  EXPECT_EQ(r.error->line, line);
  EXPECT_EQ(r.error->field, field);
}

TEST(BinaryCopySplitter, HeaderErrorsAsPostgresWordsThem) {
  const std::string text_rows = "1\tone\n2\ttwo\n";  // text data sent as binary
  for (std::size_t chunk : {std::size_t(1), std::size_t(100)}) {
    expect_error(split_by(2, 0, text_rows, chunk), "22P04", "COPY file signature not recognized", 0);
    expect_error(split_by(2, 0, "", chunk), "22P04", "COPY file signature not recognized", 0);
    expect_error(split_by(2, 0, header().substr(0, 10), chunk), "22P04", "COPY file signature not recognized", 0);
    expect_error(split_by(2, 0, header().substr(0, 13), chunk), "22P04", "invalid COPY file header (missing flags)", 0);
    expect_error(split_by(2, 0, header().substr(0, 17), chunk), "22P04", "invalid COPY file header (missing length)", 0);
    expect_error(split_by(2, 0, header(0, "abcd").substr(0, 21), chunk), "22P04",
                 "invalid COPY file header (wrong length)", 0);
    expect_error(split_by(2, 0, header(1 << 16) + tuple({std::string("1"), std::string("2")}), chunk), "22P04",
                 "invalid COPY file header (WITH OIDS)", 0);
    expect_error(split_by(2, 0, header(1 << 17), chunk), "22P04", "unrecognized critical flags in COPY file header", 0);
    expect_error(split_by(2, 0, std::string(BinaryCopySplitter::kSignature) + be32(0) + be32(-1), chunk), "22P04",
                 "invalid COPY file header (missing length)", 0);
  }
  // Non-critical flag bits (0-15) are ignored, as PostgreSQL ignores them.
  EXPECT_FALSE(split_by(1, 0, header(0x0000FFFF) + tuple({std::string("1")}), 4).error);
}

TEST(BinaryCopySplitter, TupleErrorsAsPostgresWordsThem) {
  const std::string ok = header() + tuple({std::string("a"), std::string("b")});
  for (std::size_t chunk : {std::size_t(1), std::size_t(6), std::size_t(1000)}) {
    expect_error(split_by(2, 0, ok + tuple({std::string("a")}), chunk), "22P04", "row field count is 1, expected 2", 2);
    expect_error(split_by(2, 0, ok + be16(0), chunk), "22P04", "row field count is 0, expected 2", 2);
    expect_error(split_by(2, 0, ok + be16(-2), chunk), "22P04", "row field count is -2, expected 2", 2);
    expect_error(split_by(2, 0, ok + be16(2) + be32(1) + "a" + be32(-2) + "zz", chunk), "22P04", "invalid field size", 2, 1);
    // Cut inside a tuple: the field whose length or bytes are missing.
    const std::string second = tuple({std::string("abc"), std::string("defg")});
    expect_error(split_by(2, 0, ok + second.substr(0, 2), chunk), "22P04", "unexpected EOF in COPY data", 2, 0);
    expect_error(split_by(2, 0, ok + second.substr(0, 5), chunk), "22P04", "unexpected EOF in COPY data", 2, 0);
    expect_error(split_by(2, 0, ok + second.substr(0, 8), chunk), "22P04", "unexpected EOF in COPY data", 2, 0);
    expect_error(split_by(2, 0, ok + second.substr(0, 9), chunk), "22P04", "unexpected EOF in COPY data", 2, 1);
    expect_error(split_by(2, 0, ok + second.substr(0, second.size() - 1), chunk), "22P04",
                 "unexpected EOF in COPY data", 2, 1);
    // Anything after the trailer, in the same CopyData or a later one.
    expect_error(split_by(2, 0, ok + std::string(BinaryCopySplitter::kTrailer) + "x", chunk), "22P04",
                 "received copy data after EOF marker", 2);
  }
  // PostgreSQL converts each field as it reads it: a bad key wins over a malformed field after
  // it, not over one before it.
  expect_error(split_by(2, 0, ok + be16(2) + be32(3) + "bad" + be32(-2), 1), "22P03", "incorrect binary data format", 2, 0);
  expect_error(split_by(2, 1, ok + be16(2) + be32(-2) + be32(3) + "bad", 1), "22P04", "invalid field size", 2, 0);
  expect_error(split_by(2, 0, ok + be16(2) + be32(3) + "bad", 1), "22P03", "incorrect binary data format", 2, 0);
  // The tuples before an error were emitted; none after it.
  const Result r = split_by(2, 0, ok + tuple({std::string("x")}) + tuple({std::string("c"), std::string("d")}), 1000);
  EXPECT_EQ(r.parts.size(), 2u);
}

}  // namespace
}  // namespace shardline::proxy::exec
