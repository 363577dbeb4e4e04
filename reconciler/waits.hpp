#pragma once
// Waiting on observation while a plan is applied: polling a cluster until a condition holds (a
// step's wait), the verification that it converged, and the tally of the time spent waiting for
// Patroni to act (ApplyReport, metrics).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "reconciler/desired.hpp"
#include "reconciler/observe.hpp"
#include "reconciler/observed.hpp"
#include "reconciler/progress.hpp"
#include "reconciler/secrets.hpp"
#include "reconciler/world.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

// Time an apply spent waiting for Patroni to act: the pauses between observations and the
// observations that found it not done yet (the one that finds it done is pgconverge's own work).
struct WaitTally {
  std::chrono::nanoseconds waited{0};
  std::size_t observations = 0;
  // Until then "no pending restart" proves nothing: PostgreSQL parameters were patched into the
  // DCS and Patroni applies them (and reports a pending restart) only in its next loop.
  std::chrono::steady_clock::time_point settle_until{};
  // Until then a PostgreSQL refusing pgconverge (no pg_hba.conf entry, a wrong password) may be
  // the configuration before a reload: Patroni applies a reload in its next loop (SIGHUP is read
  // between loops), so such a refusal ends a wait only once that loop has passed.
  std::chrono::steady_clock::time_point auth_settle_until{};
  WaitTally& operator+=(const WaitTally& o) {
    waited += o.waited;
    observations += o.observations;
    return *this;
  }
};

// The tally of the cluster this thread applies (apply() runs each cluster on one thread and sets
// it for the cluster's steps), or nullptr.
WaitTally* current_tally();

// Sets the current tally of this thread for its lifetime.
class ScopedTally {
 public:
  explicit ScopedTally(WaitTally* tally);
  ~ScopedTally();
  ScopedTally(const ScopedTally&) = delete;
  ScopedTally& operator=(const ScopedTally&) = delete;

 private:
  WaitTally* previous_;
};

// What a wait says when the stop flag ends it, and whether it is set.
inline constexpr const char* k_stopping = "stopped: pgconverge is shutting down";
inline bool stopping(const std::atomic<bool>* stop) { return stop && stop->load(); }

// The bound of a whole apply run: --wait-timeout from its start (apply_run), shared by all its
// passes and waits. Every wait ends at its own bound or this one, whichever comes first; no pass
// starts after it. Unset (max): only each wait's own bound.
struct ApplyDeadline {
  std::chrono::steady_clock::time_point at = std::chrono::steady_clock::time_point::max();
  std::chrono::seconds bound{0};  // --wait-timeout, for the message

  // From now, bound later.
  static ApplyDeadline starting_now(std::chrono::seconds bound);
  [[nodiscard]] bool passed() const;
  // When a wait of own that starts now ends: now + own, or at, whichever comes first.
  [[nodiscard]] std::chrono::steady_clock::time_point cut(std::chrono::seconds own) const;
  // own, or the time left when less (never negative); for a command's timeout at least min.
  [[nodiscard]] std::chrono::milliseconds left(std::chrono::milliseconds own,
                                               std::chrono::milliseconds min = std::chrono::milliseconds(0)) const;
  // "the apply's --wait-timeout of 240s (all passes and waits) was reached"
  [[nodiscard]] std::string reached() const;
};

// The members' addresses, in member order: whom observe_cluster asks.
std::vector<std::string> member_addresses(const DesiredCluster& cluster);

// How a step's wait observes: within timeout, stopping early when stop is set, with or without
// PostgreSQL (libpq), reporting on token.
struct WaitSpec {
  const std::atomic<bool>* stop = nullptr;
  std::chrono::seconds timeout{0};
  std::string what;  // "c-1 streaming": in the progress line and the timeout's error
  bool with_postgres = false;
  ApplyDeadline apply{};  // the whole apply's bound: the wait ends at it too
};

// The error in an observation that waiting cannot fix, if any: every member's REST API refused
// pgconverge (HTTP 401/403), or, when postgres_settled, the leader's PostgreSQL did (a wrong
// password, no pg_hba.conf entry) while Patroni reports it running.
std::optional<Error> permanent_failure(const DesiredCluster& cluster, const ObservedCluster& observed,
                                       bool postgres_settled);

// Polls observe_cluster until ready(observed) or the deadline (its own or the apply's); returns
// the last observation. Ends at once, with a permanent Error, at an observation that
// permanent_failure() finds. Counts in current_tally().
Result<ObservedCluster> wait_for(const DesiredCluster& cluster, const ClusterSecrets& secrets, World& world,
                                 const WaitSpec& spec, Progress& progress, const Progress::Token& token,
                                 const std::function<bool(const ObservedCluster&)>& ready);

// What the verification found: the last differences, and why it stopped waiting early.
struct Verification {
  std::vector<std::string> differences;
  std::optional<Error> permanent;  // an error waiting cannot fix (permanent_failure)
  bool bound_reached = false;      // the apply's deadline ended the wait
};

// Waits until the cluster converges, the timeout (spec.timeout, cut by spec.apply) passes, the
// stop flag is set, or an observation shows a permanent failure. spec.what and
// spec.with_postgres are not used: the verification always observes PostgreSQL.
Verification wait_converged(const DesiredCluster& cluster, const ClusterSecrets& secrets, World& world,
                            const WaitSpec& spec, std::size_t workers, Progress* progress = nullptr,
                            ObservedCluster* last = nullptr, WaitTally* tally = nullptr);

}  // namespace pgc::reconciler
