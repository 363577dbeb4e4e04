#pragma once
// Executing the etcd steps of a plan (reconciler/etcd.hpp) over SSH: etcdctl and systemctl on the
// member hosts. Every wait is on observation: `etcdctl endpoint health` on each member host.

#include "manifests/model.hpp"
#include "reconciler/apply.hpp"
#include "reconciler/observe.hpp"
#include "reconciler/plan.hpp"
#include "reconciler/progress.hpp"

namespace pgc::reconciler {

// Executes one change whose step is_etcd_step(); the error names the host and the step.
Result<void> execute_etcd_step(const Change& change, const manifests::ManifestSet& manifests, Sessions& sessions,
                               Progress& progress, const Progress::Token& token, const ApplyOptions& options);

}  // namespace pgc::reconciler
