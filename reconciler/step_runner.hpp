#pragma once
// The seam between the executor and the hosts (Ninja's CommandRunner is the model): the executor
// (apply.cpp) decides the order of a plan's changes, what runs in parallel and what a failure
// skips; a StepRunner carries out one change. The product runs make_host_step_runner(); unit
// tests of apply, apply_run and reconcile pass a fake that records the steps and fails on cue.

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "manifests/model.hpp"
#include "reconciler/desired.hpp"
#include "reconciler/observe.hpp"
#include "reconciler/plan.hpp"
#include "reconciler/progress.hpp"
#include "reconciler/secrets.hpp"
#include "reconciler/world.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

struct ApplyOptions;

class StepRunner {
 public:
  virtual ~StepRunner() = default;
  // Carries out one change; returns once it is done and, where the next step depends on it,
  // observed done. token reports what the step waits for.
  virtual Result<void> run(const Change& change, const Progress::Token& token) = 0;
  // The dry run of an install_packages change (apt-get -s): every host's installs are resolved
  // before any is installed.
  virtual Result<void> check(const Change& change, const Progress::Token& token) = 0;
};

// What a runner may use to carry out the changes of one plan.
struct StepContext {
  const manifests::ManifestSet& manifests;
  const DesiredState& desired;
  const std::map<std::string, ClusterSecrets>& secrets;
  World& world;
  Sessions& sessions;
  Progress& progress;
  const ApplyOptions& options;
};

using StepRunnerFactory = std::function<std::unique_ptr<StepRunner>(const StepContext& context)>;

// The runner that acts on the hosts (SSH, Patroni's REST API, libpq) through context.world.
std::unique_ptr<StepRunner> make_host_step_runner(const StepContext& context);

}  // namespace pgc::reconciler
