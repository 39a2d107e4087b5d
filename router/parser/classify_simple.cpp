// classify_simple(): the libpg_query-free path for transaction control and session commands.
// It accepts a deliberately small language (words, numbers, '=', ',', '.', signs, one trailing
// ';') and answers nullopt at the first thing outside it, so that it never has to reproduce
// the hard parts of PostgreSQL's scanner (quotes, comments, escapes, operators).

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/parser/keywords.hpp"
#include "router/parser/set_value.hpp"
#include "router/parser/statement.hpp"

namespace shardline::router {
namespace {

/// Identifiers longer than this are truncated by PostgreSQL (NAMEDATALEN - 1); we let
/// analyze() deal with those.
constexpr std::size_t kMaxIdentifierLength = 63;
constexpr std::size_t kMaxTokens = 32;

struct Token {
  enum class Type { Word, Number, Punct } type;
  std::string_view text;
};

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/// Splits `sql` into tokens; false for any character or shape outside the small language.
/// `end` receives the end of the last token before an optional trailing ';'.
bool tokenize(std::string_view sql, std::vector<Token>& out, std::size_t& begin,
              std::size_t& end) {
  const std::size_t n = sql.size();
  std::size_t i = 0;
  bool seen_semicolon = false;
  begin = n;
  end = 0;
  while (i < n) {
    const char c = sql[i];
    if (is_blank(c)) {
      ++i;
      continue;
    }
    if (seen_semicolon) return false;  // a second statement (or junk) after ';'
    if (out.size() == kMaxTokens) return false;
    const std::size_t start = i;
    if (is_letter(c)) {
      while (i < n && (is_letter(sql[i]) || is_digit(sql[i]))) ++i;
      if (i - start > kMaxIdentifierLength) return false;
      out.push_back({Token::Type::Word, sql.substr(start, i - start)});
    } else if (is_digit(c)) {
      while (i < n && is_digit(sql[i])) ++i;
      if (i < n && sql[i] == '.') {
        ++i;
        while (i < n && is_digit(sql[i])) ++i;
      }
      // "1e5", "1abc", "1.2.3": leave such spellings to the real scanner.
      if (i < n && (is_letter(sql[i]) || is_digit(sql[i]) || sql[i] == '.' || sql[i] == '$')) {
        return false;
      }
      out.push_back({Token::Type::Number, sql.substr(start, i - start)});
    } else if (c == ';') {
      seen_semicolon = true;
      ++i;
      continue;
    } else if (c == '=' || c == ',' || c == '.' || c == '+' || c == '-') {
      if (c == '-' && i + 1 < n && sql[i + 1] == '-') return false;  // comment
      // "=-" style runs are fine (PostgreSQL splits them the same way); any other operator
      // character is rejected below as an unknown character.
      ++i;
      out.push_back({Token::Type::Punct, sql.substr(start, 1)});
    } else {
      return false;
    }
    begin = std::min(begin, start);
    end = i;
  }
  return !out.empty();
}

bool word_is(std::string_view word, std::string_view lower) {
  if (word.size() != lower.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    char c = word[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

/// Recursive-descent reader over the tokens of one statement.
class Reader {
 public:
  explicit Reader(const std::vector<Token>& tokens) : tokens_(tokens) {}

  bool at_end() const { return pos_ == tokens_.size(); }

  /// Consumes the keyword `lower` if it is next.
  bool accept(std::string_view lower) {
    if (pos_ < tokens_.size() && tokens_[pos_].type == Token::Type::Word &&
        word_is(tokens_[pos_].text, lower)) {
      ++pos_;
      return true;
    }
    return false;
  }

  bool accept_punct(char c) {
    if (pos_ < tokens_.size() && tokens_[pos_].type == Token::Type::Punct &&
        tokens_[pos_].text[0] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  /// A plain identifier that is no keyword at all (a safe subset of ColId), lower-cased.
  std::optional<std::string> identifier() {
    if (pos_ >= tokens_.size() || tokens_[pos_].type != Token::Type::Word) return std::nullopt;
    if (keyword_category(tokens_[pos_].text) != KeywordCategory::None) return std::nullopt;
    return lower_ascii(tokens_[pos_++].text);
  }

  /// var_name: identifier ('.' identifier)*
  std::optional<std::string> dotted_name() {
    auto name = identifier();
    if (!name) return std::nullopt;
    while (accept_punct('.')) {
      auto part = identifier();
      if (!part) return std::nullopt;
      *name += '.';
      *name += *part;
    }
    return name;
  }

  const Token* peek() const { return pos_ < tokens_.size() ? &tokens_[pos_] : nullptr; }
  void advance() { ++pos_; }

 private:
  const std::vector<Token>& tokens_;
  std::size_t pos_ = 0;
};

/// [WORK | TRANSACTION]
void opt_transaction(Reader& r) {
  if (!r.accept("work")) r.accept("transaction");
}

/// [AND [NO] CHAIN]
bool opt_chain(Reader& r) {
  if (!r.accept("and")) return true;
  r.accept("no");
  return r.accept("chain");
}

/// transaction_mode_list_or_empty; sets read_only from the last access mode.
bool transaction_modes(Reader& r, bool& read_only) {
  bool first = true;
  while (!r.at_end()) {
    if (!first) r.accept_punct(',');
    first = false;
    if (r.accept("isolation")) {
      if (!r.accept("level")) return false;
      if (r.accept("serializable")) continue;
      if (r.accept("repeatable")) {
        if (!r.accept("read")) return false;
        continue;
      }
      if (!r.accept("read")) return false;
      if (!r.accept("committed") && !r.accept("uncommitted")) return false;
    } else if (r.accept("read")) {
      if (r.accept("only")) {
        read_only = true;
      } else if (r.accept("write")) {
        read_only = false;
      } else {
        return false;
      }
    } else if (r.accept("deferrable")) {
    } else if (r.accept("not")) {
      if (!r.accept("deferrable")) return false;
    } else {
      return false;
    }
  }
  return true;
}

/// Parses an unsigned integer literal the way PostgreSQL's scanner does: int32 if it fits.
std::optional<std::int32_t> int32_literal(std::string_view digits) {
  std::int64_t v = 0;
  for (char c : digits) {
    v = v * 10 + (c - '0');
    if (v > INT32_MAX) return std::nullopt;
  }
  return static_cast<std::int32_t>(v);
}

/// var_list of SET: words and numbers, as flatten_set_variable_args renders them.
bool set_values(Reader& r, std::string_view name, std::string& value) {
  SetValue out(name);
  do {
    const Token* t = r.peek();
    if (t == nullptr) return false;
    char sign = 0;
    if (t->type == Token::Type::Punct && (t->text[0] == '-' || t->text[0] == '+')) {
      sign = t->text[0];
      r.advance();
      t = r.peek();
      if (t == nullptr || t->type != Token::Type::Number) return false;
    }
    if (t->type == Token::Type::Number) {
      const bool is_integer = t->text.find('.') == std::string_view::npos;
      const auto iv = is_integer ? int32_literal(t->text) : std::nullopt;
      if (iv) {
        out.add_integer(sign == '-' ? -*iv : *iv);
      } else if (sign == '-') {
        out.add_float(std::string("-").append(t->text));
      } else {
        out.add_float(t->text);
      }
    } else if (t->type == Token::Type::Word) {
      const KeywordCategory cat = keyword_category(t->text);
      const bool boolean_word =
          word_is(t->text, "true") || word_is(t->text, "false") || word_is(t->text, "on");
      if (cat == KeywordCategory::Reserved && !boolean_word) return false;
      out.add_string(lower_ascii(t->text));
    } else {
      return false;
    }
    r.advance();
  } while (r.accept_punct(','));
  if (!r.at_end()) return false;
  value = std::move(out).str();
  return true;
}

bool classify_set(Reader& r, Statement& st) {
  auto name = r.dotted_name();
  if (!name) return false;
  if (!r.accept("to") && !r.accept_punct('=')) return false;
  SetCommand set;
  set.name = std::move(*name);
  set.text = std::string(st.text);
  if (r.accept("default")) {
    if (!r.at_end()) return false;
    set.kind = SetCommand::Kind::Default;
  } else {
    set.kind = SetCommand::Kind::Value;
    if (!set_values(r, set.name, set.value)) return false;
  }
  st.kind = StatementKind::Set;
  st.set = std::move(set);
  return true;
}

bool classify_reset(Reader& r, Statement& st) {
  SetCommand set;
  set.text = std::string(st.text);
  if (r.accept("all")) {
    set.kind = SetCommand::Kind::ResetAll;
  } else {
    auto name = r.dotted_name();
    if (!name) return false;
    set.kind = SetCommand::Kind::Reset;
    set.name = std::move(*name);
  }
  st.kind = StatementKind::Set;
  st.set = std::move(set);
  return r.at_end();
}

bool classify_tokens(Reader& r, Statement& st) {
  if (r.accept("begin")) {
    opt_transaction(r);
    st.kind = StatementKind::Transaction;
    st.tx = TxCommand::Begin;
    return transaction_modes(r, st.read_only_tx);
  }
  if (r.accept("start")) {
    if (!r.accept("transaction")) return false;
    st.kind = StatementKind::Transaction;
    st.tx = TxCommand::Start;
    return transaction_modes(r, st.read_only_tx);
  }
  if (r.accept("commit") || r.accept("end")) {
    opt_transaction(r);
    st.kind = StatementKind::Transaction;
    st.tx = TxCommand::Commit;
    return opt_chain(r) && r.at_end();
  }
  if (r.accept("abort")) {
    opt_transaction(r);
    st.kind = StatementKind::Transaction;
    st.tx = TxCommand::Rollback;
    return opt_chain(r) && r.at_end();
  }
  if (r.accept("rollback")) {
    opt_transaction(r);
    st.kind = StatementKind::Transaction;
    if (r.accept("to")) {
      r.accept("savepoint");
      st.tx = TxCommand::RollbackTo;
      return r.identifier().has_value() && r.at_end();
    }
    st.tx = TxCommand::Rollback;
    return opt_chain(r) && r.at_end();
  }
  if (r.accept("savepoint")) {
    st.kind = StatementKind::Transaction;
    st.tx = TxCommand::Savepoint;
    return r.identifier().has_value() && r.at_end();
  }
  if (r.accept("release")) {
    r.accept("savepoint");
    st.kind = StatementKind::Transaction;
    st.tx = TxCommand::Release;
    return r.identifier().has_value() && r.at_end();
  }
  if (r.accept("show")) {
    st.kind = StatementKind::Show;
    if (r.accept("all")) {
      st.show_name = "all";
    } else {
      st.show_name = r.dotted_name();
      if (!st.show_name) return false;
    }
    return r.at_end();
  }
  if (r.accept("set")) return classify_set(r, st);
  if (r.accept("reset")) return classify_reset(r, st);
  if (r.accept("discard")) {
    st.kind = StatementKind::Discard;
    bool target = true;
    if (r.accept("all")) st.discard = DiscardTarget::All;
    else if (r.accept("plans")) st.discard = DiscardTarget::Plans;
    else if (r.accept("sequences")) st.discard = DiscardTarget::Sequences;
    else if (r.accept("temp") || r.accept("temporary")) st.discard = DiscardTarget::Temp;
    else target = false;
    return target && r.at_end();
  }
  return false;
}

}  // namespace

std::optional<Statement> classify_simple(std::string_view sql) {
  thread_local std::vector<Token> tokens;
  tokens.clear();
  std::size_t begin = 0;
  std::size_t end = 0;
  if (!tokenize(sql, tokens, begin, end)) return std::nullopt;
  Statement st;
  st.text = sql.substr(begin, end - begin);
  Reader reader(tokens);
  if (!classify_tokens(reader, st)) return std::nullopt;
  return st;
}

}  // namespace shardline::router
