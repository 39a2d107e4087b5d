// Cutting COPY FROM STDIN data into rows and reading each row's key, whatever the chunking.

#include "proxy/exec/copy_splitter.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace shardline::proxy::exec {
namespace {

struct Row {
  std::string bytes;
  std::optional<std::string> key;
  bool header;
};

std::vector<Row> split(const CopyFormat& f, int key_index, const std::string& data, std::size_t chunk) {
  CopySplitter s(f, key_index);
  std::vector<Row> rows;
  CopySplitter::RowSink sink = [&](std::string_view row, const std::optional<std::string>& key, bool header) {
    rows.push_back({std::string(row), key, header});
  };
  for (std::size_t i = 0; i < data.size(); i += chunk) s.feed(std::string_view(data).substr(i, chunk), sink);
  s.finish(sink);
  return rows;
}

TEST(CopySplitter, TextFormatRowsAndKeysWhateverTheChunkSize) {
  const std::string data = "1\tone\n22\ttw\\to\n\\N\tnull key\n333\tlast";
  for (std::size_t chunk : {1, 2, 3, 5, 7, 100}) {
    auto rows = split(CopyFormat{}, 0, data, chunk);
    ASSERT_EQ(rows.size(), 4u) << "chunk " << chunk;
    EXPECT_EQ(rows[0].key, "1");
    EXPECT_EQ(rows[1].key, "22");
    EXPECT_EQ(rows[1].bytes, "22\ttw\\to\n");
    EXPECT_EQ(rows[2].key, std::nullopt);
    EXPECT_EQ(rows[3].key, "333");
  }
}

TEST(CopySplitter, TextKeyInALaterColumnWithEscapes) {
  auto rows = split(CopyFormat{}, 1, "a\\tb\tk\\\\1\tz\n", 4);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].key, "k\\1");
}

TEST(CopySplitter, TextKeyWithOctalAndHexEscapes) {
  // CopyReadAttributesText: \NNN is one to three octal digits, \xHH one or two hex digits, and
  // \x without a hex digit is a plain x.
  const std::string data = "\\303\\251t\\xC3\\xA9\t1\n\\101\\1019\t2\n\\x4g\\xz\t3\n";
  auto rows = split(CopyFormat{}, 0, data, 5);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].key, std::optional<std::string>("\xC3\xA9t\xC3\xA9"));
  EXPECT_EQ(rows[1].key, std::optional<std::string>("AA9"));
  EXPECT_EQ(rows[2].key, std::optional<std::string>("\x04gxz"));
}

TEST(CopySplitter, CsvQuotedFieldsMaySpanLinesAndHoldDelimiters) {
  CopyFormat csv;
  csv.csv = true;
  csv.delimiter = ',';
  csv.null_marker = "";
  csv.header = true;
  const std::string data = "id,tenant,note\n1,\"4,2\",\"multi\nline\"\n2,,x\n3,\"\",\"say \"\"hi\"\"\"\n";
  for (std::size_t chunk : {1, 3, 8, 1000}) {
    auto rows = split(csv, 1, data, chunk);
    ASSERT_EQ(rows.size(), 4u) << "chunk " << chunk;
    EXPECT_TRUE(rows[0].header);
    EXPECT_EQ(rows[1].key, "4,2");
    EXPECT_EQ(rows[1].bytes, "1,\"4,2\",\"multi\nline\"\n");
    EXPECT_EQ(rows[2].key, std::nullopt);  // unquoted empty is NULL in CSV
    EXPECT_EQ(rows[3].key, "");            // quoted empty is an empty string
  }
}

TEST(CopySplitter, EndMarkerStopsTextInput) {
  CopySplitter s(CopyFormat{}, 0);
  int n = 0;
  CopySplitter::RowSink sink = [&](std::string_view, const std::optional<std::string>&, bool) { ++n; };
  s.feed("1\ta\n\\.\n2\tb\n", sink);
  s.finish(sink);
  EXPECT_EQ(n, 1);
  EXPECT_TRUE(s.ended());
}

}  // namespace
}  // namespace shardline::proxy::exec
