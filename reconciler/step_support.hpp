#pragma once
// What the host step runners share (host_prep_steps, member_steps, sidecar_steps, etcd_apply):
// the plan's cluster, member and host session looked up by name, a command whose non-zero exit
// is an error, systemctl, and a wait on a cluster's observation bounded by the apply's options.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "reconciler/apply.hpp"
#include "reconciler/plan.hpp"
#include "reconciler/step_runner.hpp"
#include "reconciler/waits.hpp"

namespace pgc::reconciler {

inline constexpr auto k_command_timeout = std::chrono::seconds(60);

// Runs argv on a host; a non-zero exit is an error naming host, command and stderr.
Result<providers::CommandResult> run_checked(providers::RemoteHost& host, const std::vector<std::string>& argv,
                                             std::chrono::milliseconds timeout);


class StepSupport {
 public:
  explicit StepSupport(const StepContext& context) : context_(context) {}

  [[nodiscard]] const StepContext& context() const { return context_; }
  [[nodiscard]] const ApplyOptions& options() const { return context_.options; }

  // The session of a declared host (opened once per apply, Sessions).
  Result<providers::RemoteHost*> session(const std::string& host_name);
  // The cluster and member a change names; a plan naming another is a bug (FatalError).
  [[nodiscard]] const DesiredCluster& cluster(const Change& change) const;
  [[nodiscard]] const DesiredMember& member(const Change& change) const;
  [[nodiscard]] const ClusterSecrets& secrets(const std::string& cluster_name) const;

  // systemctl args… on a host, checked.
  Result<void> systemctl(const std::string& host_name, std::vector<std::string> args);

  // wait_for (waits.hpp) on cluster c until ready, bounded by timeout (default: --wait-timeout)
  // and the stop flag.
  Result<ObservedCluster> wait(const DesiredCluster& c, const std::string& what, const Progress::Token& token,
                               const std::function<bool(const ObservedCluster&)>& ready,
                               std::optional<std::chrono::seconds> timeout = std::nullopt, bool with_postgres = false);

  // The leader's host session, once a leader runs.
  Result<providers::RemoteHost*> leader_session(const DesiredCluster& c, const std::string& what,
                                                const Progress::Token& token);

 private:
  StepContext context_;
};

}  // namespace pgc::reconciler
