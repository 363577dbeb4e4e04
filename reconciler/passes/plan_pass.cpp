// The plan pass (see plan_pass.hpp).
#include "reconciler/passes/plan_pass.hpp"

#include "reconciler/passes/secrets_pass.hpp"

namespace pgc::reconciler {

void plan_changes(const RunOptions& options, Prepared& p) {
  p.plan = diff(p.loaded.manifests, p.desired, p.observed, p.secrets, options.plan);
  plan_secrets(p);
  for (auto& cp : p.plan.clusters)
    if (const auto* dc = p.desired.find(cp.name)) cp.suspended = dc->suspended;
}

}  // namespace pgc::reconciler
