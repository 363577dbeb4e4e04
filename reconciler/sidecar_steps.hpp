#pragma once
// Carrying out the sidecar steps of a cluster's plan (planned by sidecars.cpp and rotation.cpp):
// PgBouncer's and the exporter's files and services, the managed roles on the leader, and a
// rotation's new passwords there.

#include "reconciler/plan.hpp"
#include "reconciler/step_support.hpp"

namespace pgc::reconciler {

class SidecarSteps {
 public:
  explicit SidecarSteps(const StepContext& context) : support_(context) {}

  Result<void> run(const steps::WriteFile& step, const Change& change, const Progress::Token& token);
  Result<void> run(const steps::Service& step, const Change& change, const Progress::Token& token);
  Result<void> run(const steps::EnsureRoles& step, const Change& change, const Progress::Token& token);
  Result<void> run(const steps::RotateSecrets& step, const Change& change, const Progress::Token& token);

 private:
  StepSupport support_;
};

}  // namespace pgc::reconciler
