#pragma once
// The apply pass: executes a plan's changes in order, waiting on observation (never on an HTTP
// status) where the next step depends on the previous one, then verifies convergence. The
// executor (apply.cpp) decides order, parallelism and what a failure skips; a StepRunner
// (step_runner.hpp) carries out each step.

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "manifests/model.hpp"
#include "reconciler/desired.hpp"
#include "reconciler/observe.hpp"
#include "reconciler/plan.hpp"
#include "reconciler/progress.hpp"
#include "reconciler/secrets.hpp"
#include "reconciler/waits.hpp"
#include "reconciler/world.hpp"

namespace pgc::reconciler {

class StepRunner;   // step_runner.hpp
struct StepContext;

struct ApplyOptions {
  std::chrono::seconds wait_timeout{180};  // --wait-timeout: bound on every wait and on verification
  // The whole run's bound (--wait-timeout from apply_run's start): every wait ends at it too.
  ApplyDeadline deadline{};
  std::size_t workers = 8;
  // Set (e.g. by SIGTERM) to stop between steps and waits; the step in progress completes.
  const std::atomic<bool>* stop = nullptr;
  // Called once a rotate-secrets step has set the new passwords on the leader, before any config
  // gets them: the run saves them as the cluster's secrets (apply_run.cpp). An error fails the step.
  std::function<Result<void>(const std::string& cluster)> secrets_rotated;
  // --state-dir: where the clusters' CAs are (cluster_ca.hpp), for write-certificate steps.
  std::filesystem::path state_dir{};
  // Who carries out the steps (step_runner.hpp); unset: the hosts (make_host_step_runner).
  std::function<std::unique_ptr<StepRunner>(const StepContext& context)> runner;
};

struct ClusterOutcome {
  std::string name;
  bool converged = false;
  std::size_t applied = 0;               // changes executed successfully
  std::vector<std::string> differences;  // what still differs after the wait
  std::vector<std::string> errors;       // steps that failed
  std::optional<ObservedCluster> observed;  // the last observation of the verification
  WaitTally waits;                           // in the steps' waits and the verification
  // The first error of this apply that waiting cannot fix (a step's or the verification's): the
  // run does not observe and apply again for it.
  std::optional<Error> permanent{};
};

struct ApplyReport {
  std::vector<std::string> host_errors;
  std::size_t host_changes_applied = 0;
  std::vector<ClusterOutcome> clusters;
  [[nodiscard]] bool ok() const;
  // Every change executed successfully, host and cluster changes together.
  [[nodiscard]] std::size_t applied() const;
};

// Executes plan. Changes of one cluster run in order; a failed step stops that cluster's
// remaining steps (other clusters go on). Then every cluster is verified by observation.
ApplyReport apply(const Plan& plan, const manifests::ManifestSet& manifests, const DesiredState& desired,
                  const std::map<std::string, ClusterSecrets>& secrets, World& world, Sessions& sessions,
                  Progress& progress, const ApplyOptions& options);

}  // namespace pgc::reconciler
