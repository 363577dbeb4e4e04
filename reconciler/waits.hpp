#pragma once
// Waiting on observation while a plan is applied: polling a cluster until a condition holds (a
// step's wait), the verification that it converged, and the tally of the time spent waiting for
// Patroni to act (ApplyReport, metrics).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
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

// The members' addresses, in member order: whom observe_cluster asks.
std::vector<std::string> member_addresses(const DesiredCluster& cluster);

// How a step's wait observes: within timeout, stopping early when stop is set, with or without
// PostgreSQL (libpq), reporting on token.
struct WaitSpec {
  const std::atomic<bool>* stop = nullptr;
  std::chrono::seconds timeout{0};
  std::string what;  // "c-1 streaming": in the progress line and the timeout's error
  bool with_postgres = false;
};

// Polls observe_cluster until ready(observed) or the deadline; returns the last observation.
// Counts in current_tally().
Result<ObservedCluster> wait_for(const DesiredCluster& cluster, const ClusterSecrets& secrets, World& world,
                                 const WaitSpec& spec, Progress& progress, const Progress::Token& token,
                                 const std::function<bool(const ObservedCluster&)>& ready);

// Waits until the cluster converges or the timeout passes; returns the last differences.
std::vector<std::string> wait_converged(const DesiredCluster& cluster, const ClusterSecrets& secrets, World& world,
                                        std::chrono::seconds timeout, std::size_t workers,
                                        Progress* progress = nullptr, ObservedCluster* last = nullptr,
                                        const std::atomic<bool>* stop = nullptr, WaitTally* tally = nullptr);

}  // namespace pgc::reconciler
