#pragma once
// Whether one server the lag monitor probes is usable, decided from the history of its probes.
// One slow answer is not an outage: on a busy machine a probe can easily take longer than the
// poll interval, and taking a replica out (and the log saying so) every time that happens makes
// the monitor flap. A server is out when it has left a question unanswered for the health
// timeout, or at once when a question failed outright (refused, broken connection, query
// error). Pure: no clock, no I/O; the monitor passes the times in.

#include <chrono>
#include <optional>
#include <string>

namespace shardline::control {

class NodeHealth {
 public:
  using Clock = std::chrono::steady_clock;

  enum class State {
    Unknown,  ///< never answered, nothing failed yet (still connecting for the first time)
    Ok,       ///< answered its last question, or the current one is younger than the timeout
    Silent,   ///< a question has gone unanswered for longer than the timeout
    Failed,   ///< the last question failed outright, and nothing was answered since
  };

  /// Throws std::invalid_argument unless `timeout` is positive.
  explicit NodeHealth(Clock::duration timeout);

  /// A question (a connection attempt or a probe) went out at `at`. While one is outstanding a
  /// second call changes nothing: the server's time to answer runs from the first.
  void asked(Clock::time_point at);
  /// The server answered at `at`: Ok again, whatever came before.
  void answered(Clock::time_point at);
  /// The question failed: Failed until the next answer, however many questions go out meanwhile.
  void failed(std::string why);
  /// The monitor gave up waiting (and closed the connection): Silent until the next answer.
  void timed_out(std::string why);

  State state(Clock::time_point now) const;
  /// Why the server is not Ok ("" when it is).
  std::string problem(Clock::time_point now) const;

  /// A question is outstanding (asked and neither answered, failed nor timed out).
  bool waiting() const { return asked_at_.has_value(); }
  std::optional<Clock::time_point> last_answer() const { return last_answer_; }
  Clock::duration timeout() const { return timeout_; }

 private:
  Clock::duration timeout_;
  std::optional<Clock::time_point> asked_at_;
  std::optional<Clock::time_point> last_answer_;
  std::string problem_;  ///< failure or give-up since the last answer
  bool silent_ = false;  ///< problem_ is a give-up, not a failure
};

}  // namespace shardline::control
