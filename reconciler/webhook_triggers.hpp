#pragma once
// From verified webhooks to runs, without a run storm. A verified webhook still costs a run (a
// fetch and a reconcile), and a replay of one captured delivery with a new delivery id verifies
// again (the id is not signed). So, per receiver, at most one run starts per min_interval:
// webhooks arriving while that receiver's run is pending are folded into it ("coalesced"), and
// one arriving within min_interval of that receiver's last run is held until the interval has
// passed ("delayed"). Nothing is lost: the held run fetches the newest revision when it starts.
// A flood of verified webhooks over T seconds thus starts at most 2 + T / min_interval runs
// (one at once, one per interval, and the one held at its end).
// Not thread-safe: the daemon calls it under its own lock.

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace pgc::reconciler {

class WebhookTriggers {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Outcome {
    queued,     // a run for it starts as soon as the daemon is free
    delayed,    // a run for it starts once min_interval has passed since the receiver's last run
    coalesced,  // folded into the receiver's run already pending
  };

  // A verified webhook for receiver, arriving at now; min_interval is the receiver's.
  Outcome offer(const std::string& receiver, std::chrono::milliseconds min_interval, Clock::time_point now);
  // The receiver whose pending run is due at now (the one due first), marked as started; nullopt
  // when none is due.
  std::optional<std::string> take(Clock::time_point now);
  // When the first pending run is due; nullopt when none is pending.
  [[nodiscard]] std::optional<Clock::time_point> next_due() const;

 private:
  struct Receiver {
    bool pending = false;
    Clock::time_point due{};                       // of the pending run
    std::optional<Clock::time_point> last_started;  // of the last run taken
  };
  std::map<std::string, Receiver> receivers_;
};

// "queued", "delayed", "coalesced": the label value in /metrics.
const char* to_string(WebhookTriggers::Outcome outcome);

}  // namespace pgc::reconciler
