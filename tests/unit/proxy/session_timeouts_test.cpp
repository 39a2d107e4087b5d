// How often the timeout janitor looks at the sessions (README "Timeouts").

#include "proxy/session/session_timeouts.hpp"

#include <gtest/gtest.h>

namespace {

using shardline::proxy::session::cancel_grace_ms;
using shardline::proxy::session::janitor_period;
using std::chrono::milliseconds;

shardline::config::Pool pool(int query, int idle_tx, int idle) {
  shardline::config::Pool p;
  p.query_timeout_ms = query;
  p.idle_transaction_timeout_ms = idle_tx;
  p.client_idle_timeout_ms = idle;
  return p;
}

TEST(TimeoutJanitor, ATenthOfTheShortestTimeoutThatIsOn) {
  EXPECT_EQ(janitor_period(pool(0, 0, 0)), milliseconds(0));  // all off: nothing to check
  EXPECT_EQ(janitor_period(pool(5000, 0, 0)), milliseconds(500));
  EXPECT_EQ(janitor_period(pool(0, 3000, 800)), milliseconds(80));
  EXPECT_EQ(janitor_period(pool(2000, 0, 60000)), milliseconds(200));
}

TEST(TimeoutJanitor, PeriodStaysBetweenTenMillisecondsAndOneSecond) {
  EXPECT_EQ(janitor_period(pool(50, 0, 0)), milliseconds(10));
  EXPECT_EQ(janitor_period(pool(1, 0, 0)), milliseconds(10));
  EXPECT_EQ(janitor_period(pool(0, 0, 3600000)), milliseconds(1000));
}

TEST(TimeoutJanitor, TheCancelGetsAnotherQueryTimeoutAndAtLeastTwoSeconds) {
  EXPECT_EQ(cancel_grace_ms(pool(60, 0, 0)), 2000);
  EXPECT_EQ(cancel_grace_ms(pool(5000, 0, 0)), 5000);
}

}  // namespace
