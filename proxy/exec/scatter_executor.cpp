#include "proxy/exec/scatter_executor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "proxy/backend/async_event.hpp"
#include "proxy/exec/cancel_request.hpp"
#include "proxy/exec/result_merger.hpp"
#include "proxy/protocol/frame_reader.hpp"
#include "proxy/protocol/message_writer.hpp"

namespace shardline::proxy::exec {

namespace asio = boost::asio;
using protocol::SqlError;
namespace sqlstate = protocol::sqlstate;

namespace {

/// How long the shards of a failed statement get to reach ReadyForQuery after the cancel.
constexpr auto kDrainTimeout = std::chrono::seconds(5);
/// Messages merged per turn before the batch size is checked again.
constexpr int kTurn = 256;
constexpr std::size_t kReadChunk = 16 * 1024;

/// The client's end of the pipeline: merged rows appended to the output batch.
class BatchSink final : public ops::RowSink {
 public:
  void describe(std::string_view row_description) override {
    if (send_description) out.append(row_description);
  }
  void row(std::string_view data_row) override {
    out.append(data_row);
    ++rows;
  }
  std::string out;
  bool send_description = true;
  std::uint64_t rows = 0;  ///< in the current result set
};

struct ShardState {
  ScatterTarget* target = nullptr;
  protocol::ByteBuffer* in = nullptr;
  std::size_t scanned = 0;  ///< bytes of complete messages at the head the reader has examined
  int z_needed = 1;         ///< ReadyForQuery messages that end this shard's reply
  int z_seen = 0;           ///< ... counted by the reader
  int z_taken = 0;          ///< ... consumed by the merge
  bool lost = false;        ///< the connection broke (or sent garbage)
  bool reading = false;     ///< its reader coroutine runs
  bool parked = false;      ///< the reader waits for room in the buffer
  bool at_step = false;     ///< its next message is one every shard must reach first
  bool done = false;        ///< shard_done() was given for the current result set
  bool finished() const { return z_taken >= z_needed; }
};

class Scatter {
 public:
  Scatter(asio::any_io_executor ex, ScatterRequest& req, ClientWrite write)
      : ex_(ex), req_(req), write_(std::move(write)), progress_(std::make_shared<backend::AsyncEvent>(ex)), room_(ex) {
    concat_.operators.push_back(router::MergeOperator{});  // Kind::Concat
    shards_.resize(req.targets.size());
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      auto& s = shards_[i];
      s.target = &req.targets[i];
      s.in = &req.targets[i].server->input();
      s.z_needed = req.targets[i].skip + 1;
    }
  }

  asio::awaitable<ScatterOutcome> run() {
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      auto& s = shards_[i];
      boost::system::error_code ec;
      co_await s.target->server->stream().write_all(s.target->request, ec);
      if (ec) {
        s.lost = true;
        fail_shard(int(i), lost_connection(int(i)));
        continue;
      }
      scan(s);  // bytes left in the connection's buffer, if any
      s.reading = true;
      ++readers_;
      asio::co_spawn(ex_, read_shard(int(i)), asio::detached);
    }
    while (!failed_ && !finished_ && !client_gone_) {
      const bool progressed = advance();
      if (failed_ || finished_) break;
      if (sink_.out.size() >= req_.batch_bytes || (!progressed && !sink_.out.empty())) {
        co_await flush();
      } else if (!progressed) {
        co_await progress_->wait();
      }
    }
    if (failed_ || client_gone_) {
      co_await abort();
    } else {
      co_await flush();
    }
    co_await stop_readers();
    ScatterOutcome out;
    out.client_gone = client_gone_;
    out.failed = failed_;
    out.rows = rows_total_;
    for (const auto& s : shards_) out.broken.push_back(s.lost || !s.finished());
    co_return out;
  }

 private:
  // ---- readers ---------------------------------------------------------------------------
  asio::awaitable<void> read_shard(int i) {
    auto& s = shards_[std::size_t(i)];
    std::array<char, kReadChunk> chunk;
    while (!stop_ && !s.lost && s.z_seen < s.z_needed) {
      if (s.in->size() >= req_.shard_buffer && s.scanned > 0) {  // the merge is behind: wait
        s.parked = true;
        co_await room_.wait();
        s.parked = false;
        continue;
      }
      boost::system::error_code ec;
      const std::size_t n = co_await s.target->server->stream().read_some(chunk, ec);
      if (ec) {
        s.lost = true;
        break;
      }
      auto dst = s.in->prepare(n);
      std::copy_n(chunk.data(), n, dst.data());
      s.in->commit(n);
      scan(s);
      progress_->notify();
    }
    s.reading = false;
    --readers_;
    progress_->notify();
  }

  /// Walks the complete messages the reader has not examined yet, counting ReadyForQuery.
  static void scan(ShardState& s) {
    auto buf = s.in->readable();
    while (s.z_seen < s.z_needed && s.scanned + 5 <= buf.size()) {
      const std::uint32_t len = protocol::read_u32(buf.data() + s.scanned + 1);
      if (len < 4 || len > protocol::kMaxMessageSize) {
        s.lost = true;
        return;
      }
      if (s.scanned + 1 + len > buf.size()) return;
      if (buf[s.scanned] == 'Z') ++s.z_seen;
      s.scanned += 1 + len;
    }
  }

  /// The complete message at the head of shard `s`'s buffer, or empty.
  static std::string_view head(const ShardState& s) {
    if (s.scanned == 0) return {};
    auto buf = s.in->readable();
    return {buf.data(), 1 + std::size_t(protocol::read_u32(buf.data() + 1))};
  }
  void consume(ShardState& s, std::size_t n) {
    s.in->consume(n);
    s.scanned -= n;
    if (s.parked && s.in->size() < req_.shard_buffer) room_.notify();
  }

  // ---- merging ---------------------------------------------------------------------------
  /// Takes what the buffers hold; false when nothing could be taken without more input.
  bool advance() {
    bool progressed = false;
    int want = pipeline_ ? pipeline_->leaf->waiting_for() : -1;
    if (want >= 0 && shards_[std::size_t(want)].at_step) want = -1;
    if (want >= 0) {
      progressed = take(want);
    } else {
      for (std::size_t i = 0; i < shards_.size() && !failed_; ++i) progressed = take(int(i)) || progressed;
    }
    if (failed_) return true;
    if (std::all_of(shards_.begin(), shards_.end(), [](const ShardState& s) { return s.at_step; })) {
      step();
      progressed = true;
    }
    return progressed;
  }

  /// Takes the messages of shard `i` up to its next step; false when it had none.
  bool take(int i) {
    auto& s = shards_[std::size_t(i)];
    bool took = false;
    for (int n = 0; n < kTurn && !s.at_step && !failed_ && sink_.out.size() < req_.batch_bytes; ++n) {
      const std::string_view m = head(s);
      if (m.empty()) {
        if (s.lost || (!s.reading && s.z_seen < s.z_needed)) fail_shard(i, lost_connection(i));
        break;
      }
      took = true;
      const char tag = m[0];
      if (s.z_taken < s.target->skip) {  // replies to the proxy's own SET
        if (tag == 'E') {
          fail_shard(i, shard_error(m));
          break;
        }
        if (tag == 'Z') ++s.z_taken;
        consume(s, m.size());
        continue;
      }
      switch (tag) {
        case 'D':
          if (!pipeline_) {
            fail_shard(i, SqlError::error(sqlstate::kProtocolViolation, "a shard sent rows without a RowDescription"));
            return true;
          }
          pipeline_->leaf->row(i, m);
          consume(s, m.size());
          if (pipeline_->error()) fail(*pipeline_->error());
          break;
        case 'N': sink_.out.append(m); [[fallthrough]];
        case 'S': case 'A': consume(s, m.size()); break;  // our SETs' ParameterStatus: known already
        case 'E': fail_shard(i, shard_error(m)); return true;
        case 'C':
          s.at_step = true;
          if (pipeline_ && !s.done) {
            s.done = true;
            pipeline_->leaf->shard_done(i);
            if (pipeline_->error()) fail(*pipeline_->error());
          }
          break;
        default: s.at_step = true; break;
      }
      if (pipeline_ && !s.at_step) {
        const int want = pipeline_->leaf->waiting_for();
        if (want >= 0 && want != i) break;
      }
    }
    return took;
  }

  /// Every shard is at the same step: one copy (or the merged form) goes to the client.
  void step() {
    const std::string_view first = head(shards_[0]);
    for (std::size_t i = 1; i < shards_.size(); ++i)
      if (head(shards_[i])[0] != first[0])
        return fail_shard(int(i), SqlError::error(sqlstate::kInternalError,
                                                  fmt::format("shards {} and {} answered the same request differently "
                                                              "('{}' and '{}')",
                                                              name(0), name(int(i)), first[0], head(shards_[i])[0])));
    switch (first[0]) {
      case 'T': on_row_description(); break;
      case 'n':
        if (next_describe().role != DescribeRole::ForExecute) sink_.out.append(first);
        break;
      case 'C': on_command_complete(); break;
      case '1':
        if (req_.keep_parse.empty() || (parse_seen_ < req_.keep_parse.size() && req_.keep_parse[parse_seen_]))
          sink_.out.append(first);
        ++parse_seen_;
        break;
      case 'Z':
        sink_.out.append(first);
        finished_ = true;
        break;
      default: sink_.out.append(first); break;
    }
    if (failed_) return;
    for (auto& s : shards_) {
      const std::string_view m = head(s);
      if (m[0] == 'Z') ++s.z_taken;
      consume(s, m.size());
      s.at_step = false;
    }
  }

  ScatterDescribe next_describe() {
    if (describe_seen_ < req_.describes.size()) return req_.describes[describe_seen_++];
    return {};
  }

  void on_row_description() {
    const ScatterDescribe d = next_describe();
    if (d.role != DescribeRole::ResultHeader && d.role != DescribeRole::ForExecute) {  // the client asked
      if (!d.merge) {
        sink_.out.append(head(shards_[0]));
      } else {
        SqlError err;
        auto rd = ops::final_row_description(*d.merge, head(shards_[0]), req_.context, err);
        if (!rd) return fail(err);
        sink_.out.append(*rd);
      }
      if (d.role != DescribeRole::ClientPortalForExecute) return;
    }
    // The header of a result set: its rows follow through a fresh pipeline.
    const ScatterResult* r = result_seen_ < req_.results.size() ? &req_.results[result_seen_] : nullptr;
    const router::MergePlan& plan = r && r->merge ? *r->merge : concat_;
    ops::ParamValues params;
    if (r) {
      for (const auto& v : r->param_values)
        params.values.push_back(v ? std::optional<std::string_view>(*v) : std::nullopt);
      params.formats = r->param_formats;
      params.types = r->param_types;
    }
    SqlError err;
    pipeline_.reset();
    pipeline_ = ops::build_pipeline(plan, int(shards_.size()), params, req_.context, sink_, err);
    if (!pipeline_) return fail(err);
    sink_.send_description = d.role == DescribeRole::ResultHeader;
    sink_.rows = 0;
    for (std::size_t i = 0; i < shards_.size() && !failed_; ++i) {
      shards_[i].done = false;
      pipeline_->leaf->describe(int(i), head(shards_[i]));
      if (pipeline_->error()) fail(*pipeline_->error());
    }
  }

  void on_command_complete() {
    ++result_seen_;
    if (!pipeline_) {  // no rows described (a statement without a result)
      std::vector<std::string> tags;
      for (const auto& s : shards_) {
        const std::string_view m = head(s);
        tags.emplace_back(m.substr(5, m.size() - 6));
      }
      protocol::MessageWriter(sink_.out).command_complete(sum_command_tags(tags));
      return;
    }
    pipeline_->finish();
    if (pipeline_->error()) return fail(*pipeline_->error());
    pipeline_.reset();
    rows_total_ += sink_.rows;
    const std::string_view m = head(shards_[0]);
    const std::string_view tag = m.substr(5, m.size() - 6);
    if (tag.starts_with("SELECT")) protocol::MessageWriter(sink_.out).command_complete(fmt::format("SELECT {}", sink_.rows));
    else sink_.out.append(m);
  }

  // ---- output and failure ------------------------------------------------------------------
  asio::awaitable<void> flush() {
    if (!sink_.out.empty() && !client_gone_) {
      const bool written = co_await write_(sink_.out);
      client_gone_ = !written;
    }
    sink_.out.clear();
  }

  std::string name(int i) const { return shards_[std::size_t(i)].target->name; }
  SqlError lost_connection(int i) const {
    return SqlError::error(sqlstate::kConnectionFailure, fmt::format("lost the connection to shard {}", name(i)));
  }
  static SqlError shard_error(std::string_view m) {
    SqlError e = protocol::parse_error_fields(m.substr(5));
    e.severity = "ERROR";
    return e;
  }
  void fail_shard(int i, SqlError e) {
    if (failed_) return;
    failed_shard_ = i;
    const std::string where = fmt::format("failed on shard(s) {}", name(i));
    e.detail = e.detail.empty() ? where : e.detail + "; " + where;
    fail(std::move(e));
  }
  void fail(SqlError e) {
    if (failed_) return;
    failed_ = true;
    error_ = std::move(e);
  }

  /// The statement failed (or the client left): the client gets the error, the shards still
  /// running get a CancelRequest and are read to their ReadyForQuery.
  asio::awaitable<void> abort() {
    if (failed_ && !client_gone_) {
      protocol::MessageWriter w(sink_.out);
      w.error(error_);
      w.ready_for_query(req_.failed_status);
      co_await flush();
    }
    sink_.out.clear();
    pipeline_.reset();
    // One flag per cancel sent, set when the server has taken it.
    std::vector<std::shared_ptr<bool>> cancelled(shards_.size());
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      auto& s = shards_[i];
      if (s.lost || s.z_seen >= s.z_needed || i == std::size_t(failed_shard_)) continue;
      auto* server = s.target->server;
      cancelled[i] = std::make_shared<bool>(false);
      asio::co_spawn(ex_,
                     [](config::Endpoint ep, std::int32_t pid, std::int32_t secret, std::shared_ptr<bool> taken,
                        std::shared_ptr<backend::AsyncEvent> ev) -> asio::awaitable<void> {
                       co_await send_cancel_request(std::move(ep), pid, secret);
                       *taken = true;
                       ev->notify();
                     }(server->endpoint(), server->backend_pid(), server->backend_secret(), cancelled[i], progress_),
                     asio::detached);
    }
    const auto deadline = std::chrono::steady_clock::now() + kDrainTimeout;
    for (;;) {
      bool all = true;
      for (std::size_t i = 0; i < shards_.size(); ++i)
        all = drain(shards_[i]) && (!cancelled[i] || *cancelled[i]) && all;
      if (all) break;
      if (!co_await progress_->wait_until(deadline)) break;
    }
    // A cancel still on its way could hit the connection's next query: do not reuse it.
    for (std::size_t i = 0; i < shards_.size(); ++i)
      if (cancelled[i] && !*cancelled[i]) shards_[i].lost = true;
  }

  /// Drops what shard `s` sent up to its last ReadyForQuery; true once there.
  bool drain(ShardState& s) {
    while (!s.finished()) {
      const std::string_view m = head(s);
      if (m.empty()) return s.lost || !s.reading;
      if (m[0] == 'Z') ++s.z_taken;
      consume(s, m.size());
    }
    return true;
  }

  asio::awaitable<void> stop_readers() {
    stop_ = true;
    room_.notify();
    for (auto& s : shards_) {
      if (!s.reading) continue;
      s.lost = true;  // its reply is not over: the connection cannot be reused
      boost::system::error_code ec;
      s.target->server->stream().socket().cancel(ec);
    }
    while (readers_ > 0) co_await progress_->wait();
  }

  asio::any_io_executor ex_;
  ScatterRequest& req_;
  ClientWrite write_;
  std::shared_ptr<backend::AsyncEvent> progress_;  ///< a reader read something or ended
  backend::AsyncEvent room_;                       ///< the merge made room in a shard's buffer
  std::vector<ShardState> shards_;
  router::MergePlan concat_;
  BatchSink sink_;
  std::optional<ops::Pipeline> pipeline_;
  std::size_t parse_seen_ = 0, describe_seen_ = 0, result_seen_ = 0;
  std::uint64_t rows_total_ = 0;
  int readers_ = 0;
  int failed_shard_ = -1;  ///< the shard whose error failed the statement (it needs no cancel)
  bool stop_ = false, failed_ = false, finished_ = false, client_gone_ = false;
  SqlError error_;
};

}  // namespace

asio::awaitable<ScatterOutcome> run_scatter(asio::any_io_executor ex, ScatterRequest& req, ClientWrite write) {
  Scatter scatter(ex, req, std::move(write));
  co_return co_await scatter.run();
}

int shard_column_count(const router::MergePlan& plan) {
  int n = plan.client_columns;
  auto see = [&n](int column) { n = std::max(n, column + 1); };
  for (const auto& op : plan.operators) {
    for (const auto& k : op.keys) see(k.column);
    for (const auto& a : op.aggregates) {
      see(a.input);
      if (a.count_input >= 0) see(a.count_input);
    }
    // Past FinalAggregate the columns are its output's, not the shards'.
    if (op.kind == router::MergeOperator::Kind::FinalAggregate) break;
  }
  return n;
}

}  // namespace shardline::proxy::exec
