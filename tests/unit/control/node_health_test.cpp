// Health of a probed server from its probes' history: a slow answer within the health timeout
// keeps it usable, silence past the timeout or an outright failure takes it out, and only an
// answer brings it back.

#include "proxy/control/node_health.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>

namespace {

using namespace std::chrono_literals;
using shardline::control::NodeHealth;
using State = NodeHealth::State;
using Clock = NodeHealth::Clock;

const Clock::time_point kT0 = Clock::time_point(std::chrono::hours(1000));

Clock::time_point at(std::chrono::milliseconds ms) { return kT0 + ms; }

TEST(NodeHealth, UnknownUntilTheFirstAnswer) {
  NodeHealth h(1000ms);
  EXPECT_EQ(h.state(at(0ms)), State::Unknown);
  h.asked(at(0ms));
  EXPECT_EQ(h.state(at(500ms)), State::Unknown);
  EXPECT_EQ(h.problem(at(500ms)), "no answer yet");
  h.answered(at(600ms));
  EXPECT_EQ(h.state(at(600ms)), State::Ok);
  EXPECT_EQ(h.problem(at(600ms)), "");
  EXPECT_EQ(h.last_answer(), at(600ms));
}

TEST(NodeHealth, ASlowAnswerWithinTheTimeoutIsNoOutage) {
  NodeHealth h(1000ms);
  h.asked(at(0ms));
  h.answered(at(20ms));
  // Probes every 50 ms, each answered late (several poll intervals), none past the timeout.
  for (int i = 1; i <= 100; ++i) {
    const auto sent = at(i * 1000ms);
    h.asked(sent);
    EXPECT_TRUE(h.waiting());
    for (auto t = 50ms; t <= 1000ms; t += 50ms) EXPECT_EQ(h.state(sent + t), State::Ok) << i << " " << t.count();
    h.answered(sent + 999ms);
    EXPECT_FALSE(h.waiting());
    EXPECT_EQ(h.state(sent + 999ms), State::Ok);
  }
}

TEST(NodeHealth, SilencePastTheTimeoutTakesItOutAndAnAnswerBringsItBack) {
  NodeHealth h(1000ms);
  h.asked(at(0ms));
  h.answered(at(10ms));
  h.asked(at(50ms));
  EXPECT_EQ(h.state(at(1050ms)), State::Ok);  // exactly the timeout: still within it
  EXPECT_EQ(h.state(at(1051ms)), State::Silent);
  EXPECT_EQ(h.problem(at(1051ms)), "no answer within the health timeout (1000 ms)");
  h.answered(at(1200ms));
  EXPECT_EQ(h.state(at(1200ms)), State::Ok);
}

TEST(NodeHealth, TheTimeToAnswerRunsFromTheFirstQuestion) {
  // A connection attempt and then its first probe are one question as far as health goes.
  NodeHealth h(1000ms);
  h.asked(at(0ms));
  h.asked(at(900ms));
  EXPECT_EQ(h.state(at(1001ms)), State::Silent);
}

TEST(NodeHealth, AFailureTakesItOutAtOnceUntilTheNextAnswer) {
  NodeHealth h(1000ms);
  h.asked(at(0ms));
  h.answered(at(10ms));
  h.asked(at(50ms));
  h.failed("connection closed by the server: FATAL 57P01");
  EXPECT_EQ(h.state(at(51ms)), State::Failed);
  EXPECT_EQ(h.problem(at(51ms)), "connection closed by the server: FATAL 57P01");
  // Reconnecting is not answering.
  h.asked(at(100ms));
  EXPECT_EQ(h.state(at(150ms)), State::Failed);
  h.failed("cannot connect: connection refused");
  EXPECT_EQ(h.problem(at(150ms)), "cannot connect: connection refused");
  h.asked(at(200ms));
  h.answered(at(230ms));
  EXPECT_EQ(h.state(at(230ms)), State::Ok);
}

TEST(NodeHealth, GivingUpIsSilenceWithItsOwnReason) {
  NodeHealth h(1000ms);
  h.asked(at(0ms));
  h.timed_out("could not connect within 1000 ms");
  EXPECT_FALSE(h.waiting());
  EXPECT_EQ(h.state(at(1000ms)), State::Silent);
  EXPECT_EQ(h.problem(at(1000ms)), "could not connect within 1000 ms");
  h.asked(at(1000ms));
  EXPECT_EQ(h.state(at(1100ms)), State::Silent);
  h.answered(at(1100ms));
  EXPECT_EQ(h.state(at(1100ms)), State::Ok);
}

TEST(NodeHealth, RefusesANonPositiveTimeout) {
  EXPECT_THROW(NodeHealth(0ms), std::invalid_argument);
  EXPECT_THROW(NodeHealth(-1ms), std::invalid_argument);
}

}  // namespace
