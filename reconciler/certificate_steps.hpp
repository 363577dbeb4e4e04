#pragma once
// The member steps that write TLS files (member_tls.hpp) to a host: the cluster's CA is created in
// the state dir by the first certificate it issues (once, under a lock: steps on several hosts
// run at once), then every member's key and certificate are new.

#include "reconciler/plan.hpp"
#include "reconciler/progress.hpp"
#include "reconciler/step_runner.hpp"
#include "reconciler/step_support.hpp"
#include "reconciler/steps.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

class CertificateSteps {
 public:
  explicit CertificateSteps(const StepContext& context) : support_(context) {}

  Result<void> run(const steps::WriteCertificate& step, const Change& change, const Progress::Token& token);

 private:
  StepSupport support_;
};

}  // namespace pgc::reconciler
