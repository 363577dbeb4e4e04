#pragma once
// Carrying out the etcd steps of a plan (planned by reconciler/etcd.cpp) over SSH: etcdctl and
// systemctl on the member hosts. Every wait is on observation: `etcdctl endpoint health` on each member host.

#include "manifests/model.hpp"
#include "reconciler/apply.hpp"
#include "reconciler/observe.hpp"
#include "reconciler/plan.hpp"
#include "reconciler/progress.hpp"
#include "reconciler/step_runner.hpp"

namespace pgc::reconciler {

// Carries out the etcd steps (steps::Etcd*); every error names the host and the step.
class EtcdSteps {
 public:
  explicit EtcdSteps(const StepContext& context) : context_(context) {}

  Result<void> run(const steps::EtcdWriteConfig& step, const Change& change, const Progress::Token& token);
  Result<void> run(const steps::EtcdStart& step, const Change& change, const Progress::Token& token);
  Result<void> run(const steps::EtcdRestart& step, const Change& change, const Progress::Token& token);
  Result<void> run(const steps::EtcdMemberAdd& step, const Change& change, const Progress::Token& token);
  Result<void> run(const steps::EtcdMemberRemove& step, const Change& change, const Progress::Token& token);
  Result<void> run(const steps::EtcdStop& step, const Change& change, const Progress::Token& token);
  Result<void> run(const steps::EtcdWriteCertificate& step, const Change& change, const Progress::Token& token);

 private:
  StepContext context_;
};

}  // namespace pgc::reconciler
