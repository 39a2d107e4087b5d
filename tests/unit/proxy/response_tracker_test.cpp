// The reply bookkeeping of the session: which server replies reach the client, which are
// swallowed, and where proxy-made replies go, checked message by message.

#include "proxy/session/response_tracker.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include <string>
#include <vector>

#include "proxy/protocol/frame_reader.hpp"
#include "proxy/protocol/message_writer.hpp"

namespace shardline::proxy::session {
namespace {

struct Hooks : TrackerHooks {
  std::vector<std::string> events;
  void parse_not_applied(const Pending& p) override { events.push_back("parse_not_applied " + std::to_string(p.statement_id)); }
  void simple_query_succeeded(const Pending&, char s) override { events.push_back(std::string("query_ok ") + s); }
  void state_sync_done(bool ok) override { events.push_back(ok ? "sync_ok" : "sync_failed"); }
  void command_complete(std::string_view tag) override { events.push_back("tag " + std::string(tag)); }
  void ready_for_query(char s) override { events.push_back(std::string("ready ") + s); }
  void execute_succeeded(const Pending&) override { events.push_back("execute_ok"); }
  void error_seen(std::string_view sqlstate) override { events.push_back("error " + std::string(sqlstate)); }
  void stale_statement_seen() override { events.push_back("stale"); }
  std::string lsn_learned(const Pending&, std::string_view lsn) override {
    events.push_back("lsn " + std::string(lsn));
    return {};
  }
};

std::string msg(char tag, std::string body = {}) {
  std::string out;
  protocol::MessageWriter(out).begin(tag).raw(body).end();
  return out;
}
std::string ready(char s) { return msg('Z', std::string(1, s)); }
std::string complete(const std::string& tag) { return msg('C', tag + std::string(1, '\0')); }
std::string error() {
  std::string out;
  protocol::MessageWriter(out).error(protocol::SqlError::error("22012", "division by zero"));
  return out;
}

/// Feeds server messages; returns the tags the client receives, in order.
std::string run(ResponseTracker& t, Hooks& h, const std::vector<std::string>& server) {
  std::string tags;
  for (const auto& m : server) {
    OutBatch out;
    t.on_server_message(m[0], m, std::string_view(m).substr(5), out, h);
    for (const auto& b : out.buffers()) {
      std::string_view bytes(static_cast<const char*>(b.data()), b.size());
      std::size_t i = 0;
      while (i + 5 <= bytes.size()) {
        tags.push_back(bytes[i]);
        std::uint32_t len = protocol::read_u32(bytes.data() + i + 1);
        i += len + 1;
      }
    }
  }
  return tags;
}

TEST(ResponseTracker, InjectedParseIsSwallowedAndSyntheticParseCompleteTakesItsPlace) {
  ResponseTracker t;
  Hooks h;
  // Client: Parse(S1, already on the server) Bind Execute Sync; proxy: nothing sent for the Parse.
  Pending synth{Expect::Synthetic};
  synth.synthetic = msg('1');
  t.push(synth);
  // ... and a Bind of S2 which needed an injected Parse first.
  Pending inj{Expect::InjectedParse};
  inj.statement_id = 7;
  t.push(inj);
  t.push(Pending{Expect::Bind});
  t.push(Pending{Expect::Execute});
  t.push(Pending{Expect::Sync});
  std::string got = run(t, h, {msg('1'), msg('2'), msg('D'), complete("SELECT 1"), ready('I')});
  EXPECT_EQ(got, "12DCZ");  // the injected Parse's '1' never reaches the client
  EXPECT_TRUE(t.empty());
}

TEST(ResponseTracker, ErrorSkipsToSyncAndForgetsParsesThatNeverRan) {
  ResponseTracker t;
  Hooks h;
  t.push(Pending{Expect::Bind});
  t.push(Pending{Expect::Execute});
  Pending later{Expect::Parse};
  later.statement_id = 3;
  later.client_name = "s3";
  t.push(later);
  Pending synth{Expect::Synthetic};
  synth.synthetic = msg('1');
  t.push(synth);
  t.push(Pending{Expect::Sync});
  std::string got = run(t, h, {msg('2'), error(), ready('I')});
  EXPECT_EQ(got, "2EZ");  // no ParseComplete after an error, as PostgreSQL would send
  EXPECT_NE(std::find(h.events.begin(), h.events.end(), "parse_not_applied 3"), h.events.end());
  EXPECT_TRUE(t.empty());
}

// psycopg 3 pipeline mode: a unit's Execute fails on the server before the client has sent the
// rest of the unit. The server discards the rest up to Sync, so those messages get no reply and
// the commit-LSN probe behind the Sync stays invisible (it once reached the client as a stray
// DataRow, or re-parsed its statement: 42P05).
TEST(ResponseTracker, MessagesSentAfterAnErrorBeforeTheirSyncGetNoReply) {
  ResponseTracker t;
  Hooks h;
  t.bind_hooks(h);
  t.push(Pending{Expect::Parse});
  t.push(Pending{Expect::Bind});
  t.push(Pending{Expect::Describe});
  t.push(Pending{Expect::Execute});
  std::string got = run(t, h, {msg('1'), msg('2'), msg('n'), error()});
  EXPECT_EQ(got, "12nE");
  // The rest of the unit arrives from the client after the error was seen.
  Pending parse{Expect::Parse};
  parse.statement_id = 9;
  t.push(parse);
  t.push(Pending{Expect::Bind});
  t.push(Pending{Expect::Describe});
  t.push(Pending{Expect::Execute});
  Pending synth{Expect::Synthetic};  // e.g. a Close the proxy answers itself
  synth.synthetic = msg('3');
  t.push(synth);
  t.push(Pending{Expect::Sync});
  Pending probe{Expect::LsnProbe};
  probe.probe_parses = true;
  t.push(probe);
  // The next unit, after the Sync: replied to normally.
  t.push(Pending{Expect::Parse});
  t.push(Pending{Expect::Sync});
  std::string data_row = msg('D', std::string("\0\1\0\0\0\x09", 6) + "0/30817F8");
  got = run(t, h, {ready('I'), msg('1'), msg('2'), data_row, complete("SELECT 1"), ready('I'), msg('1'), ready('I')});
  EXPECT_EQ(got, "Z1Z") << "the write's ReadyForQuery (held for the probe), then the next unit";
  EXPECT_NE(std::find(h.events.begin(), h.events.end(), "parse_not_applied 9"), h.events.end());
  EXPECT_NE(std::find(h.events.begin(), h.events.end(), "lsn 0/30817F8"), h.events.end());
  EXPECT_TRUE(t.empty());
}

// A unit whose implicit transaction spans shards: the proxy ends it at the Sync, so the server's
// ReadyForQuery (its transaction's state, 'E' after an error) is seen but not sent on.
TEST(ResponseTracker, ProxyEndedSyncReportsItsStatusWithoutSendingIt) {
  ResponseTracker t;
  Hooks h;
  t.bind_hooks(h);
  t.push(Pending{Expect::Bind});
  t.push(Pending{Expect::Execute});
  std::string got = run(t, h, {msg('2'), error()});
  EXPECT_EQ(got, "2E");
  Pending sync{Expect::Sync};
  sync.proxy_ready = true;
  t.push(sync);  // ends the discarding the error started
  t.push(Pending{Expect::Bind});
  got = run(t, h, {ready('E'), msg('2')});
  EXPECT_EQ(got, "2");
  EXPECT_NE(std::find(h.events.begin(), h.events.end(), "ready E"), h.events.end());
  EXPECT_TRUE(t.empty());
}

TEST(ResponseTracker, StalePlanErrorOfAnExecuteIsReported) {
  for (bool stale : {true, false}) {
    ResponseTracker t;
    Hooks h;
    t.push(Pending{Expect::Bind});
    t.push(Pending{Expect::Execute});
    t.push(Pending{Expect::Sync});
    std::string e;
    protocol::MessageWriter(e).error(stale ? protocol::SqlError::error("0A000", "cached plan must not change result type")
                                           : protocol::SqlError::error("0A000", "something else"));
    EXPECT_EQ(run(t, h, {msg('2'), e, ready('I')}), "2EZ");
    const bool reported = std::find(h.events.begin(), h.events.end(), "stale") != h.events.end();
    EXPECT_EQ(reported, stale);
  }
}

TEST(ResponseTracker, StateSyncAndHeldBeginAreInvisibleToTheClient) {
  ResponseTracker t;
  Hooks h;
  t.push(Pending{Expect::StateSync});
  t.push(Pending{Expect::Swallow});
  t.push(Pending{Expect::SimpleQuery});
  std::string got = run(t, h, {complete("SET"), ready('I'), complete("BEGIN"), ready('T'),
                               msg('T'), msg('D'), complete("SELECT 1"), ready('T')});
  EXPECT_EQ(got, "TDCZ");
  EXPECT_EQ(h.events.front(), "sync_ok");
}

TEST(ResponseTracker, FailingQueryReplacesTheServersErrorWithTheProxys) {
  ResponseTracker t;
  Hooks h;
  Pending p{Expect::FailingQuery};
  p.replacement = std::make_shared<const protocol::SqlError>(protocol::SqlError::error("0A000", "cross-shard"));
  t.push(p);
  OutBatch out;
  std::string e = error();
  t.on_server_message('E', e, std::string_view(e).substr(5), out, h);
  ASSERT_EQ(out.buffers().size(), 1u);
  std::string_view bytes(static_cast<const char*>(out.buffers()[0].data()), out.buffers()[0].size());
  EXPECT_NE(bytes.find("0A000"), std::string_view::npos);
  EXPECT_EQ(bytes.find("22012"), std::string_view::npos);
}

TEST(ResponseTracker, SimpleQueryErrorMeansItsSetsAreNotRecorded) {
  ResponseTracker t;
  Hooks h;
  Pending q{Expect::SimpleQuery};
  q.sets.push_back({SetChange::Kind::Set, "search_path", "SET search_path = x"});
  t.push(q);
  run(t, h, {error(), ready('I')});
  EXPECT_EQ(std::count(h.events.begin(), h.events.end(), "query_ok I"), 0);
  // The error's SQLSTATE reaches the hook (the metrics count errors by it).
  EXPECT_EQ(std::count(h.events.begin(), h.events.end(), "error 22012"), 1);
}

TEST(PendingQueue, ReusesItsStorageAndKeepsOrder) {
  PendingQueue q;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 5; ++i) {
      Pending p{Expect::Bind};
      p.statement_id = std::uint64_t(i);
      q.push_back(p);
    }
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(q.front().statement_id, std::uint64_t(i));
      q.pop_front();
    }
    EXPECT_TRUE(q.empty());
  }
}

}  // namespace
}  // namespace shardline::proxy::session
