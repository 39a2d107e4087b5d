#include "proxy/control/node_health.hpp"

#include <stdexcept>
#include <utility>

#include <fmt/format.h>

namespace shardline::control {

NodeHealth::NodeHealth(Clock::duration timeout) : timeout_(timeout) {
  if (timeout_ <= Clock::duration::zero()) throw std::invalid_argument("NodeHealth: the timeout must be positive");
}

void NodeHealth::asked(Clock::time_point at) {
  if (!asked_at_) asked_at_ = at;
}

void NodeHealth::answered(Clock::time_point at) {
  asked_at_.reset();
  last_answer_ = at;
  problem_.clear();
  silent_ = false;
}

void NodeHealth::failed(std::string why) {
  asked_at_.reset();
  problem_ = why.empty() ? "failed" : std::move(why);
  silent_ = false;
}

void NodeHealth::timed_out(std::string why) {
  asked_at_.reset();
  problem_ = why.empty() ? "no answer" : std::move(why);
  silent_ = true;
}

NodeHealth::State NodeHealth::state(Clock::time_point now) const {
  if (!problem_.empty()) return silent_ ? State::Silent : State::Failed;
  if (asked_at_ && now - *asked_at_ > timeout_) return State::Silent;
  if (!last_answer_) return State::Unknown;
  return State::Ok;
}

std::string NodeHealth::problem(Clock::time_point now) const {
  switch (state(now)) {
    case State::Ok: return "";
    case State::Unknown: return "no answer yet";
    case State::Failed:
    case State::Silent:
      if (!problem_.empty()) return problem_;
      return fmt::format("no answer within the health timeout ({} ms)",
                         std::chrono::duration_cast<std::chrono::milliseconds>(timeout_).count());
  }
  return "";
}

}  // namespace shardline::control
