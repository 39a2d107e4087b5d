#pragma once
// PostgreSQL's SQL keywords and identifier quoting, without calling libpg_query. SET value
// rendering needs to know which words are keywords: PostgreSQL's quote_identifier() quotes every
// keyword that is not unreserved.

#include <span>
#include <string>
#include <string_view>

namespace shardline::router {

/// The four keyword classes of PostgreSQL's grammar (src/include/parser/kwlist.h); None for a
/// word that is not a keyword at all.
enum class KeywordCategory { None, Unreserved, ColName, TypeFuncName, Reserved };

struct Keyword {
  std::string_view word;  ///< lower case, as in kwlist.h
  KeywordCategory category;
};

/// Every keyword of the PostgreSQL 15 grammar, sorted by word. The unit tests compare this table
/// with the one compiled into libpg_query, so a version bump that adds keywords fails loudly.
[[nodiscard]] std::span<const Keyword> all_keywords();

/// Category of `word`, compared case-insensitively (ASCII), like PostgreSQL's scanner does.
[[nodiscard]] KeywordCategory keyword_category(std::string_view word);

/// PostgreSQL's quote_identifier(): `ident` unchanged when it is a lower-case identifier that
/// is not a (non-unreserved) keyword, else double-quoted with embedded quotes doubled.
[[nodiscard]] std::string quote_identifier(std::string_view ident);

}  // namespace shardline::router
