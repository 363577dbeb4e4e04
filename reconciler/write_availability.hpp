#pragma once
// Write availability of one cluster while the plan restarts or stops its members (docs/reliability.md,
// faults 6 and 7): who streams, who will stream shortly, whom to switch over to, and what a strict
// cluster needs to keep a sync standby. The planner holds a change back on these answers.

#include <initializer_list>
#include <string>
#include <vector>

#include "reconciler/desired.hpp"
#include "reconciler/observed.hpp"
#include "reconciler/steps.hpp"

namespace pgc::reconciler {

class WriteAvailability {
 public:
  WriteAvailability(const DesiredCluster& desired, const ObservedCluster& cluster, const ObservedState& observed);

  // synchronous_mode_strict is declared: every write needs a sync standby.
  [[nodiscard]] bool strict() const { return strict_; }

  // Declared replicas streaming now, other than those named. Patroni keeps listing a lost replica
  // as streaming until its key expires (ttl): only those whose host answered this run count.
  [[nodiscard]] std::vector<std::string> streaming_except(std::initializer_list<std::string> names) const;

  // ... or that will stream shortly: their host answers and their service runs (just restored,
  // catching up). A change relying on those waits for one to stream (its step's
  // await_streaming_except) rather than being held back.
  [[nodiscard]] std::vector<std::string> available_except(std::initializer_list<std::string> names) const;

  // What a restart or stop of the named members waits for first: in a strict cluster where no
  // other replica streams yet, one of them streaming; otherwise nothing.
  [[nodiscard]] steps::AwaitStreamingExcept guard(std::initializer_list<std::string> names) const;

  // A declared, failover-capable replica that streams and whose host answered, a sync standby
  // first (Patroni may still list a lost one as sync until its key expires); "" when none.
  [[nodiscard]] std::string switchover_candidate(const std::string& leader) const;

  // Why taking `member` down blocks the writes of a strict cluster.
  [[nodiscard]] std::string strict_gap(const std::string& member) const;

 private:
  [[nodiscard]] bool host_answered(const std::string& host) const;

  const DesiredCluster& desired_;
  const ObservedCluster& cluster_;
  const ObservedState& observed_;
  bool strict_;
};

}  // namespace pgc::reconciler
