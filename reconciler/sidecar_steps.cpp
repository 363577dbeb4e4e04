// The sidecar steps of a cluster's plan: files, services, roles, rotation (sidecar_steps.hpp).

#include "reconciler/sidecar_steps.hpp"

#include <algorithm>

#include "reconciler/rotation.hpp"
#include "reconciler/sidecars.hpp"

namespace pgc::reconciler {

// A managed file of a member (PgBouncer's, the exporter's).
Result<void> SidecarSteps::run(const steps::WriteFile& step, const Change& change, const Progress::Token&) {
  const auto& m = support_.member(change);
  auto file = std::find_if(m.files.begin(), m.files.end(), [&](const ManagedFile& f) { return f.path == step.path; });
  if (file == m.files.end()) throw FatalError("internal: plan names unknown file " + step.path + " of " + m.name);
  auto s = support_.session(change.host);
  PGC_TRY(s);
  return write_managed_file(**s, *file, support_.secrets(change.cluster));
}

// start / restart / reload / enable / stop of a sidecar's unit; a start or restart is verified
// by asking systemd whether the unit is active.
Result<void> SidecarSteps::run(const steps::Service& step, const Change& change, const Progress::Token&) {
  using steps::ServiceAction;
  const std::string& unit = step.unit;
  if (step.action == ServiceAction::stop) {
    PGC_TRY(support_.systemctl(change.host, {"stop", unit}));
    return support_.systemctl(change.host, {"disable", unit});
  }
  if (step.enable || step.action == ServiceAction::enable) PGC_TRY(support_.systemctl(change.host, {"enable", unit}));
  if (step.action == ServiceAction::enable) return {};
  if (step.action == ServiceAction::reload) return support_.systemctl(change.host, {"reload", unit});
  PGC_TRY(support_.systemctl(change.host, {to_string(step.action), unit}));  // start or restart
  return support_.systemctl(change.host, {"is-active", "--quiet", unit});
}

// Roles on the leader (PostgreSQL's roles are cluster-wide; replicas get them by replication).
Result<void> SidecarSteps::run(const steps::EnsureRoles&, const Change& change, const Progress::Token& token) {
  const auto& c = support_.cluster(change);
  auto s = support_.leader_session(c, "a leader to create roles on", token);
  PGC_TRY(s);
  return ensure_roles(**s, c.roles, support_.secrets(c.name));
}

// A rotation: the roles' new passwords on the leader, then saved, before any config has them.
Result<void> SidecarSteps::run(const steps::RotateSecrets& step, const Change& change, const Progress::Token& token) {
  const auto& c = support_.cluster(change);
  auto roles = rotation_roles(c, step.kinds);
  if (!roles.empty()) {
    auto s = support_.leader_session(c, "a leader to set the new passwords on", token);
    PGC_TRY(s);
    PGC_TRY(ensure_roles(**s, roles, support_.secrets(c.name)));
  }
  if (support_.options().secrets_rotated) return support_.options().secrets_rotated(c.name);
  return {};
}

}  // namespace pgc::reconciler
