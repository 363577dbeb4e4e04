#pragma once
// Carrying out host preparation's steps (planned by host_prep.cpp) on a host over SSH: the pgdg
// repository, the packages and their dry run (apt-get -s), Debian's own clusters stopped.

#include "reconciler/plan.hpp"
#include "reconciler/step_support.hpp"

namespace pgc::reconciler {

class HostPrepSteps {
 public:
  explicit HostPrepSteps(const StepContext& context) : support_(context) {}

  Result<void> run(const steps::ConfigureRepository& step, const Change& change, const Progress::Token& token);
  Result<void> run(const steps::InstallPackages& step, const Change& change, const Progress::Token& token);
  Result<void> run(const steps::StopDebianCluster& step, const Change& change, const Progress::Token& token);
  // The dry run of an install: apt-get update where planned, then apt-get -s install.
  Result<void> check(const steps::InstallPackages& step, const Change& change);

 private:
  StepSupport support_;
};

}  // namespace pgc::reconciler
