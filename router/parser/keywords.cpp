#include "router/parser/keywords.hpp"

#include <algorithm>
#include <array>
#include <cstddef>

namespace shardline::router {
namespace {

using K = KeywordCategory;

/// PostgreSQL 15's keyword list (the facts of kwlist.h), generated from libpg_query's token
/// table. Sorted by word so that lookup is a binary search; checked by parser_test.cpp.
constexpr Keyword kKeywords[] = {
    {"abort", K::Unreserved}, {"absolute", K::Unreserved}, {"access", K::Unreserved},
    {"action", K::Unreserved}, {"add", K::Unreserved}, {"admin", K::Unreserved},
    {"after", K::Unreserved}, {"aggregate", K::Unreserved}, {"all", K::Reserved},
    {"also", K::Unreserved}, {"alter", K::Unreserved}, {"always", K::Unreserved},
    {"analyse", K::Reserved}, {"analyze", K::Reserved}, {"and", K::Reserved}, {"any", K::Reserved},
    {"array", K::Reserved}, {"as", K::Reserved}, {"asc", K::Reserved},
    {"asensitive", K::Unreserved}, {"assertion", K::Unreserved}, {"assignment", K::Unreserved},
    {"asymmetric", K::Reserved}, {"at", K::Unreserved}, {"atomic", K::Unreserved},
    {"attach", K::Unreserved}, {"attribute", K::Unreserved}, {"authorization", K::TypeFuncName},
    {"backward", K::Unreserved}, {"before", K::Unreserved}, {"begin", K::Unreserved},
    {"between", K::ColName}, {"bigint", K::ColName}, {"binary", K::TypeFuncName},
    {"bit", K::ColName}, {"boolean", K::ColName}, {"both", K::Reserved},
    {"breadth", K::Unreserved}, {"by", K::Unreserved}, {"cache", K::Unreserved},
    {"call", K::Unreserved}, {"called", K::Unreserved}, {"cascade", K::Unreserved},
    {"cascaded", K::Unreserved}, {"case", K::Reserved}, {"cast", K::Reserved},
    {"catalog", K::Unreserved}, {"chain", K::Unreserved}, {"char", K::ColName},
    {"character", K::ColName}, {"characteristics", K::Unreserved}, {"check", K::Reserved},
    {"checkpoint", K::Unreserved}, {"class", K::Unreserved}, {"close", K::Unreserved},
    {"cluster", K::Unreserved}, {"coalesce", K::ColName}, {"collate", K::Reserved},
    {"collation", K::TypeFuncName}, {"column", K::Reserved}, {"columns", K::Unreserved},
    {"comment", K::Unreserved}, {"comments", K::Unreserved}, {"commit", K::Unreserved},
    {"committed", K::Unreserved}, {"compression", K::Unreserved},
    {"concurrently", K::TypeFuncName}, {"configuration", K::Unreserved},
    {"conflict", K::Unreserved}, {"connection", K::Unreserved}, {"constraint", K::Reserved},
    {"constraints", K::Unreserved}, {"content", K::Unreserved}, {"continue", K::Unreserved},
    {"conversion", K::Unreserved}, {"copy", K::Unreserved}, {"cost", K::Unreserved},
    {"create", K::Reserved}, {"cross", K::TypeFuncName}, {"csv", K::Unreserved},
    {"cube", K::Unreserved}, {"current", K::Unreserved}, {"current_catalog", K::Reserved},
    {"current_date", K::Reserved}, {"current_role", K::Reserved},
    {"current_schema", K::TypeFuncName}, {"current_time", K::Reserved},
    {"current_timestamp", K::Reserved}, {"current_user", K::Reserved}, {"cursor", K::Unreserved},
    {"cycle", K::Unreserved}, {"data", K::Unreserved}, {"database", K::Unreserved},
    {"day", K::Unreserved}, {"deallocate", K::Unreserved}, {"dec", K::ColName},
    {"decimal", K::ColName}, {"declare", K::Unreserved}, {"default", K::Reserved},
    {"defaults", K::Unreserved}, {"deferrable", K::Reserved}, {"deferred", K::Unreserved},
    {"definer", K::Unreserved}, {"delete", K::Unreserved}, {"delimiter", K::Unreserved},
    {"delimiters", K::Unreserved}, {"depends", K::Unreserved}, {"depth", K::Unreserved},
    {"desc", K::Reserved}, {"detach", K::Unreserved}, {"dictionary", K::Unreserved},
    {"disable", K::Unreserved}, {"discard", K::Unreserved}, {"distinct", K::Reserved},
    {"do", K::Reserved}, {"document", K::Unreserved}, {"domain", K::Unreserved},
    {"double", K::Unreserved}, {"drop", K::Unreserved}, {"each", K::Unreserved},
    {"else", K::Reserved}, {"enable", K::Unreserved}, {"encoding", K::Unreserved},
    {"encrypted", K::Unreserved}, {"end", K::Reserved}, {"enum", K::Unreserved},
    {"escape", K::Unreserved}, {"event", K::Unreserved}, {"except", K::Reserved},
    {"exclude", K::Unreserved}, {"excluding", K::Unreserved}, {"exclusive", K::Unreserved},
    {"execute", K::Unreserved}, {"exists", K::ColName}, {"explain", K::Unreserved},
    {"expression", K::Unreserved}, {"extension", K::Unreserved}, {"external", K::Unreserved},
    {"extract", K::ColName}, {"false", K::Reserved}, {"family", K::Unreserved},
    {"fetch", K::Reserved}, {"filter", K::Unreserved}, {"finalize", K::Unreserved},
    {"first", K::Unreserved}, {"float", K::ColName}, {"following", K::Unreserved},
    {"for", K::Reserved}, {"force", K::Unreserved}, {"foreign", K::Reserved},
    {"forward", K::Unreserved}, {"freeze", K::TypeFuncName}, {"from", K::Reserved},
    {"full", K::TypeFuncName}, {"function", K::Unreserved}, {"functions", K::Unreserved},
    {"generated", K::Unreserved}, {"global", K::Unreserved}, {"grant", K::Reserved},
    {"granted", K::Unreserved}, {"greatest", K::ColName}, {"group", K::Reserved},
    {"grouping", K::ColName}, {"groups", K::Unreserved}, {"handler", K::Unreserved},
    {"having", K::Reserved}, {"header", K::Unreserved}, {"hold", K::Unreserved},
    {"hour", K::Unreserved}, {"identity", K::Unreserved}, {"if", K::Unreserved},
    {"ilike", K::TypeFuncName}, {"immediate", K::Unreserved}, {"immutable", K::Unreserved},
    {"implicit", K::Unreserved}, {"import", K::Unreserved}, {"in", K::Reserved},
    {"include", K::Unreserved}, {"including", K::Unreserved}, {"increment", K::Unreserved},
    {"index", K::Unreserved}, {"indexes", K::Unreserved}, {"inherit", K::Unreserved},
    {"inherits", K::Unreserved}, {"initially", K::Reserved}, {"inline", K::Unreserved},
    {"inner", K::TypeFuncName}, {"inout", K::ColName}, {"input", K::Unreserved},
    {"insensitive", K::Unreserved}, {"insert", K::Unreserved}, {"instead", K::Unreserved},
    {"int", K::ColName}, {"integer", K::ColName}, {"intersect", K::Reserved},
    {"interval", K::ColName}, {"into", K::Reserved}, {"invoker", K::Unreserved},
    {"is", K::TypeFuncName}, {"isnull", K::TypeFuncName}, {"isolation", K::Unreserved},
    {"join", K::TypeFuncName}, {"key", K::Unreserved}, {"label", K::Unreserved},
    {"language", K::Unreserved}, {"large", K::Unreserved}, {"last", K::Unreserved},
    {"lateral", K::Reserved}, {"leading", K::Reserved}, {"leakproof", K::Unreserved},
    {"least", K::ColName}, {"left", K::TypeFuncName}, {"level", K::Unreserved},
    {"like", K::TypeFuncName}, {"limit", K::Reserved}, {"listen", K::Unreserved},
    {"load", K::Unreserved}, {"local", K::Unreserved}, {"localtime", K::Reserved},
    {"localtimestamp", K::Reserved}, {"location", K::Unreserved}, {"lock", K::Unreserved},
    {"locked", K::Unreserved}, {"logged", K::Unreserved}, {"mapping", K::Unreserved},
    {"match", K::Unreserved}, {"matched", K::Unreserved}, {"materialized", K::Unreserved},
    {"maxvalue", K::Unreserved}, {"merge", K::Unreserved}, {"method", K::Unreserved},
    {"minute", K::Unreserved}, {"minvalue", K::Unreserved}, {"mode", K::Unreserved},
    {"month", K::Unreserved}, {"move", K::Unreserved}, {"name", K::Unreserved},
    {"names", K::Unreserved}, {"national", K::ColName}, {"natural", K::TypeFuncName},
    {"nchar", K::ColName}, {"new", K::Unreserved}, {"next", K::Unreserved}, {"nfc", K::Unreserved},
    {"nfd", K::Unreserved}, {"nfkc", K::Unreserved}, {"nfkd", K::Unreserved},
    {"no", K::Unreserved}, {"none", K::ColName}, {"normalize", K::ColName},
    {"normalized", K::Unreserved}, {"not", K::Reserved}, {"nothing", K::Unreserved},
    {"notify", K::Unreserved}, {"notnull", K::TypeFuncName}, {"nowait", K::Unreserved},
    {"null", K::Reserved}, {"nullif", K::ColName}, {"nulls", K::Unreserved},
    {"numeric", K::ColName}, {"object", K::Unreserved}, {"of", K::Unreserved},
    {"off", K::Unreserved}, {"offset", K::Reserved}, {"oids", K::Unreserved},
    {"old", K::Unreserved}, {"on", K::Reserved}, {"only", K::Reserved},
    {"operator", K::Unreserved}, {"option", K::Unreserved}, {"options", K::Unreserved},
    {"or", K::Reserved}, {"order", K::Reserved}, {"ordinality", K::Unreserved},
    {"others", K::Unreserved}, {"out", K::ColName}, {"outer", K::TypeFuncName},
    {"over", K::Unreserved}, {"overlaps", K::TypeFuncName}, {"overlay", K::ColName},
    {"overriding", K::Unreserved}, {"owned", K::Unreserved}, {"owner", K::Unreserved},
    {"parallel", K::Unreserved}, {"parameter", K::Unreserved}, {"parser", K::Unreserved},
    {"partial", K::Unreserved}, {"partition", K::Unreserved}, {"passing", K::Unreserved},
    {"password", K::Unreserved}, {"placing", K::Reserved}, {"plans", K::Unreserved},
    {"policy", K::Unreserved}, {"position", K::ColName}, {"preceding", K::Unreserved},
    {"precision", K::ColName}, {"prepare", K::Unreserved}, {"prepared", K::Unreserved},
    {"preserve", K::Unreserved}, {"primary", K::Reserved}, {"prior", K::Unreserved},
    {"privileges", K::Unreserved}, {"procedural", K::Unreserved}, {"procedure", K::Unreserved},
    {"procedures", K::Unreserved}, {"program", K::Unreserved}, {"publication", K::Unreserved},
    {"quote", K::Unreserved}, {"range", K::Unreserved}, {"read", K::Unreserved},
    {"real", K::ColName}, {"reassign", K::Unreserved}, {"recheck", K::Unreserved},
    {"recursive", K::Unreserved}, {"ref", K::Unreserved}, {"references", K::Reserved},
    {"referencing", K::Unreserved}, {"refresh", K::Unreserved}, {"reindex", K::Unreserved},
    {"relative", K::Unreserved}, {"release", K::Unreserved}, {"rename", K::Unreserved},
    {"repeatable", K::Unreserved}, {"replace", K::Unreserved}, {"replica", K::Unreserved},
    {"reset", K::Unreserved}, {"restart", K::Unreserved}, {"restrict", K::Unreserved},
    {"return", K::Unreserved}, {"returning", K::Reserved}, {"returns", K::Unreserved},
    {"revoke", K::Unreserved}, {"right", K::TypeFuncName}, {"role", K::Unreserved},
    {"rollback", K::Unreserved}, {"rollup", K::Unreserved}, {"routine", K::Unreserved},
    {"routines", K::Unreserved}, {"row", K::ColName}, {"rows", K::Unreserved},
    {"rule", K::Unreserved}, {"savepoint", K::Unreserved}, {"schema", K::Unreserved},
    {"schemas", K::Unreserved}, {"scroll", K::Unreserved}, {"search", K::Unreserved},
    {"second", K::Unreserved}, {"security", K::Unreserved}, {"select", K::Reserved},
    {"sequence", K::Unreserved}, {"sequences", K::Unreserved}, {"serializable", K::Unreserved},
    {"server", K::Unreserved}, {"session", K::Unreserved}, {"session_user", K::Reserved},
    {"set", K::Unreserved}, {"setof", K::ColName}, {"sets", K::Unreserved},
    {"share", K::Unreserved}, {"show", K::Unreserved}, {"similar", K::TypeFuncName},
    {"simple", K::Unreserved}, {"skip", K::Unreserved}, {"smallint", K::ColName},
    {"snapshot", K::Unreserved}, {"some", K::Reserved}, {"sql", K::Unreserved},
    {"stable", K::Unreserved}, {"standalone", K::Unreserved}, {"start", K::Unreserved},
    {"statement", K::Unreserved}, {"statistics", K::Unreserved}, {"stdin", K::Unreserved},
    {"stdout", K::Unreserved}, {"storage", K::Unreserved}, {"stored", K::Unreserved},
    {"strict", K::Unreserved}, {"strip", K::Unreserved}, {"subscription", K::Unreserved},
    {"substring", K::ColName}, {"support", K::Unreserved}, {"symmetric", K::Reserved},
    {"sysid", K::Unreserved}, {"system", K::Unreserved}, {"table", K::Reserved},
    {"tables", K::Unreserved}, {"tablesample", K::TypeFuncName}, {"tablespace", K::Unreserved},
    {"temp", K::Unreserved}, {"template", K::Unreserved}, {"temporary", K::Unreserved},
    {"text", K::Unreserved}, {"then", K::Reserved}, {"ties", K::Unreserved}, {"time", K::ColName},
    {"timestamp", K::ColName}, {"to", K::Reserved}, {"trailing", K::Reserved},
    {"transaction", K::Unreserved}, {"transform", K::Unreserved}, {"treat", K::ColName},
    {"trigger", K::Unreserved}, {"trim", K::ColName}, {"true", K::Reserved},
    {"truncate", K::Unreserved}, {"trusted", K::Unreserved}, {"type", K::Unreserved},
    {"types", K::Unreserved}, {"uescape", K::Unreserved}, {"unbounded", K::Unreserved},
    {"uncommitted", K::Unreserved}, {"unencrypted", K::Unreserved}, {"union", K::Reserved},
    {"unique", K::Reserved}, {"unknown", K::Unreserved}, {"unlisten", K::Unreserved},
    {"unlogged", K::Unreserved}, {"until", K::Unreserved}, {"update", K::Unreserved},
    {"user", K::Reserved}, {"using", K::Reserved}, {"vacuum", K::Unreserved},
    {"valid", K::Unreserved}, {"validate", K::Unreserved}, {"validator", K::Unreserved},
    {"value", K::Unreserved}, {"values", K::ColName}, {"varchar", K::ColName},
    {"variadic", K::Reserved}, {"varying", K::Unreserved}, {"verbose", K::TypeFuncName},
    {"version", K::Unreserved}, {"view", K::Unreserved}, {"views", K::Unreserved},
    {"volatile", K::Unreserved}, {"when", K::Reserved}, {"where", K::Reserved},
    {"whitespace", K::Unreserved}, {"window", K::Reserved}, {"with", K::Reserved},
    {"within", K::Unreserved}, {"without", K::Unreserved}, {"work", K::Unreserved},
    {"wrapper", K::Unreserved}, {"write", K::Unreserved}, {"xml", K::Unreserved},
    {"xmlattributes", K::ColName}, {"xmlconcat", K::ColName}, {"xmlelement", K::ColName},
    {"xmlexists", K::ColName}, {"xmlforest", K::ColName}, {"xmlnamespaces", K::ColName},
    {"xmlparse", K::ColName}, {"xmlpi", K::ColName}, {"xmlroot", K::ColName},
    {"xmlserialize", K::ColName}, {"xmltable", K::ColName}, {"year", K::Unreserved},
    {"yes", K::Unreserved}, {"zone", K::Unreserved},
};

constexpr std::size_t kMaxKeywordLength = 17;  // "current_timestamp", "xmlserialize" ...

constexpr bool is_sorted_table() {
  for (std::size_t i = 1; i < std::size(kKeywords); ++i) {
    if (!(kKeywords[i - 1].word < kKeywords[i].word)) return false;
  }
  return true;
}
static_assert(is_sorted_table(), "kKeywords must be sorted for binary search");

constexpr std::size_t longest_keyword() {
  std::size_t n = 0;
  for (const auto& k : kKeywords) n = std::max(n, k.word.size());
  return n;
}
static_assert(longest_keyword() == kMaxKeywordLength, "update kMaxKeywordLength");

}  // namespace

std::span<const Keyword> all_keywords() { return kKeywords; }

KeywordCategory keyword_category(std::string_view word) {
  if (word.empty() || word.size() > kMaxKeywordLength) return KeywordCategory::None;
  std::array<char, kMaxKeywordLength> buf{};
  for (std::size_t i = 0; i < word.size(); ++i) {
    char c = word[i];
    buf[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  const std::string_view lower(buf.data(), word.size());
  const auto* end = std::end(kKeywords);
  const auto* it = std::lower_bound(std::begin(kKeywords), end, lower,
                                    [](const Keyword& k, std::string_view w) { return k.word < w; });
  if (it == end || it->word != lower) return KeywordCategory::None;
  return it->category;
}

std::string quote_identifier(std::string_view ident) {
  // Same rule as PostgreSQL's ruleutils.c: only [a-z_][a-z0-9_]* that is not a keyword
  // (unreserved keywords excepted) may stay bare; everything else is quoted.
  bool safe = !ident.empty() && ((ident[0] >= 'a' && ident[0] <= 'z') || ident[0] == '_');
  std::size_t quotes = 0;
  for (char c : ident) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') continue;
    safe = false;
    if (c == '"') ++quotes;
  }
  if (safe) {
    const KeywordCategory cat = keyword_category(ident);
    safe = cat == KeywordCategory::None || cat == KeywordCategory::Unreserved;
  }
  if (safe) return std::string(ident);
  std::string out;
  out.reserve(ident.size() + quotes + 2);
  out.push_back('"');
  for (char c : ident) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace shardline::router
