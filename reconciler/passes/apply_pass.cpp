// The apply pass (see apply_pass.hpp).
#include "reconciler/passes/apply_pass.hpp"

#include "reconciler/passes/secrets_pass.hpp"

namespace pgc::reconciler {
namespace {

// The plan without the suspended clusters, and without host changes only they need. With owned
// (ownership), also without the clusters of other instances; changes tied to no owned cluster's
// host only when owned holds "".
Plan unsuspended(const Plan& plan, const DesiredState& desired, const std::optional<std::set<std::string>>& owned) {
  auto mine = [&](const std::string& name) { return !owned || owned->contains(name); };
  Plan out;
  out.host_errors = plan.host_errors;
  std::set<std::string> active_hosts;
  for (const auto& c : desired.clusters)
    if (!c.suspended && mine(c.name))
      for (const auto& m : c.members) active_hosts.insert(m.host);
  for (const auto& change : plan.host_changes) {
    bool shared = change.host.empty() || !etcd_name(change.step).empty();
    if (shared ? mine("") : active_hosts.contains(change.host)) out.host_changes.push_back(change);
  }
  for (const auto& cp : plan.clusters)
    if (!cp.suspended && mine(cp.name)) out.clusters.push_back(cp);
  return out;
}

}  // namespace

std::string no_further_pass_because(const ApplyRunOptions& options, const ApplyPasses& passes) {
  if (passes.report.ok()) return "";
  for (const auto& outcome : passes.report.clusters)
    if (outcome.permanent) return "cluster " + outcome.name + ": " + outcome.permanent->describe();
  if (options.apply.deadline.passed()) return options.apply.deadline.reached();
  return "";
}

bool stop_requested(const ApplyRunOptions& options) { return options.apply.stop && options.apply.stop->load(); }

Result<void> claim_clusters(const ApplyRunOptions& options, ApplyPasses& passes) {
  auto& current = passes.current;
  if (options.owned) {
    auto mine = options.owned(current.desired);
    PGC_TRY(mine);
    passes.owned = std::move(*mine);
  }
  // Another instance's cluster: its secrets are that instance's (recovered from the hosts when
  // this one takes over); new ones generated here are not kept.
  if (const auto& owned = passes.owned)
    std::erase_if(current.new_secrets, [&](const std::string& name) { return !owned->contains(name); });
  PGC_TRY(save_secrets(current, options.run.state_dir));
  return ensure_cluster_cas(current, options.run.state_dir, passes.owned);
}

void apply_changes(const ApplyRunOptions& options, ApplyPasses& passes, World& world, Sessions& sessions,
                   Progress& progress) {
  auto& current = passes.current;
  passes.to_apply = unsuspended(current.plan, current.desired, passes.owned);
  const Plan& to_apply = passes.to_apply;
  std::set<std::string> acting;
  for (const auto& cp : to_apply.clusters) acting.insert(cp.name);
  if (options.acting) options.acting(acting, true);
  if (!to_apply.host_changes.empty()) passes.changed.insert("");
  for (const auto& cp : to_apply.clusters)
    if (!cp.changes.empty()) passes.changed.insert(cp.name);
  ApplyOptions apply_options = options.apply;
  apply_options.state_dir = options.run.state_dir;
  apply_options.secrets_rotated = [&](const std::string& name) {
    return promote_rotation(current, name, options.run.state_dir);
  };
  passes.report = apply(to_apply, current.loaded.manifests, current.desired, current.secrets, world, sessions,
                        progress, apply_options);
  if (options.acting) options.acting(acting, false);
  for (const auto& outcome : passes.report.clusters) passes.waits[outcome.name] += outcome.waits;
}

std::string another_pass_because(const ApplyRunOptions& options, const ApplyPasses& passes, int pass) {
  const auto& report = passes.report;
  if (report.ok() || pass >= options.max_passes || stop_requested(options) || !passes.to_apply.has_changes() ||
      !no_further_pass_because(options, passes).empty())
    return "";
  // Again only if something changed under this pass that a fresh look can act on.
  std::string why;
  for (const auto& outcome : report.clusters) {
    const ClusterPlan* cp = nullptr;
    for (const auto& p : passes.to_apply.clusters)
      if (p.name == outcome.name) cp = &p;
    if (!cp || !cp->errors.empty() || (outcome.converged && outcome.errors.empty())) continue;
    why = "cluster " + outcome.name + ": " +
          (!outcome.errors.empty() ? outcome.errors.back()
                                   : outcome.differences.empty() ? "not converged" : outcome.differences.front());
    break;
  }
  if (!report.host_errors.empty()) return "";
  return why;
}

}  // namespace pgc::reconciler
