#include "proxy/exec/result_merger.hpp"

#include <cstdint>
#include <map>

#include "proxy/protocol/message_writer.hpp"

namespace shardline::proxy::exec {

namespace {

bool is_row(char tag) { return tag == 'D' || tag == 'd'; }
bool is_terminator(char tag) { return tag == 'C' || tag == 'I' || tag == 'E' || tag == 's'; }

std::string tag_of(const std::string& msg) {  // CommandComplete body without the NUL
  std::string t = msg.substr(5);
  if (!t.empty() && t.back() == '\0') t.pop_back();
  return t;
}

struct Segment {
  std::vector<const std::string*> prefix, rows, suffix;
  const std::string* terminator = nullptr;
};

std::vector<Segment> segments(const std::vector<std::string>& msgs) {
  std::vector<Segment> out;
  Segment cur;
  for (const auto& m : msgs) {
    if (m.empty()) continue;
    char tag = m[0];
    if (is_terminator(tag)) {
      cur.terminator = &m;
      out.push_back(std::move(cur));
      cur = Segment{};
    } else if (is_row(tag)) {
      for (auto* s : cur.suffix) cur.prefix.push_back(s);  // rows after a notice: keep order
      cur.suffix.clear();
      cur.rows.push_back(&m);
    } else if (cur.rows.empty()) {
      cur.prefix.push_back(&m);
    } else {
      cur.suffix.push_back(&m);
    }
  }
  if (!cur.prefix.empty() || !cur.rows.empty()) out.push_back(std::move(cur));
  return out;
}

}  // namespace

int ShardReply::error_index() const {
  for (std::size_t i = 0; i < messages.size(); ++i)
    if (!messages[i].empty() && messages[i][0] == 'E') return int(i);
  return -1;
}

std::string sum_command_tags(const std::vector<std::string>& tags) {
  if (tags.empty()) return {};
  const std::string& first = tags.front();
  auto sp = first.rfind(' ');
  if (sp == std::string::npos) return first;
  std::string head = first.substr(0, sp + 1);
  std::uint64_t total = 0;
  for (const auto& t : tags) {
    auto p = t.rfind(' ');
    if (p == std::string::npos || t.substr(0, p + 1) != head) return first;
    try {
      total += std::stoull(t.substr(p + 1));
    } catch (...) {
      return first;
    }
  }
  return head + std::to_string(total);
}

std::vector<std::string> merge_replies(const std::vector<ShardReply>& replies, MergeMode mode,
                                       const std::vector<std::vector<int>>& row_origin) {
  std::vector<std::string> out;
  if (replies.empty()) return out;
  std::vector<std::vector<Segment>> segs;
  for (const auto& r : replies) segs.push_back(segments(r.messages));
  const auto& first = segs.front();
  for (std::size_t k = 0; k < first.size(); ++k) {
    const Segment& s0 = first[k];
    for (auto* m : s0.prefix) out.push_back(*m);
    if (mode == MergeMode::SameRows) {
      for (auto* m : s0.rows) out.push_back(*m);
    } else if (mode == MergeMode::Reorder) {
      std::map<int, const std::string*> ordered;
      std::vector<const std::string*> unplaced;
      for (std::size_t sh = 0; sh < segs.size(); ++sh) {
        if (k >= segs[sh].size()) continue;
        const auto& rows = segs[sh][k].rows;
        for (std::size_t i = 0; i < rows.size(); ++i) {
          if (sh < row_origin.size() && i < row_origin[sh].size()) ordered[row_origin[sh][i]] = rows[i];
          else unplaced.push_back(rows[i]);
        }
      }
      for (auto& [idx, m] : ordered) out.push_back(*m);
      for (auto* m : unplaced) out.push_back(*m);
    } else {
      for (std::size_t sh = 0; sh < segs.size(); ++sh)
        if (k < segs[sh].size())
          for (auto* m : segs[sh][k].rows) out.push_back(*m);
    }
    for (auto* m : s0.suffix) out.push_back(*m);
    if (s0.terminator) {
      if ((*s0.terminator)[0] == 'C' && mode != MergeMode::SameRows) {
        std::vector<std::string> tags;
        for (const auto& sg : segs)
          if (k < sg.size() && sg[k].terminator && (*sg[k].terminator)[0] == 'C') tags.push_back(tag_of(*sg[k].terminator));
        std::string msg;
        protocol::MessageWriter(msg).command_complete(sum_command_tags(tags));
        out.push_back(std::move(msg));
      } else {
        out.push_back(*s0.terminator);
      }
    }
  }
  return out;
}

}  // namespace shardline::proxy::exec
